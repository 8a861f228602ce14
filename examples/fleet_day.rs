//! A day of a university's meetings on a BBB fleet that is scaled in at fixed times, with the
//! recordings BBB processes on each server after a recorded meeting ends, run four ways:
//!
//! - the Auto Scaling group terminating the servers it picks (its default, in effect the
//!   oldest instances): it cuts the meetings running there and loses their recordings and
//!   every recording still waiting or being processed there;
//! - draining those same oldest servers (cordon, wait until meetings and recordings are done);
//! - bbbctl's previous choice: the emptiest by Scalelite's load (`fleet::choose` without the
//!   servers' own accounts), drained until its meetings end, as before issue 26: the
//!   recordings still waiting or processing when it goes are counted lost;
//! - bbbctl's choice: `fleet::choose` with each server's own account (`busy`: its meetings'
//!   ages, participants and recording flags, its pending recordings), drained until its
//!   meetings and recordings are done.
//!
//! and, as a bound rather than a way, hindsight: at each scale-in the servers whose meetings
//! and recordings truly end soonest (it knows every meeting's end and every recording's
//! processing time; no rule reading the servers' accounts can do better at that moment).
//!
//! Prints, per way: meetings cut, recordings lost, and the server-hours paid while servers
//! drain (from cordon to gone).
//!
//! `cargo run --release --example fleet_day [SEED]` (scripts/bench-fleet.sh runs it for a few
//! seeds). Meetings: lectures start on the hour or half hour and last 45–90 minutes, smaller
//! meetings start any minute and last 15–60 minutes, drawn from a seeded generator; Scalelite
//! places each new meeting on the enabled server with the least load.
//!
//! Recordings (drawn from a second generator of the same seed, so a seed's meetings are those
//! of earlier versions of this example): half of the lectures are recorded (a university
//! records lectures for those who missed them) and a tenth of the smaller meetings. A
//! recording is processed after its meeting ends, taking between a quarter of the meeting's
//! length and all of it (drawn evenly: minutes on an idle server, about the meeting's length
//! on a busy one, as the issue reads BBB's processing). Each server processes one recording
//! at a time, in the order the meetings ended (BBB's `bbb-rap-resque-worker` runs one
//! worker, `COUNT=1`). A server processing recordings still takes new meetings unless it is
//! cordoned. The model `fleet::choose` uses does not see these draws: it has its own fixed
//! assumptions (src/fleet.rs, `expected_free`).

use std::time::Duration;

use bbbctl::fleet::{Busy, Member, choose};
use bbbctl::scalelite::Server;

/// xorshift64*: small, seeded, enough for a simulation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

#[derive(Clone)]
struct Meeting {
    start: u64,
    end: u64,
    people: u64,
    lecture: bool,
    /// Minutes of processing after it ends; None when it is not recorded.
    processing: Option<u64>,
}

#[derive(Clone)]
struct Srv {
    id: String,
    meetings: Vec<Meeting>,
    /// Recordings waiting or being processed, in order: minutes of work left on each.
    recordings: Vec<u64>,
    cordoned: bool,
    gone: bool,
}

impl Srv {
    fn running(&self, t: u64) -> impl Iterator<Item = &Meeting> {
        self.meetings
            .iter()
            .filter(move |m| m.start <= t && t < m.end)
    }
}

fn load(s: &Srv, t: u64) -> f64 {
    // Scalelite: participants; a meeting younger than 15 minutes counts at least 15.
    s.running(t)
        .map(|m| if t - m.start < 15 { m.people.max(15) } else { m.people } as f64)
        .sum()
}

/// Share of lectures recorded, and of smaller meetings, in percent.
const RECORDED_LECTURES: u64 = 50;
const RECORDED_SMALL: u64 = 10;

fn day(seed: u64) -> Vec<Meeting> {
    let mut rng = Rng(seed.max(1));
    let mut meetings = Vec::new();
    for minute in (8 * 60)..(20 * 60) {
        if minute % 30 == 0 {
            for _ in 0..rng.range(2, 8) {
                let len = rng.range(45, 90);
                meetings.push(Meeting {
                    start: minute,
                    end: minute + len,
                    people: rng.range(20, 120),
                    lecture: true,
                    processing: None,
                });
            }
        }
        if rng.range(0, 9) < 3 {
            let len = rng.range(15, 60);
            meetings.push(Meeting {
                start: minute,
                end: minute + len,
                people: rng.range(2, 12),
                lecture: false,
                processing: None,
            });
        }
    }
    let mut rec = Rng(seed.max(1) ^ 0x9e37_79b9_7f4a_7c15);
    for m in &mut meetings {
        let share = if m.lecture {
            RECORDED_LECTURES
        } else {
            RECORDED_SMALL
        };
        if rec.range(0, 99) < share {
            // A quarter of the meeting's length up to all of it, in hundredths.
            let ratio = rec.range(25, 100);
            m.processing = Some(((m.end - m.start) * ratio).div_ceil(100));
        }
    }
    meetings
}

/// Capacity through the day: (minute, servers).
const PLAN: [(u64, usize); 4] = [
    (8 * 60, 12),
    (12 * 60 + 15, 8),
    (16 * 60 + 40, 5),
    (19 * 60 + 10, 2),
];

#[derive(Default)]
struct Outcome {
    cut_meetings: usize,
    cut_people: u64,
    lost_recordings: usize,
    drain_server_minutes: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Terminate,
    DrainOldest,
    Emptiest,
    SoonestFree,
    Hindsight,
}

impl Way {
    /// Whether its drain waits for recordings as well as meetings.
    fn waits_for_recordings(self) -> bool {
        matches!(self, Way::DrainOldest | Way::SoonestFree | Way::Hindsight)
    }
}

/// A server as `fleet::choose` sees it; `busy` only when the way reads the servers' accounts.
fn member(s: &Srv, i: usize, t: u64, accounts: bool) -> Member {
    Member {
        instance: s.id.clone(),
        zone: "a".into(),
        lifecycle: "InService".into(),
        health: "Healthy".into(),
        protected: false,
        host: format!("bbb-{i}"),
        scalelite: Some(Server {
            id: s.id.clone(),
            url: String::new(),
            secret: String::new(),
            state: "enabled".into(),
            online: true,
            load: Some(load(s, t)),
            bbb_version: String::new(),
        }),
        busy: accounts.then(|| Busy {
            meetings: s
                .running(t)
                .map(|m| bbbctl::fleet::Meeting {
                    age: Duration::from_secs((t - m.start) * 60),
                    participants: m.people as u32,
                    recording: m.processing.is_some(),
                })
                .collect(),
            recordings: Some(s.recordings.len() as u32),
        }),
    }
}

/// Minutes until a server cordoned at `t` is done, from what will truly happen: its meetings'
/// ends, and its one worker through the recordings waiting and those of its meetings.
fn truly_free_in(s: &Srv, t: u64) -> u64 {
    let mut running: Vec<&Meeting> = s.running(t).collect();
    running.sort_by_key(|m| m.end);
    let mut worker = t + s.recordings.iter().sum::<u64>();
    let mut last_end = t;
    for m in running {
        last_end = last_end.max(m.end);
        if let Some(p) = m.processing {
            worker = worker.max(m.end) + p;
        }
    }
    last_end.max(worker) - t
}

fn simulate(meetings: &[Meeting], way: Way) -> Outcome {
    let mut servers: Vec<Srv> = (0..PLAN[0].1)
        .map(|i| Srv {
            id: format!("i-{i:02}"),
            meetings: Vec::new(),
            recordings: Vec::new(),
            cordoned: false,
            gone: false,
        })
        .collect();
    let mut out = Outcome::default();
    let mut plan = PLAN.iter().skip(1).peekable();
    // Until every server is gone or idle: drains and processing outlast the last meeting.
    for t in (8 * 60)..(30 * 60) {
        // Meetings that end now queue their recording on their server.
        for s in servers.iter_mut().filter(|s| !s.gone) {
            let ended: Vec<u64> = s
                .meetings
                .iter()
                .filter(|m| m.end == t)
                .filter_map(|m| m.processing)
                .collect();
            s.recordings.extend(ended);
        }
        if let Some(&&(at, count)) = plan.peek()
            && t == at
        {
            plan.next();
            let live: Vec<usize> = (0..servers.len())
                .filter(|&i| !servers[i].gone && !servers[i].cordoned)
                .collect();
            let take = live.len().saturating_sub(count);
            match way {
                Way::Emptiest | Way::SoonestFree => {
                    let members: Vec<Member> = live
                        .iter()
                        .map(|&i| member(&servers[i], i, t, way == Way::SoonestFree))
                        .collect();
                    for id in choose(&members, take) {
                        if let Some(s) = servers.iter_mut().find(|s| s.id == id) {
                            s.cordoned = true;
                        }
                    }
                }
                Way::Hindsight => {
                    let mut soonest = live.clone();
                    soonest.sort_by_key(|&i| (truly_free_in(&servers[i], t), i));
                    for &i in soonest.iter().take(take) {
                        servers[i].cordoned = true;
                    }
                }
                Way::DrainOldest => {
                    for &i in live.iter().take(take) {
                        servers[i].cordoned = true;
                    }
                }
                Way::Terminate => {
                    // The group's default: the oldest instances first, meetings or not.
                    for &i in live.iter().take(take) {
                        let s = &mut servers[i];
                        for m in s.meetings.iter_mut().filter(|m| m.start <= t && t < m.end) {
                            out.cut_meetings += 1;
                            out.cut_people += m.people;
                            out.lost_recordings += usize::from(m.processing.is_some());
                            m.end = t;
                            m.processing = None;
                        }
                        out.lost_recordings += s.recordings.len();
                        s.recordings.clear();
                        s.gone = true;
                    }
                }
            }
        }
        // Drained servers go once done; until then they are paid for.
        for s in servers.iter_mut().filter(|s| s.cordoned && !s.gone) {
            let meetings = s.running(t).next().is_some();
            let recordings = !s.recordings.is_empty();
            if meetings || (recordings && way.waits_for_recordings()) {
                out.drain_server_minutes += 1;
            } else {
                out.lost_recordings += s.recordings.len();
                s.recordings.clear();
                s.gone = true;
            }
        }
        // Each server's one worker processes its first recording for this minute.
        for s in servers.iter_mut().filter(|s| !s.gone) {
            if let Some(first) = s.recordings.first_mut() {
                *first -= 1;
                if *first == 0 {
                    s.recordings.remove(0);
                }
            }
        }
        // New meetings go to the enabled server with the least load.
        for m in meetings.iter().filter(|m| m.start == t) {
            if let Some(s) = servers
                .iter_mut()
                .filter(|s| !s.gone && !s.cordoned)
                .min_by(|a, b| {
                    load(a, t)
                        .partial_cmp(&load(b, t))
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
            {
                s.meetings.push(m.clone());
            }
        }
    }
    out
}

/// The servers the night keeps, and the morning's capacity (PLAN's first step).
const NIGHT: usize = 2;
/// When the morning's capacity is wanted, and an unforeseen rush (minutes of the day).
const MORNING: u64 = 8 * 60;
const RUSH: u64 = 10 * 60;

/// How the fleet fared while servers it asked for were on their way.
struct Arrival {
    /// Meetings (and their people) that started before the servers asked for were enabled:
    /// they were placed on the servers already there.
    short_meetings: usize,
    short_people: u64,
    /// The most participants on one server meanwhile, against the most once all are there.
    peak_short: u64,
    peak_full: u64,
    /// Server-minutes paid before the capacity was wanted (started early, sat idle).
    idle_server_minutes: u64,
}

/// A launch in the simulation: `added` servers asked for at `asked` (a scheduled action, or
/// a scale-out at a rush) are enabled in Scalelite `launch` minutes later (launch to
/// enabled, scripts/bench-boot.sh); until then Scalelite places every new meeting on the
/// `present` servers. `wanted` is when the capacity is needed. Meetings from `wanted` for
/// two hours are placed (least participants first, as Scalelite's load does).
fn arrival(
    meetings: &[Meeting],
    present: usize,
    added: usize,
    asked: u64,
    launch: u64,
    wanted: u64,
) -> Arrival {
    let enabled_at = asked + launch;
    let mut servers: Vec<Vec<&Meeting>> = vec![Vec::new(); present + added];
    let mut out = Arrival {
        short_meetings: 0,
        short_people: 0,
        peak_short: 0,
        peak_full: 0,
        idle_server_minutes: wanted.saturating_sub(enabled_at) * added as u64,
    };
    let people = |s: &Vec<&Meeting>, t: u64| -> u64 {
        s.iter()
            .filter(|m| m.start <= t && t < m.end)
            .map(|m| m.people)
            .sum()
    };
    for t in wanted..wanted + 120 {
        let up = if t < enabled_at {
            present
        } else {
            present + added
        };
        for m in meetings.iter().filter(|m| m.start == t) {
            let target = (0..up)
                .min_by_key(|&i| (people(&servers[i], t), i))
                .expect("at least one server");
            servers[target].push(m);
            if t < enabled_at {
                out.short_meetings += 1;
                out.short_people += m.people;
            }
        }
        let peak = servers.iter().map(|s| people(s, t)).max().unwrap_or(0);
        if t < enabled_at {
            out.peak_short = out.peak_short.max(peak);
        } else {
            out.peak_full = out.peak_full.max(peak);
        }
    }
    out
}

/// Lead times: `--launch PATH=BEST:WORST` (seconds launch to enabled, from
/// scripts/bench-boot.sh --totals) for each path.
fn lead_times(meetings: &[Meeting], paths: &[(String, u64, u64)]) {
    let added = PLAN[0].1 - NIGHT;
    println!(
        "  launch: {NIGHT} servers overnight, {added} more wanted at 08:00; at 10:00 an unforeseen rush asks for {added} more (no lead possible)"
    );
    for (path, best, worst) in paths {
        // Whole minutes: a scheduled action runs at a minute; the worst case decides.
        let (best_m, worst_m) = (best.div_ceil(60), worst.div_ceil(60));
        let lead = worst_m;
        let late = arrival(meetings, NIGHT, added, MORNING, worst_m, MORNING);
        let early = arrival(meetings, NIGHT, added, MORNING - lead, best_m, MORNING);
        let rush = arrival(meetings, PLAN[0].1, added, RUSH, worst_m, RUSH);
        println!(
            "  {path}: launch to enabled {best_m}-{worst_m} min, so a schedule asks {lead} min ahead"
        );
        println!(
            "    asked at 08:00 (no lead, worst launch): {} meetings ({} people) start on the {NIGHT} night servers, up to {} people/server ({} with the lead)",
            late.short_meetings, late.short_people, late.peak_short, early.peak_full
        );
        println!(
            "    asked {lead} min ahead (best launch): {} meetings short, {:.1} server-hours idle before 08:00",
            early.short_meetings,
            early.idle_server_minutes as f64 / 60.0
        );
        println!(
            "    a scale-out asked at 10:00 (worst launch): {} meetings ({} people) start before its servers are there",
            rush.short_meetings, rush.short_people
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(2026);
    // --launch PATH=BEST:WORST (seconds), any number of times.
    let mut paths = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        let spec = match a.as_str() {
            "--launch" => rest.next().cloned().unwrap_or_default(),
            other => {
                eprintln!("fleet_day: unknown argument {other}");
                std::process::exit(2);
            }
        };
        let parsed = spec.split_once('=').and_then(|(p, t)| {
            let (b, w) = t.split_once(':')?;
            Some((p.to_string(), b.parse().ok()?, w.parse().ok()?))
        });
        match parsed {
            Some(x) => paths.push(x),
            None => {
                eprintln!("fleet_day: --launch wants PATH=BEST:WORST (seconds), not {spec:?}");
                std::process::exit(2);
            }
        }
    }
    let meetings = day(seed);
    let recorded = meetings.iter().filter(|m| m.processing.is_some()).count();
    println!(
        "seed {seed}: {} meetings, {recorded} recorded; scale-ins 12 → 8 → 5 → 2 servers at 12:15, 16:40, 19:10",
        meetings.len()
    );
    let oldest = simulate(&meetings, Way::DrainOldest);
    for (name, way) in [
        ("Auto Scaling default", Way::Terminate),
        ("drain, oldest first", Way::DrainOldest),
        ("bbbctl before (load)", Way::Emptiest),
        ("bbbctl (soonest free)", Way::SoonestFree),
        ("bound: hindsight", Way::Hindsight),
    ] {
        let o = simulate(&meetings, way);
        let share = if oldest.drain_server_minutes == 0 {
            String::new()
        } else {
            format!(
                " = {:>3.0}% of oldest",
                100.0 * o.drain_server_minutes as f64 / oldest.drain_server_minutes as f64
            )
        };
        println!(
            "  {name:<22} {:>3} meetings cut ({:>4} people), {:>3} recordings lost, {:>5.1} server-hours draining{share}",
            o.cut_meetings,
            o.cut_people,
            o.lost_recordings,
            o.drain_server_minutes as f64 / 60.0,
        );
    }
    if !paths.is_empty() {
        lead_times(&meetings, &paths);
    }
}
