//! A stand-in for the deployment's registrar, as far as a server's drain goes (the Lambda
//! function does not run on the emulator, templates/scripts/bbb_registrar.py). On AWS the
//! registrar runs beside every scalable deployment's servers; here one stand-in runs per test
//! process, started by `common::account` (so every test that deploys has it) and watching
//! every group of the emulator. Like the registrar, it ends the drain of each instance a
//! group holds in `Terminating:Wait` (CompleteLifecycleAction CONTINUE on hook `bbb-drain`,
//! which emulator patch 33 holds instances in) and writes its account on the instance's
//! `bbbctl:drain` tag (issue 26's contract, §3), only when it changes. A test may say a
//! server is still busy (`hold`): it then stays in its drain, tagged "waiting since …", until
//! the test lets it go (`release`). Every handle shares the one stand-in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const DRAIN_HOOK: &str = "bbb-drain";
pub const DRAIN_TAG: &str = "bbbctl:drain";

#[derive(Default)]
struct Shared {
    /// Instance → what still holds it ("0 meeting(s), 2 recording(s) pending, 0 failed and
    /// saved"), set by the test.
    held: BTreeMap<String, String>,
    /// Instances whose drain it ended, in order.
    let_go: Vec<String>,
    /// Instance → the tag it wrote last.
    tags: BTreeMap<String, String>,
}

/// A handle on the process's stand-in.
pub struct Registrar {
    shared: Arc<Mutex<Shared>>,
    /// How many drains it had ended when this handle was made (`let_go` counts from there).
    from: usize,
}

fn now_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let dt = aws_smithy_types::DateTime::from_secs(secs);
    dt.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
        .replace(".000", "")
}

/// Writes the tag as the registrar does (EC2 CreateTags).
fn tag(instance: &str, value: &str) {
    super::boto3(
        "ec2",
        &format!(
            "client.create_tags(Resources=[{instance:?}], Tags=[{{'Key': {DRAIN_TAG:?}, 'Value': {value:?}}}])"
        ),
    );
}

impl Registrar {
    /// The process's stand-in (a test names the group it watches; the stand-in watches all).
    pub fn start(_group: &str) -> Self {
        Self::everywhere()
    }

    /// The process's stand-in, started at the first call.
    pub fn everywhere() -> Self {
        static SHARED: OnceLock<Arc<Mutex<Shared>>> = OnceLock::new();
        let shared = SHARED
            .get_or_init(|| {
                let shared = Arc::new(Mutex::new(Shared::default()));
                let watched = shared.clone();
                std::thread::spawn(move || watch(watched));
                shared
            })
            .clone();
        let from = shared.lock().unwrap().let_go.len();
        Registrar { shared, from }
    }

    /// `instance` is still busy (`what`, the contract's words: "0 meeting(s), 2 recording(s)
    /// pending, 0 failed and saved"): it stays in its drain.
    pub fn hold(&self, instance: &str, what: &str) {
        self.shared
            .lock()
            .unwrap()
            .held
            .insert(instance.to_string(), what.to_string());
    }

    /// `instance` is done: its drain ends at the next look.
    pub fn release(&self, instance: &str) {
        self.shared.lock().unwrap().held.remove(instance);
    }

    /// The instances whose drain it ended since this handle was made, in order.
    pub fn let_go(&self) -> Vec<String> {
        self.shared.lock().unwrap().let_go[self.from..].to_vec()
    }

    /// The tag it wrote last on `instance`.
    pub fn tag_of(&self, instance: &str) -> Option<String> {
        self.shared.lock().unwrap().tags.get(instance).cloned()
    }
}

/// Every 300 ms, for the life of the test process: each instance in `Terminating:Wait` is
/// tagged and, unless held, let go.
fn watch(shared: Arc<Mutex<Shared>>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let aws = super::aws().await;
        let mut since: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let described = aws.autoscaling.describe_auto_scaling_groups().send().await;
            let waiting: Vec<(String, String)> = described
                .ok()
                .map(|d| {
                    d.auto_scaling_groups()
                        .iter()
                        .flat_map(|g| {
                            let name = g.auto_scaling_group_name().unwrap_or_default();
                            g.instances()
                                .iter()
                                .filter(|i| {
                                    i.lifecycle_state().map(|s| s.as_str())
                                        == Some("Terminating:Wait")
                                })
                                .filter_map(move |i| {
                                    Some((name.to_string(), i.instance_id()?.to_string()))
                                })
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (group, id) in waiting {
                let start = since.entry(id.clone()).or_insert_with(now_text).clone();
                let held = shared.lock().unwrap().held.get(&id).cloned();
                let value = match &held {
                    Some(what) => format!("waiting since {start}: {what}"),
                    None => format!("done at {}: let go", now_text()),
                };
                if shared.lock().unwrap().tags.get(&id) != Some(&value) {
                    tag(&id, &value);
                    shared.lock().unwrap().tags.insert(id.clone(), value);
                }
                if held.is_none() {
                    let done = aws
                        .autoscaling
                        .complete_lifecycle_action()
                        .auto_scaling_group_name(&group)
                        .lifecycle_hook_name(DRAIN_HOOK)
                        .instance_id(&id)
                        .lifecycle_action_result("CONTINUE")
                        .send()
                        .await;
                    if done.is_ok() {
                        shared.lock().unwrap().let_go.push(id.clone());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}
