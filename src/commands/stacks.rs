//! Stack life cycle shared by the commands: deploy (create, update, attach to a running
//! operation, recover a failed create), delete, and finding a deployment's outputs.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_cloudformation::types::{Stack, StackResourceSummary};

use crate::aws::Aws;
use crate::cfn::cause::root_cause;
use crate::cfn::events::EventPoller;
use crate::cfn::ops::{
    self, Outcome, StackSpec, Started, describe_stack, outputs, parameters, status,
};
use crate::cfn::tree::{Op, StackTree, is_terminal};
use crate::error::{AwsContext, usage};
use crate::settings::Global;
use crate::ui::{Printer, format_duration};

/// Tag put on every stack bbbctl creates (and so on every resource in it); its value is the
/// deployment's root stack name. A stack without it is not bbbctl's, and bbbctl leaves it alone.
pub const TAG: &str = "bbbctl:deployment";

/// Whether bbbctl created `stack` for deployment `deployment`.
pub fn is_ours(stack: &Stack, deployment: &str) -> bool {
    stack
        .tags()
        .iter()
        .any(|t| t.key() == Some(TAG) && t.value() == Some(deployment))
}

/// Refuses (exit 2) a stack bbbctl did not create for this deployment, with a message that
/// names the stack and says what it is.
pub async fn ensure_ours(aws: &Aws, stack: &Stack, deployment: &str) -> Result<()> {
    if is_ours(stack, deployment) {
        return Ok(());
    }
    let name = stack.stack_name().unwrap_or(deployment);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let id = stack.stack_id().unwrap_or(name);
    match stack_resources(aws, id).await {
        Ok(resources) => {
            for r in resources {
                *kinds
                    .entry(r.resource_type().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
        }
        Err(e) => tracing::debug!("resources of {name}: {e:#}"),
    }
    let total: usize = kinds.values().sum();
    let what = kinds
        .iter()
        .map(|(k, n)| {
            if *n > 1 {
                format!("{n} × {k}")
            } else {
                k.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let description = stack
        .description()
        .map(|d| format!(", described as {:?}", d.lines().next().unwrap_or(d)))
        .unwrap_or_default();
    let other = stack
        .tags()
        .iter()
        .find(|t| t.key() == Some(TAG))
        .and_then(|t| t.value())
        .map(|v| format!(" (it belongs to bbbctl deployment {v})"))
        .unwrap_or_default();
    Err(usage(format!(
        "stack {name} in account {} ({}) was not created by bbbctl for deployment {deployment}{other}: \
         it has no tag {TAG}={deployment}. It is a {} stack with {total} resource(s){}{description}. \
         bbbctl changes and deletes only its own stacks: choose another name with -s",
        aws.account,
        aws.region(),
        status(stack),
        if what.is_empty() {
            String::new()
        } else {
            format!(" ({what})")
        },
    )))
}

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

/// The BBB server Auto Scaling group named by a deployment's output, if it exists.
pub async fn server_group(aws: &Aws, group: &str) -> Result<Option<AutoScalingGroup>> {
    let out = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .aws_context(format_args!("reading Auto Scaling group {group}"))?;
    Ok(out.auto_scaling_groups().first().cloned())
}

/// Every resource of a stack (all pages).
pub async fn stack_resources(aws: &Aws, stack: &str) -> Result<Vec<StackResourceSummary>> {
    let mut out = Vec::new();
    let mut pages = aws
        .cfn
        .list_stack_resources()
        .stack_name(stack)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(format_args!("listing the resources of {stack}"))?;
        out.extend(page.stack_resource_summaries().iter().cloned());
    }
    Ok(out)
}

/// A deployment found by its root stack name, with the stack's outputs.
pub struct Deployment {
    pub name: String,
    pub stack: Stack,
    pub outputs: BTreeMap<String, String>,
}

impl Deployment {
    /// Finds the root stack; a missing one is an error that says what to check.
    pub async fn find(aws: &Aws, name: &str) -> Result<Self> {
        let Some(stack) = describe_stack(&aws.cfn, name).await? else {
            bail!(
                "no deployment {name} in account {} region {}: stack {name} does not exist. Check -s/--stack, --region and -p/--profile, or create it with `bbbctl setup`",
                aws.account,
                aws.region()
            );
        };
        ensure_ours(aws, &stack, name).await?;
        Ok(Deployment {
            name: name.to_string(),
            outputs: outputs(&stack),
            stack,
        })
    }

    pub fn status(&self) -> &str {
        status(&self.stack)
    }

    /// An output the command needs; when it is missing, the stack's state says why.
    pub fn output(&self, key: &str) -> Result<&str> {
        if let Some(v) = self.outputs.get(key) {
            return Ok(v);
        }
        let name = &self.name;
        let st = self.status();
        if st.starts_with("CREATE_IN_PROGRESS") {
            bail!(
                "deployment {name} is still being created ({st}). Wait for `bbbctl setup` to finish, then try again"
            );
        }
        if st.contains("ROLLBACK") || st.ends_with("FAILED") {
            bail!(
                "deployment {name} is in {st}: its last operation failed. Re-run `bbbctl setup` to see the cause and repair it"
            );
        }
        if st.starts_with("DELETE") {
            bail!("deployment {name} is being deleted ({st})");
        }
        bail!(
            "stack {name} has no output {key} ({st}): it was not created by this version of bbbctl, or its template lacks the output"
        )
    }
}

/// Logical id → physical id of the root's nested stacks.
pub async fn nested_stacks(aws: &Aws, d: &Deployment) -> Result<BTreeMap<String, String>> {
    Ok(stack_resources(aws, d.stack.stack_id().unwrap_or(&d.name))
        .await?
        .into_iter()
        .filter(|r| r.resource_type() == Some("AWS::CloudFormation::Stack"))
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                r.physical_resource_id()?.to_string(),
            ))
        })
        .collect())
}

/// The physical id of resource `logical` in the nested stack `nested` (a logical id) of the
/// root stack `root`; `None` when either does not exist (or the nested stack is gone).
pub async fn nested_resource(
    aws: &Aws,
    root: &Stack,
    nested: &str,
    logical: &str,
) -> Result<Option<String>> {
    let root_id = root.stack_id().or(root.stack_name()).unwrap_or_default();
    let child = stack_resources(aws, root_id).await?.into_iter().find(|r| {
        r.logical_resource_id() == Some(nested)
            && r.resource_status()
                .is_none_or(|s| s.as_str() != "DELETE_COMPLETE")
    });
    let Some(child) = child.and_then(|r| r.physical_resource_id().map(str::to_string)) else {
        return Ok(None);
    };
    Ok(stack_resources(aws, &child)
        .await?
        .into_iter()
        .find(|r| r.logical_resource_id() == Some(logical))
        .and_then(|r| r.physical_resource_id().map(str::to_string)))
}

/// The text of a secret; `what` names it in errors (never its value).
async fn secret_string(aws: &Aws, arn: &str, what: &str) -> Result<String> {
    aws.secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .aws_context(format_args!("reading {what}"))?
        .secret_string()
        .map(str::to_string)
        .with_context(|| format!("{what} holds no text"))
}

/// The Greenlight administrator login (e-mail, password) from the secret the stack created.
pub async fn admin_login(aws: &Aws, d: &Deployment) -> Result<(String, String)> {
    let arn = d.output(super::out::ADMIN_SECRET)?;
    let text = secret_string(aws, arn, &format!("the administrator secret of {}", d.name)).await?;
    let value: serde_json::Value = serde_json::from_str(&text).ok().context(
        "the administrator secret is not the JSON bbbctl expects ({\"username\", \"password\"})",
    )?;
    let field = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .with_context(|| format!("the administrator secret has no {k:?}"))
    };
    Ok((field("username")?, field("password")?))
}

/// Scalelite's load-balancer secret (the front-end stack's LoadBalancerSecretArn).
pub async fn load_balancer_secret(aws: &Aws, nested: &BTreeMap<String, String>) -> Result<String> {
    let Some(id) = nested.get("FrontendStack") else {
        bail!("the deployment has no front-end stack")
    };
    let frontend = describe_stack(&aws.cfn, id)
        .await?
        .context("the front-end stack is gone")?;
    let arn = parameters(&frontend)
        .remove("LoadBalancerSecretArn")
        .context("the front-end stack has no LoadBalancerSecretArn")?;
    secret_string(aws, &arn, "Scalelite's load-balancer secret").await
}

/// The group's instances as the fleet picture takes them.
pub fn group_instances(asg: &AutoScalingGroup) -> Vec<crate::fleet::Instance> {
    asg.instances()
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.availability_zone().unwrap_or_default().to_string(),
                i.lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                i.health_status().unwrap_or_default().to_string(),
                i.protected_from_scale_in().unwrap_or(false),
            )
        })
        .collect()
}

/// The group's instances launched from another launch template version than the group's
/// (setup leaves scalable servers running; `bbbctl roll` replaces these).
pub fn outdated_instances(asg: &AutoScalingGroup) -> Vec<String> {
    let version = |t: Option<&aws_sdk_autoscaling::types::LaunchTemplateSpecification>| {
        t.and_then(|t| t.version()).unwrap_or_default().to_string()
    };
    let current = version(asg.launch_template());
    asg.instances()
        .iter()
        .filter(|i| version(i.launch_template()) != current)
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// The outdated servers in one line, `None` when there are none.
pub fn outdated_note(outdated: &[String], total: usize, stack: &str) -> Option<String> {
    (!outdated.is_empty()).then(|| {
        format!(
            "{} of {total} BBB server(s) run an older launch template ({}): `bbbctl roll -s {stack}` replaces them, new ones first, without cutting a meeting.",
            outdated.len(),
            outdated.join(", ")
        )
    })
}

/// The group's instances now (id, zone, lifecycle state, health, protection), from one read.
pub async fn instances_now(aws: &Aws, group: &str) -> Result<Vec<crate::fleet::Instance>> {
    let Some(asg) = server_group(aws, group).await? else {
        bail!("Auto Scaling group {group} no longer exists");
    };
    Ok(group_instances(&asg))
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
