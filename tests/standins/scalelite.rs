//! A stand-in for Scalelite's servers API (`/scalelite/api/…`), written from Scalelite's
//! source (blindsidenetworks/scalelite):
//!
//! - `config/routes.rb`: GET `getServers`, `getServerInfo`; POST `addServer`,
//!   `updateServer`, `deleteServer`, `panicServer`.
//! - `app/controllers/api/scalelite_api_controller.rb`: a POST with a body must be
//!   `application/json` (else `unsupportedContentType`), then the checksum is verified
//!   with the load-balancer secret.
//! - `app/controllers/concerns/api_helper.rb` (`verify_checksum`): checksum = hex
//!   SHA-1/SHA-256/SHA-512 (by length 40/64/128) of camelCase action + query string
//!   without the checksum + secret; the body is not part of it.
//! - `app/controllers/application_controller.rb`: errors (`BBBError`) are rendered as
//!   XML `<response><returncode>FAILED</returncode><messageKey>…` with HTTP 200.
//! - `app/controllers/api/servers_controller.rb` and `app/services/server_update_service.rb`:
//!   the answers, `getServers` 404 when empty, unknown id 404, `addServer` 201 with a
//!   disabled server, states enable/cordon/disable.
//! - `lib/tasks/poll.rake`: the poller disables a cordoned server whose load is 0, and sets
//!   a server offline (load unavailable, meetings forgotten) after failed polls.
//!
//! Tests set each server's load, run a poller step, make the API unavailable (the load
//! balancer's 503 while no task is healthy) and read the calls it received.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::http::{Request, Response, Server as HttpServer};

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub tag: String,
    /// "enabled", "cordoned" or "disabled".
    pub state: String,
    /// `None` until polled: "unavailable".
    pub load: Option<f64>,
    pub load_multiplier: f64,
    pub online: bool,
}

impl Server {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "secret": self.secret,
            "tag": self.tag,
            "bbb_version": "",
            "state": self.state,
            "load": self.load.map_or(json!("unavailable"), |l| json!(l)),
            "load_multiplier": self.load_multiplier,
            "online": if self.online { "online" } else { "offline" },
        })
    }
}

/// One request the stand-in answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub action: String,
    pub query: String,
    pub body: String,
    pub status: u16,
    /// `messageKey` of an XML error, empty otherwise.
    pub error: String,
}

#[derive(Debug)]
struct State {
    secret: String,
    available: bool,
    servers: Vec<Server>,
    next_id: u64,
    calls: Vec<Call>,
}

pub struct Scalelite {
    http: HttpServer,
    state: Arc<Mutex<State>>,
}

impl Scalelite {
    /// Starts the stand-in with this load-balancer secret (`LOADBALANCER_SECRET`).
    pub fn start(secret: &str) -> Self {
        Self::start_on(secret, |handler| HttpServer::start(handler))
    }

    /// Over HTTPS with a test CA's certificate (`support::TestCa::issue`).
    pub fn start_tls(secret: &str, cert: &std::path::Path, key: &std::path::Path) -> Self {
        Self::start_on(secret, |handler| HttpServer::start_tls(cert, key, handler))
    }

    fn start_on(
        secret: &str,
        start: impl FnOnce(Box<dyn Fn(&Request) -> Response + Send + Sync>) -> HttpServer,
    ) -> Self {
        let state = Arc::new(Mutex::new(State {
            secret: secret.to_string(),
            available: true,
            servers: Vec::new(),
            next_id: 1,
            calls: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let http = start(Box::new(move |req| handle(&shared, req)));
        Scalelite { http, state }
    }

    /// A server as an operator's `addServer` then `updateServer enable` leaves it, polled
    /// once (online); its id.
    pub fn add_enabled(&self, url: &str, secret: &str) -> String {
        let mut st = self.lock();
        let id = add(&mut st, url, secret).id;
        if let Some(s) = st.servers.iter_mut().find(|s| s.id == id) {
            s.state = "enabled".into();
            s.online = true;
            s.load = Some(0.0);
        }
        id
    }

    pub fn http_port(&self) -> u16 {
        self.http.port()
    }

    /// Base URL (`http://127.0.0.1:PORT`); the API is below `/scalelite/api/`.
    pub fn url(&self) -> String {
        self.http.url()
    }

    /// false: every request gets the load balancer's 503 page (no healthy task yet).
    pub fn set_available(&self, available: bool) {
        self.lock().available = available;
    }

    pub fn servers(&self) -> Vec<Server> {
        self.lock().servers.clone()
    }

    pub fn server(&self, id: &str) -> Option<Server> {
        self.lock().servers.iter().find(|s| s.id == id).cloned()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The load the poller would compute from the server's meetings.
    pub fn set_load(&self, id: &str, load: f64) {
        if let Some(s) = self.lock().servers.iter_mut().find(|s| s.id == id) {
            s.load = Some(load * s.load_multiplier);
            s.online = true;
        }
    }

    /// One poller round (lib/tasks/poll.rake): a cordoned server with load 0 is disabled.
    pub fn poll(&self) {
        for s in &mut self.lock().servers {
            if s.state == "cordoned" && s.online && s.load.unwrap_or(0.0) == 0.0 {
                s.state = "disabled".to_string();
            }
        }
    }

    /// The poller's rounds fail for a server (lib/tasks/poll.rake: after
    /// `server_unhealthy_threshold` consecutive failed `getMeetings`): it is set offline, its
    /// load becomes unavailable and its meetings are forgotten; its state stays as it was.
    /// Whether the meetings really ended on the server is not Scalelite's to know.
    pub fn set_offline(&self, id: &str) {
        if let Some(s) = self.lock().servers.iter_mut().find(|s| s.id == id) {
            s.online = false;
            s.load = None;
        }
    }

    /// An operator enables a server (`bbbctl servers enable`, `rake servers:enable`).
    pub fn enable(&self, id: &str) {
        if let Some(s) = self.lock().servers.iter_mut().find(|s| s.id == id) {
            s.state = "enabled".to_string();
        }
    }

    /// An operator cordons a server (`bbbctl servers cordon`, `rake servers:cordon`).
    pub fn cordon(&self, id: &str) {
        if let Some(s) = self.lock().servers.iter_mut().find(|s| s.id == id) {
            s.state = "cordoned".to_string();
        }
    }

    /// An entry made by someone else (an operator, an earlier life of the server).
    pub fn add_directly(&self, url: &str, secret: &str) -> String {
        let mut st = self.lock();
        add(&mut st, url, secret).id
    }

    /// Scalelite forgets a server (an operator removed it, Redis was flushed).
    pub fn forget(&self, id: &str) {
        self.lock().servers.retain(|s| s.id != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("stand-in state")
    }
}

fn add(st: &mut State, url: &str, secret: &str) -> Server {
    let server = Server {
        id: format!("00000000-0000-4000-8000-{:012}", st.next_id),
        url: url.to_string(),
        secret: secret.to_string(),
        tag: String::new(),
        state: "disabled".to_string(),
        load: None,
        load_multiplier: 1.0,
        online: false,
    };
    st.next_id += 1;
    st.servers.push(server.clone());
    server
}

fn xml_error(key: &str, message: &str) -> Response {
    Response::new(
        200,
        "application/xml",
        format!(
            "<?xml version=\"1.0\"?>\n<response>\n  <returncode>FAILED</returncode>\n  <messageKey>{key}</messageKey>\n  <message>{message}</message>\n</response>\n"
        ),
    )
}

fn json_response(status: u16, value: &Value) -> Response {
    Response::new(status, "application/json", value.to_string())
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| v.to_string())
    })
}

/// api_helper.rb `verify_checksum` (the BBB API checks its calls the same way, with its own secret).
pub fn checksum_ok(action: &str, query: &str, secret: &str) -> bool {
    let Some(checksum) = param(query, "checksum").filter(|c| !c.is_empty()) else {
        return false;
    };
    let without = query
        .replace(&format!("&checksum={checksum}"), "")
        .replace(&format!("checksum={checksum}&"), "")
        .replace(&format!("checksum={checksum}"), "");
    let input = format!("{action}{without}{secret}");
    let expected = match checksum.len() {
        40 => hex::encode(&Sha1::digest(input.as_bytes())[..]),
        64 => hex::encode(&Sha256::digest(input.as_bytes())[..]),
        128 => hex::encode(&Sha512::digest(input.as_bytes())[..]),
        _ => return false,
    };
    expected == checksum.to_ascii_lowercase()
}

fn handle(state: &Arc<Mutex<State>>, req: &Request) -> Response {
    let mut st = state.lock().expect("stand-in state");
    // Scalelite's own BigBlueButton API (bigbluebutton_api_controller.rb), checked with the
    // same secret; this stand-in hosts no meetings: getMeetings says noMeetings, as Scalelite
    // does when there are none.
    if req.path == "/bigbluebutton/api/getMeetings" {
        if !checksum_ok("getMeetings", &req.query, &st.secret) {
            return xml_error("checksumError", "Checksums do not match");
        }
        return Response::new(
            200,
            "application/xml",
            "<response><returncode>SUCCESS</returncode><meetings/><messageKey>noMeetings</messageKey><message>no meetings were found on this server</message></response>",
        );
    }
    let action = req
        .path
        .strip_prefix("/scalelite/api/")
        .unwrap_or_default()
        .to_string();
    let body = String::from_utf8_lossy(&req.body).to_string();
    let response = answer(&mut st, req, &action, &body);
    let error = response
        .body
        .split_once("<messageKey>")
        .and_then(|(_, rest)| rest.split_once("</messageKey>"))
        .map(|(key, _)| key.to_string())
        .unwrap_or_default();
    st.calls.push(Call {
        method: req.method.clone(),
        action,
        query: req.query.clone(),
        body,
        status: response.status,
        error,
    });
    response
}

fn answer(st: &mut State, req: &Request, action: &str, body: &str) -> Response {
    if !st.available {
        return Response::new(
            503,
            "text/html",
            "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
        );
    }
    let post = req.method == "POST";
    let route_ok = match action {
        "getServers" | "getServerInfo" => req.method == "GET",
        "addServer" | "updateServer" | "deleteServer" | "panicServer" => post,
        _ => false,
    };
    if !route_ok {
        return Response::new(404, "text/html", "<html><body>Not Found</body></html>");
    }
    // scalelite_api_controller.rb: verify_content_type, then verify_checksum(true).
    if post
        && !req.body.is_empty()
        && !req
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    {
        return xml_error(
            "unsupportedContentType",
            "POST request Content-Type is missing or unsupported",
        );
    }
    if !checksum_ok(action, &req.query, &st.secret) {
        return xml_error(
            "checksumError",
            "You did not pass the checksum security check",
        );
    }
    // Rails merges JSON body parameters with the query parameters.
    let params: Value = if post {
        match serde_json::from_str(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return xml_error("internalError", "param is missing or the value is empty");
            }
        }
    } else {
        json!({ "id": param(&req.query, "id") })
    };
    let id = params
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let find = |st: &State| st.servers.iter().position(|s| s.id == id);
    let not_found = || {
        json_response(
            404,
            &json!({ "error": format!("Couldn't find server with id={id}") }),
        )
    };
    match action {
        "getServers" => {
            if st.servers.is_empty() {
                json_response(404, &json!({ "error": "No servers are configured" }))
            } else {
                let list: Vec<Value> = st.servers.iter().map(Server::to_json).collect();
                json_response(200, &Value::Array(list))
            }
        }
        "getServerInfo" => match find(st) {
            Some(i) => json_response(200, &st.servers[i].to_json()),
            None => not_found(),
        },
        "addServer" => {
            let server = params.get("server").cloned().unwrap_or(Value::Null);
            let url = server
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let secret = server
                .get("secret")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if url.is_empty() || secret.is_empty() {
                return json_response(400, &json!({ "error": "Server needs a URL and a secret" }));
            }
            let added = add(st, url, secret);
            json_response(201, &added.to_json())
        }
        "updateServer" => {
            let Some(i) = find(st) else {
                return not_found();
            };
            let update = params.get("server").cloned().unwrap_or(Value::Null);
            let s = &mut st.servers[i];
            if let Some(state) = update.get("state").and_then(Value::as_str) {
                s.state = match state {
                    "enable" => "enabled",
                    "cordon" => "cordoned",
                    "disable" => "disabled",
                    other => {
                        return json_response(
                            400,
                            &json!({ "error": format!("Invalid state parameter: {other}") }),
                        );
                    }
                }
                .to_string();
            }
            if let Some(secret) = update.get("secret").and_then(Value::as_str) {
                s.secret = secret.to_string();
            }
            if let Some(tag) = update.get("tag").and_then(Value::as_str) {
                s.tag = tag.to_string();
            }
            json_response(200, &s.to_json())
        }
        "deleteServer" => {
            let Some(i) = find(st) else {
                return not_found();
            };
            st.servers.remove(i);
            json_response(
                200,
                &json!({ "success": format!("Server id={id} was destroyed") }),
            )
        }
        "panicServer" => {
            let Some(i) = find(st) else {
                return not_found();
            };
            let keep_state = params
                .get("keep_state")
                .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
            if !keep_state {
                st.servers[i].state = "disabled".to_string();
            }
            json_response(
                200,
                &json!({ "success": format!("Server id={id} has been disabled and the meetings have been destroyed") }),
            )
        }
        _ => Response::new(404, "text/html", "Not Found"),
    }
}
