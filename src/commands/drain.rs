//! `bbbctl drain SERVER [--replace]`: one BBB server out without cutting a meeting (the same
//! engine as scale-in, `scale::Fleet::take_out`); with `--replace` a new server comes in first
//! and is in service and enabled in Scalelite before the old one is cordoned, so capacity never
//! drops. `bbbctl servers enable SERVER` takes a cordoned server back. `bbbctl roll` replaces
//! the servers on an older launch template the same way, K at a time.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::connect;
use super::out;
use super::scale::{Fleet, load_text, set_capacity, wait_in_service};
use super::stacks::Deployment;
use crate::aws::Aws;
use crate::cli::{DrainArgs, RollArgs};
use crate::error::{AwsContext, usage};
use crate::fleet::{Member, Picture};
use crate::settings::Global;
use crate::ui::Printer;

/// The member named by instance id or host name (a unique prefix of either will do).
fn find<'a>(picture: &'a Picture, server: &str) -> Result<&'a Member> {
    let matches: Vec<&Member> = picture
        .members
        .iter()
        .filter(|m| {
            m.instance == server || m.host == server || m.host.starts_with(&format!("{server}."))
        })
        .collect();
    match matches.as_slice() {
        [m] => Ok(m),
        _ => {
            let known: Vec<String> = picture
                .members
                .iter()
                .map(|m| format!("{} ({})", m.instance, m.host))
                .collect();
            Err(usage(format!(
                "no BBB server {server} in this deployment; its servers: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

async fn fleet_of(
    g: &Global,
    p: &Printer,
    stack: &str,
    url: Option<&str>,
) -> Result<(Aws, Deployment, Fleet)> {
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    if d.output(out::MODE).ok() == Some("single") {
        bail!(
            "deployment {stack} runs in single mode: its one server has no Scalelite to drain through"
        );
    }
    let fleet = Fleet::new(&aws, &d, url).await?;
    Ok((aws, d, fleet))
}

pub async fn run(g: &Global, p: &Printer, args: &DrainArgs, stack: &str) -> Result<()> {
    let (aws, _d, fleet) = fleet_of(g, p, stack, args.drain.scalelite_url.as_deref()).await?;
    let picture = fleet.picture(&aws).await?;
    let target = find(&picture, &args.server)?.clone();
    let in_service = picture
        .members
        .iter()
        .filter(|m| m.lifecycle == "InService")
        .count() as i32;
    let limits = fleet.limits(&args.drain, g.yes);
    let n = if args.replace {
        // A new server first: one more, in service and taking meetings in Scalelite.
        p.info(format!("Starting a server to replace {}…", target.host));
        add_servers(
            &aws,
            p,
            &fleet,
            &picture,
            1,
            Duration::from_secs(args.timeout),
        )
        .await?;
        in_service
    } else {
        in_service - 1
    };
    p.info(format!(
        "Taking out {} ({}): no new meetings there; it goes once its meetings have ended (at most {} s).",
        target.host,
        load_text(&target),
        limits.timeout.as_secs()
    ));
    fleet
        .take_out(
            &aws,
            p,
            &picture,
            std::slice::from_ref(&target.instance),
            n,
            limits,
        )
        .await?;
    set_capacity(&aws, &fleet.group, n).await?;
    p.result(
        format!("{} drained and terminated; {n} BBB server(s) remain.", target.host),
        &json!({"stack": stack, "drained": target.instance, "host": target.host, "capacity": n, "replaced": args.replace}),
    );
    Ok(())
}

/// Waits until every instance not in `before` is enabled and online in Scalelite (the new
/// registrar adds the new server once bbb-install is done).
pub(super) async fn wait_enabled(
    aws: &Aws,
    p: &Printer,
    fleet: &Fleet,
    before: &[String],
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let now = fleet.picture(aws).await?;
        let new: Vec<&Member> = now
            .members
            .iter()
            .filter(|m| !before.contains(&m.instance))
            .collect();
        let waiting: Vec<&str> = new
            .iter()
            .filter(|m| {
                !m.scalelite
                    .as_ref()
                    .is_some_and(|s| s.state == "enabled" && s.online)
            })
            .map(|m| m.host.as_str())
            .collect();
        if !new.is_empty() && waiting.is_empty() {
            p.info(format!(
                "  {}: enabled in Scalelite",
                new.iter()
                    .map(|m| m.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Ok(());
        }
        if started.elapsed() >= timeout {
            bail!(
                "the new server {} is in service but not enabled in Scalelite after {} s (its bootstrap log is in the group named by BBBServerLogGroupName); nothing was taken out",
                waiting.join(", "),
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// `bbbctl servers enable SERVER`: Scalelite may place meetings there again.
pub async fn enable(
    g: &Global,
    p: &Printer,
    stack: &str,
    server: &str,
    url: Option<&str>,
) -> Result<()> {
    let (aws, _d, fleet) = fleet_of(g, p, stack, url).await?;
    let picture = fleet.picture(&aws).await?;
    let m = find(&picture, server)?;
    let Some(s) = &m.scalelite else {
        bail!(
            "{} is not registered in Scalelite: the deployment's registrar adds it once bbb-install is done",
            m.host
        );
    };
    fleet.set_state(&s.id, "enable").await?;
    p.result(
        format!(
            "{} is enabled in Scalelite: new meetings may land there.",
            m.host
        ),
        &json!({"stack": stack, "instance": m.instance, "host": m.host, "state": "enabled"}),
    );
    Ok(())
}

/// Raises the group by `k`, waits until the new servers are in service and enabled in
/// Scalelite; returns the new count.
async fn add_servers(
    aws: &Aws,
    p: &Printer,
    fleet: &Fleet,
    now: &Picture,
    k: i32,
    timeout: Duration,
) -> Result<i32> {
    let in_service = now
        .members
        .iter()
        .filter(|m| m.lifecycle == "InService")
        .count() as i32;
    let group = &fleet.group;
    aws.autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .max_size(in_service + k)
        .desired_capacity(in_service + k)
        .send()
        .await
        .aws_context(format_args!("adding servers to group {group}"))?;
    wait_in_service(aws, p, group, in_service + k, timeout).await?;
    let before: Vec<String> = now.members.iter().map(|m| m.instance.clone()).collect();
    wait_enabled(aws, p, fleet, &before, timeout).await?;
    Ok(in_service + k)
}

/// Instances whose launch template version is not the group's.
async fn outdated(aws: &Aws, group: &str) -> Result<Vec<String>> {
    let Some(asg) = super::stacks::server_group(aws, group).await? else {
        bail!("Auto Scaling group {group} no longer exists");
    };
    Ok(super::stacks::outdated_instances(&asg))
}

/// `bbbctl roll`: K new servers first, in service and enabled in Scalelite, then K old ones
/// drained; until no server of an older launch template (with --all: of before the roll) is
/// left. Scalelite always has at least as many enabled servers as before.
pub async fn roll(g: &Global, p: &Printer, args: &RollArgs, stack: &str) -> Result<()> {
    let (aws, _d, fleet) = fleet_of(g, p, stack, args.drain.scalelite_url.as_deref()).await?;
    let start = fleet.picture(&aws).await?;
    let n = start
        .members
        .iter()
        .filter(|m| m.lifecycle == "InService")
        .count() as i32;
    let mut old: Vec<String> = if args.all {
        start.members.iter().map(|m| m.instance.clone()).collect()
    } else {
        outdated(&aws, &fleet.group).await?
    };
    if old.is_empty() {
        p.result(
            "Every BBB server runs the group's current launch template: nothing to roll (--all replaces them anyway).",
            &json!({"stack": stack, "replaced": [], "capacity": n}),
        );
        return Ok(());
    }
    let limits = fleet.limits(&args.drain, g.yes);
    p.info(format!(
        "Rolling {} of {n} BBB servers, {} at a time, new ones first.",
        old.len(),
        args.batch.max(1)
    ));
    let mut replaced = Vec::new();
    while !old.is_empty() {
        let now = fleet.picture(&aws).await?;
        let k = (args.batch.max(1) as usize).min(old.len());
        add_servers(
            &aws,
            p,
            &fleet,
            &now,
            k as i32,
            Duration::from_secs(args.timeout),
        )
        .await?;
        let now = fleet.picture(&aws).await?;
        let olds: Vec<Member> = now
            .members
            .iter()
            .filter(|m| old.contains(&m.instance))
            .cloned()
            .collect();
        let chosen = crate::fleet::choose(&olds, k);
        fleet.take_out(&aws, p, &now, &chosen, n, limits).await?;
        old.retain(|i| !chosen.contains(i));
        replaced.extend(chosen);
    }
    set_capacity(&aws, &fleet.group, n).await?;
    p.result(
        format!("Rolled {} BBB server(s); {n} in service.", replaced.len()),
        &json!({"stack": stack, "replaced": replaced, "capacity": n}),
    );
    Ok(())
}
