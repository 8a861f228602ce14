//! `bbbctl cost`: the monthly estimate of a deployment, item by item. An existing deployment
//! is read as it is (parameters, servers running, schedules); otherwise, or with `--params` /
//! `--mode`, the definition alone. Prices: the Price List API (cached), else the snapshot.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde_json::json;

use super::out;
use super::stacks::server_group;
use crate::aws::Aws;
use crate::cfn::ops::{describe_stack, outputs, parameters};
use crate::cli::CostArgs;
use crate::cost::{self, Assumptions, Band, Estimate, cron};
use crate::error::usage;
use crate::memory;
use crate::settings::{Global, P_MODE, parse_param_file, read_param_file, user_params};
use crate::templates::Bundle;
use crate::ui::Printer;
use aws_sdk_cloudformation::types::Stack;

/// The usage assumptions from the flags; a bad value says which flag and what it takes.
fn assumptions(args: &CostArgs) -> Result<Assumptions> {
    let band =
        |flag: &str, text: &str| Band::parse(text).map_err(|e| usage(format!("--{flag}: {e}")));
    for (flag, v) in [
        ("participant-hours", args.participant_hours),
        ("recordings-gb", args.recordings_gb),
        ("db-gb", args.db_gb),
        ("server-hours", args.server_hours.unwrap_or(0.0)),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(usage(format!("--{flag} {v}: must be a number ≥ 0")));
        }
    }
    Ok(Assumptions {
        participant_hours: args.participant_hours,
        gb_per_participant_hour: band("gb-per-participant-hour", &args.gb_per_participant_hour)?,
        recordings_gb: args.recordings_gb,
        server_hours: args.server_hours,
        lcu: band("lcu", &args.lcu)?,
        log_gb: band("log-gb", &args.log_gb)?,
        nat_gb: band("nat-gb", &args.nat_gb)?,
        db_io_millions: band("db-io", &args.db_io)?,
        db_gb: args.db_gb,
    })
}

/// What the estimate is of: parameters, and what runs.
struct Subject {
    what: String,
    params: BTreeMap<String, String>,
    running: Running,
}

/// What runs in an existing deployment, as far as its cost goes: the servers its group holds
/// now and the schedules that change their number. Empty for a deployment yet to be made.
#[derive(Clone, Debug, Default)]
pub struct Running {
    servers: Option<f64>,
    actions: Vec<cron::Action>,
}

impl Running {
    /// Of deployment `stack` (its server group, if it has one).
    async fn of(aws: &Aws, stack: &Stack) -> Result<Self> {
        let mut running = Running::default();
        if let Some(group) = outputs(stack).remove(out::SERVER_GROUP)
            && let Some(asg) = server_group(aws, &group).await?
        {
            running.servers = asg.desired_capacity().map(f64::from);
            running.actions = timetable(aws, &group).await?;
        }
        Ok(running)
    }
}

/// What `params` deploy with what runs (`running`), and the servers the timetable keeps
/// running on average (scalable mode with schedules). `cost` and `setup --dry-run` price
/// through here, then [`cost::estimate`] with the same book.
fn shaped(
    bundle: &Bundle,
    params: &BTreeMap<String, String>,
    region: &str,
    running: &Running,
) -> Result<(cost::Shape, Option<f64>)> {
    let shape = cost::shape(bundle, params, region, running.servers)?;
    let average = if running.actions.is_empty() || shape.mode != "scalable" {
        None
    } else {
        Some(cron::average_servers(
            shape.servers as u32,
            &running.actions,
            cron::today(),
        )?)
    };
    Ok((shape, average))
}

/// The schedules of a server group as timetable actions (those with a cron and a count).
async fn timetable(aws: &Aws, group: &str) -> Result<Vec<cron::Action>> {
    Ok(super::schedule::schedules(aws, group)
        .await?
        .iter()
        .filter_map(|s| {
            Some(cron::Action {
                cron: s["cron"].as_str()?.to_string(),
                count: u32::try_from(s["count"].as_i64()?).ok()?,
            })
        })
        .collect())
}

/// An existing deployment as it runs now, with what the flags and a chosen file change.
async fn deployed(
    aws: &Aws,
    root: &crate::templates::TemplateInfo,
    stack: &str,
    chosen: &BTreeMap<String, String>,
) -> Result<Option<Subject>> {
    let Some(st) = describe_stack(&aws.cfn, stack).await? else {
        return Ok(None);
    };
    super::stacks::ensure_ours(aws, &st, stack).await?;
    let mut params = user_params(root, parameters(&st));
    params.extend(chosen.clone());
    Ok(Some(Subject {
        what: format!("deployment {stack}"),
        params,
        running: Running::of(aws, &st).await?,
    }))
}

pub async fn run(g: &Global, p: &Printer, args: &CostArgs) -> Result<()> {
    let a = assumptions(args)?;
    let bundle = Bundle::embedded();
    let root = bundle.root_info()?;
    let (text, origin, chosen_file) = read_param_file(args.params.as_deref())?;
    let mut file = parse_param_file(&text, &origin, &root)?;
    let mut chosen = if chosen_file {
        file.clone()
    } else {
        BTreeMap::new()
    };
    if let Some(m) = args.mode {
        chosen.insert(P_MODE.into(), m.as_str().into());
        file.insert(P_MODE.into(), m.as_str().into());
    }
    let remembered = memory::load();
    let stack = args
        .stack
        .clone()
        .or_else(|| remembered.as_ref().map(|r| r.stack.clone()));
    let mut g = g.clone();
    if g.region.is_none() && args.stack.is_none() {
        g.region = remembered.and_then(|r| r.region);
    }

    let mut aws = None;
    let mut notes = Vec::new();
    if !args.offline {
        let connected = match &stack {
            Some(s) => super::connect(&g, p, s).await,
            None => Aws::connect(&g).await,
        };
        match connected {
            Ok(x) => aws = Some(x),
            Err(e) => notes.push(format!(
                "AWS could not be reached ({e:#}): prices from the snapshot, the deployment from {origin}"
            )),
        }
    }
    let region = match &aws {
        Some(x) => x.region().to_string(),
        None => g
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            .or_else(|| {
                std::env::var("AWS_DEFAULT_REGION")
                    .ok()
                    .filter(|r| !r.is_empty())
            })
            .ok_or_else(|| usage("no region to price: pass --region (e.g. --region us-east-1)"))?,
    };
    let subject = match (&aws, &stack) {
        (Some(x), Some(s)) => {
            let found = deployed(x, &root, s, &chosen).await?;
            // A parameter file that lies in the folder prices nothing that runs.
            if let Some(d) = &found
                && !chosen_file
                && !origin.starts_with("the built-in")
                && file
                    .iter()
                    .any(|(k, v)| d.params.get(k).is_some_and(|now| now != v))
            {
                notes.push(format!(
                    "{origin} differs from deployment {s} and is not applied: this prices what runs (pass --params {origin} for a what-if)"
                ));
            }
            if found.is_none() && args.stack.is_some() {
                return Err(usage(format!(
                    "deployment {s} does not exist in account {} region {region}: check -s and --region, or leave -s out to estimate {origin}",
                    x.account
                )));
            }
            found
        }
        _ => None,
    };
    let subject = subject.unwrap_or_else(|| Subject {
        what: format!("the parameters of {origin}"),
        params: file,
        running: Running::default(),
    });
    let (shape, average) = shaped(&bundle, &subject.params, &region, &subject.running)?;
    let book = match &aws {
        Some(x) => cost::prices::load(Some(&x.pricing), &region, &cost::meters(&shape)).await?,
        None => cost::prices::from_snapshot(&region)?,
    };
    let estimate = cost::estimate(&shape, &book, &a, average);
    for n in notes.iter().chain(&book.notes) {
        p.warn(n);
    }
    print(p, &estimate, &subject.what)
}

fn print(p: &Printer, e: &Estimate, what: &str) -> Result<()> {
    if e.lines.iter().all(|l| l.unit_price.is_none()) {
        bail!("no price is known for any item in {}", e.shape.region);
    }
    let title = format!(
        "Monthly cost of {what}: {} mode, {}, {} BBB server(s) ({})",
        e.shape.mode, e.shape.region, e.shape.servers, e.shape.server_type
    );
    p.result(
        cost::render(e, &title),
        &json!({"what": what, "estimate": e}),
    );
    Ok(())
}

/// For `setup --dry-run`: the monthly estimate before and after the planned change, the
/// items that change side by side (a mode switch: every item of both modes), as text and
/// JSON. `before`: the deployment as it is, priced as `bbbctl cost -s` prices it (its
/// servers and schedules, which the change keeps unless it switches modes). Prices as
/// `bbbctl cost` gets them; when none can be had, a warning and `None`.
pub async fn compare(
    aws: &Aws,
    p: &Printer,
    bundle: &Bundle,
    before: Option<&Stack>,
    after: &BTreeMap<String, String>,
) -> Option<(String, serde_json::Value)> {
    let region = aws.region().to_string();
    let shapes = async {
        let now = match before {
            Some(st) => {
                let root = bundle.root_info()?;
                let params = user_params(&root, parameters(st));
                let running = Running::of(aws, st).await?;
                Some((shaped(bundle, &params, &region, &running)?, running))
            }
            None => None,
        };
        // The servers and their schedules stay, unless the mode changes.
        let running = match &now {
            Some(((shape, _), running)) if after.get(P_MODE).is_none_or(|m| *m == shape.mode) => {
                running.clone()
            }
            _ => Running::default(),
        };
        let then = shaped(bundle, after, &region, &running)?;
        anyhow::Ok((now.map(|(n, _)| n), then))
    };
    let ((now, now_average), (then, then_average)) = match shapes.await {
        Ok((Some(now), then)) => ((Some(now.0), now.1), then),
        Ok((None, then)) => ((None, None), then),
        Err(e) => {
            p.warn(format!("no cost estimate: {e:#}"));
            return None;
        }
    };
    let mut meters = cost::meters(&then);
    if let Some(n) = &now {
        meters.extend(cost::meters(n));
    }
    let book = match cost::prices::load(Some(&aws.pricing), &region, &meters).await {
        Ok(b) => b,
        Err(e) => {
            p.warn(format!("no cost estimate: {e:#}"));
            return None;
        }
    };
    let a = Assumptions::default();
    let then = cost::estimate(&then, &book, &a, then_average);
    let Some(now) = now.map(|n| cost::estimate(&n, &book, &a, now_average)) else {
        return Some((
            format!(
                "Cost a month: {} USD ({}; `bbbctl cost` itemizes it and takes other usage assumptions).",
                cost::money(then.total),
                book.describe()
            ),
            json!({"after": then.total, "prices": book.describe()}),
        ));
    };
    let switch = now.shape.mode != then.shape.mode;
    let mut text = format!(
        "Cost a month (USD, default usage assumptions; `bbbctl cost` itemizes):\n  {:<36} {:>19} {:>19}\n",
        "item",
        if switch {
            now.shape.mode.as_str()
        } else {
            "now"
        },
        if switch {
            then.shape.mode.as_str()
        } else {
            "after"
        }
    );
    let mut items: Vec<&str> = now.lines.iter().map(|l| l.item.as_str()).collect();
    for l in &then.lines {
        if !items.contains(&l.item.as_str()) {
            items.push(&l.item);
        }
    }
    let of = |e: &Estimate, item: &str| e.lines.iter().find(|l| l.item == item).map(|l| l.monthly);
    for item in items {
        let (a, b) = (of(&now, item), of(&then, item));
        if !switch && a == b {
            continue;
        }
        let shown = |m: Option<Band>| m.map_or("-".to_string(), cost::money);
        text.push_str(&format!("  {item:<36} {:>19} {:>19}\n", shown(a), shown(b)));
    }
    let (low, high) = (
        then.total.low - now.total.low,
        then.total.high - now.total.high,
    );
    let delta = if (high - low).abs() < 0.005 {
        format!("{low:+.2}")
    } else {
        format!("{low:+.2} to {high:+.2}")
    };
    text.push_str(&format!(
        "  {:<36} {:>19} {:>19}\n  This change: {delta} USD a month.",
        "Total",
        cost::money(now.total),
        cost::money(then.total),
    ));
    Some((
        text,
        json!({"before": now.total, "after": then.total, "prices": book.describe()}),
    ))
}
