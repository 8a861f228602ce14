//! `bbbctl drain SERVER [--replace]`: one BBB server out without cutting a meeting (the drain
//! engine, `crate::drain`); with `--replace` a new server comes in first and is in service and
//! enabled in Scalelite before the old one is cordoned, so capacity never drops. `bbbctl
//! servers enable SERVER` takes a cordoned server back. `bbbctl roll` replaces the servers on
//! an older launch template the same way, K at a time.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::Deployment;
use crate::aws::Aws;
use crate::cli::{DrainArgs, DrainOptions, RollArgs};
use crate::drain::{Fleet, Limits};
use crate::settings::Global;
use crate::ui::Printer;

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

/// The drain's limits from the command line.
pub(super) fn limits(fleet: &Fleet, opts: &DrainOptions, yes: bool) -> Limits {
    fleet.limits(opts.drain_timeout, opts.force, yes)
}

pub async fn run(g: &Global, p: &Printer, args: &DrainArgs, stack: &str) -> Result<()> {
    let (aws, _d, fleet) = fleet_of(g, p, stack, args.drain.scalelite_url.as_deref()).await?;
    let limits = limits(&fleet, &args.drain, g.yes);
    let timeout = Duration::from_secs(args.timeout);
    let (target, n) = fleet
        .drain_server(&aws, p, &args.server, args.replace, limits, timeout)
        .await?;
    p.result(
        format!("{} drained and terminated; {n} BBB server(s) remain.", target.host),
        &json!({"stack": stack, "drained": target.instance, "host": target.host, "capacity": n, "replaced": args.replace}),
    );
    Ok(())
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
    let m = fleet.enable(&aws, server).await?;
    p.result(
        format!(
            "{} is enabled in Scalelite: new meetings may land there.",
            m.host
        ),
        &json!({"stack": stack, "instance": m.instance, "host": m.host, "state": "enabled"}),
    );
    Ok(())
}

/// `bbbctl roll`: K new servers first, then K old ones drained, until none of an older
/// launch template (with --all: of before the roll) is left.
pub async fn roll(g: &Global, p: &Printer, args: &RollArgs, stack: &str) -> Result<()> {
    let (aws, _d, fleet) = fleet_of(g, p, stack, args.drain.scalelite_url.as_deref()).await?;
    let limits = limits(&fleet, &args.drain, g.yes);
    let timeout = Duration::from_secs(args.timeout);
    let (replaced, n) = fleet
        .roll(&aws, p, args.all, args.batch, limits, timeout)
        .await?;
    if replaced.is_empty() {
        p.result(
            "Every BBB server runs the group's current launch template: nothing to roll (--all replaces them anyway).",
            &json!({"stack": stack, "replaced": [], "capacity": n}),
        );
        return Ok(());
    }
    p.result(
        format!("Rolled {} BBB server(s); {n} in service.", replaced.len()),
        &json!({"stack": stack, "replaced": replaced, "capacity": n}),
    );
    Ok(())
}
