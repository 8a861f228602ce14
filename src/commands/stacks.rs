//! Stack life cycle shared by the commands: deploy (create, update, attach to a running
//! operation, recover a failed create) and delete. Finding a deployment and its outputs lives
//! below the commands, in `crate::deployment` (re-exported here for the commands).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::types::Stack;

use crate::aws::Aws;
use crate::cfn::cause::root_cause;
use crate::cfn::events::EventPoller;
use crate::cfn::ops::{self, Outcome, StackSpec, Started, describe_stack, status};
use crate::cfn::tree::{Op, StackTree, is_terminal};
use crate::settings::Global;
use crate::ui::{Printer, format_duration};

pub use crate::deployment::{
    Deployment, TAG, admin_login, ensure_ours, group_instances, instances_now, is_ours,
    load_balancer_secret, nested_resource, nested_stacks, outdated_instances, outdated_note,
    server_group, stack_resources,
};

/// Resource counts for the progress display: (root, nested stacks by logical id).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub root: Option<usize>,
    pub children: BTreeMap<String, usize>,
}

/// The result of `deploy`.
pub struct Deployed {
    pub stack: Stack,
    /// `None` when CloudFormation had nothing to change.
    pub outcome: Option<Outcome>,
}

/// The operation that a stack status belongs to.
fn op_of(status: &str) -> Op {
    if status.starts_with("DELETE") {
        Op::Delete
    } else if status.starts_with("UPDATE") {
        Op::Update
    } else {
        Op::Create
    }
}

/// Creates or updates a stack and follows it to the end with progress. A stack that is busy is
/// followed first; one left in ROLLBACK_COMPLETE by a failed create is deleted and created again
/// when the user agreed (`--yes`). `known` is the stack as the caller has just read it (saves
/// reading it again).
pub async fn deploy(
    aws: &Aws,
    g: &Global,
    p: &Printer,
    spec: &StackSpec<'_>,
    counts: &Counts,
    mut known: Option<Stack>,
) -> Result<Deployed> {
    let name = spec.name;
    loop {
        let existing = match known.take() {
            Some(stack) => Some(stack),
            None => describe_stack(&aws.cfn, name).await?,
        };
        if let Some(stack) = &existing {
            let st = status(stack);
            if !is_terminal(st) {
                p.info(format!(
                    "Stack {name} is busy ({st}); following it to the end first."
                ));
                let outcome = attach(aws, p, stack, op_of(st), counts).await?;
                tracing::info!("{name} ended {}", outcome.status);
                continue;
            }
            match st {
                "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" => {
                    if !g.yes {
                        let id = stack.stack_id().unwrap_or(name);
                        let cause = root_cause(&ops::last_operation(&aws.cfn, id, name, st).await?)
                            .map(|c| format!("\nIts root cause: {c}"))
                            .unwrap_or_default();
                        bail!(
                            "stack {name} is in {st}: its first create failed, so it cannot be updated. \
                             Re-run with --yes to delete it and create it again, or remove it with `bbbctl destroy -s <stack>`{cause}"
                        );
                    }
                    p.info(format!("Stack {name} is in {st} after a failed create: deleting it to create it again (--yes)."));
                    delete(aws, p, stack).await?;
                    continue;
                }
                "DELETE_FAILED" => bail!(
                    "stack {name} is in DELETE_FAILED: a previous delete did not finish. Run `bbbctl destroy` to finish it"
                ),
                "UPDATE_ROLLBACK_FAILED" => bail!(
                    "stack {name} is in UPDATE_ROLLBACK_FAILED: fix the resource named in its events, then run \
                     `aws cloudformation continue-update-rollback --stack-name {name}` (optionally with --resources-to-skip)"
                ),
                _ => {}
            }
        }
        let mut poller = EventPoller::new(aws.cfn.clone());
        let marker = match &existing {
            Some(_) => poller.latest(name).await?,
            None => None,
        };
        match ops::start_deploy(&aws.cfn, spec, existing.is_some()).await? {
            Started::UpToDate => {
                return Ok(Deployed {
                    stack: existing.expect("only an existing stack is up to date"),
                    outcome: None,
                });
            }
            Started::Running { op, stack_id } => {
                let (since, seen) = marker
                    .map(|(id, t)| (Some(t), Some(id)))
                    .unwrap_or_default();
                poller.start(&stack_id, since, seen);
                let mut tree =
                    StackTree::new(op, name, &stack_id, counts.root, counts.children.clone());
                tree.deployment = spec
                    .tags
                    .iter()
                    .find(|(k, _)| k == TAG)
                    .map(|(_, v)| v.clone());
                let outcome = ops::follow(&aws.cfn, tree, &mut poller, &mut p.progress()).await?;
                check(&outcome, name)?;
                if let Some(note) = outcome.skipped_deletes_note() {
                    p.warn(note);
                }
                let stack = describe_stack(&aws.cfn, &stack_id)
                    .await?
                    .with_context(|| format!("stack {name} vanished after its {}", op.verb()))?;
                return Ok(Deployed {
                    stack,
                    outcome: Some(outcome),
                });
            }
        }
    }
}

/// Follows an operation that is already running (started by an earlier, interrupted bbbctl);
/// elapsed times count from when that operation began.
async fn attach(aws: &Aws, p: &Printer, stack: &Stack, op: Op, counts: &Counts) -> Result<Outcome> {
    let name = stack.stack_name().unwrap_or_default();
    let stack_id = stack.stack_id().unwrap_or(name);
    let mut poller = EventPoller::new(aws.cfn.clone());
    let marker = poller.latest(stack_id).await?;
    // Show the operation from its latest event on; earlier ones were shown by the earlier run.
    let (since, seen) = marker
        .map(|(id, t)| (Some(t), Some(id)))
        .unwrap_or_default();
    poller.start(stack_id, since, seen);
    let mut tree = StackTree::new(op, name, stack_id, counts.root, counts.children.clone());
    let began = match op {
        Op::Create => stack.creation_time(),
        Op::Update => stack.last_updated_time(),
        Op::Delete => stack.deletion_time(),
    };
    if let Some(ms) = began.and_then(|t| t.to_millis().ok()) {
        tree.set_started(ms);
    }
    ops::follow(&aws.cfn, tree, &mut poller, &mut p.progress()).await
}

/// Deletes a stack and follows the delete to the end (attaching to a running operation first).
pub async fn delete(aws: &Aws, p: &Printer, stack: &Stack) -> Result<Outcome> {
    let name = stack.stack_name().unwrap_or_default().to_string();
    let id = stack.stack_id().unwrap_or(&name).to_string();
    let st = status(stack);
    if !is_terminal(st) {
        p.info(format!(
            "Stack {name} is busy ({st}); following it to the end first."
        ));
        let outcome = attach(aws, p, stack, op_of(st), &Counts::default()).await?;
        if outcome.status == "DELETE_COMPLETE" {
            return Ok(outcome);
        }
    }
    let mut poller = EventPoller::new(aws.cfn.clone());
    let marker = poller.latest(&id).await?;
    ops::start_delete(&aws.cfn, &id).await?;
    let (since, seen) = marker.map(|(i, t)| (Some(t), Some(i))).unwrap_or_default();
    poller.start(&id, since, seen);
    let tree = StackTree::new(Op::Delete, &name, &id, None, BTreeMap::new());
    let outcome = ops::follow(&aws.cfn, tree, &mut poller, &mut p.progress()).await?;
    check(&outcome, &name)?;
    Ok(outcome)
}

/// Turns a failed operation into an error that names the root cause.
fn check(outcome: &Outcome, name: &str) -> Result<()> {
    if outcome.succeeded() {
        return Ok(());
    }
    let op = outcome.tree.op;
    let mut msg = format!(
        "the {} of stack {name} failed ({})",
        op.verb(),
        outcome.status
    );
    match outcome.root_cause() {
        Some(cause) => msg.push_str(&format!(".\nRoot cause: {cause}")),
        None => msg.push_str(
            ": CloudFormation gave no failure event; see the stack's events in the console",
        ),
    }
    msg.push_str(match op {
        Op::Create => "\nFix the cause, then re-run `bbbctl setup … --yes` to replace the failed stack (or `bbbctl destroy` to remove it).",
        Op::Update => "\nCloudFormation rolled the update back; fix the cause and re-run `bbbctl setup`.",
        Op::Delete => "\nFix or remove the resource named above, then re-run `bbbctl destroy`.",
    });
    bail!(msg)
}

/// A summary like `CREATE_COMPLETE in 3m10s`.
pub fn summary(outcome: &Outcome) -> String {
    let root = outcome.tree.root();
    format!(
        "{} in {}",
        outcome.status,
        format_duration(root.elapsed_ms(0))
    )
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::error::ErrorMetadata;
    use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
    use aws_sdk_cloudformation::operation::update_stack::UpdateStackError;
    use aws_sdk_cloudformation::types::StackStatus;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;
    use crate::cfn::ops::Template;
    use crate::cli::{LogLevel, OutputFormat};

    fn stack(status: StackStatus) -> DescribeStacksOutput {
        DescribeStacksOutput::builder()
            .stacks(
                Stack::builder()
                    .stack_name("bbb")
                    .stack_id("arn:bbb")
                    .stack_status(status)
                    .creation_time(aws_smithy_types::DateTime::from_secs(0))
                    .build(),
            )
            .build()
    }

    fn describe(name: &'static str, statuses: Vec<StackStatus>) -> Rule {
        let mut seq = mock!(aws_sdk_cloudformation::Client::describe_stacks)
            .match_requests(move |r| r.stack_name() == Some(name))
            .sequence();
        for s in statuses {
            seq = seq.output(move || stack(s.clone()));
        }
        seq.repeatedly().build()
    }

    fn aws_with(rules: &[&Rule]) -> Aws {
        let cfn = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, rules);
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let mut aws = Aws::from_config(config, false);
        aws.cfn = cfn;
        aws
    }

    fn global(yes: bool) -> Global {
        Global {
            profile: None,
            region: None,
            endpoint_url: None,
            log_level: LogLevel::Warn,
            output: OutputFormat::Json,
            no_progress: true,
            yes,
        }
    }

    fn spec() -> StackSpec<'static> {
        StackSpec {
            name: "bbb",
            template: Template::Url("https://b.s3.us-east-1.amazonaws.com/root.yaml".into()),
            params: BTreeMap::new(),
            tags: Vec::new(),
        }
    }

    /// After Ctrl-C the update goes on in AWS; the next setup follows it to its end, then
    /// applies its own (here: nothing left to change).
    #[tokio::test(start_paused = true)]
    async fn attaches_to_a_running_update_then_deploys() {
        let by_name = describe(
            "bbb",
            vec![StackStatus::UpdateInProgress, StackStatus::UpdateComplete],
        );
        let by_id = describe(
            "arn:bbb",
            vec![StackStatus::UpdateInProgress, StackStatus::UpdateComplete],
        );
        let events = mock!(aws_sdk_cloudformation::Client::describe_stack_events)
            .then_output(|| DescribeStackEventsOutput::builder().build());
        let update = mock!(aws_sdk_cloudformation::Client::update_stack).then_error(|| {
            UpdateStackError::generic(
                ErrorMetadata::builder()
                    .code("ValidationError")
                    .message("No updates are to be performed.")
                    .build(),
            )
        });
        let aws = aws_with(&[&by_name, &by_id, &events, &update]);
        let g = global(false);
        let deployed = deploy(
            &aws,
            &g,
            &Printer::new(&g),
            &spec(),
            &Counts::default(),
            None,
        )
        .await
        .unwrap();
        assert!(
            deployed.outcome.is_none(),
            "up to date after the attached update"
        );
        assert_eq!(
            by_id.num_calls(),
            2,
            "followed the running update to its end"
        );
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_create_needs_consent_to_be_replaced() {
        let by_name = describe("bbb", vec![StackStatus::RollbackComplete]);
        let events = mock!(aws_sdk_cloudformation::Client::describe_stack_events)
            .then_output(|| DescribeStackEventsOutput::builder().build());
        let aws = aws_with(&[&by_name, &events]);
        let g = global(false);
        let err = deploy(
            &aws,
            &g,
            &Printer::new(&g),
            &spec(),
            &Counts::default(),
            None,
        )
        .await
        .err()
        .expect("refused without --yes")
        .to_string();
        assert!(
            err.contains("is in ROLLBACK_COMPLETE") && err.contains("Re-run with --yes"),
            "{err}"
        );
    }
}
