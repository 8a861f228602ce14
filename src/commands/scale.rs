//! `bbbctl scale --count N`: min = max = desired = N for the BBB server group, then (unless
//! `--no-wait`) wait until exactly N servers are in service and healthy. `--warm N` (with or
//! without `--count`): N prepared servers kept stopped in the group's warm pool (0: none), by
//! the root parameter `BBBWarmPoolSize` (`set_warm_pool`).
//!
//! Below the servers in service, no meeting is cut: the servers to take out are chosen by
//! Scalelite's load (`fleet::choose`), cordoned in Scalelite (no new meeting lands there),
//! and only once Scalelite's poller reports each disabled (its meetings are over) is that
//! instance terminated, with the group's desired capacity decremented, and its Scalelite
//! entry removed. No other instance is touched. At `--drain-timeout` it stops and says which
//! servers still hold which meetings (or, with `--force`, ends them after a confirmation).
//! The engine is `crate::drain`.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::{Deployment, instances_now};
use crate::aws::Aws;
use crate::cfn::ops::{describe_stack, parameters};
use crate::cli::ScaleArgs;
use crate::drain::{Fleet, set_capacity, wait_in_service};
use crate::error::usage;
use crate::settings::{Global, P_WARM_POOL, validate_count};
use crate::ui::Printer;

pub async fn run(g: &Global, p: &Printer, args: &ScaleArgs, stack: &str) -> Result<()> {
    let n = args
        .count
        .as_deref()
        .map(|c| validate_count(c, args.max))
        .transpose()?;
    let warm = args
        .warm
        .as_deref()
        .map(|w| validate_warm(w, args.max))
        .transpose()?;
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    if d.output(out::MODE).ok() == Some("single") {
        bail!(
            "deployment {stack} runs in single mode (one BBB server), which does not scale. \
             Switch it with `bbbctl setup -s {stack} --mode scalable …` first"
        );
    }
    if let Some(w) = warm {
        set_warm_pool(&aws, p, stack, w).await?;
    }
    let Some(n) = n else {
        p.result(
            match warm {
                Some(0) => "No warm pool.".to_string(),
                Some(w) => format!("Warm pool: {w} prepared server(s), kept stopped."),
                None => unreachable!("clap requires --count or --warm"),
            },
            &json!({ "stack": stack, "warm": warm }),
        );
        return Ok(());
    };
    let group = d.output(out::SERVER_GROUP)?.to_string();
    let n = i32::try_from(n).expect("count is bounded");
    let instances = instances_now(&aws, &group).await?;
    let before: Vec<String> = instances.iter().map(|i| i.0.clone()).collect();
    let in_service = instances.iter().filter(|i| i.2 == "InService").count() as i32;
    if n < in_service {
        let fleet = Fleet::new(&aws, &d, args.drain.scalelite_url.as_deref()).await?;
        let limits = crate::drain::Limits {
            // --no-wait: the servers taken out are not followed in their drain.
            follow: !args.no_wait,
            ..super::drain::limits(&fleet, &args.drain, g.yes)
        };
        fleet.scale_in(&aws, p, n, limits).await?;
    }
    set_capacity(&aws, &group, n).await?;
    p.info(format!(
        "BBB server group {group}: min = max = desired = {n}"
    ));
    let in_service = if args.no_wait {
        None
    } else {
        let ready = wait_in_service(&aws, p, &group, n, Duration::from_secs(args.timeout)).await?;
        if n > in_service && g.endpoint_url.is_some() && args.drain.scalelite_url.is_none() {
            p.info(
                "Whether Scalelite enabled the new servers is not checked behind a custom AWS endpoint (nothing runs there); `bbbctl servers` shows Scalelite's view on AWS.",
            );
        } else if n > in_service {
            // Scale-out: the new servers count once Scalelite places meetings on them.
            let fleet = Fleet::new(&aws, &d, args.drain.scalelite_url.as_deref()).await?;
            match fleet.picture_now(&aws).await {
                Ok(_) => {
                    let timeout = Duration::from_secs(args.timeout);
                    fleet.wait_enabled(&aws, p, &before, timeout).await?;
                }
                Err(e) => p.warn(format!(
                    "the new servers are in service, but Scalelite cannot be asked whether they are enabled ({e:#}); `bbbctl servers` shows it later"
                )),
            }
        }
        Some(ready)
    };
    p.result(
        match in_service {
            Some(_) => format!("{n} BBB server(s) in service."),
            None => "Not waiting for the servers (--no-wait); `bbbctl status` shows them.".into(),
        },
        &json!({ "stack": stack, "group": group, "capacity": n, "in_service": in_service, "warm": warm }),
    );
    Ok(())
}

/// `--warm N`: a whole number, at most the template's 100 and the `--max` guard.
fn validate_warm(raw: &str, max: u32) -> Result<u32> {
    let n: u32 = raw.trim().parse().map_err(|_| {
        usage(format!(
            "--warm {raw:?} is not a whole number ≥ 0. Pass how many prepared servers to keep stopped, e.g. --warm 2 (0: none)"
        ))
    })?;
    if n > max.min(WARM_MAX) {
        return Err(usage(format!(
            "--warm {n} is above the ceiling of {} prepared servers{}",
            max.min(WARM_MAX),
            if n <= WARM_MAX {
                format!(". Pass --max {n} if you really want that many")
            } else {
                String::new()
            }
        )));
    }
    Ok(n)
}

/// The template's limit of the warm pool (templates/root.yaml, BBBWarmPoolSize MaxValue).
const WARM_MAX: u32 = 100;

/// The warm pool is the servers stack's `ServerWarmPool` (templates/bbb-servers.yaml), sized
/// by the root parameter `BBBWarmPoolSize`: set here by an update of the root stack that
/// changes that parameter only (the template and every other value as they are). So a later
/// `setup` keeps it (it carries the deployment's value over, like the server count) and the
/// stack's deletion removes it before the group. 0: no pool (CloudFormation deletes it; its
/// stopped instances are terminated).
async fn set_warm_pool(aws: &Aws, p: &Printer, stack: &str, n: u32) -> Result<()> {
    let Some(root) = describe_stack(&aws.cfn, stack).await? else {
        bail!("deployment {stack} not found");
    };
    let current = parameters(&root);
    if !current.contains_key(P_WARM_POOL) {
        bail!(
            "deployment {stack} was set up by an earlier bbbctl, whose templates have no warm pool: run `bbbctl setup -s {stack}` first"
        );
    }
    let value = n.to_string();
    if current.get(P_WARM_POOL) == Some(&value) {
        p.info(format!("Warm pool of {stack}: already {n}."));
        return Ok(());
    }
    p.info(format!(
        "Warm pool of {stack}: {} → {n} prepared server(s) ({P_WARM_POOL}; a stack update)",
        current.get(P_WARM_POOL).map(String::as_str).unwrap_or("0")
    ));
    crate::deployment::update_parameter(
        aws,
        p,
        &root,
        stack,
        (P_WARM_POOL, &value),
        "the warm pool stays as it was",
    )
    .await?;
    Ok(())
}
