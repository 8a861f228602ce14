//! `bbbctl scale --count N`: min = max = desired = N for the BBB server group, then (unless
//! `--no-wait`) wait until exactly N servers are in service and healthy.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::{Deployment, server_group};
use crate::aws::Aws;
use crate::cli::ScaleArgs;
use crate::error::AwsContext;
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
    aws.autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(&group)
        .min_size(n)
        .max_size(n)
        .desired_capacity(n)
        .send()
        .await
        .aws_context(format_args!("setting the capacity of group {group}"))?;
    p.info(format!(
        "BBB server group {group}: min = max = desired = {n}"
    ));
    let in_service = if args.no_wait {
        None
    } else {
        Some(wait_in_service(&aws, p, &group, n, Duration::from_secs(args.timeout)).await?)
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

/// Polls the group until exactly `n` instances are InService and Healthy.
async fn wait_in_service(
    aws: &Aws,
    p: &Printer,
    group: &str,
    n: i32,
    timeout: Duration,
) -> Result<i32> {
    let start = Instant::now();
    let mut pause = Duration::from_secs(2);
    let mut last = None;
    loop {
        let Some(asg) = server_group(aws, group).await? else {
            bail!("Auto Scaling group {group} no longer exists");
        };
        let instances = asg.instances();
        let ready = instances
            .iter()
            .filter(|i| {
                i.lifecycle_state().map(|s| s.as_str()) == Some("InService")
                    && i.health_status() == Some("Healthy")
            })
            .count() as i32;
        let total = instances.len() as i32;
        if last != Some((ready, total)) {
            p.info(format!(
                "  {ready}/{n} in service ({total} instance(s) in the group)"
            ));
            last = Some((ready, total));
        }
        if ready == n && total == n {
            return Ok(ready);
        }
        if start.elapsed() > timeout {
            bail!(
                "after {}s only {ready} of {n} BBB servers are in service. The capacity is set; `bbbctl status -s <stack>` shows the servers. Wait longer with --timeout",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_secs(15));
    }
}
