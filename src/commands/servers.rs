//! `bbbctl servers`: one row per BBB server — the instance (zone, Auto Scaling state and
//! health, scale-in protection, age) next to what Scalelite says of it (state, online, load)
//! and what the server's own API says (meetings, participants, version), how its bootstrap
//! went (its log: a failed one is named with its log stream), its recordings not yet safe
//! and those that failed and were saved (its agent's report in the sources bucket), and for a
//! server in its drain the registrar's account (the `bbbctl:drain` tag) — and the servers
//! Scalelite lists that no instance backs. Below the table, each pending and failed recording
//! by id. Reads only.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::connect;
use super::out;
use super::stacks::{Deployment, load_balancer_secret, nested_stacks, server_group};
use crate::aws::Aws;
use crate::boot::{self, Boot};
use crate::cfn::ops::parameters;
use crate::fleet::{self, Bootstrap, Member};
use crate::http::Http;
use crate::recordings;
use crate::scalelite::{self, Meetings};
use crate::settings::{Global, P_DOMAIN};
use crate::ui::Printer;

pub async fn run(g: &Global, p: &Printer, stack: &str, scalelite_url: Option<&str>) -> Result<()> {
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    let domain = parameters(&d.stack).remove(P_DOMAIN).unwrap_or_default();
    let group = d.output(out::SERVER_GROUP)?.to_string();
    let Some(asg) = server_group(&aws, &group).await? else {
        anyhow::bail!("Auto Scaling group {group} no longer exists");
    };
    let instances = super::stacks::group_instances(&asg);
    let outdated = super::stacks::outdated_instances(&asg);
    let ids: Vec<String> = instances.iter().map(|i| i.0.clone()).collect();
    let ec2 = crate::signed::instances(&aws, &ids).await?;
    // Each server's agent's report (its recordings), and the registrar's word on a server
    // in its drain.
    let bucket = parameters(&d.stack).remove(crate::templates::BUCKET_PARAM);
    let mut reports_error = None;
    let reports = match &bucket {
        Some(b) if !ids.is_empty() => {
            recordings::reports(&aws, b, &ids)
                .await
                .unwrap_or_else(|e| {
                    reports_error = Some(format!("{e:#}"));
                    Default::default()
                })
        }
        _ => Default::default(),
    };
    // Every failed recording saved in the bucket (also of servers gone since).
    let saved = match &bucket {
        Some(b) => recordings::failed_saved(&aws, b).await.unwrap_or_else(|e| {
            reports_error.get_or_insert(format!("{e:#}"));
            Vec::new()
        }),
        None => Vec::new(),
    };
    let terminating: Vec<String> = instances
        .iter()
        .filter(|i| i.2.starts_with("Terminating"))
        .map(|i| i.0.clone())
        .collect();
    let drain_tags = crate::drain::drain_tags(&aws, &terminating).await;
    let now = std::time::SystemTime::now();

    // Scalelite's view, when it answers (single mode has none).
    let http = Http::new(Duration::from_secs(10))?;
    let mut scalelite_error = None;
    let servers = if d.output(out::MODE).ok() == Some("single") {
        Vec::new()
    } else {
        let base = scalelite_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("https://scalelite.{domain}"));
        let listed = match load_balancer_secret(&aws, &nested_stacks(&aws, &d).await?).await {
            Ok(secret) => scalelite::get_servers(&http, &base, &secret).await,
            Err(e) => Err(e),
        };
        listed.unwrap_or_else(|e| {
            scalelite_error = Some(format!("{e:#}"));
            Vec::new()
        })
    };
    let picture = fleet::picture(instances, servers, &domain);
    // Each server's own API, concurrently, with Scalelite's secret for it.
    let meetings =
        futures::future::join_all(picture.members.iter().map(|m| meetings_of(&http, m))).await;
    // How each server's bootstrap went, from the end of its log stream, and its boots'
    // steps (src/boot.rs), from the same one read of that stream.
    let log_group = d.output(out::SERVER_LOGS).unwrap_or_default().to_string();
    let logs = boot_logs(&aws, &log_group, &ids).await;
    let bootstraps: Vec<Result<Bootstrap, String>> = picture
        .members
        .iter()
        .map(|m| match logs.get(&m.instance) {
            Some(Ok(lines)) => Ok(fleet::bootstrap(
                &lines[lines.len().saturating_sub(BOOTSTRAP_TAIL)..],
            )),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not read".into()),
        })
        .collect();

    let mut rows = Vec::new();
    let mut text = format!(
        "{:<20} {:<11} {:<10} {:<9} {:<9} {:<9} {:<7} {:>5}  {:<16} {:<17} {:<8} {:<8} {:>8}  {:<22} {}\n",
        "instance",
        "zone",
        "state",
        "health",
        "protected",
        "scalelite",
        "online",
        "load",
        "meetings/people",
        "rec pending/failed",
        "version",
        "boot",
        "ready in",
        "slowest step",
        "host"
    );
    let mut listed = String::new();
    let mut drains = String::new();
    let mut broken = String::new();
    let registrar_log = d
        .output(out::REGISTRAR_LOGS)
        .unwrap_or("of the registrar (root output BBBRegistrarLogGroupName)");
    for ((m, meet), bs) in picture.members.iter().zip(&meetings).zip(&bootstraps) {
        let (boot_state, boot_detail) = match bs {
            Ok(Bootstrap::Ready) if m.scalelite.is_none() && m.lifecycle == "InService" => {
                broken.push_str(&format!(
                    "{}: ready, but not in Scalelite yet: the registrar adds it within a minute of its report; if it does not, its log says why (CloudWatch Logs group {registrar_log})\n",
                    m.instance
                ));
                ("ready", None)
            }
            Ok(Bootstrap::Ready) => ("ready", None),
            Ok(Bootstrap::Failed(reason)) => {
                broken.push_str(&format!(
                    "{}: bootstrap FAILED: {reason} (log: CloudWatch Logs group {log_group}, stream {})\n",
                    m.instance, m.instance
                ));
                ("failed", Some(reason.clone()))
            }
            Ok(Bootstrap::Running(last)) => ("running", last.clone()),
            Err(e) => ("unknown", Some(e.clone())),
        };
        let s = m.scalelite.as_ref();
        let meet_text = match meet {
            Ok(x) => format!("{}/{}", x.meetings, x.participants),
            Err(_) => "-".into(),
        };
        let report = reports.get(&m.instance);
        let rec = report
            .filter(|r| r.fresh(now))
            .and_then(|r| r.recordings.as_ref());
        let rec_text = match rec {
            Some(r) => format!("{}/{}", r.pending.saturating_add(r.jobs), r.failed),
            None => "unknown".into(),
        };
        if let Some(r) = report.and_then(|r| r.recordings.as_ref()) {
            for i in &r.items {
                listed.push_str(&format!(
                    "  {} {} {}{}\n",
                    m.instance,
                    i.id,
                    i.state,
                    i.saved.as_ref().map_or(String::new(), |k| format!(
                        " saved at s3://{}/{k}",
                        bucket.as_deref().unwrap_or("?")
                    ))
                ));
            }
        }
        let drain = drain_tags
            .get(&m.instance)
            .map(|t| crate::drain::tag_text(t));
        if let Some(t) = &drain {
            drains.push_str(&format!(
                "{}: in its drain; the registrar says: {t}\n",
                m.instance
            ));
        } else if m.lifecycle.starts_with("Terminating") {
            drains.push_str(&format!(
                "{}: in its drain ({}); no word from the registrar yet\n",
                m.instance, m.lifecycle
            ));
        }
        let launched = ec2.get(&m.instance).and_then(|i| i.launched.clone());
        let boots = match logs.get(&m.instance) {
            Some(Ok(lines)) => boot::boots(lines),
            _ => Vec::new(),
        };
        let current = boot::current(&boots, launched.as_deref());
        let ready_in = current.and_then(|b| b.launch_to_ready(launched.as_deref()));
        let boot_cols = boot_columns(current, ready_in);
        text.push_str(&format!(
            "{:<20} {:<11} {:<10} {:<9} {:<9} {:<9} {:<7} {:>5}  {:<16} {:<17} {:<8} {:<8} {:>8}  {:<22} {}\n",
            m.instance,
            m.zone,
            m.lifecycle,
            m.health,
            if m.protected { "yes" } else { "no" },
            s.map_or("-", |s| s.state.as_str()),
            s.map_or("-", |s| if s.online { "yes" } else { "no" }),
            s.and_then(|s| s.load)
                .map_or("-".into(), |l| format!("{l}")),
            meet_text,
            rec_text,
            s.map_or("-", |s| s.bbb_version.as_str()),
            boot_cols.0,
            boot_cols.1,
            boot_cols.2,
            m.host,
        ));
        rows.push(json!({
            "instance": m.instance,
            "zone": m.zone,
            "lifecycle": m.lifecycle,
            "health": m.health,
            "protected": m.protected,
            "outdated": outdated.contains(&m.instance),
            "host": m.host,
            "launched": launched,
            "boot": boot_json(&boots, current, ready_in),
            "public_ip": ec2.get(&m.instance).and_then(|i| i.public_ip.clone()),
            "scalelite": s.map(|s| json!({"id": s.id, "state": s.state, "online": s.online, "load": s.load, "bbb_version": s.bbb_version})),
            "meetings": meet.as_ref().ok().map(|x| x.meetings),
            "participants": meet.as_ref().ok().map(|x| x.participants),
            "bootstrap": boot_state,
            "bootstrap_detail": boot_detail,
            "recordings": report.map(|r| json!({
                "fresh": r.fresh(now),
                "summary": r.summary(now),
                "pending": rec.map(|x| x.pending),
                "jobs": rec.map(|x| x.jobs),
                "failed": rec.map(|x| x.failed),
                "items": r.recordings.as_ref().map(|x| &x.items),
            })),
            "drain": drain,
        }));
    }
    for o in &picture.orphans {
        text.push_str(&format!(
            "{:<20} {:<11} {:<10} {:<9} {:<9} {:<9} {:<7} {:>5}  {:<16} {:<17} {:<8} {:<8} {:>8}  {:<22} {}\n",
            "(no instance)",
            "-",
            "-",
            "-",
            "-",
            o.state,
            if o.online { "yes" } else { "no" },
            o.load.map_or("-".into(), |l| format!("{l}")),
            "-",
            "-",
            o.bbb_version,
            "-",
            "-",
            "-",
            o.host()
        ));
    }
    text.push_str(&drains);
    if !listed.is_empty() {
        text.push_str("Recordings pending or failed (by each server's own report):\n");
        text.push_str(&listed);
    }
    let listed_keys: Vec<&str> = reports
        .values()
        .filter_map(|r| r.recordings.as_ref())
        .flat_map(|r| r.items.iter().filter_map(|i| i.saved.as_deref()))
        .collect();
    let other_saved: Vec<&recordings::Saved> = saved
        .iter()
        .filter(|x| !listed_keys.contains(&x.key.as_str()))
        .collect();
    if !other_saved.is_empty() {
        text.push_str(&format!(
            "Failed recordings saved (raw files) in s3://{}/:\n",
            bucket.as_deref().unwrap_or("?")
        ));
        for x in &other_saved {
            text.push_str(&format!("  {} ({} bytes)\n", x.key, x.bytes));
        }
    }
    text.push_str(&broken);
    if let Some(note) = super::stacks::outdated_note(&outdated, picture.members.len(), stack) {
        text.push_str(&format!("{note}\n"));
    }
    // The warm pool, apart: its instances are no servers yet.
    let warm = crate::fleet::warm_pool(&aws, &group)
        .await
        .unwrap_or_else(|e| {
            text.push_str(&format!("The warm pool could not be read: {e:#}\n"));
            None
        });
    text.push_str(&crate::fleet::warm_pool_text(&warm));
    let schedules = super::schedule::schedules(&aws, &group).await?;
    for sc in &schedules {
        text.push_str(&format!("schedule {}\n", super::schedule::line(sc)));
    }
    if let Some(e) = &scalelite_error {
        text.push_str(&format!("Scalelite could not be read: {e}\n"));
    }
    if let Some(e) = &reports_error {
        text.push_str(&format!(
            "The servers' reports could not be read (their recordings are unknown): {e}\n"
        ));
    }
    let orphans: Vec<Value> = picture
        .orphans
        .iter()
        .map(|o| json!({"id": o.id, "host": o.host(), "state": o.state, "online": o.online, "load": o.load}))
        .collect();
    p.result(
        text.trim_end(),
        &json!({"stack": stack, "group": group, "servers": rows, "unbacked": orphans, "schedules": schedules, "scalelite_error": scalelite_error, "reports_error": reports_error, "failed_saved": saved, "warm_pool": warm}),
    );
    Ok(())
}

async fn meetings_of(http: &Http, m: &Member) -> Result<Meetings> {
    match &m.scalelite {
        Some(s) => scalelite::get_meetings(http, &s.url, &s.secret).await,
        None => anyhow::bail!("not in Scalelite: its secret is unknown"),
    }
}

/// The lines of a server's log stream read in one GetLogEvents: the API's most (10,000
/// events, at most 1 MB), so that a bare boot's steps, between bbb-install's output, are in
/// it. A bound per server, one call each.
pub const BOOT_LOG_LINES: usize = 10_000;
/// The lines the bootstrap's READY/FAILED is looked for in (its last line, then what
/// follows it on the way out).
const BOOTSTRAP_TAIL: usize = 20;

/// Each instance's log stream (instance id → its lines in time order, or why it could not
/// be read), one bounded read each, concurrently.
pub(super) async fn boot_logs(
    aws: &Aws,
    group: &str,
    ids: &[String],
) -> BTreeMap<String, Result<Vec<String>, String>> {
    let read = futures::future::join_all(ids.iter().map(|id| async move {
        let lines = crate::signed::log_tail(aws, group, id, BOOT_LOG_LINES)
            .await
            .map_err(|e| format!("{e:#}"));
        (id.clone(), lines)
    }))
    .await;
    read.into_iter().collect()
}

/// The boot columns of a server: its current boot's path (`-` when none yet), launch to
/// ready, its slowest step.
fn boot_columns(current: Option<&Boot>, ready_in: Option<f64>) -> (String, String, String) {
    let Some(b) = current else {
        return ("-".into(), "-".into(), "-".into());
    };
    let path = b.path.clone().unwrap_or_else(|| b.state().to_string());
    let ready = match (ready_in, b.state()) {
        (Some(t), _) => boot::duration_text(t),
        (None, state) => state.to_string(),
    };
    let slowest = b.slowest().map_or("-".into(), |s| {
        format!("{} {}", s.name, boot::duration_text(s.seconds))
    });
    (path, ready, slowest)
}

/// `--output json`: the current boot with its steps, and the earlier boots of the stream.
fn boot_json(boots: &[Boot], current: Option<&Boot>, ready_in: Option<f64>) -> Value {
    let earlier: Vec<&Boot> = match current {
        Some(c) => boots.iter().filter(|b| !std::ptr::eq(*b, c)).collect(),
        None => boots.iter().collect(),
    };
    json!({
        "current": current,
        "launch_to_ready": ready_in,
        "slowest_step": current.and_then(Boot::slowest),
        "earlier": earlier,
    })
}
