//! A day of a university's meetings on a BBB fleet that is scaled in at fixed times, run three
//! ways: the Auto Scaling group terminating the servers it picks (its default, in effect the
//! oldest instances, meetings or not); draining those same servers (cordon, wait until empty);
//! and bbbctl's choice (`bbbctl::fleet::choose`: the emptiest by Scalelite's load, drained).
//! Prints the meetings each cuts and the server-hours paid while servers drain.
//!
//! `cargo run --release --example fleet_day [SEED]` (scripts/bench-fleet.sh runs it for a few
//! seeds). Meetings: lectures start on the hour or half hour and last 45–90 minutes, smaller
//! meetings start any minute and last 15–60 minutes, drawn from a seeded generator; Scalelite
//! places each new meeting on the enabled server with the least load.

use bbbctl::fleet::{Member, choose};
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
}

#[derive(Clone)]
struct Srv {
    id: String,
    meetings: Vec<Meeting>,
    cordoned: bool,
    gone: bool,
}

fn load(s: &Srv, t: u64) -> f64 {
    // Scalelite: participants; a meeting younger than 15 minutes counts at least 15.
    s.meetings
        .iter()
        .filter(|m| m.start <= t && t < m.end)
        .map(|m| if t - m.start < 15 { m.people.max(15) } else { m.people } as f64)
        .sum()
}

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
                });
            }
        }
        if rng.range(0, 9) < 3 {
            let len = rng.range(15, 60);
            meetings.push(Meeting {
                start: minute,
                end: minute + len,
                people: rng.range(2, 12),
            });
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

struct Outcome {
    cut_meetings: usize,
    cut_people: u64,
    drain_server_minutes: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Terminate,
    DrainOldest,
    DrainEmptiest,
}

fn simulate(meetings: &[Meeting], way: Way) -> Outcome {
    let mut servers: Vec<Srv> = (0..PLAN[0].1)
        .map(|i| Srv {
            id: format!("i-{i:02}"),
            meetings: Vec::new(),
            cordoned: false,
            gone: false,
        })
        .collect();
    let mut out = Outcome {
        cut_meetings: 0,
        cut_people: 0,
        drain_server_minutes: 0,
    };
    let mut plan = PLAN.iter().skip(1).peekable();
    for t in (8 * 60)..(22 * 60) {
        if let Some(&&(at, count)) = plan.peek()
            && t == at
        {
            plan.next();
            let live: Vec<usize> = (0..servers.len())
                .filter(|&i| !servers[i].gone && !servers[i].cordoned)
                .collect();
            let take = live.len().saturating_sub(count);
            if way == Way::DrainEmptiest {
                let members: Vec<Member> = live
                    .iter()
                    .map(|&i| Member {
                        instance: servers[i].id.clone(),
                        zone: "a".into(),
                        lifecycle: "InService".into(),
                        health: "Healthy".into(),
                        protected: false,
                        host: format!("bbb-{i}"),
                        scalelite: Some(Server {
                            id: servers[i].id.clone(),
                            url: String::new(),
                            secret: String::new(),
                            state: "enabled".into(),
                            online: true,
                            load: Some(load(&servers[i], t)),
                            bbb_version: String::new(),
                        }),
                        busy: None,
                    })
                    .collect();
                for id in choose(&members, take) {
                    if let Some(s) = servers.iter_mut().find(|s| s.id == id) {
                        s.cordoned = true;
                    }
                }
            } else if way == Way::DrainOldest {
                for &i in live.iter().take(take) {
                    servers[i].cordoned = true;
                }
            } else {
                // The group's default: the oldest instances first, meetings or not.
                for &i in live.iter().take(take) {
                    let s = &mut servers[i];
                    for m in s.meetings.iter_mut().filter(|m| m.start <= t && t < m.end) {
                        out.cut_meetings += 1;
                        out.cut_people += m.people;
                        m.end = t;
                    }
                    s.gone = true;
                }
            }
        }
        // Drained servers go once empty; until then they are paid for.
        for s in servers.iter_mut().filter(|s| s.cordoned && !s.gone) {
            if s.meetings.iter().any(|m| m.start <= t && t < m.end) {
                out.drain_server_minutes += 1;
            } else {
                s.gone = true;
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

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let meetings = day(seed);
    let default = simulate(&meetings, Way::Terminate);
    let oldest = simulate(&meetings, Way::DrainOldest);
    let bbbctl = simulate(&meetings, Way::DrainEmptiest);
    println!(
        "seed {seed}: {} meetings; scale-ins 12 → 8 → 5 → 2 servers at 12:15, 16:40, 19:10",
        meetings.len()
    );
    println!(
        "  Auto Scaling default: {:>3} meetings cut ({:>4} people), {:>4} server-minutes draining",
        default.cut_meetings, default.cut_people, default.drain_server_minutes
    );
    println!(
        "  drain, oldest first:  {:>3} meetings cut ({:>4} people), {:>4} server-minutes draining ({:.1} server-hours)",
        oldest.cut_meetings,
        oldest.cut_people,
        oldest.drain_server_minutes,
        oldest.drain_server_minutes as f64 / 60.0
    );
    println!(
        "  bbbctl (emptiest):    {:>3} meetings cut ({:>4} people), {:>4} server-minutes draining ({:.1} server-hours)",
        bbbctl.cut_meetings,
        bbbctl.cut_people,
        bbbctl.drain_server_minutes,
        bbbctl.drain_server_minutes as f64 / 60.0
    );
}
