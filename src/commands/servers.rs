//! `bbbctl servers`: one row per BBB server — the instance (zone, Auto Scaling state and
//! health, scale-in protection, age) next to what Scalelite says of it (state, online, load)
//! and what the server's own API says (meetings, participants, version), how its bootstrap
//! went (its log: a failed one is named with its log stream) — and the servers Scalelite
//! lists that no instance backs. Reads only.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::connect;
use super::out;
use super::stacks::{Deployment, load_balancer_secret, nested_stacks, server_group};
use crate::cfn::ops::parameters;
use crate::fleet::{self, Bootstrap, Member};
use crate::http::Http;
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
    // How each server's bootstrap went, from the end of its log stream.
    let log_group = d.output(out::SERVER_LOGS).unwrap_or_default().to_string();
    let bootstraps = futures::future::join_all(picture.members.iter().map(|m| {
        let (aws, group) = (&aws, &log_group);
        async move {
            crate::signed::log_tail(aws, group, &m.instance, 20)
                .await
                .map(|lines| fleet::bootstrap(&lines))
        }
    }))
    .await;

    let mut rows = Vec::new();
    let mut text = format!(
        "{:<20} {:<11} {:<10} {:<9} {:<9} {:<9} {:<7} {:>5}  {:<16} {:<8} {}\n",
        "instance",
        "zone",
        "state",
        "health",
        "protected",
        "scalelite",
        "online",
        "load",
        "meetings/people",
        "version",
        "host"
    );
    let mut broken = String::new();
    let registrar_log = d
        .output(out::REGISTRAR_LOGS)
        .unwrap_or("of the registrar (root output BBBRegistrarLogGroupName)");
    for ((m, meet), boot) in picture.members.iter().zip(&meetings).zip(&bootstraps) {
        let (boot_state, boot_detail) = match boot {
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
            Err(e) => ("unknown", Some(format!("{e:#}"))),
        };
        let s = m.scalelite.as_ref();
        let meet_text = match meet {
            Ok(x) => format!("{}/{}", x.meetings, x.participants),
            Err(_) => "-".into(),
        };
        text.push_str(&format!(
            "{:<20} {:<11} {:<10} {:<9} {:<9} {:<9} {:<7} {:>5}  {:<16} {:<8} {}\n",
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
            s.map_or("-", |s| s.bbb_version.as_str()),
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
            "launched": ec2.get(&m.instance).and_then(|i| i.launched.clone()),
            "public_ip": ec2.get(&m.instance).and_then(|i| i.public_ip.clone()),
            "scalelite": s.map(|s| json!({"id": s.id, "state": s.state, "online": s.online, "load": s.load, "bbb_version": s.bbb_version})),
            "meetings": meet.as_ref().ok().map(|x| x.meetings),
            "participants": meet.as_ref().ok().map(|x| x.participants),
            "bootstrap": boot_state,
            "bootstrap_detail": boot_detail,
        }));
    }
    for o in &picture.orphans {
        text.push_str(&format!(
            "{:<20} {:<11} {:<10} {:<9} {:<9} {:<9} {:<7} {:>5}  {:<16} {:<8} {}\n",
            "(no instance)",
            "-",
            "-",
            "-",
            "-",
            o.state,
            if o.online { "yes" } else { "no" },
            o.load.map_or("-".into(), |l| format!("{l}")),
            "-",
            o.bbb_version,
            o.host()
        ));
    }
    text.push_str(&broken);
    if let Some(note) = super::stacks::outdated_note(&outdated, picture.members.len(), stack) {
        text.push_str(&format!("{note}\n"));
    }
    let schedules = super::schedule::schedules(&aws, &group).await?;
    for sc in &schedules {
        text.push_str(&format!("schedule {}\n", super::schedule::line(sc)));
    }
    if let Some(e) = &scalelite_error {
        text.push_str(&format!("Scalelite could not be read: {e}\n"));
    }
    let orphans: Vec<Value> = picture
        .orphans
        .iter()
        .map(|o| json!({"id": o.id, "host": o.host(), "state": o.state, "online": o.online, "load": o.load}))
        .collect();
    p.result(
        text.trim_end(),
        &json!({"stack": stack, "group": group, "servers": rows, "unbacked": orphans, "schedules": schedules, "scalelite_error": scalelite_error}),
    );
    Ok(())
}

async fn meetings_of(http: &Http, m: &Member) -> Result<Meetings> {
    match &m.scalelite {
        Some(s) => scalelite::get_meetings(http, &s.url, &s.secret).await,
        None => anyhow::bail!("not in Scalelite: its secret is unknown"),
    }
}
