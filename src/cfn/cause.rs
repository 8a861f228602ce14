//! Root cause of a failed operation: the earliest `*_FAILED` event of the deepest nested stack
//! that failed, instead of "Embedded stack … was not successfully created".

use super::tree::{StackEvent, StackTree};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCause {
    /// Labels from the root to the stack holding the failed resource.
    pub stack_path: Vec<String>,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: String,
}

impl std::fmt::Display for RootCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) in stack {}: {} — {}",
            self.logical_id,
            self.resource_type,
            self.stack_path.join(" › "),
            self.status,
            self.reason
        )
    }
}

/// Failures that only follow from another one.
fn is_consequence(e: &StackEvent) -> bool {
    let r = e.reason.as_deref().unwrap_or("");
    r.contains("Resource creation cancelled")
        || r.contains("Resource update cancelled")
        || r.contains("Resource deletion cancelled")
}

pub fn root_cause(tree: &StackTree) -> Option<RootCause> {
    let nodes = tree.nodes();
    let mut idx = 0;
    let mut path = vec![nodes[0].label.clone()];
    loop {
        let node = &nodes[idx];
        let resource_failures: Vec<&StackEvent> = node
            .failures
            .iter()
            .filter(|e| !e.is_stack_itself())
            .collect();
        let earliest = |only_primary: bool| {
            resource_failures
                .iter()
                .filter(|e| !only_primary || !is_consequence(e))
                .min_by_key(|e| e.timestamp_ms)
                .copied()
        };
        let pick = earliest(true).or_else(|| earliest(false));
        let Some(event) = pick else {
            // Only the stack itself failed (e.g. a template error): report that.
            let own = node.failures.iter().find(|e| e.reason.is_some())?;
            return Some(cause(path, own));
        };
        let failed_child = nodes.iter().position(|n| {
            n.parent == Some(idx) && n.label == event.logical_id && !n.failures.is_empty()
        });
        match failed_child {
            Some(child) => {
                idx = child;
                path.push(nodes[child].label.clone());
            }
            None => return Some(cause(path, event)),
        }
    }
}

fn cause(stack_path: Vec<String>, e: &StackEvent) -> RootCause {
    RootCause {
        stack_path,
        logical_id: e.logical_id.clone(),
        resource_type: e.resource_type.clone(),
        status: e.status.clone(),
        reason: e
            .reason
            .clone()
            .unwrap_or_else(|| "(no reason given)".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cfn::tree::tests::{ev, stack_ev};
    use crate::cfn::tree::{Op, STACK_TYPE};

    const EMBEDDED: &str = "Embedded stack arn:bbb-Servers was not successfully created: The following resource(s) failed to create: [Group].";

    /// root ─ Network (ok), Servers ─ Group fails; Secret cancelled as a consequence.
    fn failed_tree() -> StackTree {
        let mut t = StackTree::new(Op::Create, "bbb", "bbb", None, BTreeMap::new());
        t.apply(0, &stack_ev("bbb", "CREATE_IN_PROGRESS", 1, None));
        t.apply(
            0,
            &ev(
                "bbb",
                "Network",
                STACK_TYPE,
                "CREATE_COMPLETE",
                Some("arn:bbb-Network"),
                2,
                None,
            ),
        );
        t.apply(
            0,
            &ev(
                "bbb",
                "Servers",
                STACK_TYPE,
                "CREATE_IN_PROGRESS",
                Some("arn:bbb-Servers"),
                3,
                None,
            ),
        );
        t.apply(2, &stack_ev("bbb-Servers", "CREATE_IN_PROGRESS", 3, None));
        t.apply(
            2,
            &ev(
                "bbb-Servers",
                "Role",
                "AWS::IAM::Role",
                "CREATE_COMPLETE",
                Some("r"),
                4,
                None,
            ),
        );
        t.apply(
            2,
            &ev(
                "bbb-Servers",
                "Group",
                "AWS::AutoScaling::AutoScalingGroup",
                "CREATE_FAILED",
                None,
                5,
                Some("Subnet not found"),
            ),
        );
        t.apply(
            2,
            &ev(
                "bbb-Servers",
                "Extra",
                "AWS::SNS::Topic",
                "CREATE_FAILED",
                None,
                5,
                Some("Resource creation cancelled"),
            ),
        );
        t.apply(
            2,
            &stack_ev(
                "bbb-Servers",
                "ROLLBACK_COMPLETE",
                7,
                Some("The following resource(s) failed to create: [Group]."),
            ),
        );
        t.apply(
            0,
            &ev(
                "bbb",
                "Secret",
                "AWS::SecretsManager::Secret",
                "CREATE_FAILED",
                None,
                8,
                Some("Resource creation cancelled"),
            ),
        );
        t.apply(
            0,
            &ev(
                "bbb",
                "Servers",
                STACK_TYPE,
                "CREATE_FAILED",
                Some("arn:bbb-Servers"),
                6,
                Some(EMBEDDED),
            ),
        );
        t.apply(
            0,
            &stack_ev(
                "bbb",
                "ROLLBACK_COMPLETE",
                9,
                Some("The following resource(s) failed to create: [Servers, Secret]."),
            ),
        );
        t
    }

    #[test]
    fn deepest_earliest_failure() {
        let c = root_cause(&failed_tree()).unwrap();
        assert_eq!(c.stack_path, vec!["bbb", "Servers"]);
        assert_eq!(c.logical_id, "Group");
        assert_eq!(c.resource_type, "AWS::AutoScaling::AutoScalingGroup");
        assert_eq!(c.status, "CREATE_FAILED");
        assert_eq!(c.reason, "Subnet not found");
        assert!(
            c.to_string()
                .contains("Group (AWS::AutoScaling::AutoScalingGroup) in stack bbb › Servers")
        );
    }

    #[test]
    fn child_events_unknown_falls_back_to_parent_event() {
        let mut t = StackTree::new(Op::Create, "bbb", "bbb", None, BTreeMap::new());
        t.apply(
            0,
            &ev(
                "bbb",
                "Servers",
                STACK_TYPE,
                "CREATE_FAILED",
                Some("arn:x"),
                6,
                Some(EMBEDDED),
            ),
        );
        let c = root_cause(&t).unwrap();
        assert_eq!(
            (c.logical_id.as_str(), c.reason.as_str()),
            ("Servers", EMBEDDED)
        );
    }

    #[test]
    fn stack_level_failure_only() {
        let mut t = StackTree::new(Op::Update, "bbb", "bbb", None, BTreeMap::new());
        t.apply(
            0,
            &stack_ev(
                "bbb",
                "UPDATE_ROLLBACK_FAILED",
                1,
                Some("Template error: bad ref"),
            ),
        );
        let c = root_cause(&t).unwrap();
        assert_eq!(c.reason, "Template error: bad ref");
        assert_eq!(c.stack_path, vec!["bbb"]);
    }

    #[test]
    fn no_failure_no_cause() {
        let mut t = StackTree::new(Op::Create, "bbb", "bbb", None, BTreeMap::new());
        t.apply(0, &stack_ev("bbb", "CREATE_COMPLETE", 1, None));
        assert_eq!(root_cause(&t), None);
    }

    #[test]
    fn earlier_root_resource_beats_later_child() {
        let mut t = failed_tree();
        t.apply(
            0,
            &ev(
                "bbb",
                "Bucket",
                "AWS::S3::Bucket",
                "CREATE_FAILED",
                None,
                2,
                Some("name taken"),
            ),
        );
        let c = root_cause(&t).unwrap();
        assert_eq!((c.logical_id.as_str(), c.stack_path.len()), ("Bucket", 1));
    }
}
