//! `bbbctl scale --count N`: min = max = desired = N for the BBB server group, then (unless
//! `--no-wait`) wait until exactly N servers are in service and healthy.
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
use crate::cli::ScaleArgs;
use crate::drain::{Fleet, set_capacity, wait_in_service};
use crate::settings::{Global, validate_count};
use crate::ui::Printer;

pub async fn run(g: &Global, p: &Printer, args: &ScaleArgs, stack: &str) -> Result<()> {
    let n = validate_count(&args.count, args.max)?;
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    if d.output(out::MODE).ok() == Some("single") {
        bail!(
            "deployment {stack} runs in single mode (one BBB server), which does not scale. \
             Switch it with `bbbctl setup -s {stack} --mode scalable …` first"
        );
    }
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
        &json!({ "stack": stack, "group": group, "capacity": n, "in_service": in_service }),
    );
    Ok(())
}
