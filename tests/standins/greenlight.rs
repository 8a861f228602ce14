//! Greenlight v3's sign-in, as far as a client sees it (Greenlight release-3.8.2.4):
//! - `GET /` renders the single-page app's layout with Rails' `csrf_meta_tags`
//!   (app/views/layouts/application.html.erb) and sets the session cookie
//!   `_greenlight-3_0_session` (config/initializers/session_store.rb).
//! - `POST /api/v1/sessions.json` (Api::V1::SessionsController#create): API requests need
//!   `Accept: application/json` (Authorizable#valid_api_request?; otherwise the HTML layout
//!   comes back); the forgery protection Rails 7.2 turns on by default needs the session's
//!   token in `X-CSRF-Token` (a bad one raises, which ApiController's rescue_from answers
//!   500 `{"errors": ["SomethingWentWrong"]}`); a signed-in session gets 401
//!   (ensure_unauthenticated); the e-mail is compared in lower case; a wrong e-mail or
//!   password is 400 `{"errors": []}` (render_error), an unverified user 400
//!   `{"errors": ["UnverifiedUser"]}`; success is 200 `{"data": CurrentUserSerializer}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

const COOKIE: &str = "_greenlight-3_0_session";

pub struct User {
    pub email: String,
    pub password: String,
    pub name: String,
    pub role: String,
    pub verified: bool,
}

#[derive(Default)]
struct Session {
    token: String,
    user: Option<String>,
}

#[derive(Default)]
struct State {
    users: Vec<User>,
    sessions: HashMap<String, Session>,
    next: u64,
    /// Successful sign-ins, by e-mail.
    signed_in: Vec<String>,
}

pub struct Greenlight {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

impl Greenlight {
    pub fn start(users: Vec<User>) -> Self {
        Self::start_on(users, |h| Server::start(h))
    }

    /// Over HTTPS with a test CA's certificate, as behind the load balancer.
    pub fn start_tls(users: Vec<User>, cert: &std::path::Path, key: &std::path::Path) -> Self {
        Self::start_on(users, |h| Server::start_tls(cert, key, h))
    }

    fn start_on(
        users: Vec<User>,
        start: impl FnOnce(Box<dyn Fn(&Request) -> Response + Send + Sync>) -> Server,
    ) -> Self {
        let state = Arc::new(Mutex::new(State {
            users,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let server = start(Box::new(move |req| handle(&shared, req)));
        Greenlight { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn sign_ins(&self) -> Vec<String> {
        self.state.lock().unwrap().signed_in.clone()
    }
}

fn session_id(req: &Request) -> Option<String> {
    req.header("cookie")?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn json_reply(status: u16, v: Value) -> Response {
    Response::new(status, "application/json; charset=utf-8", v.to_string())
}

fn layout(st: &mut State, req: &Request) -> Response {
    let id = match session_id(req).filter(|id| st.sessions.contains_key(id)) {
        Some(id) => id,
        None => {
            st.next += 1;
            let id = format!("s{:016x}", st.next * 7919);
            st.sessions.insert(
                id.clone(),
                Session {
                    token: format!("tok+{}/{}==", st.next, st.next * 31),
                    user: None,
                },
            );
            id
        }
    };
    let token = st.sessions[&id]
        .token
        .replace('+', "&#43;")
        .replace('/', "&#x2F;");
    let html = format!(
        "<!DOCTYPE html><html><head><title>Greenlight</title>\n\
         <meta name=\"csrf-param\" content=\"authenticity_token\" />\n\
         <meta name=\"csrf-token\" content=\"{token}\" />\n</head><body><div id=\"root\"></div></body></html>"
    );
    Response::new(200, "text/html; charset=utf-8", html).with_header(
        "Set-Cookie",
        format!("{COOKIE}={id}; path=/; secure; HttpOnly; SameSite=Lax"),
    )
}

fn handle(state: &Arc<Mutex<State>>, req: &Request) -> Response {
    let mut st = state.lock().unwrap();
    let api = req
        .header("accept")
        .is_some_and(|a| a.contains("application/json"));
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/v1/sessions.json") | ("POST", "/api/v1/sessions") if api => {
            sign_in(&mut st, req)
        }
        ("GET", _) | ("POST", _) => layout(&mut st, req),
        _ => Response::new(404, "text/plain", "Not Found"),
    }
}

fn sign_in(st: &mut State, req: &Request) -> Response {
    let something_went_wrong = json_reply(500, json!({"errors": ["SomethingWentWrong"]}));
    let Some(id) = session_id(req).filter(|id| st.sessions.contains_key(id)) else {
        return something_went_wrong; // no session: no token can match
    };
    if req.header("x-csrf-token") != Some(st.sessions[&id].token.as_str()) {
        return something_went_wrong;
    }
    if st.sessions[&id].user.is_some() {
        return json_reply(401, json!({"errors": []}));
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let email = body["session"]["email"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    let password = body["session"]["password"].as_str().unwrap_or_default();
    let Some(user) = st.users.iter().find(|u| u.email.to_lowercase() == email) else {
        return json_reply(400, json!({"errors": []}));
    };
    if user.password != password {
        return json_reply(400, json!({"errors": []}));
    }
    if !user.verified {
        return json_reply(400, json!({"data": "id", "errors": ["UnverifiedUser"]}));
    }
    let data = json!({"data": {
        "id": "c0ffee00-0000-4000-8000-000000000001", "name": user.name, "email": user.email,
        "provider": "greenlight", "language": "en", "avatar": null, "verified": true,
        "created_at": "2026-11-30T00:00:00Z", "external_account": false,
        "role": {"id": "r1", "name": user.role, "color": "#228B22"},
        "signed_in": true, "permissions": {"ManageUsers": "true"}, "status": "active",
        "super_admin": false,
    }});
    let signed = user.email.clone();
    st.sessions.get_mut(&id).unwrap().user = Some(signed.clone());
    st.signed_in.push(signed);
    json_reply(200, data)
}
