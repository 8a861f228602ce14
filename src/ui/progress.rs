#![allow(clippy::print_stdout, clippy::print_stderr)]
//! Progress of a stack operation: one line per stack (status, resources done / total, elapsed
//! time), as live indicatif lines on a terminal or as plain timestamped lines otherwise.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cfn::tree::{Op, StackEvent, StackNode, StackTree};

pub enum Progress {
    /// Draws nothing (for reading events without showing them).
    Hidden,
    Live {
        multi: MultiProgress,
        bars: HashMap<usize, ProgressBar>,
        _quiet_ctrl_c: QuietCtrlC,
    },
    Plain {
        to_stderr: bool,
        /// What was last printed per stack, so unchanged stacks print nothing.
        last: HashMap<usize, (Option<String>, usize)>,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `HH:MM:SS` (UTC) of a time in ms since the epoch.
fn clock(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `4s`, `2m05s`, `1h02m`.
pub fn format_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

/// One stack's line: indented name, status, resources done / total, elapsed time.
pub fn stack_line(tree: &StackTree, node: &StackNode, now_ms: i64) -> String {
    let name = format!("{}{}", "  ".repeat(node.depth), node.label);
    let status = node.status.as_deref().unwrap_or("PENDING");
    let counts = format!("{}/{}", node.settled(tree.op), node.total(tree.op));
    format!(
        "{name:<28} {status:<36} {counts:>7}  {}",
        format_duration(node.elapsed_ms(now_ms))
    )
}

fn failure_line(tree: &StackTree, idx: usize, e: &StackEvent) -> String {
    if tree.op == crate::cfn::tree::Op::Update && e.status == "DELETE_FAILED" {
        // An update's clean-up: CloudFormation skips the delete and goes on.
        return format!(
            "{}  ! {} ({}) {}: {} (the update goes on: CloudFormation leaves this resource in the account)",
            tree.nodes()[idx].label,
            e.logical_id,
            e.resource_type,
            e.status,
            e.reason.as_deref().unwrap_or("(no reason given)")
        );
    }
    format!(
        "{}  ✖ {} ({}) {}: {}",
        tree.nodes()[idx].label,
        e.logical_id,
        e.resource_type,
        e.status,
        e.reason.as_deref().unwrap_or("(no reason given)")
    )
}

impl Progress {
    pub fn live() -> Self {
        Progress::Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: HashMap::new(),
            _quiet_ctrl_c: QuietCtrlC::new(),
        }
    }

    pub fn plain(to_stderr: bool) -> Self {
        Progress::Plain {
            to_stderr,
            last: HashMap::new(),
        }
    }

    fn say(to_stderr: bool, line: &str) {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    /// A new event was applied to stack `idx`: failures are printed at once, with their reason.
    pub fn event(&mut self, tree: &StackTree, idx: usize, e: &StackEvent) {
        if !e.is_failure() || e.is_stack_itself() {
            return;
        }
        let line = failure_line(tree, idx, e);
        match self {
            Progress::Hidden => {}
            Progress::Live { multi, .. } => {
                let _ = multi.println(line);
            }
            Progress::Plain { to_stderr, .. } => {
                Self::say(*to_stderr, &format!("[{}] {line}", clock(e.timestamp_ms)));
            }
        }
    }

    /// Redraws every stack's line (live) or prints the lines that changed (plain).
    pub fn draw(&mut self, tree: &StackTree) {
        let now = now_ms();
        match self {
            Progress::Hidden => {}
            Progress::Live { multi, bars, .. } => {
                for idx in tree.display_order() {
                    let node = &tree.nodes()[idx];
                    let bar = bars.entry(idx).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner:.cyan} {msg}")
                                .expect("valid template")
                                .tick_strings(&[
                                    "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", "■",
                                ]),
                        );
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    });
                    bar.set_message(stack_line(tree, node, now));
                    if node.is_finished() && !bar.is_finished() {
                        freeze(bar, tree.op, node.status.as_deref());
                    }
                }
            }
            Progress::Plain { to_stderr, last } => {
                for idx in tree.display_order() {
                    let node = &tree.nodes()[idx];
                    let key = (node.status.clone(), node.done());
                    if last.get(&idx) != Some(&key) {
                        last.insert(idx, key);
                        Self::say(
                            *to_stderr,
                            &format!("[{}] {}", clock(now), stack_line(tree, node, now)),
                        );
                    }
                }
            }
        }
    }

    /// Between polls: live lines redraw (their elapsed times tick); plain lines print nothing.
    pub fn tick(&mut self, tree: &StackTree) {
        if matches!(self, Progress::Live { .. }) {
            self.draw(tree);
        }
    }

    /// bbbctl stops waiting (Ctrl-C): the live lines of unfinished stacks are replaced by
    /// plain ones marked `■` (no spinner glyph is left behind).
    pub fn abandon(&mut self, tree: &StackTree) {
        if let Progress::Live { multi, bars, .. } = self {
            let now = now_ms();
            let mut frozen = Vec::new();
            for idx in tree.display_order() {
                if let Some(bar) = bars.get(&idx)
                    && !bar.is_finished()
                {
                    bar.finish_and_clear();
                    frozen.push(format!("■ {}", stack_line(tree, &tree.nodes()[idx], now)));
                }
            }
            let _ = multi.clear();
            for line in frozen {
                println!("{line}");
            }
        }
    }

    /// The operation ended: freeze the live lines, each marked by its stack's own last status
    /// (a stack whose end was not seen keeps its status, marked `■`, never `✔`).
    pub fn finish(&mut self, tree: &StackTree) {
        self.draw(tree);
        if let Progress::Live { bars, .. } = self {
            for (idx, bar) in bars.iter() {
                if !bar.is_finished() {
                    freeze(bar, tree.op, tree.nodes()[*idx].status.as_deref());
                }
            }
        }
    }
}

/// The mark a stack's frozen line carries: `✔` for a successful end, `✖` for a failed one,
/// `■` for a stack still (or last seen) in progress, `!` for a nested stack an update removed
/// but could not delete (CloudFormation skips it and completes the update).
pub fn end_mark(op: Op, status: Option<&str>) -> &'static str {
    match status.unwrap_or_default() {
        s if s.ends_with("_IN_PROGRESS") || s.is_empty() => "■",
        s if s.ends_with("_COMPLETE") && !s.contains("ROLLBACK") => "✔",
        "DELETE_FAILED" if op == Op::Update => "!",
        _ => "✖",
    }
}

fn freeze(bar: &ProgressBar, op: Op, status: Option<&str>) {
    let template = match end_mark(op, status) {
        "!" => "! {msg:.yellow}".to_string(),
        "✖" => "✖ {msg:.red}".to_string(),
        mark => format!("{mark} {{msg}}"),
    };
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
    bar.finish();
}

/// While live lines are drawn, the terminal does not echo `^C` (ECHOCTL): the echo would move
/// the cursor under indicatif's feet and leave a stale spinner line behind on Ctrl-C. The
/// terminal's setting comes back when the progress ends (drop).
pub struct QuietCtrlC {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl QuietCtrlC {
    #[cfg(unix)]
    fn new() -> Self {
        // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed, then filled termios.
        unsafe {
            let fd = libc::STDIN_FILENO;
            let mut t: libc::termios = std::mem::zeroed();
            if libc::isatty(fd) != 1 || libc::tcgetattr(fd, &mut t) != 0 {
                return QuietCtrlC { saved: None };
            }
            let saved = t;
            t.c_lflag &= !libc::ECHOCTL;
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            QuietCtrlC { saved: Some(saved) }
        }
    }

    #[cfg(not(unix))]
    fn new() -> Self {
        QuietCtrlC {}
    }
}

impl Drop for QuietCtrlC {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `new` on the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn a_line_is_marked_done_only_when_its_stack_is() {
        use super::end_mark;
        use crate::cfn::tree::Op::{Delete, Update};
        assert_eq!(end_mark(Update, Some("UPDATE_COMPLETE")), "✔");
        assert_eq!(end_mark(Delete, Some("DELETE_COMPLETE")), "✔");
        assert_eq!(end_mark(Update, Some("UPDATE_IN_PROGRESS")), "■");
        assert_eq!(
            end_mark(Update, Some("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")),
            "■"
        );
        assert_eq!(end_mark(Update, None), "■");
        assert_eq!(end_mark(Update, Some("UPDATE_ROLLBACK_COMPLETE")), "✖");
        assert_eq!(end_mark(Delete, Some("DELETE_FAILED")), "✖");
        // An update's clean-up that could not delete a removed nested stack goes on.
        assert_eq!(end_mark(Update, Some("DELETE_FAILED")), "!");
    }

    use super::*;
    use crate::cfn::tree::Op;
    use crate::cfn::tree::tests::{ev, stack_ev};

    #[test]
    fn durations() {
        assert_eq!(format_duration(4_200), "4s");
        assert_eq!(format_duration(125_000), "2m05s");
        assert_eq!(format_duration(3_720_000), "1h02m");
        assert_eq!(clock(13 * 3_600_000 + 5 * 60_000 + 7_000), "13:05:07");
    }

    #[test]
    fn lines_show_status_counts_and_time() {
        let mut tree = StackTree::new(Op::Create, "bbb", "bbb", Some(3), BTreeMap::new());
        tree.apply(0, &stack_ev("bbb", "CREATE_IN_PROGRESS", 0, None));
        tree.apply(
            0,
            &ev(
                "bbb",
                "Net",
                "AWS::CloudFormation::Stack",
                "CREATE_IN_PROGRESS",
                Some("arn:n"),
                1000,
                None,
            ),
        );
        let line = stack_line(&tree, tree.root(), 65_000);
        assert!(line.starts_with("bbb "), "{line}");
        assert!(line.contains("CREATE_IN_PROGRESS"), "{line}");
        assert!(line.contains("0/3"), "{line}");
        assert!(line.ends_with("1m05s"), "{line}");
        let child = stack_line(&tree, &tree.nodes()[1], 65_000);
        assert!(child.starts_with("  Net "), "{child}");
        // shown as soon as the parent starts it, in the parent's words
        assert!(child.contains("CREATE_IN_PROGRESS"), "{child}");
        let e = ev(
            "bbb",
            "Vpc",
            "AWS::EC2::VPC",
            "CREATE_FAILED",
            None,
            2,
            Some("bad cidr"),
        );
        assert_eq!(
            failure_line(&tree, 0, &e),
            "bbb  ✖ Vpc (AWS::EC2::VPC) CREATE_FAILED: bad cidr"
        );
    }

    /// An update whose clean-up cannot delete a resource: CloudFormation skips it and the
    /// update completes. The line says so (no ✖), and the end names what was left.
    #[test]
    fn a_delete_skipped_by_an_update_is_explained_not_alarming() {
        let mut tree = StackTree::new(Op::Update, "bbb", "bbb", Some(2), BTreeMap::new());
        tree.apply(0, &stack_ev("bbb", "UPDATE_IN_PROGRESS", 0, None));
        let e = ev(
            "bbb",
            "OldGroup",
            "AWS::EC2::SecurityGroup",
            "DELETE_FAILED",
            Some("sg-123"),
            2,
            Some("resource sg-123 has a dependent object"),
        );
        tree.apply(0, &e);
        let line = failure_line(&tree, 0, &e);
        assert!(!line.contains('✖'), "{line}");
        assert!(
            line.contains("! OldGroup (AWS::EC2::SecurityGroup) DELETE_FAILED"),
            "{line}"
        );
        assert!(line.contains("the update goes on"), "{line}");
        tree.apply(
            0,
            &stack_ev("bbb", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", 3, None),
        );
        tree.apply(0, &stack_ev("bbb", "UPDATE_COMPLETE", 4, None));
        let outcome = crate::cfn::ops::Outcome {
            status: "UPDATE_COMPLETE".into(),
            tree,
        };
        let note = outcome.skipped_deletes_note().expect("a note");
        assert!(
            note.contains("could not delete 1 resource(s)")
                && note.contains("OldGroup (AWS::EC2::SecurityGroup) sg-123 in stack bbb"),
            "{note}"
        );
        // A failed update or a delete is not "skipped": its failure is the error.
        let failed = crate::cfn::ops::Outcome {
            status: "UPDATE_ROLLBACK_COMPLETE".into(),
            tree: outcome.tree.clone(),
        };
        assert!(failed.skipped_deletes().is_empty());
    }
}
