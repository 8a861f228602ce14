//! Scalelite's servers API and the BigBlueButton API, as far as bbbctl reads them
//! (Scalelite v1.8.5: app/controllers/api/servers_controller.rb, concerns/api_helper.rb;
//! BigBlueButton's API documentation). Every call is signed: `checksum` = hex SHA-256 of
//! call name + query string (without the checksum) + secret. The servers API takes the
//! load balancer's secret (`LOADBALANCER_SECRET`), a BBB server its own (`securitySalt`,
//! which Scalelite's server list carries). No secret is ever logged or put in an error.

use anyhow::{Result, anyhow, bail};
use hyper::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::http::Http;

/// `checksum` of a call: SHA-256 (Scalelite and BBB accept it; SHA-1 is their legacy default).
pub fn checksum(call: &str, query: &str, secret: &str) -> String {
    hex::encode(Sha256::digest(format!("{call}{query}{secret}").as_bytes()))
}

/// `call?query&checksum=…` under `api` (a URL ending in `/`).
fn signed_url(api: &str, call: &str, query: &str, secret: &str) -> String {
    let sum = checksum(call, query, secret);
    if query.is_empty() {
        format!("{api}{call}?checksum={sum}")
    } else {
        format!("{api}{call}?{query}&checksum={sum}")
    }
}

/// A BBB server as Scalelite lists it (`getServers`).
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub id: String,
    /// The server's BBB API, e.g. `https://bbb-0abc.bbb.example.org/bigbluebutton/api/`.
    pub url: String,
    pub secret: String,
    /// enabled, cordoned or disabled.
    pub state: String,
    pub online: bool,
    /// None while Scalelite could not poll it ("unavailable").
    pub load: Option<f64>,
    pub bbb_version: String,
}

impl Server {
    /// The host name of its URL.
    pub fn host(&self) -> &str {
        let rest = self.url.split("://").nth(1).unwrap_or(&self.url);
        rest.split(['/', ':']).next().unwrap_or(rest)
    }
}

/// Every server Scalelite knows (`GET /scalelite/api/getServers`); `base` is
/// `https://scalelite.<domain>`.
pub async fn get_servers(http: &Http, base: &str, lb_secret: &str) -> Result<Vec<Server>> {
    let api = format!("{}/scalelite/api/", base.trim_end_matches('/'));
    let reply = http
        .send(
            Method::GET,
            &signed_url(&api, "getServers", "", lb_secret),
            &[("accept", "application/json")],
            None,
        )
        .await?;
    let body: Option<Value> = serde_json::from_slice(&reply.body).ok();
    match (reply.status, body) {
        (200, Some(Value::Array(list))) => Ok(list.iter().map(server).collect()),
        // An empty list is "not found" in Scalelite's servers API.
        (404, Some(v))
            if v["error"]
                .as_str()
                .is_some_and(|e| e.contains("No servers")) =>
        {
            Ok(Vec::new())
        }
        (status, _) => {
            let text = reply.text();
            if let Some(key) = xml_field(&text, "messageKey") {
                bail!(
                    "Scalelite's servers API refused the call: {key} ({})",
                    xml_field(&text, "message").unwrap_or_default()
                );
            }
            bail!(
                "Scalelite's servers API answered HTTP {status}: {}",
                text.chars().take(160).collect::<String>()
            )
        }
    }
}

/// A POST of the servers API (`updateServer`, `deleteServer`, `panicServer`): JSON body, not
/// part of the checksum (Scalelite's api_helper.rb). `Ok(false)` when Scalelite no longer
/// knows the server (404).
async fn post(http: &Http, base: &str, lb_secret: &str, call: &str, body: &Value) -> Result<bool> {
    let api = format!("{}/scalelite/api/", base.trim_end_matches('/'));
    let reply = http
        .send(
            Method::POST,
            &signed_url(&api, call, "", lb_secret),
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            Some(body.to_string().into_bytes()),
        )
        .await?;
    let text = reply.text();
    if let Some(key) = xml_field(&text, "messageKey") {
        bail!(
            "Scalelite refused {call}: {key} ({})",
            xml_field(&text, "message").unwrap_or_default()
        );
    }
    match reply.status {
        200..=299 => Ok(true),
        404 => Ok(false),
        status => bail!(
            "Scalelite's {call} answered HTTP {status}: {}",
            text.chars().take(160).collect::<String>()
        ),
    }
}

/// Sets a server's state: `enable`, `cordon` (no new meetings; Scalelite's poller disables it
/// once its load is 0) or `disable`.
pub async fn set_state(
    http: &Http,
    base: &str,
    lb_secret: &str,
    id: &str,
    state: &str,
) -> Result<bool> {
    post(
        http,
        base,
        lb_secret,
        "updateServer",
        &serde_json::json!({"id": id, "server": {"state": state}}),
    )
    .await
}

/// Removes a server from Scalelite.
pub async fn delete_server(http: &Http, base: &str, lb_secret: &str, id: &str) -> Result<bool> {
    post(
        http,
        base,
        lb_secret,
        "deleteServer",
        &serde_json::json!({"id": id}),
    )
    .await
}

/// Ends every meeting on a server and disables it.
pub async fn panic_server(http: &Http, base: &str, lb_secret: &str, id: &str) -> Result<bool> {
    post(
        http,
        base,
        lb_secret,
        "panicServer",
        &serde_json::json!({"id": id}),
    )
    .await
}

fn server(v: &Value) -> Server {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Server {
        id: text("id"),
        url: text("url"),
        secret: text("secret"),
        state: text("state"),
        online: v["online"] == "online" || v["online"] == true,
        load: v["load"]
            .as_f64()
            .or_else(|| v["load"].as_str().and_then(|s| s.parse().ok())),
        bbb_version: text("bbb_version"),
    }
}

/// What `getMeetings` says: meetings and people in them, and each meeting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meetings {
    pub meetings: usize,
    pub participants: usize,
    pub list: Vec<MeetingInfo>,
}

/// One meeting of a `getMeetings` answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeetingInfo {
    /// `<startTime>`, milliseconds since the epoch; None when absent, 0 or not a number.
    pub start_ms: Option<u64>,
    pub participants: u32,
    /// `<recording>true</recording>`: the meeting is recorded.
    pub recording: bool,
}

impl MeetingInfo {
    /// As the fleet takes it: its age at `now_ms` (milliseconds since the epoch; 0 when its
    /// start is unknown or in the future).
    pub fn at(&self, now_ms: u64) -> crate::fleet::Meeting {
        crate::fleet::Meeting {
            age: std::time::Duration::from_millis(
                self.start_ms.map_or(0, |s| now_ms.saturating_sub(s)),
            ),
            participants: self.participants,
            recording: self.recording,
        }
    }
}

/// The meetings of a successful `getMeetings` answer. A meeting's `<metadata>` holds the
/// creator's own tags (any name, `<recording>` too): they are left out before its fields are
/// read.
fn meetings(text: &str) -> Meetings {
    let list: Vec<MeetingInfo> = xml_all(text, "meeting")
        .iter()
        .map(|m| {
            let m = match (m.find("<metadata>"), m.find("</metadata>")) {
                (Some(a), Some(b)) if b > a => format!("{}{}", &m[..a], &m[b..]),
                _ => m.clone(),
            };
            MeetingInfo {
                start_ms: xml_field(&m, "startTime")
                    .and_then(|t| t.parse().ok())
                    .filter(|t| *t > 0),
                participants: xml_field(&m, "participantCount")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                recording: xml_field(&m, "recording").as_deref() == Some("true"),
            }
        })
        .collect();
    Meetings {
        meetings: list.len(),
        participants: list.iter().map(|m| m.participants as usize).sum(),
        list,
    }
}

/// A signed `getMeetings` at a BigBlueButton API (`…/bigbluebutton/api/`, Scalelite's or a
/// server's own).
pub async fn get_meetings(http: &Http, api: &str, secret: &str) -> Result<Meetings> {
    let api = if api.ends_with('/') {
        api.to_string()
    } else {
        format!("{api}/")
    };
    let reply = http
        .send(
            Method::GET,
            &signed_url(&api, "getMeetings", "", secret),
            &[],
            None,
        )
        .await?;
    let text = reply.text();
    match xml_field(&text, "returncode").as_deref() {
        Some("SUCCESS") => Ok(meetings(&text)),
        Some(_) => Err(anyhow!(
            "getMeetings refused: {} ({})",
            xml_field(&text, "messageKey").unwrap_or_default(),
            xml_field(&text, "message").unwrap_or_default()
        )),
        None => bail!("not a BigBlueButton API answer (HTTP {})", reply.status),
    }
}

/// The version a BigBlueButton API reports at its root (`<bbbVersion>`, else `<version>`).
pub async fn version(http: &Http, api: &str) -> Result<String> {
    let reply = http.send(Method::GET, api, &[], None).await?;
    let text = reply.text();
    if xml_field(&text, "returncode").as_deref() != Some("SUCCESS") {
        bail!("not a BigBlueButton API answer (HTTP {})", reply.status);
    }
    xml_field(&text, "bbbVersion")
        .filter(|v| !v.is_empty())
        .or_else(|| xml_field(&text, "version"))
        .ok_or_else(|| anyhow!("the API reports no version"))
}

fn xml_field(text: &str, tag: &str) -> Option<String> {
    xml_all(text, tag).into_iter().next()
}

fn xml_all(text: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].trim().to_string());
        rest = &after[j + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_signed_over_name_query_and_secret() {
        assert_eq!(
            checksum("getMeetings", "", "secret"),
            hex::encode(Sha256::digest(b"getMeetingssecret"))
        );
        assert_eq!(
            signed_url("https://s/scalelite/api/", "getServerInfo", "id=1", "k"),
            format!(
                "https://s/scalelite/api/getServerInfo?id=1&checksum={}",
                checksum("getServerInfo", "id=1", "k")
            )
        );
    }

    #[test]
    fn servers_and_meetings_are_read_from_their_answers() {
        let s = server(
            &serde_json::json!({"id": "a1", "url": "https://bbb-0abc.d.org/bigbluebutton/api/",
            "secret": "x", "state": "enabled", "load": 12.0, "online": "online", "bbb_version": "3.0.4"}),
        );
        assert_eq!(s.host(), "bbb-0abc.d.org");
        assert!(s.online);
        assert_eq!(s.load, Some(12.0));
        let s = server(
            &serde_json::json!({"id": "a2", "url": "https://h:8443/b", "load": "unavailable", "online": "offline"}),
        );
        assert_eq!((s.host(), s.online, s.load), ("h", false, None));
        let xml = "<response><returncode>SUCCESS</returncode><meetings><meeting><participantCount>3</participantCount></meeting>\
                   <meeting><participantCount>4</participantCount></meeting></meetings></response>";
        assert_eq!(xml_all(xml, "participantCount"), ["3", "4"]);
        let m = meetings(xml);
        assert_eq!((m.meetings, m.participants), (2, 7));
    }

    #[test]
    fn each_meeting_brings_its_start_people_and_recording_flag() {
        let xml = "<response><returncode>SUCCESS</returncode><meetings>\
            <meeting><meetingID>a</meetingID><participantCount>12</participantCount><recording>true</recording>\
            <startTime>1765000000000</startTime><metadata><recording>false</recording></metadata></meeting>\
            <meeting><meetingID>b</meetingID><participantCount>x</participantCount>\
            <metadata><recording>true</recording><startTime>1</startTime></metadata><recording>false</recording>\
            <startTime>0</startTime></meeting></meetings></response>";
        let m = meetings(xml);
        assert_eq!(
            m.list,
            [
                MeetingInfo {
                    start_ms: Some(1_765_000_000_000),
                    participants: 12,
                    recording: true
                },
                MeetingInfo {
                    start_ms: None,
                    participants: 0,
                    recording: false
                },
            ]
        );
        let at = m.list[0].at(1_765_000_600_000);
        assert_eq!(at.age, std::time::Duration::from_secs(600));
        assert!(at.recording);
        assert_eq!(m.list[1].at(5).age, std::time::Duration::ZERO);
        assert_eq!(
            m.list[0].at(0).age,
            std::time::Duration::ZERO,
            "a start in the future"
        );
        let none = meetings(
            "<response><returncode>SUCCESS</returncode><meetings/><messageKey>noMeetings</messageKey></response>",
        );
        assert_eq!(none, Meetings::default());
    }
}
