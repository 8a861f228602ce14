//! `bbbctl status`: mode, root and nested stack states, outputs, BBB server group.

use anyhow::Result;
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::{Deployment, server_group, stack_resources};
use crate::boot;
use crate::cfn::cause::root_cause;
use crate::cfn::ops::parameters;
use crate::cfn::ops::{describe_stack, last_operation, status};
use crate::cfn::tree::STACK_TYPE;
use crate::mail;
use crate::settings::{Global, P_DOMAIN};
use crate::ui::Printer;

pub async fn run(g: &Global, p: &Printer, stack: &str) -> Result<()> {
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;

    // Nested stacks, straight from the root's resources.
    let mut nested = Vec::new();
    for r in stack_resources(&aws, stack).await? {
        if r.resource_type() == Some(STACK_TYPE) {
            let id = r.physical_resource_id().unwrap_or_default().to_string();
            let st = match describe_stack(&aws.cfn, &id).await? {
                Some(s) => status(&s).to_string(),
                None => r
                    .resource_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            };
            nested.push(json!({ "name": r.logical_resource_id(), "status": st }));
        }
    }

    let st = d.status();
    let last_failure = if st.contains("FAILED") || st.contains("ROLLBACK") {
        let id = d.stack.stack_id().unwrap_or(stack);
        root_cause(&last_operation(&aws.cfn, id, stack, st).await?)
    } else {
        None
    };

    let mut servers = serde_json::Value::Null;
    let mut outdated_note = None;
    let mut warm = None;
    if let Some(group) = d.outputs.get(out::SERVER_GROUP)
        && let Some(asg) = server_group(&aws, group).await?
    {
        // The warm pool, shown apart from the servers (its instances are stopped, unnamed).
        warm = crate::fleet::warm_pool(&aws, group).await.ok().flatten();
        let outdated = super::stacks::outdated_instances(&asg);
        outdated_note = super::stacks::outdated_note(&outdated, asg.instances().len(), stack);
        servers = json!({
            "outdated": outdated,
            "group": group,
            "desired": asg.desired_capacity(),
            "min": asg.min_size(),
            "max": asg.max_size(),
            "instances": asg.instances().iter().map(|i| json!({
                "id": i.instance_id(),
                "az": i.availability_zone(),
                "lifecycle": i.lifecycle_state().map(|s| s.as_str()),
                "health": i.health_status(),
            })).collect::<Vec<_>>(),
        });
    }

    // How the running servers booted, per boot path (their log streams, src/boot.rs).
    let mut boot_summary = Vec::new();
    if let (Some(group), Some(instances)) = (
        d.outputs.get(out::SERVER_LOGS),
        servers["instances"].as_array(),
    ) {
        let ids: Vec<String> = instances
            .iter()
            .filter(|i| {
                let l = i["lifecycle"].as_str().unwrap_or("");
                !l.starts_with("Warmed") && !l.starts_with("Terminat")
            })
            .filter_map(|i| i["id"].as_str().map(str::to_string))
            .collect();
        let launched = crate::signed::instances(&aws, &ids)
            .await
            .unwrap_or_default();
        let logs = super::servers::boot_logs(&aws, group, &ids).await;
        let rows: Vec<(String, boot::Boot, Option<f64>)> = ids
            .iter()
            .filter_map(|id| {
                let at = launched.get(id).and_then(|i| i.launched.as_deref());
                let lines = logs.get(id)?.as_ref().ok()?;
                let boots = boot::boots(lines);
                let current = boot::current(&boots, at)?.clone();
                let ready = current.launch_to_ready(at);
                Some((id.clone(), current, ready))
            })
            .collect();
        boot_summary = boot::summary(&rows);
    }

    let domain = parameters(&d.stack).remove(P_DOMAIN).unwrap_or_default();
    let mail = mail::account(&aws).await;
    let mail_line = match &mail {
        Ok(a) => format!(
            "{}{}{}",
            if a.limited() { "! " } else { "" },
            a.summary(&domain),
            if a.remedy(&domain).is_some() {
                format!(" (`bbbctl check -s {stack}` says how to end it)")
            } else {
                String::new()
            }
        ),
        Err(e) => format!("! the account's Amazon SES state could not be read ({e})"),
    };
    let mut text = format!(
        "  Mode:   {}\n  Stack:  {}\n",
        d.outputs.get(out::MODE).map(String::as_str).unwrap_or("-"),
        d.status()
    );
    for n in &nested {
        text.push_str(&format!(
            "    {:<24} {}\n",
            n["name"].as_str().unwrap_or(""),
            n["status"].as_str().unwrap_or("")
        ));
    }
    if let Some(cause) = &last_failure {
        text.push_str(&format!("  Last failure: {cause}\n"));
    }
    let logs = d.outputs.get(out::SERVER_LOGS);
    if let Some(group) = logs {
        let signal = last_failure
            .as_ref()
            .is_some_and(|c| c.reason.to_ascii_lowercase().contains("signal"));
        if signal {
            text.push_str(&format!(
                "  A BBB server did not signal success: its bootstrap log is in CloudWatch Logs group {group}, stream <instance id>; connect with Session Manager (aws ssm start-session --target <instance id>).\n"
            ));
        }
    }
    text.push_str(&format!("  Mail:   {mail_line}\n"));
    text.push_str("  Outputs:\n");
    for (k, v) in &d.outputs {
        text.push_str(&format!("    {k:<24} {v}\n"));
    }
    if let Some(group) = servers.get("group") {
        text.push_str(&format!(
            "  BBB servers: {} (desired {}, min {}, max {})\n",
            group.as_str().unwrap_or(""),
            servers["desired"],
            servers["min"],
            servers["max"]
        ));
        for i in servers["instances"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "    {} {} {} {}\n",
                i["id"].as_str().unwrap_or(""),
                i["az"].as_str().unwrap_or(""),
                i["lifecycle"].as_str().unwrap_or(""),
                i["health"].as_str().unwrap_or("")
            ));
        }
        if let Some(note) = &outdated_note {
            text.push_str(&format!("    ! {note}\n"));
        }
        for line in crate::fleet::warm_pool_text(&warm).lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    if !boot_summary.is_empty() {
        text.push_str("  Boots (running servers, launch to ready, by boot path):\n");
        for b in &boot_summary {
            let t = |x: Option<f64>| x.map_or("-".to_string(), boot::duration_text);
            text.push_str(&format!(
                "    {:<8} {} server(s), {} ready, {} failed, {} booting; median {}, slowest {}{}\n",
                b.path,
                b.count,
                b.ready,
                b.failed,
                b.booting,
                t(b.median),
                t(b.slowest.as_ref().map(|s| s.1)),
                b.slowest.as_ref().map_or(String::new(), |s| format!(" ({})", s.0)),
            ));
            if let Some((id, step)) = &b.slowest_step {
                text.push_str(&format!(
                    "             slowest step: {} {} {} ({id})\n",
                    step.program,
                    step.name,
                    boot::duration_text(step.seconds)
                ));
            }
        }
    }
    let schedules = match d.outputs.get(out::SERVER_GROUP) {
        Some(group) if d.outputs.get(out::MODE).map(String::as_str) != Some("single") => {
            super::schedule::schedules(&aws, group).await?
        }
        _ => Vec::new(),
    };
    if !schedules.is_empty() {
        text.push_str("  Schedules:\n");
        for s in &schedules {
            text.push_str(&format!("    {}\n", super::schedule::line(s)));
        }
    }
    p.result(
        text.trim_end(),
        &json!({
            "stack": stack,
            "region": aws.region(),
            "status": d.status(),
            "mode": d.outputs.get(out::MODE),
            "nested": nested,
            "outputs": d.outputs,
            "servers": servers,
            "warm_pool": warm,
            "boots": boot_summary,
            "schedules": schedules,
            "mail": match &mail {
                Ok(a) => a.to_json(&domain),
                Err(e) => json!({ "error": e }),
            },
            "server_logs": logs,
            "last_failure": last_failure.as_ref().map(|c| json!({
                "stack_path": c.stack_path,
                "logical_id": c.logical_id,
                "resource_type": c.resource_type,
                "status": c.status,
                "reason": c.reason,
            })),
        }),
    );
    Ok(())
}
