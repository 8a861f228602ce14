//! `bbbctl list`: the deployments of bbbctl in the account and region, found by the tag its
//! stacks carry (`bbbctl:deployment`), with mode, status, domain and servers; the one other
//! commands act on without `-s` is marked.

use anyhow::Result;
use aws_sdk_cloudformation::types::Stack;
use serde_json::json;

use super::out;
use super::stacks::{TAG, server_group};
use crate::aws::Aws;
use crate::cfn::ops::{outputs, parameters, status};
use crate::error::AwsContext;
use crate::memory;
use crate::settings::{Global, P_DOMAIN, P_MODE, sources_stack_name};
use crate::ui::Printer;

/// One deployment as `list` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    stack: String,
    mode: String,
    status: String,
    domain: String,
    /// In service / desired; `None` without a server group.
    servers: Option<(usize, i32)>,
    /// Only the sources stack exists: a setup stopped before the root stack was made.
    sources_only: bool,
}

pub async fn run(g: &Global, p: &Printer) -> Result<()> {
    let aws = Aws::connect(g).await?;
    p.info(format!(
        "Deployments of bbbctl in account {}, region {}:",
        aws.account,
        aws.region()
    ));
    p.set_context(json!({"account": aws.account, "region": aws.region(), "profile": g.profile}));
    let stacks = all_stacks(&aws).await?;
    let mut rows = Vec::new();
    for st in deployments(&stacks) {
        rows.push(row(&aws, st).await?);
    }
    let default = memory::load_for(Some(aws.region()), g.profile.as_deref()).map(|r| r.stack);
    p.result(
        render(&rows, default.as_deref()),
        &json!({
            "default": default.filter(|d| rows.iter().any(|r| &r.stack == d)),
            "deployments": rows.iter().map(|r| json!({
                "stack": r.stack,
                "mode": r.mode,
                "status": r.status,
                "domain": r.domain,
                "servers_in_service": r.servers.map(|s| s.0),
                "servers_desired": r.servers.map(|s| s.1),
                "sources_only": r.sources_only,
            })).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}

async fn all_stacks(aws: &Aws) -> Result<Vec<Stack>> {
    let mut stacks = Vec::new();
    let mut pages = aws.cfn.describe_stacks().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context("listing the account's CloudFormation stacks")?;
        stacks.extend(page.stacks().iter().cloned());
    }
    Ok(stacks)
}

fn tag(st: &Stack) -> Option<&str> {
    st.tags()
        .iter()
        .find(|t| t.key() == Some(TAG))
        .and_then(|t| t.value())
}

/// The stacks that stand for a deployment: its root stack (named as its tag says; nested
/// stacks inherit the tag under other names), else its sources stack alone.
fn deployments(stacks: &[Stack]) -> Vec<&Stack> {
    let mut found: Vec<&Stack> = stacks
        .iter()
        .filter(|st| tag(st).is_some_and(|d| st.stack_name() == Some(d)))
        .collect();
    for st in stacks {
        if let Some(d) = tag(st)
            && st.stack_name() == Some(sources_stack_name(d).as_str())
            && !found.iter().any(|f| f.stack_name() == Some(d))
        {
            found.push(st);
        }
    }
    found.sort_by_key(|st| tag(st).unwrap_or_default().to_string());
    found
}

async fn row(aws: &Aws, st: &Stack) -> Result<Row> {
    let deployment = tag(st).unwrap_or_default().to_string();
    let sources_only = st.stack_name() != Some(deployment.as_str());
    let params = parameters(st);
    let mut servers = None;
    if let Some(group) = outputs(st).remove(out::SERVER_GROUP)
        && let Some(asg) = server_group(aws, &group).await?
    {
        let in_service = asg
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
            .count();
        servers = Some((in_service, asg.desired_capacity().unwrap_or(0)));
    }
    Ok(Row {
        mode: if sources_only {
            "-".into()
        } else {
            params.get(P_MODE).cloned().unwrap_or_else(|| "-".into())
        },
        status: status(st).to_string(),
        domain: params.get(P_DOMAIN).cloned().unwrap_or_else(|| "-".into()),
        servers,
        sources_only,
        stack: deployment,
    })
}

fn render(rows: &[Row], default: Option<&str>) -> String {
    if rows.is_empty() {
        return "  none (`bbbctl setup` creates one)".to_string();
    }
    let width = |f: fn(&Row) -> usize, min: usize| rows.iter().map(f).max().unwrap_or(0).max(min);
    let ws = width(|r| r.stack.len() + 2, 5);
    let wm = width(|r| r.mode.len(), 4);
    let wt = width(|r| r.status.len(), 6);
    let wd = width(|r| r.domain.len(), 6);
    let mut text = format!(
        "  {:<ws$} {:<wm$} {:<wt$} {:<wd$} servers",
        "STACK", "MODE", "STATUS", "DOMAIN"
    );
    for r in rows {
        let name = if Some(r.stack.as_str()) == default {
            format!("{} *", r.stack)
        } else {
            r.stack.clone()
        };
        let servers = match r.servers {
            Some((up, want)) => format!("{up}/{want}"),
            None => "-".into(),
        };
        text.push_str(&format!(
            "\n  {name:<ws$} {:<wm$} {:<wt$} {:<wd$} {servers}",
            r.mode, r.status, r.domain
        ));
    }
    if rows.iter().any(|r| Some(r.stack.as_str()) == default) {
        text.push_str("\n  * the default: commands without -s act on it");
    }
    for r in rows.iter().filter(|r| r.sources_only) {
        text.push_str(&format!(
            "\n  {}: only its sources stack exists (a setup stopped early): `bbbctl setup -s {}` finishes it, `bbbctl destroy -s {}` removes it",
            r.stack, r.stack, r.stack
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stack: &str, servers: Option<(usize, i32)>, sources_only: bool) -> Row {
        Row {
            stack: stack.into(),
            mode: "scalable".into(),
            status: "CREATE_COMPLETE".into(),
            domain: format!("{stack}.example.org"),
            servers,
            sources_only,
        }
    }

    #[test]
    fn the_default_is_marked_and_a_half_made_one_explained() {
        let text = render(
            &[row("bbb", Some((2, 2)), false), row("lecture", None, true)],
            Some("bbb"),
        );
        assert!(text.contains("  bbb *"), "{text}");
        assert!(text.contains(" 2/2"), "{text}");
        assert!(text.contains("* the default"), "{text}");
        assert!(
            text.contains("lecture: only its sources stack exists"),
            "{text}"
        );
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= 100 || l.contains("only its sources"))
        );
        assert!(render(&[], None).contains("none"));
    }
}
