//! CloudFormation operations: describe, create/update, delete, and following an operation to
//! its end with live progress.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{Capability, Parameter, Stack, Tag};

use super::cause::{RootCause, root_cause};
use super::events::EventPoller;
use super::tree::{Op, StackTree, is_terminal};
use crate::error::{AwsContext, Interrupted, aws_code, aws_message, describe};
use crate::ui::Progress;

/// Shortest and longest pause between two polls; the pause grows while nothing changes.
pub const POLL_MIN: Duration = Duration::from_secs(2);
pub const POLL_MAX: Duration = Duration::from_secs(15);

/// The stack, or `None` when it does not exist.
pub async fn describe_stack(cfn: &Client, name: &str) -> Result<Option<Stack>> {
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out.stacks().first().cloned()),
        Err(e) if is_missing(aws_code(&e), aws_message(&e)) => Ok(None),
        Err(e) => Err(anyhow::anyhow!("reading stack {name}: {}", describe(&e))),
    }
}

fn is_missing(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("ValidationError") && message.is_some_and(|m| m.contains("does not exist"))
}

pub fn status(stack: &Stack) -> &str {
    stack
        .stack_status()
        .map(|s| s.as_str())
        .unwrap_or("UNKNOWN")
}

pub fn outputs(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect()
}

pub enum Template {
    Body(String),
    Url(String),
}

/// What to deploy into one stack.
pub struct StackSpec<'a> {
    pub name: &'a str,
    pub template: Template,
    pub params: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
}

/// How a deploy started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The operation runs; follow the stack with this id.
    Running { op: Op, stack_id: String },
    /// CloudFormation found nothing to change.
    UpToDate,
}

/// Creates the stack when `exists` is false, updates it otherwise.
pub async fn start_deploy(cfn: &Client, spec: &StackSpec<'_>, exists: bool) -> Result<Started> {
    let params: Vec<Parameter> = spec
        .params
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    let tags: Vec<Tag> = spec
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let caps = [
        Capability::CapabilityIam,
        Capability::CapabilityNamedIam,
        Capability::CapabilityAutoExpand,
    ];
    let (body, url) = match &spec.template {
        Template::Body(b) => (Some(b.clone()), None),
        Template::Url(u) => (None, Some(u.clone())),
    };
    if !exists {
        let out = cfn
            .create_stack()
            .stack_name(spec.name)
            .set_template_body(body)
            .set_template_url(url)
            .set_parameters(Some(params))
            .set_capabilities(Some(caps.to_vec()))
            .set_tags(Some(tags))
            .send()
            .await
            .aws_context(format_args!("creating stack {}", spec.name))?;
        return Ok(Started::Running {
            op: Op::Create,
            stack_id: out.stack_id().unwrap_or(spec.name).to_string(),
        });
    }
    match cfn
        .update_stack()
        .stack_name(spec.name)
        .set_template_body(body)
        .set_template_url(url)
        .set_parameters(Some(params))
        .set_capabilities(Some(caps.to_vec()))
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(out) => Ok(Started::Running {
            op: Op::Update,
            stack_id: out.stack_id().unwrap_or(spec.name).to_string(),
        }),
        Err(e) if aws_message(&e).is_some_and(|m| m.contains("No updates are to be performed")) => {
            Ok(Started::UpToDate)
        }
        Err(e) => Err(anyhow::anyhow!(
            "updating stack {}: {}",
            spec.name,
            describe(&e)
        )),
    }
}

/// Starts deleting a stack (by name or id).
pub async fn start_delete(cfn: &Client, stack: &str) -> Result<()> {
    cfn.delete_stack()
        .stack_name(stack)
        .send()
        .await
        .aws_context(format_args!("deleting stack {stack}"))?;
    Ok(())
}

/// The end of a followed operation.
#[derive(Debug)]
pub struct Outcome {
    pub status: String,
    pub tree: StackTree,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status == self.tree.op.success_status()
    }

    pub fn root_cause(&self) -> Option<RootCause> {
        root_cause(&self.tree)
    }
}

/// Follows an operation on `tree`'s root until CloudFormation finishes it, drawing progress of
/// the root and every nested stack. Ctrl-C stops waiting (the operation goes on in AWS).
pub async fn follow(
    cfn: &Client,
    mut tree: StackTree,
    poller: &mut EventPoller,
    progress: &mut Progress,
) -> Result<Outcome> {
    let root_id = tree.root().id.clone();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut pause = POLL_MIN;
    loop {
        let step = async {
            let status = root_status(cfn, &root_id, tree.op).await?;
            let mut changed = tree.set_root_status(&status);
            changed |= poll_all(&mut tree, poller, progress).await?;
            anyhow::Ok((status, changed))
        };
        let (status, changed) = tokio::select! {
            r = step => r?,
            _ = &mut ctrl_c => return Err(interrupted(&tree)),
        };
        progress.draw(&tree);
        if is_terminal(&status) {
            progress.finish(&tree);
            return Ok(Outcome { status, tree });
        }
        pause = if changed {
            POLL_MIN
        } else {
            (pause * 3 / 2).min(POLL_MAX)
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut ctrl_c => return Err(interrupted(&tree)),
        }
    }
}

fn interrupted(tree: &StackTree) -> anyhow::Error {
    anyhow::Error::new(Interrupted(format!(
        "stopped waiting; the {} of stack {} goes on in AWS. Re-run the same bbbctl command to follow it to the end",
        tree.op.verb(),
        tree.root().label
    )))
}

async fn root_status(cfn: &Client, id: &str, op: Op) -> Result<String> {
    match describe_stack(cfn, id).await? {
        Some(stack) => Ok(status(&stack).to_string()),
        None if op == Op::Delete => Ok("DELETE_COMPLETE".into()),
        None => anyhow::bail!("stack {id} disappeared while bbbctl followed it"),
    }
}

/// Reads new events of every stack in the tree, including nested stacks discovered on the way.
async fn poll_all(
    tree: &mut StackTree,
    poller: &mut EventPoller,
    progress: &mut Progress,
) -> Result<bool> {
    let mut changed = false;
    let mut i = 0;
    while i < tree.nodes().len() {
        let node = &tree.nodes()[i];
        let settled = i > 0 && node.is_finished() && parent_settled(tree, i);
        if settled {
            i += 1;
            continue;
        }
        let id = node.id.clone();
        let events = match poller.poll(&id).await {
            Ok(events) => events,
            // A nested stack may be gone already (deleted on rollback): keep what we have.
            Err(e) if i > 0 => {
                tracing::debug!("events of nested stack {id}: {e:#}");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        for e in &events {
            let applied = tree.apply(i, e);
            changed |= applied.changed;
            if let Some(child) = applied.new_child {
                let since = tree.root().first_ms;
                poller.start(&tree.nodes()[child].id, since, None);
            }
            progress.event(tree, i, e);
        }
        i += 1;
    }
    Ok(changed)
}

/// The parent's own record of a nested stack is final, so the nested stack will not move again.
fn parent_settled(tree: &StackTree, i: usize) -> bool {
    let node = &tree.nodes()[i];
    node.parent
        .and_then(|p| tree.nodes()[p].resources.get(&node.label))
        .is_some_and(|s| is_terminal(s))
}
