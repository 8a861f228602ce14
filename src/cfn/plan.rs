//! `setup --dry-run`: a change set with nested stacks included shows what an update would add,
//! modify, replace or remove in every stack; the change set is deleted again.

use std::time::Duration;

use anyhow::{Result, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{ChangeSetStatus, ChangeSetType, ResourceChange};

use super::ops::{CAPABILITIES, StackSpec};
use crate::error::AwsContext;

/// One resource change of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    /// Labels from the root stack to the stack holding the resource.
    pub stack_path: Vec<String>,
    pub logical_id: String,
    pub resource_type: String,
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    /// `True`, `False`, `Conditional` (modifications only).
    pub replacement: Option<String>,
}

impl PlannedChange {
    fn from_sdk(path: &[String], rc: &ResourceChange) -> Self {
        PlannedChange {
            stack_path: path.to_vec(),
            logical_id: rc.logical_resource_id().unwrap_or_default().to_string(),
            resource_type: rc.resource_type().unwrap_or_default().to_string(),
            action: rc
                .action()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default(),
            replacement: rc.replacement().map(|r| r.as_str().to_string()),
        }
    }

    fn replaced(&self) -> bool {
        self.action == "Modify" && self.replacement.as_deref() == Some("True")
    }

    fn is_nested_stack(&self) -> bool {
        self.resource_type == super::tree::STACK_TYPE
    }

    /// Single mode's data volume (templates/bbb-servers.yaml `DataVolume`).
    fn is_data_volume(&self) -> bool {
        self.logical_id == "DataVolume" && self.resource_type == "AWS::EC2::Volume"
    }
}

/// What a mode switch does to the single server's data, for the switch's prompt (`own_vpc`:
/// the deployment's VPC is bbbctl's, so the data is on the stack's `DataVolume`, whose
/// DeletionPolicy is Snapshot); `None` unless the switch leaves single mode.
pub fn data_volume_on_switch(from: &str, to: &str, own_vpc: bool) -> Option<String> {
    if from != "single" || to == "single" {
        return None;
    }
    if !own_vpc {
        return Some(
            "\n  ! The single server's data (Greenlight's users and rooms, recordings, the certificate) is on the server's own disk (existing VPC): it is deleted with the server and NOT migrated. Back it up first."
                .to_string(),
        );
    }
    Some(format!(
        "\n  removed: DataVolume (BbbServersStack) — the single server's data volume: Greenlight's users and rooms, recordings, the certificate. \
         CloudFormation snapshots it, then deletes it (DeletionPolicy Snapshot); setup prints the snapshot's id after the switch. \
         Its data is NOT migrated to the {to} deployment (a new Greenlight database and recording store, empty). \
         To get it back: create a volume from the snapshot in the same zone (aws ec2 create-volume --snapshot-id SNAPSHOT --availability-zone ZONE), \
         attach it to an instance there, mount it (ext4, label bbb-data) and copy out: the recordings (the volume's top folder was the server's /var/bigbluebutton), \
         Greenlight's database and files (.bbbctl/root/greenlight-v3), the certificate (.bbbctl/etc/letsencrypt). \
         Switching back to single mode does not restore it: that creates a new, empty data volume."
    ))
}

/// Creates an UPDATE change set for the stack (nested stacks included), collects every change
/// of every nested change set, and deletes the change set whatever happens.
pub async fn plan(cfn: &Client, spec: &StackSpec<'_>) -> Result<Vec<PlannedChange>> {
    let name = format!(
        "bbbctl-plan-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let (body, url) = spec.template_source();
    let created = cfn
        .create_change_set()
        .stack_name(spec.name)
        .change_set_name(&name)
        .change_set_type(ChangeSetType::Update)
        .include_nested_stacks(true)
        .set_template_body(body)
        .set_template_url(url)
        .set_parameters(Some(spec.sdk_params()))
        .set_capabilities(Some(CAPABILITIES.to_vec()))
        .set_tags(Some(spec.sdk_tags()))
        .send()
        .await
        .aws_context(format_args!(
            "creating a change set for stack {}",
            spec.name
        ))?;
    let id = created.id().unwrap_or(&name).to_string();
    let result = collect(cfn, spec.name, &id).await;
    let deleted = cfn
        .delete_change_set()
        .stack_name(spec.name)
        .change_set_name(&id)
        .send()
        .await
        .aws_context(format_args!("deleting change set {name}"));
    let changes = result?;
    deleted?;
    Ok(changes)
}

/// Waits for the change set, then walks it and the change sets of its nested stacks.
async fn collect(cfn: &Client, root: &str, id: &str) -> Result<Vec<PlannedChange>> {
    let mut changes = Vec::new();
    let mut queue = vec![(vec![root.to_string()], id.to_string())];
    while let Some((path, id)) = queue.pop() {
        if !wait_ready(cfn, &id).await? {
            continue; // nothing to change in this stack
        }
        let mut token = None;
        loop {
            let out = cfn
                .describe_change_set()
                .change_set_name(&id)
                .set_next_token(token)
                .send()
                .await
                .aws_context("reading the change set")?;
            for rc in out.changes().iter().filter_map(|c| c.resource_change()) {
                let change = PlannedChange::from_sdk(&path, rc);
                if let (true, Some(child)) = (change.is_nested_stack(), rc.change_set_id()) {
                    let mut child_path = path.clone();
                    child_path.push(change.logical_id.clone());
                    queue.push((child_path, child.to_string()));
                }
                changes.push(change);
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(changes)
}

/// `true` when the change set is ready, `false` when it failed because nothing changes.
async fn wait_ready(cfn: &Client, id: &str) -> Result<bool> {
    let mut pause = Duration::from_millis(500);
    loop {
        let out = cfn
            .describe_change_set()
            .change_set_name(id)
            .send()
            .await
            .aws_context("reading the change set")?;
        match out.status() {
            Some(ChangeSetStatus::CreateComplete) | None => return Ok(true),
            Some(ChangeSetStatus::Failed) => {
                let reason = out.status_reason().unwrap_or_default();
                if reason.contains("didn't contain changes") || reason.contains("No updates") {
                    return Ok(false);
                }
                bail!("CloudFormation could not plan the update: {reason}");
            }
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The plan as text: changes grouped by stack; replacements and removals stand out.
pub fn render(changes: &[PlannedChange]) -> String {
    let mut out = String::new();
    let mut stacks: Vec<&Vec<String>> = Vec::new();
    for c in changes {
        if !stacks.contains(&&c.stack_path) {
            stacks.push(&c.stack_path);
        }
    }
    stacks.sort();
    for path in stacks {
        out.push_str(&format!("  {}\n", path.join(" › ")));
        for c in changes.iter().filter(|c| &c.stack_path == path) {
            let (mark, note) = match c.action.as_str() {
                "Add" => ("+", String::new()),
                "Remove" if c.is_data_volume() => (
                    "-",
                    "   <-- REMOVED after CloudFormation snapshots it (DeletionPolicy Snapshot); its data is not migrated".to_string(),
                ),
                "Remove" => ("-", "   <-- REMOVED (its data goes with it)".to_string()),
                "Modify" if c.replaced() => (
                    "!",
                    "   <-- REPLACED (new resource, old one deleted)".to_string(),
                ),
                "Modify" if c.replacement.as_deref() == Some("Conditional") => {
                    ("~", "   (may be replaced)".to_string())
                }
                "Modify" => ("~", String::new()),
                other => ("?", format!("   ({other})")),
            };
            out.push_str(&format!(
                "    {mark} {} ({}){note}\n",
                c.logical_id, c.resource_type
            ));
        }
    }
    // Every line above is counted, nested stacks too, so the summary agrees with the list.
    let count = |f: &dyn Fn(&PlannedChange) -> bool| changes.iter().filter(|c| f(c)).count();
    let nested = count(&|c| c.is_nested_stack() && c.action == "Modify");
    let nested = if nested > 0 {
        format!(", {nested} of them nested stacks")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "Plan: {} to add, {} to modify ({} replaced{nested}), {} to remove.",
        count(&|c| c.action == "Add"),
        count(&|c| c.action == "Modify"),
        count(&|c| c.replaced()),
        count(&|c| c.action == "Remove"),
    ));
    out
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
    use aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput;
    use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
    use aws_sdk_cloudformation::types::{Change, ChangeAction, Replacement};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::cfn::ops::Template;

    fn change(
        logical: &str,
        kind: &str,
        action: ChangeAction,
        repl: Option<Replacement>,
        cs: Option<&str>,
    ) -> Change {
        Change::builder()
            .resource_change(
                ResourceChange::builder()
                    .logical_resource_id(logical)
                    .resource_type(kind)
                    .action(action)
                    .set_replacement(repl)
                    .set_change_set_id(cs.map(str::to_string))
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn walks_nested_change_sets_and_deletes_the_plan() {
        let create = mock!(Client::create_change_set)
            .match_requests(|r| r.include_nested_stacks() == Some(true))
            .then_output(|| CreateChangeSetOutput::builder().id("cs-root").build());
        let root = mock!(Client::describe_change_set)
            .match_requests(|r| r.change_set_name() == Some("cs-root"))
            .then_output(|| {
                DescribeChangeSetOutput::builder()
                    .status(ChangeSetStatus::CreateComplete)
                    .changes(change(
                        "Servers",
                        "AWS::CloudFormation::Stack",
                        ChangeAction::Modify,
                        None,
                        Some("cs-servers"),
                    ))
                    .changes(change(
                        "Cache",
                        "AWS::CloudFormation::Stack",
                        ChangeAction::Remove,
                        None,
                        None,
                    ))
                    .build()
            });
        let child = mock!(Client::describe_change_set)
            .match_requests(|r| r.change_set_name() == Some("cs-servers"))
            .then_output(|| {
                DescribeChangeSetOutput::builder()
                    .status(ChangeSetStatus::CreateComplete)
                    .changes(change(
                        "Group",
                        "AWS::AutoScaling::AutoScalingGroup",
                        ChangeAction::Modify,
                        Some(Replacement::True),
                        None,
                    ))
                    .changes(change(
                        "Hook",
                        "AWS::AutoScaling::LifecycleHook",
                        ChangeAction::Add,
                        None,
                        None,
                    ))
                    .build()
            });
        let delete = mock!(Client::delete_change_set)
            .match_requests(|r| r.change_set_name() == Some("cs-root"))
            .then_output(|| DeleteChangeSetOutput::builder().build());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&create, &root, &child, &delete]
        );
        let spec = StackSpec {
            name: "bbb",
            template: Template::Url("https://b.s3.us-east-1.amazonaws.com/root.yaml".into()),
            params: Default::default(),
            tags: Vec::new(),
        };
        let changes = plan(&client, &spec).await.unwrap();
        assert_eq!(changes.len(), 4);
        assert_eq!(delete.num_calls(), 1);
        let text = render(&changes);
        assert!(
            text.contains(
                "  bbb › Servers\n    ! Group (AWS::AutoScaling::AutoScalingGroup)   <-- REPLACED"
            ),
            "{text}"
        );
        assert!(
            text.contains("    - Cache (AWS::CloudFormation::Stack)   <-- REMOVED"),
            "{text}"
        );
        assert!(
            text.contains("    + Hook (AWS::AutoScaling::LifecycleHook)"),
            "{text}"
        );
        // The summary counts every line listed: 4 changes, nested stacks included.
        let listed = text
            .lines()
            .filter(|l| {
                ["    + ", "    ~ ", "    ! ", "    - "]
                    .iter()
                    .any(|m| l.starts_with(m))
            })
            .count();
        assert_eq!(listed, 4, "{text}");
        assert!(
            text.ends_with(
                "Plan: 1 to add, 2 to modify (1 replaced, 1 of them nested stacks), 1 to remove."
            ),
            "{text}"
        );
    }

    #[test]
    fn the_data_volume_is_said_to_be_snapshotted_not_migrated() {
        let removed = PlannedChange {
            stack_path: vec!["bbb".into(), "BbbServersStack".into()],
            logical_id: "DataVolume".into(),
            resource_type: "AWS::EC2::Volume".into(),
            action: "Remove".into(),
            replacement: None,
        };
        let text = render(&[removed]);
        assert!(
            text.contains("REMOVED after CloudFormation snapshots it"),
            "{text}"
        );
        let note = data_volume_on_switch("single", "scalable", true).unwrap();
        for said in [
            "snapshots it",
            "NOT migrated",
            "create-volume",
            "does not restore",
        ] {
            assert!(note.contains(said), "{said:?} not in {note}");
        }
        assert!(
            data_volume_on_switch("single", "scalable", false)
                .unwrap()
                .contains("Back it up first")
        );
        assert_eq!(data_volume_on_switch("scalable", "single", true), None);
        assert_eq!(data_volume_on_switch("single", "single", true), None);
    }

    #[tokio::test]
    async fn a_change_set_without_changes_is_an_empty_plan() {
        let create = mock!(Client::create_change_set)
            .then_output(|| CreateChangeSetOutput::builder().id("cs").build());
        let failed = mock!(Client::describe_change_set).then_output(|| {
            DescribeChangeSetOutput::builder()
                .status(ChangeSetStatus::Failed)
                .status_reason("The submitted information didn't contain changes. Submit different information to create a change set.")
                .build()
        });
        let delete = mock!(Client::delete_change_set)
            .then_output(|| DeleteChangeSetOutput::builder().build());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&create, &failed, &delete]
        );
        let spec = StackSpec {
            name: "bbb",
            template: Template::Body("{}".into()),
            params: Default::default(),
            tags: Vec::new(),
        };
        assert!(plan(&client, &spec).await.unwrap().is_empty());
        assert_eq!(delete.num_calls(), 1);
    }
}
