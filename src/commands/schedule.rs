//! `bbbctl schedule add|list|remove`: capacity on a timetable, as Auto Scaling scheduled
//! actions of the deployment's BBB server group (min = max = desired = N at each time the
//! cron expression names, in its time zone). The actions bbbctl makes are named
//! `bbbctl-<name>`; others on the group are listed but never changed. A schedule that scales
//! in is safe: each server holds the group's scale-in protection while it hosts a meeting.

use anyhow::{Result, bail};
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::Deployment;
use crate::aws::Aws;
use crate::cli::ScheduleAction;
use crate::error::{AwsContext, usage};
use crate::settings::{Global, validate_count};
use crate::ui::Printer;

const PREFIX: &str = "bbbctl-";

/// Checks a schedule's name, cron expression and time zone; the message says what is allowed.
pub fn validate(name: &str, cron: &str, zone: &str) -> Result<()> {
    let mut problems = Vec::new();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.push(format!(
            "schedule name {name:?}: 1 to 64 letters, digits, - and _"
        ));
    }
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let field_ok = |f: &str| {
        !f.is_empty()
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || ",-*/".contains(c))
    };
    if fields.len() != 5 || !fields.iter().all(|f| field_ok(f)) {
        problems.push(format!(
            "--cron {cron:?}: five fields, minute hour day-of-month month day-of-week, e.g. \"30 7 * * 1-5\" (weekdays at 7:30)"
        ));
    } else if let Err(e) = crate::cost::cron::check(cron) {
        // One grammar for what is stored and what `cost` plays: numbers, not names.
        problems.push(format!(
            "--cron {cron:?}: {e}; write days and months as numbers (day of week 0-7, Sunday 0 or 7: \"1-5\" is Monday to Friday; months 1-12)"
        ));
    }
    let zone_ok = zone == "UTC"
        || (zone.split('/').count() >= 2
            && zone.split('/').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
            }));
    if !zone_ok {
        problems.push(format!(
            "--time-zone {zone:?}: an IANA time zone such as Europe/Berlin, or UTC"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(usage(problems.join("; ")))
    }
}

pub async fn run(g: &Global, p: &Printer, action: &ScheduleAction, stack: &str) -> Result<()> {
    if let ScheduleAction::Add {
        name,
        cron,
        count,
        time_zone,
        max,
    } = action
    {
        validate(name, cron, time_zone)?;
        validate_count(count, *max)?;
    }
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    if d.output(out::MODE).ok() == Some("single") {
        bail!(
            "deployment {stack} runs in single mode (one BBB server): there is no capacity to schedule"
        );
    }
    let group = d.output(out::SERVER_GROUP)?.to_string();
    match action {
        ScheduleAction::Add {
            name,
            cron,
            count,
            time_zone,
            max,
        } => {
            let n = i32::try_from(validate_count(count, *max)?).expect("count is bounded");
            aws.autoscaling
                .put_scheduled_update_group_action()
                .auto_scaling_group_name(&group)
                .scheduled_action_name(format!("{PREFIX}{name}"))
                .recurrence(cron)
                .time_zone(time_zone)
                .min_size(n)
                .max_size(n)
                .desired_capacity(n)
                .send()
                .await
                .aws_context(format_args!("adding schedule {name} to group {group}"))?;
            p.result(
                format!("Schedule {name}: {n} BBB server(s) at \"{cron}\" ({time_zone})."),
                &json!({"stack": stack, "name": name, "cron": cron, "time_zone": time_zone, "count": n}),
            );
        }
        ScheduleAction::List => {
            let list = schedules(&aws, &group).await?;
            let mut text = format!(
                "{:<20} {:<18} {:<16} {:>5}  {}\n",
                "name", "cron", "time zone", "count", "next run"
            );
            for s in &list {
                text.push_str(&format!(
                    "{:<20} {:<18} {:<16} {:>5}  {}\n",
                    s["name"].as_str().unwrap_or(""),
                    s["cron"].as_str().unwrap_or(""),
                    s["time_zone"].as_str().unwrap_or("UTC"),
                    s["count"].as_i64().map_or("-".into(), |n| n.to_string()),
                    s["next_run"].as_str().unwrap_or("-")
                ));
            }
            if list.is_empty() {
                text = "No schedules.".into();
            }
            p.result(
                text.trim_end(),
                &json!({"stack": stack, "group": group, "schedules": list}),
            );
        }
        ScheduleAction::Remove { name } => {
            let list = schedules(&aws, &group).await?;
            if !list
                .iter()
                .any(|s| s["name"] == name.as_str() && s["bbbctl"] == true)
            {
                let names: Vec<&str> = list
                    .iter()
                    .filter(|s| s["bbbctl"] == true)
                    .filter_map(|s| s["name"].as_str())
                    .collect();
                return Err(usage(format!(
                    "no schedule {name} on deployment {stack}; its schedules: {}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                )));
            }
            aws.autoscaling
                .delete_scheduled_action()
                .auto_scaling_group_name(&group)
                .scheduled_action_name(format!("{PREFIX}{name}"))
                .send()
                .await
                .aws_context(format_args!("removing schedule {name}"))?;
            p.result(
                format!("Schedule {name} removed."),
                &json!({"stack": stack, "removed": name}),
            );
        }
    }
    Ok(())
}

/// One schedule in one line: `name: cron (zone) → N server(s), next …`.
pub fn line(s: &serde_json::Value) -> String {
    format!(
        "{:<16} {} ({}) → {} server(s), next {}",
        s["name"].as_str().unwrap_or(""),
        s["cron"].as_str().unwrap_or(""),
        s["time_zone"].as_str().unwrap_or("UTC"),
        s["count"],
        s["next_run"].as_str().unwrap_or("-")
    )
}

/// The group's scheduled actions (bbbctl's by their name without the prefix), with the next
/// run Auto Scaling reports.
pub async fn schedules(aws: &Aws, group: &str) -> Result<Vec<serde_json::Value>> {
    let out = aws
        .autoscaling
        .describe_scheduled_actions()
        .auto_scaling_group_name(group)
        .send()
        .await
        .aws_context(format_args!("reading the schedules of group {group}"))?;
    Ok(out
        .scheduled_update_group_actions()
        .iter()
        .map(|a| {
            let full = a.scheduled_action_name().unwrap_or_default();
            json!({
                "name": full.strip_prefix(PREFIX).unwrap_or(full),
                "bbbctl": full.starts_with(PREFIX),
                "cron": a.recurrence(),
                "time_zone": a.time_zone(),
                "count": a.desired_capacity(),
                "next_run": a.start_time().map(|t| t.to_string()),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_checked_before_anything_is_sent() {
        assert!(validate("morning", "30 7 * * 1-5", "Europe/Berlin").is_ok());
        assert!(validate("night_2", "0 22 * * *", "UTC").is_ok());
        let e = validate("bad name!", "30 7 * *", "Berlin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedule name \"bad name!\""), "{e}");
        assert!(e.contains("five fields"), "{e}");
        assert!(e.contains("IANA time zone"), "{e}");
        // Names (and typos of names) are refused at add, in the grammar cost plays.
        for cron in [
            "30 7 * * MON-FRI",
            "30 7 * * Mon-Fry",
            "0 8 * JAN *",
            "61 7 * * *",
        ] {
            let e = validate("morning", cron, "UTC").unwrap_err().to_string();
            assert!(e.contains(&format!("--cron {cron:?}")), "{e}");
        }
        let e = validate("morning", "30 7 * * MON-FRI", "UTC")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"1-5\" is Monday to Friday"), "{e}");
    }
}
