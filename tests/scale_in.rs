//! Scale-in that never cuts a meeting: a deployment on the emulator with three BBB servers
//! and Scalelite's servers API as a stand-in (`--scalelite-url`), its loads set by the test
//! and its poller run by the test (a cordoned server with load 0 becomes disabled).
//! `scale --count 1` with loads 30 / 0 / 10 takes out the load-0 server at once and the
//! load-10 one only after its load falls to 0; the load-30 one is never touched; no other
//! instance is terminated; the group ends at 1/1/1. At the drain timeout nothing more
//! changes; with --force the remaining meetings are ended through panicServer. `drain
//! --replace` starts a new server and waits until Scalelite has it enabled before the old one
//! is cordoned; `servers enable` undoes a cordon. A setup that changes the launch template
//! leaves the servers running and names them; `roll` replaces them, new ones first.

mod common;
mod standins;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::registrar::Registrar;
use common::*;
use standins::scalelite::Scalelite;

struct Deployment {
    aws: bbbctl::aws::Aws,
    dir: std::path::PathBuf,
    stack: String,
    group: String,
    instances: Vec<String>,
    scalelite: Scalelite,
    /// Scalelite id of each instance's server, in instance order.
    ids: Vec<String>,
    domain: String,
    zone: String,
    /// Ends each server's drain (Terminating:Wait) unless a test holds it.
    registrar: Registrar,
    /// The sources bucket (root parameter TemplateBucket): the agents' reports.
    bucket: String,
    /// The emulator's inventory before the deployment.
    before: std::collections::BTreeMap<String, Vec<String>>,
}

async fn deployment(servers: usize) -> Deployment {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("drain"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("drain");
    let dir = scratch_dir();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), servers, &["--no-check"]);
    assert_code(&o, 0);
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let instances = group_instances(&aws, &group).await;
    let secret = load_balancer_secret(&aws, &stack).await;
    let scalelite = Scalelite::start(&secret);
    let ids = instances
        .iter()
        .map(|i| register(&scalelite, i, &domain))
        .collect();
    let registrar = Registrar::start(&group);
    let bucket = bbbctl::cfn::ops::parameters(&described(&aws, &stack).await)
        .remove("TemplateBucket")
        .unwrap();
    Deployment {
        registrar,
        bucket,
        aws,
        dir,
        stack,
        group,
        instances,
        scalelite,
        ids,
        domain,
        zone,
        before,
    }
}

/// A server registers itself once bbb-install is done: here, at once. Returns its Scalelite id.
fn register(scalelite: &Scalelite, instance: &str, domain: &str) -> String {
    scalelite.add_enabled(
        &format!(
            "https://bbb-{}.media.{domain}/bigbluebutton/api/",
            instance.trim_start_matches("i-")
        ),
        "s",
    )
}

async fn capacity(aws: &bbbctl::aws::Aws, group: &str) -> (i32, i32, i32) {
    let g = auto_scaling_group(aws, group).await;
    (
        g.min_size().unwrap(),
        g.max_size().unwrap(),
        g.desired_capacity().unwrap(),
    )
}

impl Deployment {
    /// `servers --output json`, exit 0 asserted.
    fn servers_json(&self) -> serde_json::Value {
        let o = self
            .start("servers", &["--output", "json"])
            .wait_with_output()
            .unwrap();
        assert_code(&o, 0);
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// `scale --count N` above the servers in service; the new server registers (the registrar's
    /// part) once it is in the group, and not before the command has had time to return
    /// early. Returns the command's output (exit 0 asserted) and the new server.
    async fn scale_out(&self, n: usize) -> (std::process::Output, String) {
        let count = n.to_string();
        let mut child = self.start("scale", &["--count", &count]);
        let start = Instant::now();
        let mut new = None;
        while child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "scale did not finish"
            );
            if new.is_none() {
                new = group_instances(&self.aws, &self.group)
                    .await
                    .into_iter()
                    .find(|i| !self.instances.contains(i));
                if let Some(id) = &new {
                    // bbb-install takes a while: the command must still be waiting.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    assert!(
                        child.try_wait().unwrap().is_none(),
                        "scale-out returned before the new server was enabled"
                    );
                    register(&self.scalelite, id, &self.domain);
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 0);
        (out, new.expect("a new server"))
    }

    /// `bbbctl COMMAND -s STACK --scalelite-url STAND-IN ARGS…`, started (output piped).
    fn start(&self, command: &str, args: &[&str]) -> std::process::Child {
        let url = self.scalelite.url();
        let mut all = vec![command, "-s", &self.stack, "--scalelite-url", &url];
        all.extend_from_slice(args);
        bbbctl_command(&self.dir, &all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn scale(&self, extra: &[&str]) -> std::process::Child {
        let mut args = vec!["--count", "1"];
        args.extend_from_slice(extra);
        self.start("scale", &args)
    }

    /// The deployment goes, whatever recordings the test's reports still say are pending
    /// (`--force`: destroy's refusal of them is tests/recordings.rs').
    fn destroy(&self) {
        assert_code(
            &bbbctl_in(
                &self.dir,
                &["destroy", "-s", &self.stack, "--yes", "--force"],
            ),
            0,
        );
    }

    fn state(&self, i: usize) -> String {
        self.scalelite
            .server(&self.ids[i])
            .map(|s| s.state)
            .unwrap_or_else(|| "deleted".into())
    }
}

/// The group's instances become `expected` (a server taken out leaves once its drain ends).
async fn group_becomes(d: &Deployment, expected: &[String]) {
    let start = Instant::now();
    loop {
        let now = group_instances(&d.aws, &d.group).await;
        if now == expected {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the group holds {now:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the stand-in's poller every 200 ms until `done` holds or 60 s pass.
fn poll_until(d: &Deployment, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out; Scalelite calls: {:#?}",
            d.scalelite.calls()
        );
        d.scalelite.poll();
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn scale_in_takes_the_emptiest_servers_and_waits_for_their_meetings() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(3).await;
    // The instances in id order hold loads 30, 0 and 10.
    for (i, load) in [30.0, 0.0, 10.0].into_iter().enumerate() {
        d.scalelite.set_load(&d.ids[i], load);
    }
    // `servers` shows each instance with Scalelite's view, and an entry no instance backs.
    let stranger = d
        .scalelite
        .add_directly("https://old-server.example.org/bigbluebutton/api/", "x");
    let url = d.scalelite.url();
    let o = bbbctl_in(
        &d.dir,
        &[
            "--output",
            "json",
            "servers",
            "-s",
            &d.stack,
            "--scalelite-url",
            &url,
        ],
    );
    assert_code(&o, 0);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = list["servers"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (i, load) in [30.0, 0.0, 10.0].into_iter().enumerate() {
        let row = rows
            .iter()
            .find(|r| r["instance"] == d.instances[i])
            .unwrap();
        assert_eq!(row["scalelite"]["load"], load, "{row}");
        assert_eq!(row["scalelite"]["state"], "enabled");
        assert_eq!(row["lifecycle"], "InService");
        assert!(row["launched"].is_string(), "{row}");
    }
    assert_eq!(list["unbacked"][0]["host"], "old-server.example.org");
    let o = bbbctl_in(
        &d.dir,
        &["servers", "-s", &d.stack, "--scalelite-url", &url],
    );
    assert!(stdout(&o).contains("(no instance)"), "{}", stdout(&o));
    d.scalelite.forget(&stranger);

    let child = d.scale(&[]);
    // The load-0 server goes at once; the load-10 one is cordoned and waits.
    poll_until(&d, || d.state(1) == "deleted" && d.state(2) == "cordoned");
    assert_eq!(d.state(0), "enabled", "the fullest server is never touched");
    group_becomes(&d, &[d.instances[0].clone(), d.instances[2].clone()]).await;
    assert_eq!(d.registrar.let_go(), [d.instances[1].clone()]);
    // Its last meeting ends; the poller disables it; then it goes too.
    d.scalelite.set_load(&d.ids[2], 0.0);
    poll_until(&d, || d.state(2) == "deleted");
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("Taking out 2 of 3 BBB servers, those expected to be free soonest"),
        "{text}"
    );
    assert!(text.contains("waiting for meetings to end"), "{text}");
    assert_eq!(
        group_instances(&d.aws, &d.group).await,
        [d.instances[0].clone()]
    );
    assert_eq!(capacity(&d.aws, &d.group).await, (1, 1, 1));
    assert!(
        !d.scalelite
            .calls()
            .iter()
            .any(|c| c.action == "updateServer" && c.body.contains(&d.ids[0])),
        "the load-30 server was changed"
    );
    d.destroy();
}

#[tokio::test]
async fn at_the_drain_timeout_nothing_more_changes_unless_forced() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(2).await;
    d.scalelite.set_load(&d.ids[0], 20.0);
    d.scalelite.set_load(&d.ids[1], 5.0);
    let out = d
        .scale(&["--drain-timeout", "2"])
        .wait_with_output()
        .unwrap();
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("still hold meetings") && err.contains("load 5"),
        "{err}"
    );
    assert_eq!(d.state(1), "cordoned");
    assert_eq!(d.state(0), "enabled");
    assert_eq!(
        group_instances(&d.aws, &d.group).await.len(),
        2,
        "no instance was terminated"
    );

    // --force (answered with --yes) ends the meetings through panicServer, then goes on.
    let forced = d.scale(&["--drain-timeout", "1", "--force", "--yes"]);
    poll_until(&d, || d.state(1) == "deleted");
    let out = forced.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert!(
        d.scalelite
            .calls()
            .iter()
            .any(|c| c.action == "panicServer")
    );
    assert_eq!(
        group_instances(&d.aws, &d.group).await,
        [d.instances[0].clone()]
    );
    assert_eq!(capacity(&d.aws, &d.group).await, (1, 1, 1));
    d.destroy();
}

#[tokio::test]
async fn drain_replace_brings_the_new_server_in_first_and_enable_undoes_a_cordon() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(2).await;
    d.scalelite.set_load(&d.ids[0], 5.0);
    let url = d.scalelite.url();
    let drain = |args: &[&str]| d.start("drain", args);

    // A server with meetings, drained with a short timeout: it stays, cordoned; enable undoes it.
    let out = drain(&[&d.instances[0], "--drain-timeout", "1"])
        .wait_with_output()
        .unwrap();
    assert_code(&out, 1);
    assert_eq!(d.state(0), "cordoned");
    let o = bbbctl_in(
        &d.dir,
        &[
            "servers",
            "enable",
            &d.instances[0],
            "-s",
            &d.stack,
            "--scalelite-url",
            &url,
        ],
    );
    assert_code(&o, 0);
    assert_eq!(d.state(0), "enabled");
    let o = bbbctl_in(
        &d.dir,
        &[
            "drain",
            "-s",
            &d.stack,
            "--scalelite-url",
            &url,
            "i-nothere",
        ],
    );
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("no BBB server i-nothere"),
        "{}",
        stderr(&o)
    );

    // --replace: a third server comes in and is enabled before the second one is cordoned.
    let child = drain(&[&d.instances[1], "--replace"]);
    let start = Instant::now();
    let new = loop {
        let now = group_instances(&d.aws, &d.group).await;
        if let Some(n) = now.iter().find(|i| !d.instances.contains(i)) {
            break n.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no new instance");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        d.state(1),
        "enabled",
        "the old server is cordoned only once the new one serves"
    );
    register(&d.scalelite, &new, &d.domain);
    poll_until(&d, || d.state(1) == "deleted");
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let mut expected = vec![d.instances[0].clone(), new];
    expected.sort();
    assert_eq!(group_instances(&d.aws, &d.group).await, expected);
    assert_eq!(capacity(&d.aws, &d.group).await, (2, 2, 2));
    d.destroy();
}

#[tokio::test]
async fn schedules_round_trip_and_show_in_status() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(1).await;
    let schedule = |args: &[&str]| {
        let mut all = vec!["--output", "json", "schedule", "-s", &d.stack];
        all.extend_from_slice(args);
        bbbctl_in(&d.dir, &all)
    };
    let o = schedule(&[
        "add",
        "morning",
        "--cron",
        "30 7 * * 1-5",
        "--count",
        "10",
        "--time-zone",
        "Europe/Berlin",
    ]);
    assert_code(&o, 0);
    let o = schedule(&["add", "night", "--cron", "0 20 * * *", "--count", "1"]);
    assert_code(&o, 0);
    let o = schedule(&["list"]);
    assert_code(&o, 0);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    let morning = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "morning")
        .unwrap();
    assert_eq!(
        (
            morning["cron"].as_str(),
            morning["time_zone"].as_str(),
            morning["count"].as_i64()
        ),
        (Some("30 7 * * 1-5"), Some("Europe/Berlin"), Some(10))
    );
    let o = bbbctl_in(&d.dir, &["status", "-s", &d.stack]);
    assert!(
        stdout(&o).contains("morning")
            && stdout(&o).contains("30 7 * * 1-5 (Europe/Berlin) → 10 server(s)"),
        "{}",
        stdout(&o)
    );

    // Bad input is refused before anything is sent; an unknown name is named.
    let o = schedule(&["add", "x y", "--cron", "every day", "--count", "2"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("five fields"), "{}", stderr(&o));
    let o = schedule(&["remove", "evening"]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("no schedule evening") && stderr(&o).contains("morning"),
        "{}",
        stderr(&o)
    );

    let o = schedule(&["remove", "morning"]);
    assert_code(&o, 0);
    let o = schedule(&["list"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);
    // Setup keeps them; destroy takes them with the group.
    let o = bbbctl_in(&d.dir, &["setup", "-s", &d.stack, "--no-check"]);
    assert_code(&o, 0);
    let o = schedule(&["list"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["schedules"][0]["name"], "night");
    d.destroy();
    assert_nothing_left(&d.aws, &d.stack, &d.before, &["rds:cluster_snapshots"]).await;
}

#[tokio::test]
async fn setup_leaves_servers_running_and_roll_replaces_them_new_ones_first() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(2).await;
    let roll = |args: &[&str]| d.start("roll", args);
    // Every server runs the group's launch template: nothing to roll.
    let out = roll(&[]).wait_with_output().unwrap();
    assert_code(&out, 0);
    assert!(stdout(&out).contains("nothing to roll"), "{}", stdout(&out));

    // A change that reaches the launch template: setup leaves the servers running (no
    // meeting is cut) and says which run the old template and that `roll` replaces them.
    let params = d.dir.join("bigger.json");
    std::fs::write(
        &params,
        r#"{"Parameters": {"BBBServerInstanceType": "c5.4xlarge"}}"#,
    )
    .unwrap();
    let file = params.display().to_string();
    let o = bbbctl_in(
        &d.dir,
        &setup_args(
            &d.zone,
            &d.stack,
            &d.domain,
            &["--params", &file, "--yes", "--no-check"],
        ),
    );
    assert_code(&o, 0);
    for text in [
        "running servers keep theirs",
        "2 of 2 BBB server(s) run an older launch template",
        &format!("`bbbctl roll -s {}`", d.stack),
    ] {
        assert_stdout_has(&o, text);
    }
    assert_eq!(group_instances(&d.aws, &d.group).await, d.instances);
    let listed = d.servers_json();
    let outdated: Vec<bool> = listed["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outdated"].as_bool().unwrap())
        .collect();
    assert_eq!(outdated, [true, true], "{listed}");
    let o = bbbctl_in(&d.dir, &["status", "-s", &d.stack]);
    assert_stdout_has(&o, "2 of 2 BBB server(s) run an older launch template");

    let mut child = roll(&[]);
    let mut known = d.instances.clone();
    let mut fewest_enabled = usize::MAX;
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "roll did not finish"
        );
        for i in group_instances(&d.aws, &d.group).await {
            if !known.contains(&i) {
                register(&d.scalelite, &i, &d.domain);
                known.push(i);
            }
        }
        let enabled = d
            .scalelite
            .servers()
            .iter()
            .filter(|s| s.state == "enabled" && s.online)
            .count();
        fewest_enabled = fewest_enabled.min(enabled);
        d.scalelite.poll();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let now = group_instances(&d.aws, &d.group).await;
    assert_eq!(now.len(), 2);
    assert!(
        now.iter().all(|i| !d.instances.contains(i)),
        "an old server is left: {now:?}"
    );
    assert_eq!(capacity(&d.aws, &d.group).await, (2, 2, 2));
    let o = d.start("roll", &[]).wait_with_output().unwrap();
    assert!(stdout(&o).contains("nothing to roll"), "{}", stdout(&o));
    assert!(
        fewest_enabled >= 2,
        "only {fewest_enabled} servers were enabled at one point"
    );
    d.destroy();
}

#[tokio::test]
async fn scale_out_waits_until_scalelite_has_the_new_servers_enabled() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(1).await;
    let (out, _) = d.scale_out(2).await;
    assert!(
        stdout(&out).contains("enabled in Scalelite"),
        "{}",
        stdout(&out)
    );
    d.destroy();
}

#[tokio::test]
async fn without_scalelite_scale_in_stops_unless_forced() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(2).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let scale = |extra: &[&str]| {
        let mut args = vec![
            "scale",
            "-s",
            &d.stack,
            "--count",
            "1",
            "--scalelite-url",
            &closed,
        ];
        args.extend_from_slice(extra);
        bbbctl_in(&d.dir, &args)
    };
    let o = scale(&[]);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("nothing was changed") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(capacity(&d.aws, &d.group).await, (2, 2, 2));
    let o = scale(&["--force", "--yes"]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("without Scalelite"), "{}", stderr(&o));
    assert_eq!(capacity(&d.aws, &d.group).await, (1, 1, 1));
    d.destroy();
}

const REC_A: &str = "0123456789abcdef0123456789abcdef01234567-1765000000000";
const REC_B: &str = "89abcdef0123456789abcdef0123456789abcdef-1765000100000";
const REC_F: &str = "fedcba9876543210fedcba9876543210fedcba98-1765000200000";
/// The servers' role id in their reports' keys (`servers/<role id>:<instance id>.json`).
const ROLE: &str = "AROATESTSERVERROLE";

impl Deployment {
    /// Writes server `i`'s agent report (issue 26's contract, §1) into the sources bucket:
    /// two recordings not yet safe (REC_A processing, REC_B publishing), one failed and saved
    /// (REC_F).
    async fn report_busy(&self, i: usize) {
        let instance = &self.instances[i];
        let body = serde_json::json!({
            "secret": "the-servers-own-secret",
            "recordings": {
                "pending": 2, "jobs": 0, "failed": 1,
                "items": [
                    {"id": REC_A, "state": "process"},
                    {"id": REC_B, "state": "publish"},
                    {"id": REC_F, "state": "failed", "saved": format!("failed/{ROLE}:{instance}/{REC_F}.tar")},
                ]
            }
        });
        self.aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(format!("servers/{ROLE}:{instance}.json"))
            .body(serde_json::to_vec(&body).unwrap().into())
            .send()
            .await
            .unwrap();
    }

    /// The instance's lifecycle state in the group, None once it has left.
    async fn lifecycle(&self, i: usize) -> Option<String> {
        auto_scaling_group(&self.aws, &self.group)
            .await
            .instances()
            .iter()
            .find(|x| x.instance_id() == Some(&self.instances[i]))
            .and_then(|x| x.lifecycle_state().map(|s| s.as_str().to_string()))
    }
}

/// Reads a child's stdout (and stderr) as it comes.
fn collect(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::BufRead;
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let out = child.stdout.take().unwrap();
    let t = text.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let mut t = t.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

/// `servers` lists a server's pending and failed recordings from its report; `scale` down
/// takes a server out whose recordings are still processing: once its meetings are over it
/// is terminated and waits in its drain (the registrar holds it), shown live with its
/// recordings and the registrar's word; it goes, and scale ends, once the registrar lets it go.
#[tokio::test]
async fn scale_in_waits_for_the_recordings_and_servers_lists_them() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(2).await;
    for i in 0..2 {
        d.report_busy(i).await;
        d.registrar.hold(
            &d.instances[i],
            "0 meeting(s), 2 recording(s) pending, 1 failed and saved",
        );
    }
    d.scalelite.set_load(&d.ids[0], 0.0);
    d.scalelite.set_load(&d.ids[1], 30.0);

    let listed = d.servers_json();
    let row = listed["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == d.instances[0])
        .unwrap()
        .clone();
    let rec = &row["recordings"];
    assert_eq!(
        (&rec["pending"], &rec["failed"], &rec["fresh"]),
        (
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(true)
        ),
        "{row}"
    );
    assert_eq!(rec["items"][0]["id"], REC_A, "{row}");
    assert_eq!(rec["items"][1]["state"], "publish", "{row}");
    assert_eq!(
        rec["items"][2]["saved"],
        format!("failed/{ROLE}:{}/{REC_F}.tar", d.instances[0]),
        "{row}"
    );
    assert!(
        !listed.to_string().contains("the-servers-own-secret"),
        "a server's secret is never shown"
    );
    let o = d.start("servers", &[]).wait_with_output().unwrap();
    let text = stdout(&o);
    for expected in [
        "rec pending/failed".to_string(),
        "2/1".to_string(),
        format!("{} {REC_A} process", d.instances[0]),
        format!(
            "{} {REC_F} failed saved at s3://{}/failed/{ROLE}:{}/{REC_F}.tar",
            d.instances[0], d.bucket, d.instances[0]
        ),
    ] {
        assert!(text.contains(&expected), "{expected:?} in\n{text}");
    }

    let mut child = d.scale(&[]);
    let text = collect(&mut child);
    // The load-0 server is cordoned, disabled once empty, terminated: then in its drain.
    let start = Instant::now();
    loop {
        d.scalelite.poll();
        let t = text.lock().unwrap().clone();
        if t.contains("in their drain (recordings)") && t.contains("waiting since") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no drain shown:\n{t}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "scale ended early:\n{t}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(d.lifecycle(0).await.as_deref(), Some("Terminating:Wait"));
    assert_eq!(d.lifecycle(1).await.as_deref(), Some("InService"));
    // It stays while the registrar holds it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(child.try_wait().unwrap().is_none(), "scale did not wait");
    assert_eq!(d.lifecycle(0).await.as_deref(), Some("Terminating:Wait"));
    d.registrar.release(&d.instances[0]);
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let t = text.lock().unwrap().clone();
    for expected in [
        "Taking out 1 of 2 BBB servers".to_string(),
        "recordings 2 pending, 1 failed (saved)".to_string(),
        "registrar: \"waiting since ".to_string(),
        "0 meeting(s), 2 recording(s) pending, 1 failed and saved\"".to_string(),
        "its drain is over; it has left the group".to_string(),
    ] {
        assert!(t.contains(&expected), "{expected:?} in\n{t}");
    }
    assert_eq!(d.lifecycle(0).await, None);
    assert_eq!(d.registrar.let_go(), [d.instances[0].clone()]);
    assert_eq!(capacity(&d.aws, &d.group).await, (1, 1, 1));
    d.registrar.release(&d.instances[1]);
    d.destroy();
}

/// At the drain timeout a server still in its drain (recordings processing) stays there and
/// the command fails saying so; with --force (answered by --yes) bbbctl ends its drain
/// itself (CompleteLifecycleAction) and names the recordings that loses.
#[tokio::test]
async fn a_drain_held_by_recordings_stops_at_the_timeout_unless_forced() {
    let _one_at_a_time = exclusive().await;
    let d = deployment(2).await;
    d.report_busy(0).await;
    d.registrar.hold(
        &d.instances[0],
        "0 meeting(s), 2 recording(s) pending, 1 failed and saved",
    );
    // Its meetings are over (load 0): Scalelite disables it at the first poll.
    d.scalelite.set_load(&d.ids[0], 0.0);
    let run = |extra: &[&str]| {
        let mut args = vec![d.instances[0].as_str(), "--drain-timeout", "8"];
        args.extend_from_slice(extra);
        d.start("drain", &args)
    };
    let mut child = run(&[]);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "drain did not stop"
        );
        d.scalelite.poll();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    let err = stderr(&out);
    for expected in [
        "still in their drain",
        "recordings 2 pending",
        "nothing is lost",
        "the deployment's registrar lets it go once its recordings are safe",
    ] {
        assert!(err.contains(expected), "{expected:?} in\n{err}");
    }
    assert_eq!(d.lifecycle(0).await.as_deref(), Some("Terminating:Wait"));
    assert!(d.registrar.let_go().is_empty());

    // Capacity does not wait for it: a scale-out meanwhile counts only the servers that are
    // not on their way out (the drained one may stay in its drain for hours).
    let (out, new) = d.scale_out(2).await;
    assert!(
        stdout(&out).contains("and 1 on its way out"),
        "{}",
        stdout(&out)
    );
    assert_eq!(d.lifecycle(0).await.as_deref(), Some("Terminating:Wait"));

    // The same again with --force --yes: bbbctl ends the drain and names the loss.
    let out = run(&["--force", "--yes"]).wait_with_output().unwrap();
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "drain ended (--force): bbb-{}.media.{}: 2 recording(s) not yet safe are lost ({REC_A}, {REC_B})",
            d.instances[0].trim_start_matches("i-"),
            d.domain
        )),
        "{err}"
    );
    assert_eq!(
        d.lifecycle(0).await,
        None,
        "the instance has left the group"
    );
    assert!(
        d.registrar.let_go().is_empty(),
        "bbbctl completed the lifecycle action, not the registrar"
    );
    let mut left = vec![d.instances[1].clone(), new];
    left.sort();
    assert_eq!(group_instances(&d.aws, &d.group).await, left);
    d.destroy();
}
