//! The BBB server fleet in one picture: each instance of the Auto Scaling group with what
//! Scalelite says of it (matched by host name, `bbb-<instance id without i->.<domain>`, the
//! name each server registers under), the entries Scalelite holds that no instance backs,
//! and the choice of which servers a scale-in takes out. Pure: the commands fetch, this
//! decides.

use std::time::Duration;

use crate::scalelite::Server;

/// One meeting running on a server, as the server's own `getMeetings` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Meeting {
    /// How long it has been running (now minus its `startTime`).
    pub age: Duration,
    pub participants: u32,
    /// Whether it is recorded (`<recording>true</recording>`): its recording is processed
    /// on this server after it ends.
    pub recording: bool,
}

/// What a server is busy with by its own account: its meetings (its own API) and its
/// recordings not yet safe (its agent's report, templates/scripts/bbb-agent.sh).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Busy {
    pub meetings: Vec<Meeting>,
    /// Recordings not yet published and copied to the spool (or failed and not yet saved),
    /// plus recording jobs queued or running; None when no fresh report says.
    pub recordings: Option<u32>,
}

/// One instance of the server group.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub instance: String,
    pub zone: String,
    /// Auto Scaling lifecycle state (InService, Pending, Terminating, …).
    pub lifecycle: String,
    pub health: String,
    pub protected: bool,
    pub host: String,
    /// Scalelite's entry for this server, when it has one.
    pub scalelite: Option<Server>,
    /// What it is busy with by its own account; None when that was not asked or not told.
    pub busy: Option<Busy>,
}

impl Member {
    /// Scalelite's load, 0 when Scalelite cannot send it meetings (no entry, or disabled).
    pub fn load(&self) -> f64 {
        match &self.scalelite {
            Some(s) if s.state != "disabled" => s.load.unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// Whether Scalelite may still place or hold a meeting there. An offline server is not
    /// (Scalelite's poller forgot its meetings and never disables it, lib/tasks/poll.rake):
    /// the group may take it, and the server's own drain, which asks its own getMeetings
    /// before it lets the instance go, keeps a meeting that still runs there.
    pub fn serving(&self) -> bool {
        self.scalelite
            .as_ref()
            .is_some_and(|s| s.state != "disabled" && s.online)
    }
}

/// Instances as the group lists them: (id, zone, lifecycle state, health, protected).
pub type Instance = (String, String, String, String, bool);

#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub members: Vec<Member>,
    /// Servers Scalelite lists that no instance of the group backs.
    pub orphans: Vec<Server>,
}

/// The name a server registers under.
pub fn host_of(instance: &str, domain: &str) -> String {
    format!("bbb-{}.{domain}", instance.trim_start_matches("i-"))
}

pub fn picture(instances: Vec<Instance>, servers: Vec<Server>, domain: &str) -> Picture {
    let mut servers = servers;
    let members = instances
        .into_iter()
        .map(|(instance, zone, lifecycle, health, protected)| {
            let host = host_of(&instance, domain);
            let scalelite = servers
                .iter()
                .position(|s| s.host() == host)
                .map(|i| servers.remove(i));
            Member {
                instance,
                zone,
                lifecycle,
                health,
                protected,
                host,
                scalelite,
                busy: None,
            }
        })
        .collect();
    Picture {
        members,
        orphans: servers,
    }
}

/// The `k` in-service servers a scale-in takes out: first those Scalelite sends no meetings
/// to (not registered, disabled), then the lightest by Scalelite's load (participants, a
/// young meeting counting at least 15), so that no server with more people in meetings goes
/// while an emptier one stays; ties by instance id, for a stable choice.
pub fn choose(members: &[Member], k: usize) -> Vec<String> {
    let mut candidates: Vec<&Member> = members
        .iter()
        .filter(|m| m.lifecycle == "InService")
        .collect();
    candidates.sort_by(|a, b| {
        (a.serving(), a.load())
            .partial_cmp(&(b.serving(), b.load()))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.instance.cmp(&b.instance))
    });
    candidates
        .into_iter()
        .take(k)
        .map(|m| m.instance.clone())
        .collect()
}

/// How a server's bootstrap went, from the last lines of its log stream: bbb-bootstrap.sh
/// ends with `bbb-bootstrap: READY <url>` or `bbb-bootstrap: FAILED <reason>`. In scalable
/// mode a failed server still signals its group (the platform completes without it), so
/// this is where a broken server shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Bootstrap {
    Ready,
    Failed(String),
    /// Neither line yet: still installing (the last line so far, if any).
    Running(Option<String>),
}

pub fn bootstrap(lines: &[String]) -> Bootstrap {
    const FAILED: &str = "bbb-bootstrap: FAILED";
    for line in lines.iter().rev() {
        if let Some(at) = line.find(FAILED) {
            return Bootstrap::Failed(line[at + FAILED.len()..].trim().to_string());
        }
        if line.contains("bbb-bootstrap: READY") {
            return Bootstrap::Ready;
        }
    }
    Bootstrap::Running(lines.last().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, state: &str, load: Option<f64>) -> Server {
        Server {
            id: format!("id-{host}"),
            url: format!("https://{host}/bigbluebutton/api/"),
            secret: "s".into(),
            state: state.into(),
            online: true,
            load,
            bbb_version: "3.0.4".into(),
        }
    }

    fn instance(id: &str) -> Instance {
        (
            id.into(),
            "eu-west-1a".into(),
            "InService".into(),
            "Healthy".into(),
            false,
        )
    }

    #[test]
    fn instances_meet_their_scalelite_entries_and_strangers_stay_apart() {
        let p = picture(
            vec![instance("i-0a"), instance("i-0b")],
            vec![
                server("bbb-0a.d.org", "enabled", Some(3.0)),
                server("bbb-gone.d.org", "enabled", Some(0.0)),
            ],
            "d.org",
        );
        assert_eq!(
            p.members[0].scalelite.as_ref().unwrap().host(),
            "bbb-0a.d.org"
        );
        assert_eq!(p.members[1].scalelite, None);
        assert_eq!(p.orphans.len(), 1);
        assert_eq!(p.orphans[0].host(), "bbb-gone.d.org");
    }

    #[test]
    fn the_emptiest_servers_go_first_never_a_fuller_one() {
        let p = picture(
            vec![
                instance("i-a"),
                instance("i-b"),
                instance("i-c"),
                instance("i-d"),
            ],
            vec![
                server("bbb-a.d.org", "enabled", Some(30.0)),
                server("bbb-b.d.org", "enabled", Some(0.0)),
                server("bbb-c.d.org", "enabled", Some(10.0)),
                server("bbb-d.d.org", "disabled", Some(50.0)),
            ],
            "d.org",
        );
        // Disabled first (no meeting can be there), then load 0, then 10; load 30 stays.
        assert_eq!(choose(&p.members, 3), ["i-d", "i-b", "i-c"]);
        assert_eq!(choose(&p.members, 1), ["i-d"]);
        // An unregistered server is taken before any that serves meetings.
        let mut members = p.members.clone();
        members[0].scalelite = None;
        assert_eq!(choose(&members, 2), ["i-a", "i-d"]);
        // Only in-service instances are candidates.
        members[1].lifecycle = "Pending".into();
        assert!(!choose(&members, 4).contains(&"i-b".to_string()));
    }

    #[test]
    fn an_offline_server_is_not_serving_and_is_taken_first() {
        let mut offline = server("bbb-0b.d.org", "cordoned", None);
        offline.online = false;
        let p = picture(
            vec![instance("i-0a"), instance("i-0b")],
            vec![server("bbb-0a.d.org", "enabled", Some(1.0)), offline],
            "d.org",
        );
        assert!(p.members[0].serving());
        assert!(!p.members[1].serving());
        assert_eq!(choose(&p.members, 1), vec!["i-0b".to_string()]);
    }

    #[test]
    fn a_bootstrap_is_read_from_its_last_lines() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(bootstrap(&[]), Bootstrap::Running(None));
        assert_eq!(
            bootstrap(&lines(&[
                "2026-12-07T10:00:00Z bbb-bootstrap: running bbb-install"
            ])),
            Bootstrap::Running(Some(
                "2026-12-07T10:00:00Z bbb-bootstrap: running bbb-install".into()
            ))
        );
        assert_eq!(
            bootstrap(&lines(&[
                "2026-12-07T10:00:00Z bbb-bootstrap: ERROR: apt-get failed",
                "2026-12-07T10:00:01Z bbb-bootstrap: FAILED bbb-install exited with 100",
                "2026-12-07T10:00:02Z bbb-bootstrap: signalling SUCCESS to bbb-BbbServersStack-X/ServerGroup",
            ])),
            Bootstrap::Failed("bbb-install exited with 100".into())
        );
        assert_eq!(
            bootstrap(&lines(&[
                "2026-12-07T10:20:00Z bbb-bootstrap: READY https://bbb-0abc.bbb.example.org",
                "2026-12-07T10:20:01Z bbb-bootstrap: signalling SUCCESS",
            ])),
            Bootstrap::Ready
        );
    }
}
