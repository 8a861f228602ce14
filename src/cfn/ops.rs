//! CloudFormation operations: describe, create/update, delete, and following an operation to
//! its end with live progress.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{Capability, Parameter, Stack, Tag};

use super::cause::{RootCause, root_cause};
use super::events::EventPoller;
use super::tree::{Op, StackEvent, StackTree, is_terminal};
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

/// The stack's parameters, by key.
pub fn parameters(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .parameters()
        .iter()
        .filter_map(|x| {
            Some((
                x.parameter_key()?.to_string(),
                x.parameter_value()?.to_string(),
            ))
        })
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

/// What nested stacks with IAM resources need to be created or updated.
pub const CAPABILITIES: [Capability; 3] = [
    Capability::CapabilityIam,
    Capability::CapabilityNamedIam,
    Capability::CapabilityAutoExpand,
];

impl StackSpec<'_> {
    pub fn sdk_params(&self) -> Vec<Parameter> {
        self.params
            .iter()
            .map(|(k, v)| {
                Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            })
            .collect()
    }

    pub fn sdk_tags(&self) -> Vec<Tag> {
        self.tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }

    /// (TemplateBody, TemplateURL)
    pub fn template_source(&self) -> (Option<String>, Option<String>) {
        match &self.template {
            Template::Body(b) => (Some(b.clone()), None),
            Template::Url(u) => (None, Some(u.clone())),
        }
    }
}

/// A new ClientRequestToken: CloudFormation treats a request repeated with the same token (as
/// the SDK does when an answer is lost) as the same request, and tags the operation's events
/// with it, so bbbctl can tell its own operation from someone else's.
pub fn request_token(op: Op) -> String {
    use sha2::Digest;
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{:?}-{}-{}",
        std::time::SystemTime::now(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let hash = sha2::Sha256::digest(seed.as_bytes());
    format!("bbbctl-{}-{}", op.verb(), &hex::encode(hash)[..20])
}

/// The id of stack `name` when its latest events carry `token`: the operation bbbctl itself
/// started, whose answer was lost (a retried request then says the stack exists or is busy).
async fn started_with(cfn: &Client, name: &str, token: &str) -> Option<String> {
    let out = cfn
        .describe_stack_events()
        .stack_name(name)
        .send()
        .await
        .ok()?;
    out.stack_events()
        .iter()
        .find(|e| e.client_request_token() == Some(token))
        .and_then(|e| e.stack_id())
        .map(str::to_string)
}

/// Creates the stack when `exists` is false, updates it otherwise.
pub async fn start_deploy(cfn: &Client, spec: &StackSpec<'_>, exists: bool) -> Result<Started> {
    let (params, tags, caps) = (spec.sdk_params(), spec.sdk_tags(), CAPABILITIES);
    let (body, url) = spec.template_source();
    let op = if exists { Op::Update } else { Op::Create };
    let token = request_token(op);
    // CreateStack and UpdateStack take the same inputs; their builders are different types.
    macro_rules! send {
        ($builder:expr) => {
            $builder
                .stack_name(spec.name)
                .set_template_body(body)
                .set_template_url(url)
                .set_parameters(Some(params))
                .set_capabilities(Some(caps.to_vec()))
                .set_tags(Some(tags))
                .client_request_token(&token)
                .send()
                .await
                .map(|o| o.stack_id)
                .map_err(|e| e.map_service_error(aws_sdk_cloudformation::Error::from))
        };
    }
    let result = if exists {
        send!(cfn.update_stack())
    } else {
        send!(cfn.create_stack())
    };
    let stack_id = match result {
        Ok(id) => id.unwrap_or_else(|| spec.name.to_string()),
        Err(e) if aws_message(&e).is_some_and(|m| m.contains("No updates are to be performed")) => {
            return Ok(Started::UpToDate);
        }
        Err(e) => {
            let lost_answer = aws_code(&e) == Some("AlreadyExistsException")
                || aws_message(&e).is_some_and(|m| m.contains("can not be updated"));
            match started_with(cfn, spec.name, &token).await {
                Some(id) if lost_answer => {
                    tracing::info!("{} {}: our own request went through", op.verb(), spec.name);
                    id
                }
                _ => bail!("{} stack {}: {}", op.verb_ing(), spec.name, describe(&e)),
            }
        }
    };
    Ok(Started::Running { op, stack_id })
}

/// Starts deleting a stack (by name or id).
pub async fn start_delete(cfn: &Client, stack: &str) -> Result<()> {
    cfn.delete_stack()
        .stack_name(stack)
        .client_request_token(request_token(Op::Delete))
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

    /// A successful update whose clean-up could not delete some resources it removed or
    /// replaced: CloudFormation skips such a delete and completes the update anyway, leaving
    /// the resource in the account. Those DELETE_FAILED events, once each.
    pub fn skipped_deletes(&self) -> Vec<&StackEvent> {
        if self.tree.op != Op::Update || !self.succeeded() {
            return Vec::new();
        }
        let mut seen = std::collections::BTreeSet::new();
        self.tree
            .nodes()
            .iter()
            .flat_map(|n| &n.failures)
            .filter(|e| e.status == "DELETE_FAILED" && !e.is_stack_itself())
            .filter(|e| seen.insert((e.stack_id.clone(), e.logical_id.clone())))
            .collect()
    }

    /// What [`Self::skipped_deletes`] left, for a person; `None` when nothing was skipped.
    pub fn skipped_deletes_note(&self) -> Option<String> {
        let skipped = self.skipped_deletes();
        if skipped.is_empty() {
            return None;
        }
        let list: Vec<String> = skipped
            .iter()
            .map(|e| {
                format!(
                    "{} ({}) {} in stack {}: {}",
                    e.logical_id,
                    e.resource_type,
                    e.physical_id.as_deref().unwrap_or("-"),
                    e.stack_name,
                    e.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect();
        Some(format!(
            "The update completed, but CloudFormation could not delete {} resource(s) it removed or replaced (the DELETE_FAILED above) and left them in the account, where they may cost money: delete them yourself.\n  {}",
            list.len(),
            list.join("\n  ")
        ))
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
            _ = &mut ctrl_c => {
                progress.abandon(&tree);
                return Err(interrupted(&tree));
            }
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
        // Between polls the elapsed times go on ticking every second.
        let wake = tokio::time::Instant::now() + pause;
        loop {
            let now = tokio::time::Instant::now();
            if now >= wake {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep((wake - now).min(TICK)) => progress.tick(&tree),
                _ = &mut ctrl_c => {
                    progress.abandon(&tree);
                    return Err(interrupted(&tree));
                }
            }
        }
    }
}

/// How often live progress redraws its elapsed times between polls.
const TICK: Duration = Duration::from_secs(1);

fn interrupted(tree: &StackTree) -> anyhow::Error {
    let name = &tree.root().label;
    let deployment = tree.deployment.as_deref().unwrap_or(name);
    let cancel = match tree.op {
        Op::Create => {
            format!("to cancel, run `bbbctl destroy -s {deployment}` (it attaches, then deletes)")
        }
        Op::Update => format!(
            "to cancel, run `aws cloudformation cancel-update-stack --stack-name {name}` (CloudFormation rolls back)"
        ),
        Op::Delete => "a delete cannot be cancelled".to_string(),
    };
    anyhow::Error::new(Interrupted(format!(
        "stopped waiting; the {} of stack {name} goes on in AWS. Re-run the same bbbctl command to follow it to the end; {cancel}",
        tree.op.verb(),
    )))
}

async fn root_status(cfn: &Client, id: &str, op: Op) -> Result<String> {
    match describe_stack(cfn, id).await? {
        Some(stack) => Ok(status(&stack).to_string()),
        None if op == Op::Delete => Ok("DELETE_COMPLETE".into()),
        None => anyhow::bail!("stack {id} disappeared while bbbctl followed it"),
    }
}

/// The stack's last operation, rebuilt from its events and those of its nested stacks: where
/// `status` finds the cause of the last failure.
pub async fn last_operation(
    cfn: &Client,
    stack_id: &str,
    name: &str,
    status: &str,
) -> Result<StackTree> {
    let mut poller = EventPoller::new(cfn.clone());
    let events = poller.poll(stack_id).await?;
    // The last operation starts at the stack's latest "User Initiated" event.
    let start = events
        .iter()
        .rev()
        .find(|e| e.is_stack_itself() && e.reason.as_deref() == Some("User Initiated"))
        .map(|e| e.timestamp_ms);
    let op = if status.starts_with("UPDATE") {
        Op::Update
    } else if status.starts_with("DELETE") {
        Op::Delete
    } else {
        Op::Create
    };
    let mut tree = StackTree::new(op, name, stack_id, None, BTreeMap::new());
    for e in events
        .iter()
        .filter(|e| start.is_none_or(|s| e.timestamp_ms >= s))
    {
        if let Some(child) = tree.apply(0, e).new_child {
            poller.start(&tree.nodes()[child].id, start, None);
        }
    }
    // Nested stacks' events (the root's own are all read already).
    poll_all(&mut tree, &mut poller, &mut Progress::Hidden).await?;
    Ok(tree)
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
        if settled || node.id.is_empty() {
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

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::error::ErrorMetadata;
    use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
    use aws_sdk_cloudformation::operation::describe_stacks::{
        DescribeStacksError, DescribeStacksOutput,
    };
    use aws_sdk_cloudformation::operation::update_stack::UpdateStackError;
    use aws_sdk_cloudformation::types::{ResourceStatus, StackEvent as SdkEvent, StackStatus};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::DateTime;

    use super::*;

    #[test]
    fn the_cancel_hint_names_the_deployment_not_its_sources_stack() {
        let mut tree = StackTree::new(Op::Create, "lecture-sources", "id", None, BTreeMap::new());
        tree.deployment = Some("lecture".into());
        let text = interrupted(&tree).to_string();
        assert!(
            text.contains("run `bbbctl destroy -s lecture` (it attaches"),
            "{text}"
        );
        assert!(
            text.contains("the create of stack lecture-sources goes on"),
            "{text}"
        );
        // The root stack is the deployment's own name.
        let tree = StackTree::new(Op::Create, "lecture", "id", None, BTreeMap::new());
        assert!(
            interrupted(&tree)
                .to_string()
                .contains("`bbbctl destroy -s lecture`")
        );
    }

    fn stack(status: StackStatus) -> DescribeStacksOutput {
        DescribeStacksOutput::builder()
            .stacks(
                Stack::builder()
                    .stack_name("bbb")
                    .stack_id("arn:root")
                    .stack_status(status)
                    .creation_time(DateTime::from_secs(0))
                    .build(),
            )
            .build()
    }

    /// (stack id, logical id, type, status, physical id, seconds, reason)
    type Ev<'a> = (
        &'a str,
        &'a str,
        &'a str,
        ResourceStatus,
        &'a str,
        i64,
        &'a str,
    );

    /// A DescribeStackEvents page, newest first as AWS returns it.
    fn events(list: &[Ev<'_>]) -> DescribeStackEventsOutput {
        let mut evs: Vec<SdkEvent> = list
            .iter()
            .map(|(stack, logical, kind, status, physical, t, reason)| {
                SdkEvent::builder()
                    .event_id(format!("{stack}/{logical}/{}/{t}", status.as_str()))
                    .stack_id(*stack)
                    .stack_name(stack.trim_start_matches("arn:"))
                    .logical_resource_id(*logical)
                    .resource_type(*kind)
                    .resource_status(status.clone())
                    .physical_resource_id(*physical)
                    .resource_status_reason(*reason)
                    .timestamp(DateTime::from_secs(*t))
                    .build()
            })
            .collect();
        evs.reverse();
        DescribeStackEventsOutput::builder()
            .set_stack_events(Some(evs))
            .build()
    }

    const STACK: &str = "AWS::CloudFormation::Stack";

    /// The metadata of an AWS service error.
    fn meta(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    fn events_rule(stack: &'static str, pages: Vec<DescribeStackEventsOutput>) -> Rule {
        let mut seq = mock!(Client::describe_stack_events)
            .match_requests(move |r| r.stack_name() == Some(stack))
            .sequence();
        for page in pages {
            seq = seq.output(move || page.clone());
        }
        seq.repeatedly().build()
    }

    fn statuses(list: Vec<StackStatus>) -> Rule {
        let mut seq = mock!(Client::describe_stacks).sequence();
        for s in list {
            seq = seq.output(move || stack(s.clone()));
        }
        seq.repeatedly().build()
    }

    async fn run(rules: &[&Rule], op: Op) -> Outcome {
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, rules);
        let mut poller = EventPoller::new(client.clone());
        let tree = StackTree::new(op, "bbb", "arn:root", Some(2), BTreeMap::new());
        follow(&client, tree, &mut poller, &mut Progress::plain(true))
            .await
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn follows_root_and_nested_stack_to_the_end() {
        use ResourceStatus::*;
        let r1: Vec<Ev> = vec![
            (
                "arn:root",
                "bbb",
                STACK,
                CreateInProgress,
                "arn:root",
                1,
                "User Initiated",
            ),
            ("arn:root", "Net", STACK, CreateInProgress, "arn:net", 2, ""),
        ];
        let mut r3 = r1.clone();
        r3.push(("arn:root", "Net", STACK, CreateComplete, "arn:net", 9, ""));
        r3.push(("arn:root", "bbb", STACK, CreateComplete, "arn:root", 10, ""));
        let n1: Vec<Ev> = vec![
            (
                "arn:net",
                "bbb-Net",
                STACK,
                CreateInProgress,
                "arn:net",
                2,
                "",
            ),
            (
                "arn:net",
                "Vpc",
                "AWS::EC2::VPC",
                CreateInProgress,
                "",
                3,
                "",
            ),
        ];
        let mut n2 = n1.clone();
        n2.push((
            "arn:net",
            "Vpc",
            "AWS::EC2::VPC",
            CreateComplete,
            "vpc-1",
            5,
            "",
        ));
        n2.push((
            "arn:net",
            "bbb-Net",
            STACK,
            CreateComplete,
            "arn:net",
            8,
            "",
        ));
        let describe = statuses(vec![
            StackStatus::CreateInProgress,
            StackStatus::CreateInProgress,
            StackStatus::CreateInProgress,
            StackStatus::CreateComplete,
        ]);
        let root_events = events_rule(
            "arn:root",
            vec![events(&r1), events(&r1), events(&r1), events(&r3)],
        );
        let net_events = events_rule("arn:net", vec![events(&n1), events(&n1), events(&n2)]);
        let outcome = run(&[&describe, &root_events, &net_events], Op::Create).await;

        assert!(outcome.succeeded(), "{}", outcome.status);
        let nodes = outcome.tree.nodes();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].label, "Net");
        assert_eq!(nodes[1].status.as_deref(), Some("CREATE_COMPLETE"));
        assert_eq!((nodes[1].done(), nodes[0].done()), (1, 1));
        assert_eq!(describe.num_calls(), 4);
        // the finished nested stack is not read again once its parent recorded the end
        assert_eq!(net_events.num_calls(), 3);
        assert_eq!(outcome.root_cause(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_nested_create_yields_its_root_cause() {
        use ResourceStatus::*;
        let reason = "The CIDR '192.168.1.0/24' is invalid.";
        let root: Vec<Ev> = vec![
            (
                "arn:root",
                "bbb",
                STACK,
                CreateInProgress,
                "arn:root",
                1,
                "User Initiated",
            ),
            ("arn:root", "Net", STACK, CreateInProgress, "arn:net", 2, ""),
            (
                "arn:root",
                "Net",
                STACK,
                CreateFailed,
                "arn:net",
                6,
                "Embedded stack arn:net was not successfully created: The following resource(s) failed to create: [Subnet].",
            ),
            (
                "arn:root",
                "bbb",
                STACK,
                RollbackInProgress,
                "arn:root",
                7,
                "The following resource(s) failed to create: [Net].",
            ),
            (
                "arn:root",
                "bbb",
                STACK,
                RollbackComplete,
                "arn:root",
                9,
                "",
            ),
        ];
        let net: Vec<Ev> = vec![
            (
                "arn:net",
                "bbb-Net",
                STACK,
                CreateInProgress,
                "arn:net",
                2,
                "",
            ),
            (
                "arn:net",
                "Subnet",
                "AWS::EC2::Subnet",
                CreateFailed,
                "",
                4,
                reason,
            ),
            (
                "arn:net",
                "bbb-Net",
                STACK,
                RollbackComplete,
                "arn:net",
                5,
                "",
            ),
        ];
        let describe = statuses(vec![StackStatus::RollbackComplete]);
        let root_events = events_rule("arn:root", vec![events(&root)]);
        let net_events = events_rule("arn:net", vec![events(&net)]);
        let outcome = run(&[&describe, &root_events, &net_events], Op::Create).await;
        assert!(!outcome.succeeded());
        let cause = outcome.root_cause().unwrap();
        assert_eq!(cause.stack_path, vec!["bbb", "Net"]);
        assert_eq!(cause.logical_id, "Subnet");
        assert_eq!(cause.reason, reason);
    }

    #[tokio::test]
    async fn missing_stack_is_none_other_errors_are_errors() {
        let missing = mock!(Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("gone"))
            .then_error(|| {
                DescribeStacksError::generic(meta(
                    "ValidationError",
                    "Stack with id gone does not exist",
                ))
            });
        let denied = mock!(Client::describe_stacks).then_error(|| {
            DescribeStacksError::generic(meta(
                "AccessDenied",
                "User is not authorized to perform: cloudformation:DescribeStacks",
            ))
        });
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&missing, &denied]
        );
        assert!(describe_stack(&client, "gone").await.unwrap().is_none());
        let err = describe_stack(&client, "bbb")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("reading stack bbb: AccessDenied: User is not authorized to perform: cloudformation:DescribeStacks. The credentials lack a permission"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn expired_credentials_say_what_to_do() {
        let expired = mock!(Client::describe_stacks).then_error(|| {
            DescribeStacksError::generic(meta(
                "ExpiredToken",
                "The security token included in the request is expired",
            ))
        });
        let client = mock_client!(aws_sdk_cloudformation, [&expired]);
        let err = describe_stack(&client, "bbb")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Your AWS credentials have expired: refresh them"),
            "{err}"
        );
    }

    /// The first CreateStack went through but its answer was lost; the SDK's retry (or a
    /// service that ignores the token) says the stack exists. Its events carry our token: it
    /// is our operation, followed instead of failing. Someone else's stack is an error.
    fn spec() -> StackSpec<'static> {
        StackSpec {
            name: "bbb",
            template: Template::Url("https://b.s3.us-east-1.amazonaws.com/k".into()),
            params: BTreeMap::new(),
            tags: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_is_followed() {
        use aws_sdk_cloudformation::operation::create_stack::CreateStackError;
        use std::sync::{Arc, Mutex};
        let token = Arc::new(Mutex::new(String::new()));
        let seen = token.clone();
        let create = mock!(Client::create_stack)
            .match_requests(move |r| {
                *seen.lock().unwrap() = r.client_request_token().unwrap_or_default().to_string();
                true
            })
            .then_error(|| {
                CreateStackError::generic(meta(
                    "AlreadyExistsException",
                    "Stack [bbb] already exists",
                ))
            });
        let ours = token.clone();
        let events = mock!(Client::describe_stack_events).then_output(move || {
            DescribeStackEventsOutput::builder()
                .stack_events(
                    SdkEvent::builder()
                        .stack_id("arn:bbb")
                        .event_id("e1")
                        .client_request_token(ours.lock().unwrap().clone())
                        .build(),
                )
                .build()
        });
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&create, &events]
        );
        let spec = spec();
        assert_eq!(
            start_deploy(&client, &spec, false).await.unwrap(),
            Started::Running {
                op: Op::Create,
                stack_id: "arn:bbb".into()
            }
        );
        assert!(token.lock().unwrap().starts_with("bbbctl-create-"));

        // Events with another token: the stack is not ours to follow.
        let others = mock!(Client::describe_stack_events).then_output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(
                    SdkEvent::builder()
                        .stack_id("arn:bbb")
                        .event_id("e1")
                        .client_request_token("Console-CreateStack-1")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&create, &others]
        );
        let err = start_deploy(&client, &spec, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("creating stack bbb: AlreadyExistsException"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn nothing_to_update_is_up_to_date() {
        let rule = mock!(Client::update_stack).then_error(|| {
            UpdateStackError::generic(meta("ValidationError", "No updates are to be performed."))
        });
        let client = mock_client!(aws_sdk_cloudformation, [&rule]);
        let spec = spec();
        assert_eq!(
            start_deploy(&client, &spec, true).await.unwrap(),
            Started::UpToDate
        );
    }
}
