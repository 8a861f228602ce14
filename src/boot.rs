//! How a BBB server booted, from its boot log (`/var/log/bbb-bootstrap.log`, shipped to the
//! stack's CloudWatch Logs group, stream = instance id). Every timed step of the boot
//! scripts logs one line (contract 4 of issue 27):
//!
//! ```text
//! <UTC RFC 3339> <program>: STEP <name> <seconds>s
//! <UTC RFC 3339> <program>: BOOT <path> <total seconds>s      the end of a boot
//! <UTC RFC 3339> bbb-bootstrap: READY <url> | FAILED <reason> | BAKED
//! ```
//!
//! A stream holds every boot of its instance (a warm instance boots when it is prepared and
//! again each time it is started): the lines are cut into boots, the last one counts and the
//! earlier ones are kept. Any other line (the scripts' other messages, bbb-install's output)
//! and any line not exactly of these shapes is ignored. Pure: the commands fetch, this reads.

use serde::Serialize;

/// One timed step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// `bbb-bootstrap` or `bbb-identity`.
    pub program: String,
    pub name: String,
    pub seconds: f64,
    /// When it was logged (its end), as the line gives it.
    pub at: String,
}

/// How a boot ended, as far as its lines tell.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Outcome {
    /// No BOOT line and no result yet: still booting (or its log has not arrived).
    Booting,
    /// Its BOOT line but no READY/FAILED/BAKED: a boot that ends without the bootstrap's
    /// result line (a later boot, where only `bbb-identity` runs).
    Booted,
    Ready {
        url: String,
    },
    Failed {
        reason: String,
    },
    /// A builder's end (`bake` path): it powers off.
    Baked,
}

/// One boot of an instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Boot {
    /// `bare`, `bake`, `baked` or `restart` (from its BOOT line; None before it).
    pub path: Option<String>,
    pub steps: Vec<Step>,
    /// Seconds, from its BOOT line.
    pub total: Option<f64>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Time of its first and of its last line read here.
    pub first: String,
    pub last: String,
    /// Time of its BOOT line.
    pub boot_at: Option<String>,
    /// Time of its READY/FAILED/BAKED line.
    pub result_at: Option<String>,
}

impl Boot {
    fn new(at: &str) -> Boot {
        Boot {
            path: None,
            steps: Vec::new(),
            total: None,
            outcome: Outcome::Booting,
            first: at.to_string(),
            last: at.to_string(),
            boot_at: None,
            result_at: None,
        }
    }

    fn ended(&self) -> bool {
        self.total.is_some() || self.result_at.is_some()
    }

    /// Its longest step (the first of equals).
    pub fn slowest(&self) -> Option<&Step> {
        self.steps
            .iter()
            .fold(None, |best: Option<&Step>, s| match best {
                Some(b) if b.seconds >= s.seconds => Some(b),
                _ => Some(s),
            })
    }

    /// `booting`, `booted`, `ready`, `failed` or `baked`.
    pub fn state(&self) -> &'static str {
        match self.outcome {
            Outcome::Booting => "booting",
            Outcome::Booted => "booted",
            Outcome::Ready { .. } => "ready",
            Outcome::Failed { .. } => "failed",
            Outcome::Baked => "baked",
        }
    }

    /// When it was ready to serve: its READY line, or the BOOT line of a boot that ends
    /// without one (`Booted`).
    pub fn ready_at(&self) -> Option<&str> {
        match self.outcome {
            Outcome::Ready { .. } => self.result_at.as_deref(),
            Outcome::Booted => self.boot_at.as_deref(),
            _ => None,
        }
    }

    /// Seconds from the instance's launch (EC2 LaunchTime: its last start) to ready.
    pub fn launch_to_ready(&self, launched: Option<&str>) -> Option<f64> {
        let d = epoch(self.ready_at()?)? - epoch(launched?)?;
        (d >= 0.0).then_some(d)
    }
}

/// The boots of one stream, oldest first, from its lines in time order.
///
/// A boot ends with its BOOT line or its result line (BOOT comes first, the bootstrap's
/// READY/FAILED last, and they belong to one boot); the next STEP or BOOT line after a boot
/// has ended, or a second result line, begins the next boot.
pub fn boots<S: AsRef<str>>(lines: &[S]) -> Vec<Boot> {
    let mut out: Vec<Boot> = Vec::new();
    for raw in lines {
        let Some((at, program, line)) = parse(raw.as_ref()) else {
            continue;
        };
        let new = match (&line, out.last()) {
            (_, None) => true,
            (Line::Step { .. } | Line::Boot { .. }, Some(b)) => b.ended(),
            (_, Some(b)) => b.result_at.is_some(),
        };
        if new {
            out.push(Boot::new(at));
        }
        let b = out.last_mut().expect("a boot was pushed");
        b.last = at.to_string();
        match line {
            Line::Step { name, seconds } => b.steps.push(Step {
                program: program.to_string(),
                name: name.to_string(),
                seconds,
                at: at.to_string(),
            }),
            Line::Boot { path, total } => {
                b.path = Some(path.to_string());
                b.total = Some(total);
                b.boot_at = Some(at.to_string());
            }
            Line::Ready(url) => {
                b.outcome = Outcome::Ready {
                    url: url.to_string(),
                };
                b.result_at = Some(at.to_string());
            }
            Line::Failed(reason) => {
                b.outcome = Outcome::Failed {
                    reason: reason.to_string(),
                };
                b.result_at = Some(at.to_string());
            }
            Line::Baked => {
                b.outcome = Outcome::Baked;
                b.result_at = Some(at.to_string());
            }
        }
        if b.outcome == Outcome::Booting && b.total.is_some() {
            b.outcome = Outcome::Booted;
        }
    }
    out
}

/// The boot of the instance's current run: the last boot, unless every line of it is older
/// than the instance's last start (`launched`, EC2 LaunchTime): then this start has logged
/// nothing yet (a warm instance just started again) and there is none.
pub fn current<'a>(boots: &'a [Boot], launched: Option<&str>) -> Option<&'a Boot> {
    let last = boots.last()?;
    match (launched.and_then(epoch), epoch(&last.last)) {
        // A few seconds' allowance between the instance's clock and EC2's.
        (Some(start), Some(seen)) if seen + 5.0 < start => None,
        _ => Some(last),
    }
}

enum Line<'a> {
    Step { name: &'a str, seconds: f64 },
    Boot { path: &'a str, total: f64 },
    Ready(&'a str),
    Failed(&'a str),
    Baked,
}

/// One line, strictly: `(time, program, what)`; None for anything else.
fn parse(line: &str) -> Option<(&str, &str, Line<'_>)> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (at, rest) = line.split_once(' ')?;
    epoch(at)?;
    let (program, rest) = rest.split_once(": ")?;
    if !is_name(program) {
        return None;
    }
    let (keyword, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let words: Vec<&str> = args.split(' ').filter(|w| !w.is_empty()).collect();
    let what = match keyword {
        "STEP" => match words[..] {
            [name, secs] if is_name(name) => Line::Step {
                name,
                seconds: seconds(secs)?,
            },
            _ => return None,
        },
        "BOOT" => match words[..] {
            [path, secs] if is_name(path) => Line::Boot {
                path,
                total: seconds(secs)?,
            },
            _ => return None,
        },
        "READY" if program == "bbb-bootstrap" => Line::Ready(args.trim()),
        "FAILED" if program == "bbb-bootstrap" => Line::Failed(args.trim()),
        "BAKED" if program == "bbb-bootstrap" => Line::Baked,
        _ => return None,
    };
    Some((at, program, what))
}

/// `[a-z0-9-]+`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `<digits>[.<digits>]s`, as seconds.
fn seconds(s: &str) -> Option<f64> {
    let n = s.strip_suffix('s')?;
    let (whole, fraction) = n.split_once('.').unwrap_or((n, "0"));
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    n.parse().ok()
}

/// Seconds since the epoch of an RFC 3339 time (`2026-12-07T10:00:00Z`, with or without a
/// fraction, `Z` or a `±hh:mm` offset), as EC2 (launchTime) and the boot scripts write it.
pub fn epoch(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut fraction = 0.0;
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        fraction = format!("0.{}", &f[..n]).parse().ok()?;
        rest = &f[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let hh: i64 = rest[1..3].parse().ok()?;
            let mm: i64 = rest[4..6].parse().ok()?;
            if hh > 23 || mm > 59 {
                return None;
            }
            sign * (hh * 3600 + mm * 60)
        }
    };
    let secs = crate::tls::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(secs as f64 + fraction)
}

/// What `status` says of one boot path over the running servers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathSummary {
    pub path: String,
    /// Servers whose current boot took this path.
    pub count: usize,
    /// Of those, how many are ready (launch to ready known), failed, still booting.
    pub ready: usize,
    pub failed: usize,
    pub booting: usize,
    /// Launch to ready, seconds, over the ready ones.
    pub median: Option<f64>,
    /// The slowest of them: (instance, seconds launch to ready).
    pub slowest: Option<(String, f64)>,
    /// The step that took longest over all of them: (instance, step).
    pub slowest_step: Option<(String, Step)>,
}

/// Per path (alphabetical; a boot without a BOOT line yet under `unknown`), over
/// `(instance, its current boot, launch to ready)`.
pub fn summary(rows: &[(String, Boot, Option<f64>)]) -> Vec<PathSummary> {
    let mut paths: Vec<String> = rows
        .iter()
        .map(|(_, b, _)| b.path.clone().unwrap_or_else(|| "unknown".into()))
        .collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|path| {
            let of: Vec<&(String, Boot, Option<f64>)> = rows
                .iter()
                .filter(|(_, b, _)| b.path.as_deref().unwrap_or("unknown") == path)
                .collect();
            let mut times: Vec<(f64, &str)> = of
                .iter()
                .filter_map(|(i, _, t)| t.map(|t| (t, i.as_str())))
                .collect();
            times.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
            let slowest_step = of
                .iter()
                .filter_map(|(i, b, _)| b.slowest().map(|s| (i.clone(), s.clone())))
                .fold(None, |best: Option<(String, Step)>, x| match best {
                    Some(b) if b.1.seconds >= x.1.seconds => Some(b),
                    _ => Some(x),
                });
            PathSummary {
                count: of.len(),
                ready: times.len(),
                failed: of
                    .iter()
                    .filter(|(_, b, _)| matches!(b.outcome, Outcome::Failed { .. }))
                    .count(),
                booting: of
                    .iter()
                    .filter(|(_, b, _)| b.outcome == Outcome::Booting)
                    .count(),
                median: median(&times.iter().map(|t| t.0).collect::<Vec<_>>()),
                slowest: times.last().map(|(t, i)| (i.to_string(), *t)),
                slowest_step,
                path,
            }
        })
        .collect()
}

/// The median of sorted values (the mean of the middle two of an even count).
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Seconds as `95s` or `4m05s`.
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE: &[&str] = &[
        "2026-12-07T10:00:05Z bbb-bootstrap: starting (scalable mode)",
        "2026-12-07T10:00:09Z bbb-bootstrap: STEP volume 3.5s",
        "Reading package lists... Done",
        "2026-12-07T10:16:10Z bbb-bootstrap: STEP install 961.2s",
        "2026-12-07T10:16:40Z bbb-identity: STEP certificate 12.0s",
        "2026-12-07T10:17:00Z bbb-bootstrap: BOOT bare 1015.0s",
        "2026-12-07T10:17:00Z bbb-bootstrap: READY https://bbb-0a.media.d.org",
    ];

    #[test]
    fn a_bare_boot_is_read_with_its_steps_and_result() {
        let b = boots(BARE);
        assert_eq!(b.len(), 1);
        let boot = &b[0];
        assert_eq!(boot.path.as_deref(), Some("bare"));
        assert_eq!(boot.total, Some(1015.0));
        assert_eq!(
            boot.outcome,
            Outcome::Ready {
                url: "https://bbb-0a.media.d.org".into()
            }
        );
        let names: Vec<(&str, &str, f64)> = boot
            .steps
            .iter()
            .map(|s| (s.program.as_str(), s.name.as_str(), s.seconds))
            .collect();
        assert_eq!(
            names,
            [
                ("bbb-bootstrap", "volume", 3.5),
                ("bbb-bootstrap", "install", 961.2),
                ("bbb-identity", "certificate", 12.0)
            ]
        );
        assert_eq!(boot.slowest().unwrap().name, "install");
        // Launched at 09:59:20: ready 17m40s later.
        assert_eq!(
            boot.launch_to_ready(Some("2026-12-07T09:59:20.000Z")),
            Some(1060.0)
        );
        assert_eq!(boot.launch_to_ready(None), None);
    }

    #[test]
    fn a_warm_instance_boots_several_times_and_the_last_counts() {
        let lines = [
            // Prepared for the pool (baked image), then stopped.
            "2026-12-07T08:00:30Z bbb-bootstrap: STEP volume 2.0s",
            "2026-12-07T08:00:50Z bbb-identity: STEP addresses 4.1s",
            "2026-12-07T08:01:10Z bbb-bootstrap: BOOT baked 55.0s",
            "2026-12-07T08:01:10Z bbb-bootstrap: READY https://bbb-0a.media.d.org",
            // Started from the pool: identity only, no READY line.
            "2026-12-07T11:00:20Z bbb-identity: STEP addresses 3.2s",
            "2026-12-07T11:00:31Z bbb-identity: STEP services 9.8s",
            "2026-12-07T11:00:31Z bbb-identity: BOOT restart 14.0s",
            // Started again later: still booting.
            "2026-12-07T15:00:20Z bbb-identity: STEP addresses 2.9s",
        ];
        let b = boots(&lines);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].path.as_deref(), Some("baked"));
        assert_eq!(b[0].state(), "ready");
        assert_eq!(b[1].path.as_deref(), Some("restart"));
        assert_eq!(b[1].outcome, Outcome::Booted);
        assert_eq!(b[1].ready_at(), Some("2026-12-07T11:00:31Z"));
        assert_eq!(b[1].slowest().unwrap().name, "services");
        assert_eq!(
            b[1].launch_to_ready(Some("2026-12-07T11:00:00Z")),
            Some(31.0)
        );
        // Missing BOOT line: still booting, no path, no ready time.
        assert_eq!(b[2].outcome, Outcome::Booting);
        assert_eq!(b[2].path, None);
        assert_eq!(b[2].ready_at(), None);
        assert_eq!(b[2].steps.len(), 1);
        // The current boot: the last; none when this start logged nothing yet.
        assert_eq!(
            current(&b, Some("2026-12-07T15:00:00Z")).map(|x| x.steps.len()),
            Some(1)
        );
        assert_eq!(current(&b, Some("2026-12-07T16:00:00Z")), None);
        assert_eq!(current(&b, None), b.last());
        assert_eq!(current(&[], None), None);
    }

    #[test]
    fn a_failed_boot_and_the_boot_after_it_are_apart() {
        let lines = [
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP volume 3.5s",
            "2026-12-07T10:10:00Z bbb-bootstrap: ERROR: apt-get failed",
            "2026-12-07T10:10:01Z bbb-bootstrap: FAILED bbb-install exited with 100",
            "2026-12-07T10:10:02Z bbb-bootstrap: signalling SUCCESS",
            // The next boot's result straight away (no step): a boot of its own.
            "2026-12-07T12:00:00Z bbb-bootstrap: FAILED certificate not yet issued",
        ];
        let b = boots(&lines);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0].outcome,
            Outcome::Failed {
                reason: "bbb-install exited with 100".into()
            }
        );
        assert_eq!(b[0].path, None);
        assert_eq!(b[0].launch_to_ready(Some("2026-12-07T10:00:00Z")), None);
        assert_eq!(b[1].state(), "failed");
        assert!(b[1].steps.is_empty());
        let baked = boots(&[
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install 900.0s",
            "2026-12-07T10:00:10Z bbb-bootstrap: BOOT bake 930.0s",
            "2026-12-07T10:00:11Z bbb-bootstrap: BAKED",
        ]);
        assert_eq!(baked.len(), 1);
        assert_eq!(baked[0].outcome, Outcome::Baked);
        assert_eq!(baked[0].path.as_deref(), Some("bake"));
    }

    #[test]
    fn malformed_lines_are_ignored_never_a_panic() {
        let bad = [
            "",
            " ",
            "STEP install 3.0s",
            "2026-12-07T10:00:09Z STEP install 3.0s",
            "2026-12-07 10:00:09Z bbb-bootstrap: STEP install 3.0s",
            "2026-13-07T10:00:09Z bbb-bootstrap: STEP install 3.0s",
            "2026-12-07T10:00:09 bbb-bootstrap: STEP install 3.0s",
            "2026-12-07T10:00:09Z Bbb-Bootstrap: STEP install 3.0s",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP Install 3.0s",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install 3.0",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install -3.0s",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install 1e3s",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install NaNs",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install .5s",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install 3.s",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install 3.0s extra",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP in/stall 3.0s",
            "2026-12-07T10:00:09Z bbb-bootstrap: BOOT 3.0s",
            "2026-12-07T10:00:09Z bbb-bootstrap: BOOT bare",
            "2026-12-07T10:00:09Z bbb-bootstrap: boot bare 3.0s",
            "2026-12-07T10:00:09Z bbb-identity: READY https://x",
            "2026-12-07T10:00:09Z bbb-identity: FAILED x",
            "2026-12-07T10:00:09Z bbb-bootstrap: READYhttps://x",
            "2026-12-07T10:00:09Z bbb-bootstrap:STEP install 3.0s",
            "2026-12-07T10:00:09.Z bbb-bootstrap: STEP install 3.0s",
            "2026-12-07T10:00:09+0100 bbb-bootstrap: STEP install 3.0s",
            "2026-12-07T10:00:09Zé bbb-bootstrap: STEP install 3.0s",
            "é026-12-07T10:00:09Z bbb-bootstrap: STEP install 3.0s",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP ünstall 3.0s",
            "2026-12-07T10:00:09Z bbb-bootstrap: STEP install 3.0ß",
            "\u{0}\u{1}",
        ];
        assert_eq!(boots(&bad), Vec::new());
        // Among good lines, they change nothing.
        let mut mixed: Vec<&str> = BARE.to_vec();
        mixed.splice(2..2, bad);
        assert_eq!(boots(&mixed), boots(BARE));
        // What is accepted: fractions and offsets, a carriage return at the end.
        let ok = boots(&[
            "2026-12-07T11:00:09.123+01:00 bbb-bootstrap: STEP dns 30s\r",
            "2026-12-07T10:00:10Z bbb-bootstrap: BOOT baked 40.0s",
        ]);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].steps[0].seconds, 30.0);
        assert_eq!(
            epoch("2026-12-07T11:00:09.5+01:00"),
            epoch("2026-12-07T10:00:09.5Z")
        );
        assert_eq!(epoch("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(epoch("2026-12-07T10:00:09.000Z"), Some(1_796_637_609.0));
    }

    #[test]
    fn a_summary_per_path_counts_medians_and_names_the_slowest() {
        let boot = |path: &str, total: f64, step: f64| {
            let lines = [
                format!("2026-12-07T10:00:09Z bbb-bootstrap: STEP install {step}s"),
                format!("2026-12-07T10:01:09Z bbb-bootstrap: BOOT {path} {total}s"),
                "2026-12-07T10:01:09Z bbb-bootstrap: READY https://h".to_string(),
            ];
            boots(&lines).remove(0)
        };
        let booting = boots(&["2026-12-07T10:00:09Z bbb-bootstrap: STEP volume 1.0s"]).remove(0);
        let rows = vec![
            ("i-1".to_string(), boot("baked", 60.0, 5.0), Some(100.0)),
            ("i-2".to_string(), boot("baked", 60.0, 7.0), Some(140.0)),
            ("i-3".to_string(), boot("baked", 60.0, 6.0), Some(120.0)),
            ("i-4".to_string(), boot("baked", 60.0, 6.0), Some(130.0)),
            ("i-5".to_string(), boot("bare", 900.0, 800.0), Some(1000.0)),
            ("i-6".to_string(), booting, None),
        ];
        let s = summary(&rows);
        assert_eq!(
            s.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
            ["baked", "bare", "unknown"]
        );
        assert_eq!((s[0].count, s[0].ready), (4, 4));
        assert_eq!(s[0].median, Some(125.0));
        assert_eq!(s[0].slowest, Some(("i-2".into(), 140.0)));
        assert_eq!(s[0].slowest_step.as_ref().unwrap().0, "i-2");
        assert_eq!(s[1].median, Some(1000.0));
        assert_eq!((s[2].count, s[2].booting, s[2].median), (1, 1, None));
        assert_eq!(duration_text(59.6), "1m00s");
        assert_eq!(duration_text(125.0), "2m05s");
    }
}
