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

/// The fleet domain, `media.<domain>`: the scalable servers' names are below it, and the
/// fleet certificate is its wildcard. Not `*.<domain>`: a media server holding that would
/// also be valid for `scalelite.<domain>` and every other name of the domain.
pub fn fleet_domain(domain: &str) -> String {
    format!("media.{domain}")
}

/// The name a server registers under: `bbb-<instance id without i->.media.<domain>`.
pub fn host_of(instance: &str, domain: &str) -> String {
    format!(
        "bbb-{}.{}",
        instance.trim_start_matches("i-"),
        fleet_domain(domain)
    )
}

/// The group's warm pool (DescribeWarmPool): its configured size and its instances, each
/// (id, zone, lifecycle state: Warmed:Stopped, Warmed:Pending:Wait, ...). `None`: no pool.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WarmPool {
    pub min_size: i32,
    pub status: String,
    pub instances: Vec<(String, String, String)>,
    /// Each instance's launch template version, in the order of `instances` (`bbbctl roll`
    /// and `bake` replace those of an older one: `crate::drain::refresh_warm_pool`).
    #[serde(skip)]
    pub versions: Vec<String>,
}

/// The group's warm pool as Auto Scaling describes it; `None` when it has none.
pub async fn warm_pool(aws: &crate::aws::Aws, group: &str) -> anyhow::Result<Option<WarmPool>> {
    use anyhow::Context;
    let mut token: Option<String> = None;
    let mut pool: Option<WarmPool> = None;
    loop {
        let page = aws
            .autoscaling
            .describe_warm_pool()
            .auto_scaling_group_name(group)
            .set_next_token(token.take())
            .send()
            .await
            .with_context(|| format!("describing the warm pool of {group}"))?;
        let Some(config) = page.warm_pool_configuration() else {
            return Ok(None);
        };
        let pool = pool.get_or_insert_with(|| WarmPool {
            min_size: config.min_size().unwrap_or(0),
            status: config
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            instances: Vec::new(),
            versions: Vec::new(),
        });
        pool.versions.extend(page.instances().iter().map(|i| {
            i.launch_template()
                .and_then(|t| t.version())
                .unwrap_or_default()
                .to_string()
        }));
        pool.instances.extend(page.instances().iter().map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.availability_zone().unwrap_or_default().to_string(),
                i.lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        }));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(pool)
}

/// The warm pool as lines for `servers` and `status`: apart from the servers, which none of
/// its instances is (stopped, no name, never registered).
pub fn warm_pool_text(pool: &Option<WarmPool>) -> String {
    let Some(pool) = pool else {
        return String::new();
    };
    let mut text = format!(
        "Warm pool: {} prepared server(s) kept stopped (scale --warm){}; none has a name or is in Scalelite\n",
        pool.min_size,
        if pool.status.is_empty() {
            String::new()
        } else {
            format!(", {}", pool.status)
        }
    );
    for (id, zone, state) in &pool.instances {
        text.push_str(&format!("  {id:<20} {zone:<11} {state}\n"));
    }
    text
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

/// When a server is expected to be free: its meetings ended and every recording of it safe.
///
/// **Meetings.** A meeting's length is taken as equally likely to end at any moment of a
/// booked slot of [`SLOT`] (two hours: a double lecture, the longest usual booking), so a
/// meeting of age `a` ends at a moment spread evenly over the `SLOT - a` left of it: the
/// expected rest is half of that, and an older meeting is always nearer its end. This is the
/// shape of a timetable (lengths bounded by a booking: the rest shrinks with age). A
/// memoryless (exponential) length would make age meaningless, and a heavy-tailed one
/// (lognormal) would make the oldest meeting the one expected to last longest, which fits
/// open-ended calls, not classes. A meeting within [`OVERRUN`] of the slot's end, or past it,
/// is spread over the next [`OVERRUN`] (it overran; it is not taken to end at once). A meeting
/// with no participant ends within minutes: BBB ends it one minute after the last user left or
/// five minutes after its creation if nobody joined (`meetingExpireWhenLastUserLeftInMinutes=1`,
/// `meetingExpireIfNoUserJoinedInMinutes=5`, bigbluebutton-web's bigbluebutton.properties):
/// spread over [`EMPTY_MEETING`]. Meetings end independently; the server's meetings are over
/// at the latest of them, whose expectation is computed exactly (so three young meetings
/// weigh more than one).
///
/// **Recordings.** A recorded meeting (`<recording>true</recording>`: created with
/// `record=true`; taken as recorded, the moderator may not have pressed the button) is
/// archived, processed and published on the server after it ends: [`PROCESSING_RATIO`] of the
/// meeting's length (the reading: minutes on an idle server, up to about the meeting's
/// length on a busy one; half is taken). BBB runs one recording job at a time (its
/// `bbb-rap-resque-worker.service` sets `COUNT=1`), so the jobs queue: recordings already
/// pending first, each taken as [`PENDING_RECORDING`] (the report gives their number, not
/// their lengths: a one-hour meeting's processing), then each recorded meeting's from its
/// expected end, in the order they are expected to end. A server's recordings not reported
/// (an earlier agent) are counted as none: nothing can be known of them and the drain does
/// not wait for them.
pub fn expected_free(busy: &Busy) -> Duration {
    let rests: Vec<f64> = busy.meetings.iter().map(rest_spread).collect();
    let meetings_over = expected_latest(&rests);
    let mut ends: Vec<(f64, f64)> = busy
        .meetings
        .iter()
        .zip(&rests)
        .filter(|(m, _)| m.recording)
        .map(|(m, spread)| {
            let end = spread / 2.0;
            (end, PROCESSING_RATIO * (m.age.as_secs_f64() + end))
        })
        .collect();
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut worker = f64::from(busy.recordings.unwrap_or(0)) * PENDING_RECORDING.as_secs_f64();
    for (end, job) in ends {
        worker = worker.max(end) + job;
    }
    Duration::from_secs_f64(meetings_over.max(worker))
}

/// The booked slot a meeting's length is spread over (see [`expected_free`]).
pub const SLOT: Duration = Duration::from_secs(120 * 60);
/// The window a meeting near or past the end of its slot is expected to end in.
pub const OVERRUN: Duration = Duration::from_secs(20 * 60);
/// The window a meeting without participants ends in (BBB's own expiry).
pub const EMPTY_MEETING: Duration = Duration::from_secs(5 * 60);
/// A recording's processing time as a share of its meeting's length.
pub const PROCESSING_RATIO: f64 = 0.5;
/// The processing time taken for each recording a server reports pending.
pub const PENDING_RECORDING: Duration = Duration::from_secs(30 * 60);

/// The window (seconds) a meeting's rest is spread evenly over.
fn rest_spread(m: &Meeting) -> f64 {
    if m.participants == 0 {
        return EMPTY_MEETING.as_secs_f64();
    }
    (SLOT.saturating_sub(m.age)).max(OVERRUN).as_secs_f64()
}

/// The expectation of the latest of independent ends, each spread evenly over `[0, b]`:
/// the integral of `1 - Π F_i(t)` up to the longest `b`, taken piece by piece between the
/// sorted `b`s (on each piece the product is a power of `t`), in ratios that stay at most 1.
fn expected_latest(spreads: &[f64]) -> f64 {
    let mut b: Vec<f64> = spreads.iter().copied().filter(|b| *b > 0.0).collect();
    b.sort_by(f64::total_cmp);
    let Some(&longest) = b.last() else {
        return 0.0;
    };
    let mut all_ended = 0.0;
    let mut from = 0.0;
    for j in 0..b.len() {
        let to = b[j];
        let k = (b.len() - j) as i32;
        // ∫ t^k / Π_{i≥j} b_i dt from `from` to `to` = (x·Π (x/b_i)) / (k+1) between them.
        let part = |x: f64| x * b[j..].iter().map(|bi| x / bi).product::<f64>();
        all_ended += (part(to) - part(from)) / f64::from(k + 1);
        from = to;
    }
    longest - all_ended
}

/// The `k` in-service servers a scale-in takes out, the soonest free first.
///
/// First those Scalelite sends no meetings to (not registered, disabled, offline): they add
/// nothing to the capacity that stays, so taking them keeps the most of it, and whatever
/// they are busy with they finish as well drained as kept. Among them and then among the
/// serving ones: those whose own account is known (meetings and recordings), by the time
/// they are expected to be free ([`expected_free`], to the minute; free now first), then by
/// fewer participants; then those whose account is unknown (`busy` None: not asked, or not
/// told; or its recordings None: no fresh report, so its drain may last to its limit) by
/// Scalelite's load as
/// before (participants, a young meeting counting at least 15), after every known one since
/// they may hold meetings and recordings for any time. Ties by instance id, for a stable
/// choice.
pub fn choose(members: &[Member], k: usize) -> Vec<String> {
    let mut candidates: Vec<(&Member, Rank)> = members
        .iter()
        .filter(|m| m.lifecycle == "InService")
        .map(|m| (m, Rank::of(m)))
        .collect();
    candidates.sort_by(|(a, ra), (b, rb)| {
        a.serving()
            .cmp(&b.serving())
            .then_with(|| ra.cmp(rb))
            .then_with(|| a.instance.cmp(&b.instance))
    });
    candidates
        .into_iter()
        .take(k)
        .map(|(m, _)| m.instance.clone())
        .collect()
}

/// How soon a candidate frees up, as far as can be told.
#[derive(Debug, Clone, Copy)]
enum Rank {
    Known { minutes: u64, participants: u64 },
    Unknown { load: f64 },
}

impl Rank {
    fn of(m: &Member) -> Rank {
        match &m.busy {
            // Its recordings unknown (no fresh report): the registrar may hold it in its
            // drain until its limit, so it ranks with the unknown ones.
            Some(busy) if busy.recordings.is_some() => Rank::Known {
                minutes: expected_free(busy).as_secs().div_ceil(60),
                participants: busy
                    .meetings
                    .iter()
                    .map(|m| u64::from(m.participants))
                    .sum(),
            },
            _ => Rank::Unknown { load: m.load() },
        }
    }

    fn cmp(&self, other: &Rank) -> std::cmp::Ordering {
        use std::cmp::Ordering::{Greater, Less};
        match (self, other) {
            (
                Rank::Known {
                    minutes: a,
                    participants: pa,
                },
                Rank::Known {
                    minutes: b,
                    participants: pb,
                },
            ) => (a, pa).cmp(&(b, pb)),
            (Rank::Known { .. }, Rank::Unknown { .. }) => Less,
            (Rank::Unknown { .. }, Rank::Known { .. }) => Greater,
            (Rank::Unknown { load: a }, Rank::Unknown { load: b }) => a.total_cmp(b),
        }
    }
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
                server("bbb-0a.media.d.org", "enabled", Some(3.0)),
                server("bbb-gone.media.d.org", "enabled", Some(0.0)),
            ],
            "d.org",
        );
        assert_eq!(
            p.members[0].scalelite.as_ref().unwrap().host(),
            "bbb-0a.media.d.org"
        );
        assert_eq!(p.members[1].scalelite, None);
        assert_eq!(p.orphans.len(), 1);
        assert_eq!(p.orphans[0].host(), "bbb-gone.media.d.org");
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
                server("bbb-a.media.d.org", "enabled", Some(30.0)),
                server("bbb-b.media.d.org", "enabled", Some(0.0)),
                server("bbb-c.media.d.org", "enabled", Some(10.0)),
                server("bbb-d.media.d.org", "disabled", Some(50.0)),
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
        let mut offline = server("bbb-0b.media.d.org", "cordoned", None);
        offline.online = false;
        let p = picture(
            vec![instance("i-0a"), instance("i-0b")],
            vec![server("bbb-0a.media.d.org", "enabled", Some(1.0)), offline],
            "d.org",
        );
        assert!(p.members[0].serving());
        assert!(!p.members[1].serving());
        assert_eq!(choose(&p.members, 1), vec!["i-0b".to_string()]);
    }

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    fn meeting(age: u64, participants: u32, recording: bool) -> Meeting {
        Meeting {
            age: minutes(age),
            participants,
            recording,
        }
    }

    /// Serving servers `i-<name>` (load from the meetings' participants), each with its account.
    fn fleet(accounts: &[(&str, Option<Busy>)]) -> Vec<Member> {
        let p = picture(
            accounts
                .iter()
                .map(|(n, _)| instance(&format!("i-{n}")))
                .collect(),
            accounts
                .iter()
                .map(|(n, busy)| {
                    let load = busy.as_ref().map_or(0, |b| {
                        b.meetings.iter().map(|m| m.participants).sum::<u32>()
                    });
                    server(
                        &format!("bbb-{n}.media.d.org"),
                        "enabled",
                        Some(f64::from(load)),
                    )
                })
                .collect(),
            "d.org",
        );
        p.members
            .into_iter()
            .zip(accounts)
            .map(|(m, (_, busy))| Member {
                busy: busy.clone(),
                ..m
            })
            .collect()
    }

    fn busy(meetings: Vec<Meeting>, recordings: Option<u32>) -> Option<Busy> {
        Some(Busy {
            meetings,
            recordings,
        })
    }

    fn free_minutes(b: Option<Busy>) -> f64 {
        expected_free(&b.unwrap()).as_secs_f64() / 60.0
    }

    #[test]
    fn a_meetings_expected_rest_follows_the_model() {
        let close = |a: f64, b: f64| assert!((a - b).abs() < 0.01, "{a} != {b}");
        // Nothing running, nothing pending: free now.
        close(free_minutes(busy(vec![], Some(0))), 0.0);
        // Age 20 of a 120-minute slot: the rest is spread over 100 minutes, 50 expected.
        close(
            free_minutes(busy(vec![meeting(20, 30, false)], Some(0))),
            50.0,
        );
        // Two such meetings: the later of two ends spread over 100 minutes, 2/3 of it.
        close(
            free_minutes(busy(
                vec![meeting(20, 30, false), meeting(20, 5, false)],
                Some(0),
            )),
            200.0 / 3.0,
        );
        // Past its slot (or within 20 minutes of its end): spread over the next 20 minutes.
        close(
            free_minutes(busy(vec![meeting(150, 30, false)], None)),
            10.0,
        );
        close(
            free_minutes(busy(vec![meeting(110, 30, false)], None)),
            10.0,
        );
        // Nobody in it: BBB ends it within 5 minutes.
        close(free_minutes(busy(vec![meeting(20, 0, false)], None)), 2.5);
        // A recorded meeting of age 20: ends in 50, then half of its 70 minutes to process.
        close(
            free_minutes(busy(vec![meeting(20, 30, true)], Some(0))),
            85.0,
        );
        // Two pending recordings keep the one worker busy for 60 minutes before it.
        close(
            free_minutes(busy(vec![meeting(20, 30, true)], Some(2))),
            95.0,
        );
        // An unreported count of recordings is taken as none.
        close(free_minutes(busy(vec![meeting(20, 30, true)], None)), 85.0);
    }

    #[test]
    fn an_old_meeting_frees_its_server_before_a_young_one_of_the_same_size() {
        // Same size, same load: Scalelite's load cannot tell them apart and the ids decide.
        let known = fleet(&[
            ("a", busy(vec![meeting(10, 40, false)], Some(0))),
            ("b", busy(vec![meeting(80, 40, false)], Some(0))),
        ]);
        let blind: Vec<Member> = known
            .iter()
            .map(|m| Member {
                busy: None,
                ..m.clone()
            })
            .collect();
        assert_eq!(choose(&blind, 1), ["i-a"]);
        // Their own accounts do: the 80-minute-old meeting is nearer its end.
        assert_eq!(choose(&known, 1), ["i-b"]);
    }

    #[test]
    fn a_server_still_processing_recordings_is_not_empty() {
        let members = fleet(&[
            // No meeting (load 0) but three recordings to process: about 90 minutes.
            ("processing", busy(vec![], Some(3))),
            // A meeting near its end: about 10 minutes.
            ("ending", busy(vec![meeting(105, 25, false)], Some(0))),
            // A recorded lecture that just began: 55 minutes, then 32 of processing.
            ("recorded", busy(vec![meeting(10, 60, true)], Some(0))),
            // Truly empty.
            ("empty", busy(vec![], Some(0))),
        ]);
        assert_eq!(
            choose(&members, 4),
            ["i-empty", "i-ending", "i-recorded", "i-processing"]
        );
        // By load alone (before this model) the processing server looked the emptiest.
        let blind: Vec<Member> = members
            .into_iter()
            .map(|m| Member { busy: None, ..m })
            .collect();
        assert_eq!(choose(&blind, 2), ["i-empty", "i-processing"]);
    }

    #[test]
    fn servers_scalelite_sends_nothing_go_first_free_now_before_busy() {
        let mut members = fleet(&[
            ("serving-empty", busy(vec![], Some(0))),
            ("cordoned-busy", busy(vec![meeting(30, 10, true)], Some(1))),
            ("cordoned-free", busy(vec![], Some(0))),
        ]);
        for m in members
            .iter_mut()
            .filter(|m| m.instance.contains("cordoned"))
        {
            m.scalelite.as_mut().unwrap().state = "disabled".into();
        }
        assert_eq!(
            choose(&members, 3),
            ["i-cordoned-free", "i-cordoned-busy", "i-serving-empty"]
        );
    }

    #[test]
    fn an_unknown_account_falls_back_to_load_after_every_known_one() {
        let members = fleet(&[
            ("known-long", busy(vec![meeting(5, 80, true)], Some(2))),
            ("unknown-heavy", None),
            ("unknown-light", None),
            ("known-short", busy(vec![meeting(100, 80, false)], Some(0))),
        ]);
        let mut members = members;
        // Unknown accounts: Scalelite's load decides between them.
        members[1].scalelite.as_mut().unwrap().load = Some(50.0);
        members[2].scalelite.as_mut().unwrap().load = Some(3.0);
        assert_eq!(
            choose(&members, 4),
            [
                "i-known-short",
                "i-known-long",
                "i-unknown-light",
                "i-unknown-heavy"
            ]
        );
        // Equal expectations: fewer participants, then the instance id.
        let members = fleet(&[
            ("b", busy(vec![meeting(30, 10, false)], Some(0))),
            ("c", busy(vec![meeting(30, 10, false)], Some(0))),
            ("a", busy(vec![meeting(30, 12, false)], Some(0))),
        ]);
        assert_eq!(choose(&members, 3), ["i-b", "i-c", "i-a"]);
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
