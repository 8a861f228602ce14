//! Recordings not yet safe on the BBB servers, by their agents' own reports.
//!
//! Each server's agent (templates/scripts/bbb-agent.sh) writes
//! `servers/<role id>:<instance id>.json` in the deployment's sources bucket (the root
//! parameter `TemplateBucket`): its API secret and, since issue 26, its recordings — how many
//! are not yet safe (waiting, in a processing step, published but not yet copied to the
//! spool, failed and not yet saved), how many recording jobs are queued or running, how many
//! failed and were saved to `failed/<role id>:<instance id>/<record id>.tar`, and up to 50 of
//! them by id. The agent writes it when it changes and at least every 120 s, so the object's
//! LastModified (S3's, not the server's word) says how fresh it is.
//!
//! A report is a server's claim, and a server may be hostile: everything read here is checked
//! for shape (numbers in range, record ids as BigBlueButton makes them, states from a fixed
//! list, saved keys under the server's own prefix) and the secret is never kept. Out of shape
//! means unknown, never "nothing pending".

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use crate::aws::Aws;
use crate::error::AwsContext;

/// The instance tag the deployment's registrar writes on a server in its drain
/// (`waiting since …: 2 meeting(s), 3 recording(s) pending, …`).
pub const DRAIN_TAG: &str = "bbbctl:drain";
/// Where the servers' reports are.
pub const REPORTS: &str = "servers/";
/// Where the agents save the raw files of failed recordings.
pub const FAILED: &str = "failed/";
/// A report older than this no longer says what the server is doing now (the agent writes
/// at least every 120 s).
pub const FRESH: Duration = Duration::from_secs(300);
/// Reports are small: no more is read.
const MAX_REPORT: i64 = 16 * 1024;
/// The largest count believed.
const MAX_COUNT: u64 = 100_000;
const MAX_ITEMS: usize = 50;
/// Where a recording is, as the agent names it.
pub const STATES: [&str; 8] = [
    "queued", "archive", "sanity", "captions", "process", "publish", "transfer", "failed",
];

/// One recording as the agent names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// BigBlueButton's record id (`<40 hex>-<13 digits>`).
    pub id: String,
    /// One of [`STATES`].
    pub state: String,
    /// For a failed recording whose raw files were saved: the key in the sources bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<String>,
}

/// A server's recordings by its agent's account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recordings {
    /// Not yet safe (and not failed-and-saved).
    pub pending: u32,
    /// Recording jobs queued or running.
    pub jobs: u32,
    /// Failed, raw files saved.
    pub failed: u32,
    pub items: Vec<Item>,
}

/// One server's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub instance: String,
    pub key: String,
    /// When S3 last had it written.
    pub written: Option<SystemTime>,
    /// None: an earlier release's agent (no recordings in its report), or out of shape.
    pub recordings: Option<Recordings>,
    /// Its recordings are there but out of shape (or the report could not be read as JSON):
    /// unknown, and never taken for an earlier agent's silence.
    pub malformed: bool,
}

impl Report {
    /// Whether it was written recently enough to say what the server does now.
    pub fn fresh(&self, now: SystemTime) -> bool {
        self.written
            .is_some_and(|w| now.duration_since(w).unwrap_or_default() <= FRESH)
    }

    /// Recordings and recording jobs still to finish, when a fresh report says; else None.
    pub fn busy(&self, now: SystemTime) -> Option<u32> {
        if !self.fresh(now) {
            return None;
        }
        self.recordings
            .as_ref()
            .map(|r| r.pending.saturating_add(r.jobs))
    }

    /// One line: "2 pending, 1 failed (saved)", or why it is unknown.
    pub fn summary(&self, now: SystemTime) -> String {
        if self.malformed {
            return "unknown (its report's recordings are out of shape)".into();
        }
        let Some(r) = &self.recordings else {
            return "unknown (its agent reports no recordings: an earlier release, `bbbctl roll` updates it)".into();
        };
        let mut text = format!("{} pending", r.pending);
        if r.jobs > 0 {
            text.push_str(&format!(", {} job(s) queued or running", r.jobs));
        }
        if r.failed > 0 {
            text.push_str(&format!(", {} failed (saved)", r.failed));
        }
        if !self.fresh(now) {
            let age = self
                .written
                .and_then(|w| now.duration_since(w).ok())
                .map_or("?".to_string(), |a| format!("{} s", a.as_secs()));
            text = format!("unknown now (its last report, {age} old, said {text})");
        }
        text
    }
}

fn record_id() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[0-9a-f]{40}-[0-9]{13}$").expect("regex"))
}

fn report_key() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^servers/([A-Z0-9]{1,128}):(i-[0-9a-f]{8,17})\.json$").expect("regex")
    })
}

fn count(v: &Value) -> Option<u32> {
    v.as_u64()
        .filter(|n| *n <= MAX_COUNT)
        .and_then(|n| u32::try_from(n).ok())
}

/// The recordings of a report's body; None when it has none (an earlier agent) or they are
/// out of shape. `own` is the key prefix of this server's saved recordings
/// (`failed/<role id>:<instance id>/`): a saved key elsewhere is out of shape.
pub fn parse(body: &[u8], own: &str) -> Option<Recordings> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let r = v.get("recordings")?;
    let items = r.get("items")?.as_array()?;
    if items.len() > MAX_ITEMS {
        return None;
    }
    let items = items
        .iter()
        .map(|i| {
            let id = i.get("id")?.as_str()?;
            let state = i.get("state")?.as_str()?;
            if !record_id().is_match(id) || !STATES.contains(&state) {
                return None;
            }
            let saved = match i.get("saved") {
                None | Some(Value::Null) => None,
                Some(s) => {
                    let s = s.as_str()?;
                    (state == "failed" && s == format!("{own}{id}.tar")).then(|| s.to_string())?;
                    Some(s.to_string())
                }
            };
            Some(Item {
                id: id.to_string(),
                state: state.to_string(),
                saved,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Recordings {
        pending: count(r.get("pending")?)?,
        jobs: count(r.get("jobs")?)?,
        failed: count(r.get("failed")?)?,
        items,
    })
}

/// The reports of `instances` (by instance id) in the sources bucket; a server without one
/// is left out. A report that cannot be read counts as one without recordings.
pub async fn reports(
    aws: &Aws,
    bucket: &str,
    instances: &[String],
) -> Result<BTreeMap<String, Report>> {
    let mut found: BTreeMap<String, Report> = BTreeMap::new();
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(REPORTS)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(format_args!("listing the servers' reports in {bucket}"))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            let Some(m) = report_key().captures(key) else {
                continue;
            };
            let instance = m[2].to_string();
            if !instances.contains(&instance) {
                continue;
            }
            let written = o
                .last_modified()
                .and_then(|t| SystemTime::try_from(*t).ok());
            // Two role ids for one instance cannot happen (one role per deployment); the
            // newest wins if it did.
            if found.get(&instance).is_some_and(|r| r.written >= written) {
                continue;
            }
            found.insert(
                instance.clone(),
                Report {
                    instance,
                    key: key.to_string(),
                    written,
                    recordings: None,
                    malformed: false,
                },
            );
        }
    }
    let reads = found.values().map(|r| {
        let key = r.key.clone();
        async move {
            let got = aws
                .s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .range(format!("bytes=0-{}", MAX_REPORT - 1))
                .send()
                .await;
            // Some(None): deleted since the listing (its server drained); None: not read.
            let body = match got {
                Ok(o) => o.body.collect().await.ok().map(|b| Some(b.into_bytes())),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Some(None),
                Err(_) => None,
            };
            (key, body)
        }
    });
    let bodies = futures::future::join_all(reads).await;
    for (key, body) in bodies {
        let Some(r) = found.values_mut().find(|r| r.key == key) else {
            continue;
        };
        let body = match body {
            Some(Some(body)) => body,
            Some(None) => {
                let gone = r.instance.clone();
                found.remove(&gone);
                continue;
            }
            None => {
                // Listed but not read (a dropped connection): unknown, never an earlier
                // agent's silence.
                r.malformed = true;
                continue;
            }
        };
        let own = format!(
            "{FAILED}{}/",
            key.trim_start_matches(REPORTS).trim_end_matches(".json")
        );
        r.recordings = parse(&body, &own);
        // Only a report that says nothing of recordings is an earlier agent's.
        r.malformed = r.recordings.is_none()
            && serde_json::from_slice::<Value>(&body)
                .map_or(true, |v| v.get("recordings").is_some());
    }
    Ok(found)
}

/// A failed recording's raw files saved by an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Saved {
    pub key: String,
    pub bytes: i64,
}

/// Every saved failed recording in the sources bucket.
pub async fn failed_saved(aws: &Aws, bucket: &str) -> Result<Vec<Saved>> {
    let mut found = Vec::new();
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(FAILED)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(format_args!("listing failed recordings in {bucket}"))?;
        found.extend(page.contents().iter().filter_map(|o| {
            Some(Saved {
                key: o.key()?.to_string(),
                bytes: o.size().unwrap_or(0),
            })
        }));
    }
    Ok(found)
}

/// What the servers say of their recordings, all at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    /// Servers with recordings (or recording jobs) not yet safe: instance, how many, summary.
    pub busy: Vec<(String, u32, String)>,
    /// Servers whose last report is too old to say (a stopped agent, a server down).
    pub stale: Vec<(String, String)>,
    /// Servers without a report that speaks of recordings (an earlier release's agent, or
    /// none): what they hold cannot be known.
    pub silent: Vec<String>,
}

impl Account {
    /// Recordings not yet safe in all.
    pub fn pending(&self) -> u32 {
        self.busy.iter().map(|b| b.1).sum()
    }

    /// "i-0a: 2 pending; i-0b: unknown now (…)", the servers that hold the way.
    pub fn holding(&self) -> String {
        self.busy
            .iter()
            .map(|(i, _, text)| format!("{i}: {text}"))
            .chain(self.stale.iter().map(|(i, text)| format!("{i}: {text}")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Nothing pending and nobody stale (the silent ones cannot say).
    pub fn safe(&self) -> bool {
        self.busy.is_empty() && self.stale.is_empty()
    }
}

/// The account of `instances` now.
pub async fn account(aws: &Aws, bucket: &str, instances: &[String]) -> Result<Account> {
    let reports = reports(aws, bucket, instances).await?;
    let now = SystemTime::now();
    let mut account = Account::default();
    for i in instances {
        match reports.get(i) {
            Some(r) if r.malformed => account.stale.push((i.clone(), r.summary(now))),
            Some(r) if r.recordings.is_some() => match r.busy(now) {
                Some(0) => {}
                Some(n) => account.busy.push((i.clone(), n, r.summary(now))),
                None => account.stale.push((i.clone(), r.summary(now))),
            },
            _ => account.silent.push(i.clone()),
        }
    }
    Ok(account)
}

/// How long a wait goes on when only servers that stopped reporting hold it: a stopped agent
/// comes back within a few of its rounds (systemd restarts it), a server that is down or
/// broken never does.
pub const STALE_PATIENCE: Duration = Duration::from_secs(600);

/// Before servers go without a drain (single mode's server replaced, a switch away from
/// single mode): waits until none of `instances` has recordings not yet safe, saying what
/// each still processes whenever that changes, for at most `timeout`, and for at most
/// [`STALE_PATIENCE`] while only servers that stopped reporting hold it. Returns the last
/// account: safe, or what still held the way.
pub async fn wait_safe(
    aws: &Aws,
    p: &crate::ui::Printer,
    bucket: &str,
    instances: &[String],
    timeout: Duration,
    pause: Duration,
) -> Result<Account> {
    let started = std::time::Instant::now();
    let mut said = String::new();
    loop {
        let now = account(aws, bucket, instances).await?;
        let only_stale = now.busy.is_empty() && started.elapsed() >= STALE_PATIENCE;
        if now.safe() || only_stale || started.elapsed() >= timeout {
            return Ok(now);
        }
        let text = now.holding();
        if text != said {
            // The printer shows control characters a server may have sent, never obeys them.
            p.info(format!(
                "  waiting for recordings to be processed and safe: {text}"
            ));
            said = text;
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "failed/AROAEXAMPLE:i-0123456789abcdef0/";
    const ID: &str = "0123456789abcdef0123456789abcdef01234567-1765000000000";

    fn body(recordings: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"secret": "s3cr3t-value", "recordings": recordings}))
            .unwrap()
    }

    #[test]
    fn a_report_in_shape_is_read_and_its_secret_is_not() {
        let r = parse(
            &body(serde_json::json!({
                "pending": 2, "jobs": 1, "failed": 1,
                "items": [
                    {"id": ID, "state": "sanity"},
                    {"id": ID, "state": "failed", "saved": format!("{OWN}{ID}.tar")},
                ]
            })),
            OWN,
        )
        .unwrap();
        assert_eq!((r.pending, r.jobs, r.failed), (2, 1, 1));
        assert_eq!(
            r.items[1].saved.as_deref(),
            Some(&*format!("{OWN}{ID}.tar"))
        );
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }

    #[test]
    fn anything_out_of_shape_is_unknown_never_nothing_pending() {
        let bad = [
            serde_json::json!({"pending": -1, "jobs": 0, "failed": 0, "items": []}),
            serde_json::json!({"pending": 100001, "jobs": 0, "failed": 0, "items": []}),
            serde_json::json!({"pending": "0", "jobs": 0, "failed": 0, "items": []}),
            serde_json::json!({"jobs": 0, "failed": 0, "items": []}),
            serde_json::json!({"pending": 0, "jobs": 0, "failed": 0, "items": [{"id": "x\u{1b}[2J", "state": "sanity"}]}),
            serde_json::json!({"pending": 0, "jobs": 0, "failed": 0, "items": [{"id": ID, "state": "done"}]}),
            // Saved somewhere else than under its own prefix, or not failed.
            serde_json::json!({"pending": 0, "jobs": 0, "failed": 1, "items": [{"id": ID, "state": "failed", "saved": format!("failed/OTHER:i-0aaaaaaaaaaaaaaaa/{ID}.tar")}]}),
            serde_json::json!({"pending": 1, "jobs": 0, "failed": 0, "items": [{"id": ID, "state": "process", "saved": format!("{OWN}{ID}.tar")}]}),
            serde_json::json!({"pending": 0, "jobs": 0, "failed": 0, "items": vec![serde_json::json!({"id": ID, "state": "queued"}); 51]}),
        ];
        for b in bad {
            assert_eq!(parse(&body(b.clone()), OWN), None, "{b}");
        }
        assert_eq!(parse(b"not json", OWN), None);
        // An earlier agent's report: the secret only.
        assert_eq!(parse(br#"{"secret": "abcdefgh"}"#, OWN), None);
    }

    #[test]
    fn only_a_fresh_report_says_what_a_server_does_now() {
        let now = SystemTime::now();
        let mut r = Report {
            instance: "i-0123456789abcdef0".into(),
            key: "servers/AROAEXAMPLE:i-0123456789abcdef0.json".into(),
            written: Some(now - Duration::from_secs(60)),
            recordings: Some(Recordings {
                pending: 2,
                jobs: 1,
                failed: 1,
                items: Vec::new(),
            }),
            malformed: false,
        };
        assert_eq!(r.busy(now), Some(3));
        assert_eq!(
            r.summary(now),
            "2 pending, 1 job(s) queued or running, 1 failed (saved)"
        );
        r.written = Some(now - Duration::from_secs(600));
        assert_eq!(r.busy(now), None);
        assert!(
            r.summary(now)
                .starts_with("unknown now (its last report, 600 s old")
        );
        r.recordings = None;
        assert!(
            r.summary(now)
                .starts_with("unknown (its agent reports no recordings")
        );
        // Out of shape is unknown, never an earlier agent's silence.
        r.malformed = true;
        assert_eq!(r.busy(now), None);
        assert!(r.summary(now).contains("out of shape"));
    }
}
