//! A BigBlueButton server's API (`/bigbluebutton/api/`), as BigBlueButton documents it: the
//! root answers with the API and server versions; `getMeetings` needs a checksum (hex SHA-1 or
//! SHA-256 of call name + query + the server's secret) and lists the running meetings with
//! their participant counts, or says `noMeetings`; a wrong checksum is `checksumError`.

use std::path::Path;

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
