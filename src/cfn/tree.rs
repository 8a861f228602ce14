//! Pure model of a stack operation: the root stack and every nested stack found in its events,
//! each with its status, timing and resources. Fed one event at a time; no I/O, table-tested.

use std::collections::BTreeMap;

/// A stack event, as far as bbbctl cares (decoupled from the SDK type for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEvent {
    pub id: String,
    pub stack_id: String,
    pub stack_name: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
    /// Milliseconds since the Unix epoch (server time).
    pub timestamp_ms: i64,
}

pub const STACK_TYPE: &str = "AWS::CloudFormation::Stack";

impl StackEvent {
    /// An event about the stack itself rather than one of its resources.
    pub fn is_stack_itself(&self) -> bool {
        self.physical_id.as_deref() == Some(self.stack_id.as_str())
            || (self.logical_id == self.stack_name && self.resource_type == STACK_TYPE)
    }

    pub fn is_failure(&self) -> bool {
        self.status.ends_with("_FAILED")
    }
}

/// True for a status CloudFormation will not leave by itself.
pub fn is_terminal(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// What the operation is, which decides the status that counts as success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn success_status(self) -> &'static str {
        match self {
            Op::Create => "CREATE_COMPLETE",
            Op::Update => "UPDATE_COMPLETE",
            Op::Delete => "DELETE_COMPLETE",
        }
    }

    /// `creating`, `updating`, `deleting`.
    pub fn verb_ing(self) -> &'static str {
        match self {
            Op::Create => "creating",
            Op::Update => "updating",
            Op::Delete => "deleting",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StackNode {
    /// Root: the stack name; nested: the logical id in its parent.
    pub label: String,
    /// What the events are read with: the stack id (ARN) where known, else the name.
    pub id: String,
    pub parent: Option<usize>,
    pub depth: usize,
    /// Latest status of the stack itself.
    pub status: Option<String>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// Latest status of each resource, by logical id.
    pub resources: BTreeMap<String, String>,
    /// Resources the template declares (the progress total), where known.
    pub expected: Option<usize>,
    /// Every `*_FAILED` event, in order.
    pub failures: Vec<StackEvent>,
}

impl StackNode {
    fn new(
        label: &str,
        id: &str,
        parent: Option<usize>,
        depth: usize,
        expected: Option<usize>,
    ) -> Self {
        StackNode {
            label: label.to_string(),
            id: id.to_string(),
            parent,
            depth,
            status: None,
            first_ms: None,
            last_ms: None,
            resources: BTreeMap::new(),
            expected,
            failures: Vec::new(),
        }
    }

    /// Resources that reached a `*_COMPLETE` state.
    pub fn done(&self) -> usize {
        self.resources
            .values()
            .filter(|s| s.ends_with("_COMPLETE"))
            .count()
    }

    /// The progress total: what the template declares where known, else what was seen. A
    /// finished create or delete counts what it touched.
    pub fn total(&self, op: Op) -> usize {
        let seen = self.resources.len();
        match (op, self.expected) {
            (Op::Update, Some(n)) => n.max(seen),
            (_, Some(n)) if !self.is_finished() => n.max(seen),
            _ => seen,
        }
    }

    /// Resources in a settled state: `*_COMPLETE` ones, and in an update also those the update
    /// has not touched (they stay as they are), so an update reads e.g. `37/40` while three
    /// resources change.
    pub fn settled(&self, op: Op) -> usize {
        let done = self.done();
        match (op, self.expected) {
            (Op::Update, Some(n)) => done + n.saturating_sub(self.resources.len()),
            _ => done,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.status.as_deref().is_some_and(is_terminal)
    }

    /// Elapsed milliseconds from the first event to the last one (finished) or `now_ms`.
    pub fn elapsed_ms(&self, now_ms: i64) -> i64 {
        match self.first_ms {
            None => 0,
            Some(first) => {
                let end = if self.is_finished() {
                    self.last_ms.unwrap_or(first)
                } else {
                    now_ms.max(first)
                };
                end - first
            }
        }
    }
}

/// What applying an event changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub changed: bool,
    /// Index of a nested stack seen for the first time (its events are to be read too).
    pub new_child: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct StackTree {
    pub op: Op,
    /// The bbbctl deployment the root stack belongs to, when it is not the root's own name
    /// (the `-sources` stack): what a hint tells the user to pass to `-s`.
    pub deployment: Option<String>,
    nodes: Vec<StackNode>,
    /// Resource counts of nested stacks by logical id (from the templates).
    expected_children: BTreeMap<String, usize>,
}

impl StackTree {
    pub fn new(
        op: Op,
        root_label: &str,
        root_id: &str,
        root_expected: Option<usize>,
        expected_children: BTreeMap<String, usize>,
    ) -> Self {
        StackTree {
            op,
            deployment: None,
            nodes: vec![StackNode::new(root_label, root_id, None, 0, root_expected)],
            expected_children,
        }
    }

    pub fn nodes(&self) -> &[StackNode] {
        &self.nodes
    }

    pub fn root(&self) -> &StackNode {
        &self.nodes[0]
    }

    /// The operation began at `ms` (e.g. before bbbctl attached to it): elapsed times count
    /// from there.
    pub fn set_started(&mut self, ms: i64) {
        let root = &mut self.nodes[0];
        root.first_ms = Some(root.first_ms.map_or(ms, |f| f.min(ms)));
    }

    /// Sets the root's status from DescribeStacks (authoritative where events lag).
    pub fn set_root_status(&mut self, status: &str) -> bool {
        let root = &mut self.nodes[0];
        if root.status.as_deref() == Some(status) {
            return false;
        }
        root.status = Some(status.to_string());
        true
    }

    /// The node whose events are read with `id`.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// Applies one event read from the events of node `idx`.
    pub fn apply(&mut self, idx: usize, ev: &StackEvent) -> Applied {
        let mut applied = Applied {
            changed: true,
            new_child: None,
        };
        let node = &mut self.nodes[idx];
        node.first_ms = Some(
            node.first_ms
                .map_or(ev.timestamp_ms, |f| f.min(ev.timestamp_ms)),
        );
        node.last_ms = Some(
            node.last_ms
                .map_or(ev.timestamp_ms, |l| l.max(ev.timestamp_ms)),
        );
        if ev.is_failure() {
            node.failures.push(ev.clone());
        }
        if ev.is_stack_itself() {
            node.status = Some(ev.status.clone());
            return applied;
        }
        node.resources
            .insert(ev.logical_id.clone(), ev.status.clone());

        if ev.resource_type != STACK_TYPE {
            return applied;
        }
        // A nested stack is shown from its parent's first event about it; its own events are
        // read once its id (the physical id) is known.
        let physical = ev.physical_id.as_deref().unwrap_or_default();
        let depth = self.nodes[idx].depth + 1;
        let child = match self
            .nodes
            .iter()
            .position(|n| n.parent == Some(idx) && n.label == ev.logical_id)
        {
            Some(child) => child,
            None => {
                let expected = self.expected_children.get(&ev.logical_id).copied();
                self.nodes.push(StackNode::new(
                    &ev.logical_id,
                    "",
                    Some(idx),
                    depth,
                    expected,
                ));
                self.nodes.len() - 1
            }
        };
        let node = &mut self.nodes[child];
        node.first_ms.get_or_insert(ev.timestamp_ms);
        let own_events_tell = !physical.is_empty() || !node.id.is_empty();
        if !(own_events_tell && is_terminal(&ev.status))
            && (node.id.is_empty() || node.status.is_none())
        {
            // Until its own events arrive, the parent's view of it is all there is; that it
            // ended, only its own events say (they hold the cause of a failure).
            node.status = Some(ev.status.clone());
        }
        if !physical.is_empty() && node.id != physical {
            // New, or replaced: follow this one.
            node.id = physical.to_string();
            applied.new_child = Some(child);
        }
        applied
    }

    /// Nodes in display order: each stack followed by its nested stacks.
    pub fn display_order(&self) -> Vec<usize> {
        fn walk(tree: &StackTree, idx: usize, out: &mut Vec<usize>) {
            out.push(idx);
            for (i, n) in tree.nodes.iter().enumerate() {
                if n.parent == Some(idx) {
                    walk(tree, i, out);
                }
            }
        }
        let mut out = Vec::with_capacity(self.nodes.len());
        walk(self, 0, &mut out);
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an event; `stack` is the stack the event belongs to.
    pub(crate) fn ev(
        stack: &str,
        logical: &str,
        kind: &str,
        status: &str,
        physical: Option<&str>,
        t: i64,
        reason: Option<&str>,
    ) -> StackEvent {
        StackEvent {
            id: format!("{stack}-{logical}-{status}-{t}"),
            stack_id: format!("arn:{stack}"),
            stack_name: stack.to_string(),
            logical_id: logical.to_string(),
            physical_id: physical.map(str::to_string),
            resource_type: kind.to_string(),
            status: status.to_string(),
            reason: reason.map(str::to_string),
            timestamp_ms: t,
        }
    }

    pub(crate) fn stack_ev(stack: &str, status: &str, t: i64, reason: Option<&str>) -> StackEvent {
        let arn = format!("arn:{stack}");
        ev(stack, stack, STACK_TYPE, status, Some(&arn), t, reason)
    }

    #[test]
    fn root_and_children_from_events() {
        let mut expected = BTreeMap::new();
        expected.insert("Network".to_string(), 5);
        let mut tree = StackTree::new(Op::Create, "bbb", "bbb", Some(3), expected);
        let table = [
            (
                0,
                stack_ev("bbb", "CREATE_IN_PROGRESS", 1000, Some("User Initiated")),
                None,
            ),
            (
                0,
                ev(
                    "bbb",
                    "Network",
                    STACK_TYPE,
                    "CREATE_IN_PROGRESS",
                    None,
                    1100,
                    None,
                ),
                None,
            ),
            (
                0,
                ev(
                    "bbb",
                    "Network",
                    STACK_TYPE,
                    "CREATE_IN_PROGRESS",
                    Some("arn:bbb-Network"),
                    1200,
                    Some("Resource creation Initiated"),
                ),
                Some(1),
            ),
            (
                0,
                ev(
                    "bbb",
                    "Secret",
                    "AWS::SecretsManager::Secret",
                    "CREATE_COMPLETE",
                    Some("arn:secret"),
                    1300,
                    None,
                ),
                None,
            ),
            (
                1,
                stack_ev("bbb-Network", "CREATE_IN_PROGRESS", 1250, None),
                None,
            ),
            (
                1,
                ev(
                    "bbb-Network",
                    "Vpc",
                    "AWS::EC2::VPC",
                    "CREATE_COMPLETE",
                    Some("vpc-1"),
                    1400,
                    None,
                ),
                None,
            ),
        ];
        for (idx, e, new_child) in &table {
            assert_eq!(tree.apply(*idx, e).new_child, *new_child, "{e:?}");
        }
        let root = tree.root();
        assert_eq!(root.status.as_deref(), Some("CREATE_IN_PROGRESS"));
        assert_eq!(root.done(), 1);
        assert_eq!(root.total(Op::Create), 3);
        let net = &tree.nodes()[1];
        assert_eq!(
            (net.label.as_str(), net.id.as_str(), net.depth),
            ("Network", "arn:bbb-Network", 1)
        );
        assert_eq!((net.done(), net.total(Op::Create)), (1, 5));
        // counted from the parent's first event about it (it shows from then on)
        assert_eq!(net.elapsed_ms(2250), 1150);
        assert_eq!(tree.display_order(), vec![0, 1]);

        // finishing: total collapses to what exists, elapsed freezes
        tree.apply(1, &stack_ev("bbb-Network", "CREATE_COMPLETE", 1500, None));
        let net = &tree.nodes()[1];
        assert!(net.is_finished());
        assert_eq!(net.total(Op::Create), 1);
        assert_eq!(net.elapsed_ms(99_999), 400);
    }

    #[test]
    fn replaced_child_is_followed_and_failures_kept() {
        let mut tree = StackTree::new(Op::Update, "bbb", "bbb", None, BTreeMap::new());
        tree.apply(
            0,
            &ev(
                "bbb",
                "Net",
                STACK_TYPE,
                "UPDATE_IN_PROGRESS",
                Some("arn:a"),
                1,
                None,
            ),
        );
        let a = tree.apply(
            0,
            &ev(
                "bbb",
                "Net",
                STACK_TYPE,
                "UPDATE_IN_PROGRESS",
                Some("arn:b"),
                2,
                None,
            ),
        );
        assert_eq!(a.new_child, Some(1));
        assert_eq!(tree.nodes().len(), 2);
        assert_eq!(tree.nodes()[1].id, "arn:b");
        tree.apply(
            0,
            &ev(
                "bbb",
                "Net",
                STACK_TYPE,
                "UPDATE_FAILED",
                Some("arn:b"),
                3,
                Some("boom"),
            ),
        );
        assert_eq!(tree.root().failures.len(), 1);
        assert_eq!(tree.find("arn:b"), Some(1));
    }

    #[test]
    fn updates_count_settled_resources_and_attach_counts_from_the_start() {
        let children = BTreeMap::from([("Net".to_string(), 5)]);
        let mut tree = StackTree::new(Op::Update, "bbb", "arn:bbb", Some(4), children);
        // Attached to an update that began at t = 1 s; the first event read is at 9 s.
        tree.set_started(1_000);
        tree.apply(0, &stack_ev("bbb", "UPDATE_IN_PROGRESS", 9_000, None));
        assert_eq!(tree.root().elapsed_ms(10_000), 9_000);
        // Untouched resources are settled: 4/4 before anything changes, 3/4 while one does.
        assert_eq!(
            (
                tree.root().settled(Op::Update),
                tree.root().total(Op::Update)
            ),
            (4, 4)
        );
        let started = tree.apply(
            0,
            &ev(
                "bbb",
                "Net",
                STACK_TYPE,
                "UPDATE_IN_PROGRESS",
                None,
                9_500,
                None,
            ),
        );
        assert_eq!(started.new_child, None, "no id yet: nothing to read");
        assert_eq!(tree.root().settled(Op::Update), 3);
        // The nested stack shows at once, in its parent's words, before its id is known.
        let net = &tree.nodes()[1];
        assert_eq!(
            (net.label.as_str(), net.id.as_str(), net.status.as_deref()),
            ("Net", "", Some("UPDATE_IN_PROGRESS"))
        );
        assert_eq!((net.settled(Op::Update), net.total(Op::Update)), (5, 5));
        let id = tree.apply(
            0,
            &ev(
                "bbb",
                "Net",
                STACK_TYPE,
                "UPDATE_IN_PROGRESS",
                Some("arn:net"),
                9_600,
                None,
            ),
        );
        assert_eq!(id.new_child, Some(1), "its events are read from now on");
        assert_eq!(tree.nodes()[1].id, "arn:net");
        tree.apply(
            0,
            &ev(
                "bbb",
                "Net",
                STACK_TYPE,
                "UPDATE_COMPLETE",
                Some("arn:net"),
                9_900,
                None,
            ),
        );
        assert_eq!(tree.root().settled(Op::Update), 4);
    }

    #[test]
    fn terminal_statuses() {
        for s in [
            "CREATE_COMPLETE",
            "ROLLBACK_COMPLETE",
            "UPDATE_ROLLBACK_FAILED",
            "DELETE_FAILED",
        ] {
            assert!(is_terminal(s), "{s}");
        }
        for s in [
            "CREATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "ROLLBACK_IN_PROGRESS",
        ] {
            assert!(!is_terminal(s), "{s}");
        }
    }
}
