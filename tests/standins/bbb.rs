//! A BigBlueButton server's API (`/bigbluebutton/api/`), as BigBlueButton documents it: the
//! root answers with the API and server versions; `getMeetings` needs a checksum (hex SHA-1 or
//! SHA-256 of call name + query + the server's secret) and lists the running meetings with
//! their participant counts, or says `noMeetings`; a wrong checksum is `checksumError`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::http::{Request, Response, Server};
use super::scalelite::checksum_ok;

pub struct Bbb {
    pub server: Server,
}

impl Bbb {
    /// HTTPS with a test CA's certificate; `meetings`: participants of each running meeting.
    pub fn start_tls(
        cert: &Path,
        key: &Path,
        secret: &str,
        version: &str,
        meetings: Vec<usize>,
    ) -> Self {
        let (secret, version) = (secret.to_string(), version.to_string());
        let server = Server::start_tls(cert, key, move |req| {
            handle(req, &secret, &version, &meetings)
        });
        Bbb { server }
    }
}

/// Many BigBlueButton servers' APIs behind one plain-HTTP address, told apart by the `Host`
/// header (the registrar connects here with the server's own name as Host, as curl's
/// --connect-to would): each host with its own secret and running meetings. A host with no
/// meetings list set (`None`) does not answer (503), as a server still installing or down.
pub struct Fleet {
    pub server: Server,
    hosts: Hosts,
}

/// The secret that marks a host of `add_hanging`.
const HANGS: &str = "\u{0}hangs";

/// Host name → (the server's secret, participants of each running meeting; `None`: down).
type Hosts = Arc<Mutex<HashMap<String, (String, Option<Vec<usize>>)>>>;

impl Fleet {
    pub fn start() -> Self {
        let hosts: Hosts = Arc::default();
        let seen = Arc::clone(&hosts);
        let server = Server::start(move |req| {
            let host = req.header("host").unwrap_or("");
            let host = host.split(':').next().unwrap_or(host);
            let found = seen.lock().unwrap().get(host).cloned();
            match found {
                Some((secret, _)) if secret == HANGS => {
                    std::thread::sleep(std::time::Duration::from_secs(30));
                    Response::new(503, "text/html", "too late")
                }
                Some((secret, Some(meetings))) => handle(req, &secret, "3.0.0", &meetings),
                Some((_, None)) => Response::new(503, "text/html", "Service Unavailable"),
                None => Response::new(404, "text/html", "Not Found"),
            }
        });
        Fleet { server, hosts }
    }

    /// host:port to connect to.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.server.port())
    }

    /// `host` answers with `secret`, with no meeting yet.
    pub fn add(&self, host: &str, secret: &str) {
        self.hosts
            .lock()
            .unwrap()
            .insert(host.to_string(), (secret.to_string(), Some(Vec::new())));
    }

    /// `host` takes 30 s to answer anything (a hostile or broken server holding the caller).
    pub fn add_hanging(&self, host: &str) {
        self.hosts
            .lock()
            .unwrap()
            .insert(host.to_string(), (HANGS.to_string(), Some(Vec::new())));
    }

    /// `host` runs `n` meetings (of 3 participants each); `None`: it does not answer.
    pub fn set_meetings(&self, host: &str, n: Option<usize>) {
        if let Some(entry) = self.hosts.lock().unwrap().get_mut(host) {
            entry.1 = n.map(|n| vec![3; n]);
        }
    }
}

fn xml(body: String) -> Response {
    Response::new(200, "text/xml", format!("<response>{body}</response>"))
}

fn handle(req: &Request, secret: &str, version: &str, meetings: &[usize]) -> Response {
    match req.path.trim_end_matches('/') {
        "/bigbluebutton/api" => xml(format!(
            "<returncode>SUCCESS</returncode><version>2.0</version><apiVersion>2.0</apiVersion><bbbVersion>{version}</bbbVersion>"
        )),
        "/bigbluebutton/api/getMeetings" => {
            if !checksum_ok("getMeetings", &req.query, secret) {
                return xml("<returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>You did not pass the checksum security check</message>".into());
            }
            if meetings.is_empty() {
                return xml("<returncode>SUCCESS</returncode><meetings/><messageKey>noMeetings</messageKey><message>no meetings were found on this server</message>".into());
            }
            let list: String = meetings
                .iter()
                .enumerate()
                .map(|(i, n)| format!("<meeting><meetingID>m{i}</meetingID><participantCount>{n}</participantCount><moderatorCount>1</moderatorCount></meeting>"))
                .collect();
            xml(format!(
                "<returncode>SUCCESS</returncode><meetings>{list}</meetings>"
            ))
        }
        _ => Response::new(404, "text/html", "Not Found"),
    }
}
