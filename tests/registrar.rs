//! The registrar (templates/scripts/bbb_registrar.py), run for real from the zip bbbctl uploads
//! as its Lambda code (`bbb_registrar.handler`, imported from that zip), one run at a time as
//! its schedule would, with boto3 replaced by a recording fake (tests/fixtures/fake_boto3: the
//! account as JSON, every call logged) and Scalelite and the BBB servers' APIs by the stand-ins
//! (tests/standins). Shows: a launched server gets its record; a server is added to Scalelite
//! only with the secret it reported and its own API accepts, under the URL built from its
//! instance id; scale-in protection follows its meetings (never after destroy's tag); a drain
//! cordons, waits for the meetings and Scalelite's disable, deletes the record before it
//! completes the lifecycle action; what a terminated server left is removed, and only that;
//! no secret reaches the log. Issue 26: a drain also waits for the server's recordings, by a
//! report written after its meetings ended (S3's LastModified), heartbeats while it waits,
//! shows its state in the instance's `bbbctl:drain` tag, and at its limit lets the server go
//! with what still ran in the log; a server with recordings pending keeps its protection; an
//! account of recordings out of shape is unknown, never "none".

mod standins;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use standins::bbb::Fleet;
use standins::scalelite::Scalelite;
use tempfile::TempDir;

const LB_SECRET: &str = "lbsecret0123456789abcdef";
const LB_ARN: &str = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:lb-AbCdEf";
const STACK: &str = "bbb";
const SERVERS_STACK: &str = "bbb-BbbServersStack-1A2B";
const GROUP: &str = "bbb-BbbServersStack-1A2B-ServerGroup-3C4D";
const DOMAIN: &str = "bbb.example.org";
const ZONE: &str = "Z0123456789ABCDEFGHIJ";
const BUCKET: &str = "bbb-sources-sourcesbucket-0123";
const ROLE_ID: &str = "AROAEXAMPLEROLEID0001";

struct Rig {
    dir: TempDir,
    zip: PathBuf,
    scalelite: Scalelite,
    fleet: Fleet,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A server's name (contract 27 section 1): below the fleet domain media.<domain>.
fn host(instance: &str) -> String {
    format!("bbb-{}.media.{DOMAIN}", instance.trim_start_matches("i-"))
}

/// The agent's account of a boot (contract 27 section 5).
fn boot(state: &str, started: u64, path: &str, lifecycle: &str) -> Value {
    json!({"state": state, "started": started, "path": path, "lifecycle": lifecycle})
}

/// A boot that is over and ready, begun after the instance's launch in `launch()`.
fn ready() -> Value {
    boot("ready", now() - 300, "baked", "InService")
}

fn url(instance: &str) -> String {
    format!("https://{}/bigbluebutton/api/", host(instance))
}

fn report_key(instance: &str) -> String {
    format!("servers/{ROLE_ID}:{instance}.json")
}

/// The registrar's drain limit in these tests (DRAIN_LIMIT; DrainTimeout's default).
const DRAIN_LIMIT: u64 = 14400;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A recording's id as BBB names it (its internal meeting id).
fn record_id(n: u64) -> String {
    format!("{:040x}-{}", 0xa11ce0000 + n, 1_700_000_000_000 + n)
}

/// An account of recordings as the agent writes it (contract section 1).
fn recordings(pending: &[(&str, &str)], jobs: u64, failed: u64) -> Value {
    let items: Vec<Value> = pending
        .iter()
        .map(|(id, state)| json!({"id": id, "state": state}))
        .collect();
    json!({"pending": pending.len(), "jobs": jobs, "failed": failed, "items": items})
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The Lambda code exactly as bbbctl uploads it.
        let asset = bbbctl::templates::Bundle::embedded()
            .assets()
            .into_iter()
            .find(|a| a.path == "scripts/bbb_registrar.py")
            .expect("the registrar is an asset");
        assert!(asset.key.ends_with(".zip"), "{}", asset.key);
        assert_eq!(asset.param.as_deref(), Some("BbbRegistrarCodeKey"));
        let zip = dir.path().join("registrar.zip");
        fs::write(&zip, &asset.body).unwrap();
        let rig = Rig {
            dir,
            zip,
            scalelite: Scalelite::start(LB_SECRET),
            fleet: Fleet::start(),
        };
        rig.save(&json!({
            "groups": [{
                "AutoScalingGroupName": GROUP,
                "Tags": [{"Key": "bbbctl:stack", "Value": STACK}],
                "Instances": [],
            }],
            "instances": {},
            "zones": {ZONE: [
                {"Name": format!("{DOMAIN}."), "Type": "NS", "TTL": 172800, "ResourceRecords": [{"Value": "ns-1.awsdns-01.org."}]},
                {"Name": format!("scalelite.{DOMAIN}."), "Type": "A", "AliasTarget": {"DNSName": "alb.example.", "HostedZoneId": "Z1", "EvaluateTargetHealth": false}},
                // A sibling of the domain: listed between the domain and its names when
                // Route 53 compares reversed names as strings ("-" sorts before ".").
                {"Name": "bbb-2.example.org.", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.1"}]},
                // A sibling of the fleet domain, and a name of the old form (bbb-<id>.<domain>):
                // neither is a server's.
                {"Name": format!("bbb-3.{DOMAIN}."), "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.2"}]},
                {"Name": format!("bbb-0eee5555.{DOMAIN}."), "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.3"}]},
            ]},
            "buckets": {BUCKET: {}},
            "secrets": {LB_ARN: LB_SECRET},
        }));
        rig
    }

    fn state_path(&self) -> PathBuf {
        self.dir.path().join("aws.json")
    }

    fn state(&self) -> Value {
        serde_json::from_str(&fs::read_to_string(self.state_path()).unwrap()).unwrap()
    }

    fn save(&self, state: &Value) {
        fs::write(
            self.state_path(),
            serde_json::to_string_pretty(state).unwrap(),
        )
        .unwrap();
    }

    fn change(&self, f: impl FnOnce(&mut Value)) {
        let mut state = self.state();
        f(&mut state);
        self.save(&state);
    }

    /// A server of the group in `lifecycle`, running with `ip`.
    fn launch(&self, instance: &str, lifecycle: &str, ip: &str) {
        self.change(|s| {
            s["groups"][0]["Instances"]
                .as_array_mut()
                .unwrap()
                .push(json!({"InstanceId": instance, "LifecycleState": lifecycle, "ProtectedFromScaleIn": false}));
            s["instances"][instance] = json!({
                "PublicIpAddress": ip,
                "State": {"Name": "running"},
                // Its last start (EC2 LaunchTime), ten minutes ago.
                "LaunchTime": now() - 600,
                "Tags": [{"Key": "bbbctl:stack", "Value": STACK}, {"Key": "aws:autoscaling:groupName", "Value": GROUP}],
            });
        });
    }

    fn set_lifecycle(&self, instance: &str, lifecycle: &str) {
        self.change(|s| {
            for i in s["groups"][0]["Instances"].as_array_mut().unwrap() {
                if i["InstanceId"] == instance {
                    i["LifecycleState"] = json!(lifecycle);
                }
            }
        });
    }

    /// The instance as the group (or its warm pool) lists it.
    fn member(&self, instance: &str) -> Value {
        let state = self.state();
        let warm = state["warm"][GROUP].as_array().cloned().unwrap_or_default();
        state["groups"][0]["Instances"]
            .as_array()
            .unwrap()
            .iter()
            .chain(warm.iter())
            .find(|i| i["InstanceId"] == instance)
            .cloned()
            .unwrap()
    }

    /// The server reports its API secret and a ready boot, as bbb-agent.sh writes it.
    fn report(&self, instance: &str, secret: &str) {
        self.change(|s| {
            s["buckets"][BUCKET][report_key(instance)] =
                json!(json!({"secret": secret, "boot": ready()}).to_string());
        });
    }

    /// The server's agent writes its report with an account of its recordings, at `written`
    /// (S3's LastModified, epoch seconds).
    fn report_recordings(&self, instance: &str, secret: &str, recordings: &Value, written: u64) {
        self.report_raw(
            instance,
            &json!({"secret": secret, "recordings": recordings, "boot": ready()}).to_string(),
            written,
        );
    }

    /// A report of any content, written at `written`.
    fn report_raw(&self, instance: &str, body: &str, written: u64) {
        self.change(|s| {
            s["buckets"][BUCKET][report_key(instance)] = json!(body);
            s["modified"][BUCKET][report_key(instance)] = json!(written);
        });
    }

    /// (start, idle moment) of the registrar's drain note of `instance`.
    fn drain_note(&self, instance: &str) -> (u64, Option<u64>) {
        let notes = self.notes(instance);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let times: Vec<u64> = notes[0]
            .strip_prefix(&format!("registrar/{instance}/draining-"))
            .unwrap_or_else(|| panic!("not a drain note: {}", notes[0]))
            .split('-')
            .map(|t| t.parse().unwrap())
            .collect();
        (times[0], times.get(1).copied())
    }

    /// Moves the drain of `instance` `seconds` into the past (its note's start and idle moment).
    fn age_drain(&self, instance: &str, seconds: u64) {
        let (start, idle) = self.drain_note(instance);
        let old = self.notes(instance).remove(0);
        let new = match idle {
            Some(idle) => format!(
                "registrar/{instance}/draining-{}-{}",
                start - seconds,
                idle - seconds
            ),
            None => format!("registrar/{instance}/draining-{}", start - seconds),
        };
        self.change(|s| {
            let objects = s["buckets"][BUCKET].as_object_mut().unwrap();
            objects.remove(&old);
            objects.insert(new, json!(""));
        });
    }

    /// The instance's bbbctl:drain tag.
    fn drain_tag(&self, instance: &str) -> Option<String> {
        self.state()["instances"][instance]["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["Key"] == "bbbctl:drain")
            .map(|t| t["Value"].as_str().unwrap().to_string())
    }

    fn heartbeats(&self, instance: &str) -> u64 {
        self.member(instance)["Heartbeats"].as_u64().unwrap_or(0)
    }

    /// A serving server with `account` reported enters its drain; its meetings are over and
    /// Scalelite has disabled it; the registrar noted the idle moment. Returns its entry id.
    fn drained_of_meetings(
        &self,
        instance: &str,
        ip: &str,
        secret: &str,
        account: &Value,
    ) -> String {
        self.serving(instance, ip, secret);
        self.report_recordings(instance, secret, account, now() - 5);
        let id = self.entry(instance).unwrap().id;
        self.set_lifecycle(instance, "Terminating:Wait");
        self.run();
        assert_eq!(self.entry(instance).unwrap().state, "cordoned");
        self.scalelite.set_load(&id, 0.0);
        self.scalelite.poll();
        let log = self.run();
        assert!(
            self.drain_note(instance).1.is_some(),
            "idle moment not noted:\n{log}"
        );
        id
    }

    /// The registrar's notes of `instance` (their keys say what they note).
    fn notes(&self, instance: &str) -> Vec<String> {
        let prefix = format!("registrar/{instance}/");
        self.state()["buckets"][BUCKET]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    }

    fn record(&self, instance: &str) -> Option<Value> {
        let name = format!("{}.", host(instance));
        self.state()["zones"][ZONE]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["Name"] == name && r["Type"] == "A")
            .cloned()
    }

    fn record_ip(&self, instance: &str) -> Option<String> {
        self.record(instance).map(|r| {
            r["ResourceRecords"][0]["Value"]
                .as_str()
                .unwrap()
                .to_string()
        })
    }

    /// One run of the registrar, as a schedule would start it. Returns its log.
    fn run(&self) -> String {
        self.run_events(&[json!({"source": "aws.events"})])
    }

    /// Runs of one warm function (one process, as Lambda reuses one), one per event.
    fn run_events(&self, events: &[Value]) -> String {
        let out = Command::new("python3")
            .arg("-c")
            .arg("import json, sys, bbb_registrar\nfor event in json.loads(sys.argv[1]):\n    print(json.dumps(bbb_registrar.handler(event, None)))")
            .arg(Value::from(events.to_vec()).to_string())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "PYTHONPATH",
                format!(
                    "{}:{}",
                    self.zip.display(),
                    repo().join("tests/fixtures/fake_boto3").display()
                ),
            )
            .env("FAKE_AWS_STATE", self.state_path())
            .env("FAKE_AWS_LOG", self.dir.path().join("aws.log"))
            .env("ROOT_STACK", STACK)
            .env("GROUP_PREFIX", format!("{SERVERS_STACK}-ServerGroup-"))
            .env("DOMAIN", DOMAIN)
            .env("HOSTED_ZONE", ZONE)
            .env("SCALELITE_URL", self.scalelite.url())
            .env("LB_SECRET_ARN", LB_ARN)
            .env("BUCKET", BUCKET)
            .env("SERVER_ROLE_ID", ROLE_ID)
            .env("DNS_TTL", "60")
            .env("HTTP_TIMEOUT", "5")
            .env("SERVER_BUDGET", "3")
            .env("BBB_CONNECT_TO", self.fleet.address())
            .env("DRAIN_LIMIT", DRAIN_LIMIT.to_string())
            .output()
            .expect("python3");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "registrar run failed:\n{log}");
        log
    }

    /// The AWS calls so far: (service, operation, arguments).
    fn calls(&self) -> Vec<(String, String, Value)> {
        fs::read_to_string(self.dir.path().join("aws.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v[0].as_str().unwrap().to_string(),
                    v[1].as_str().unwrap().to_string(),
                    v[2].clone(),
                )
            })
            .collect()
    }

    fn calls_of(&self, operation: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|(_, op, _)| op == operation)
            .map(|(_, _, args)| args)
            .collect()
    }

    fn entry(&self, instance: &str) -> Option<standins::scalelite::Server> {
        self.scalelite
            .servers()
            .into_iter()
            .find(|s| s.url == url(instance))
    }

    /// A server that is in service, reported and registered (run once).
    fn serving(&self, instance: &str, ip: &str, secret: &str) {
        self.launch(instance, "InService", ip);
        self.fleet.add(&host(instance), secret);
        self.report(instance, secret);
        self.run();
        assert_eq!(self.entry(instance).expect("registered").state, "enabled");
    }
}

#[test]
fn a_launched_server_gets_its_record_and_nothing_else_until_it_reports() {
    let rig = Rig::new();
    rig.launch("i-0aaa1111", "Pending", "203.0.113.10");
    rig.run();
    let record = rig.record("i-0aaa1111").expect("record written");
    assert_eq!(record["TTL"], 60);
    assert_eq!(rig.record_ip("i-0aaa1111").as_deref(), Some("203.0.113.10"));
    assert!(rig.scalelite.servers().is_empty());

    // In service, its API up, but no report yet: still not in Scalelite.
    rig.set_lifecycle("i-0aaa1111", "InService");
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    rig.run();
    assert!(rig.scalelite.servers().is_empty());

    // A second run changes no record that is right already.
    let changes = rig.calls_of("change_resource_record_sets").len();
    rig.run();
    assert_eq!(rig.calls_of("change_resource_record_sets").len(), changes);
}

#[test]
fn a_server_is_added_with_the_secret_its_own_api_accepts_under_the_url_of_its_instance_id() {
    let rig = Rig::new();
    rig.launch("i-0aaa1111", "InService", "203.0.113.10");
    rig.fleet.add(&host("i-0aaa1111"), "realsalt0aaa1111");
    // A report its own API does not accept (a lie, or a secret changed since): not added.
    rig.report("i-0aaa1111", "notthesalt000000");
    rig.run();
    assert!(rig.scalelite.servers().is_empty());
    // A report that is no secret at all: ignored.
    rig.report("i-0aaa1111", "$(touch /tmp/x)");
    rig.run();
    assert!(rig.scalelite.servers().is_empty());

    rig.report("i-0aaa1111", "realsalt0aaa1111");
    rig.run();
    let servers = rig.scalelite.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0].url, url("i-0aaa1111"));
    assert_eq!(servers[0].secret, "realsalt0aaa1111");
    assert_eq!(servers[0].state, "enabled");

    // Idempotent: a second run adds nothing.
    rig.run();
    assert_eq!(rig.scalelite.servers().len(), 1);

    // A new secret (bbb-conf --setsecret), reported and accepted: brought up to date.
    rig.fleet.add(&host("i-0aaa1111"), "newsalt0aaa1111x");
    rig.report("i-0aaa1111", "newsalt0aaa1111x");
    rig.run();
    assert_eq!(rig.entry("i-0aaa1111").unwrap().secret, "newsalt0aaa1111x");
}

#[test]
fn a_cordoned_server_stays_cordoned_and_a_forgotten_one_is_added_again() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    let id = rig.entry("i-0aaa1111").unwrap().id;
    // The operator cordons it (bbbctl servers cordon): the registrar leaves it so.
    rig.scalelite.cordon(&id);
    rig.run();
    assert_eq!(rig.entry("i-0aaa1111").unwrap().state, "cordoned");

    // Scalelite's cache lost it (ElastiCache replaced): added again.
    rig.scalelite.forget(&id);
    rig.run();
    assert_eq!(rig.entry("i-0aaa1111").unwrap().state, "enabled");
}

#[test]
fn scale_in_protection_follows_the_meetings_and_never_returns_after_destroys_tag() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    assert_eq!(rig.member("i-0aaa1111")["ProtectedFromScaleIn"], false);

    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(2));
    rig.run();
    assert_eq!(rig.member("i-0aaa1111")["ProtectedFromScaleIn"], true);

    // Its API stops answering: protection stays as it is (not knowing is no reason to drop it).
    rig.fleet.set_meetings(&host("i-0aaa1111"), None);
    rig.run();
    assert_eq!(rig.member("i-0aaa1111")["ProtectedFromScaleIn"], true);

    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(0));
    rig.run();
    assert_eq!(rig.member("i-0aaa1111")["ProtectedFromScaleIn"], false);

    // destroy tagged the group: no protection is set again, and none is even asked for.
    rig.change(|s| {
        s["groups"][0]["Tags"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Key": "bbbctl:protection", "Value": "off"}));
    });
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(1));
    let asked = rig.calls_of("set_instance_protection").len();
    rig.run();
    assert_eq!(rig.member("i-0aaa1111")["ProtectedFromScaleIn"], false);
    assert_eq!(rig.calls_of("set_instance_protection").len(), asked);
}

#[test]
fn a_drain_waits_for_the_meetings_and_scalelites_disable_then_removes_the_name_before_the_server() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    let id = rig.entry("i-0aaa1111").unwrap().id;
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(1));
    rig.scalelite.set_load(&id, 3.0);
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");

    rig.run();
    assert_eq!(rig.entry("i-0aaa1111").unwrap().state, "cordoned");
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Wait"
    );

    // The meeting ends, but Scalelite's poller has not disabled it yet: still waiting.
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(0));
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Wait"
    );
    assert!(rig.entry("i-0aaa1111").is_some());

    // The poller disables it (cordoned, load 0): removed, record and report gone, released.
    rig.scalelite.set_load(&id, 0.0);
    rig.scalelite.poll();
    rig.run();
    assert!(
        rig.entry("i-0aaa1111").is_none(),
        "the Scalelite entry is left"
    );
    assert_eq!(rig.record("i-0aaa1111"), None);
    assert!(rig.state()["buckets"][BUCKET][report_key("i-0aaa1111")].is_null());
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed"
    );
    let calls = rig.calls();
    let deleted = calls
        .iter()
        .position(|(_, op, args)| {
            op == "change_resource_record_sets"
                && args["ChangeBatch"]["Changes"][0]["Action"] == "DELETE"
        })
        .expect("record deleted");
    let completed = calls
        .iter()
        .position(|(_, op, _)| op == "complete_lifecycle_action")
        .expect("completed");
    assert!(deleted < completed, "the name must go before the server");
    assert_eq!(
        calls[completed].2,
        json!({"AutoScalingGroupName": GROUP, "InstanceId": "i-0aaa1111", "LifecycleActionResult": "CONTINUE", "LifecycleHookName": "bbb-drain"})
    );
}

#[test]
fn a_drain_never_goes_on_while_the_servers_own_api_lists_meetings_or_does_not_answer() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    let id = rig.entry("i-0aaa1111").unwrap().id;
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");

    // Scalelite marked it offline (failed polls), but its own API lists a meeting.
    rig.scalelite.set_offline(&id);
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(1));
    rig.run();
    // Its API does not answer at all.
    rig.fleet.set_meetings(&host("i-0aaa1111"), None);
    rig.run();
    // Scalelite does not answer either.
    rig.scalelite.set_available(false);
    rig.run();
    assert!(rig.calls_of("complete_lifecycle_action").is_empty());
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Wait"
    );

    // Scalelite still down, the server's own account says no meeting: Scalelite may still
    // place a meeting here, so the drain waits for its word - for 10 minutes from the drain's
    // start, which the registrar noted.
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(0));
    let log = rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Wait",
        "{log}"
    );
    let notes = rig.notes("i-0aaa1111");
    assert_eq!(notes.len(), 1, "{notes:?}");
    let started: u64 = notes[0]
        .strip_prefix("registrar/i-0aaa1111/draining-")
        .expect("a draining note")
        .parse()
        .unwrap();
    // Ten minutes later, Scalelite still silent: drained by the server's own account.
    rig.change(|s| {
        let objects = s["buckets"][BUCKET].as_object_mut().unwrap();
        objects.remove(&notes[0]);
        objects.insert(
            format!("registrar/i-0aaa1111/draining-{}", started - 601),
            json!(""),
        );
    });
    let log = rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed",
        "{log}"
    );
    // Scalelite back: the entry of the terminated server goes.
    rig.scalelite.set_available(true);
    rig.change(|s| {
        s["groups"][0]["Instances"] = json!([]);
        s["instances"]["i-0aaa1111"]["State"]["Name"] = json!("terminated");
    });
    rig.run();
    assert!(rig.entry("i-0aaa1111").is_none());
}

#[test]
fn a_server_that_never_registered_drains_at_once() {
    let rig = Rig::new();
    rig.launch("i-0aaa1111", "Terminating:Wait", "203.0.113.10");
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed"
    );
}

#[test]
fn what_a_terminated_server_left_is_removed_and_only_that() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    // Another deployment's look-alike in the same zone (its own subdomain) and a record of an
    // instance EC2 describes as running, but not in this group (someone else's).
    rig.change(|s| {
        let zone = s["zones"][ZONE].as_array_mut().unwrap();
        zone.push(json!({"Name": format!("bbb-0bbb2222.other.{DOMAIN}."), "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "198.51.100.7"}]}));
        zone.push(json!({"Name": format!("bbb-0ccc3333.media.{DOMAIN}."), "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "198.51.100.8"}]}));
        s["instances"]["i-0ccc3333"] = json!({"PublicIpAddress": "198.51.100.8", "State": {"Name": "running"}, "Tags": []});
    });
    // The stack's deletion terminated the server without a drain (the hook went first).
    rig.change(|s| {
        s["groups"][0]["Instances"] = json!([]);
        s["instances"]["i-0aaa1111"]["State"]["Name"] = json!("terminated");
    });
    rig.run();
    assert_eq!(rig.record("i-0aaa1111"), None);
    assert!(rig.entry("i-0aaa1111").is_none());
    assert!(rig.state()["buckets"][BUCKET][report_key("i-0aaa1111")].is_null());
    let names: Vec<String> = rig.state()["zones"][ZONE]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&format!("bbb-0bbb2222.other.{DOMAIN}.")),
        "{names:?}"
    );
    assert!(
        names.contains(&format!("bbb-0ccc3333.media.{DOMAIN}.")),
        "{names:?}"
    );
}

#[test]
fn no_secret_reaches_the_registrars_log() {
    let rig = Rig::new();
    let mut log = String::new();
    rig.launch("i-0aaa1111", "InService", "203.0.113.10");
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    rig.report("i-0aaa1111", "salt0aaa1111salt");
    log += &rig.run();
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");
    log += &rig.run();
    rig.report("i-0aaa1111", "notasecret at all");
    log += &rig.run();
    assert!(log.contains("added to Scalelite"), "{log}");
    for secret in [LB_SECRET, "salt0aaa1111salt"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn every_entry_of_a_server_is_drained_and_a_stale_report_does_not_block_the_drain() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    // Two overlapping runs added it twice.
    let twin = rig
        .scalelite
        .add_directly(&url("i-0aaa1111"), "salt0aaa1111salt");
    // The report is stale (the server's secret changed before it could report again).
    rig.report("i-0aaa1111", "stalesalt0000000");
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");
    rig.run();
    rig.scalelite.poll();
    rig.run();
    assert!(
        rig.scalelite.servers().iter().all(|s| s.id != twin),
        "{:?}",
        rig.scalelite.servers()
    );
    assert!(rig.entry("i-0aaa1111").is_none());
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed"
    );
}

#[test]
fn a_hostile_server_holds_up_no_run_and_its_oversized_report_is_ignored() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    // Another server answers nothing for 30 s; a third reports its secret padded to 1 MiB.
    rig.launch("i-0bbb2222", "InService", "203.0.113.11");
    rig.fleet.add_hanging(&host("i-0bbb2222"));
    rig.report("i-0bbb2222", "salt0bbb2222salt");
    rig.launch("i-0ccc3333", "InService", "203.0.113.12");
    rig.fleet.add(&host("i-0ccc3333"), "salt0ccc3333salt");
    rig.change(|s| {
        let padded = json!({"secret": "salt0ccc3333salt", "pad": "x".repeat(1 << 20)});
        s["buckets"][BUCKET][report_key("i-0ccc3333")] = json!(padded.to_string());
    });
    let start = std::time::Instant::now();
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(1));
    let log = rig.run();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "a run waited {:?} for a server",
        start.elapsed()
    );
    assert!(log.contains("did not answer within"), "{log}");
    // The good server was served: protection on for its meeting.
    assert_eq!(rig.member("i-0aaa1111")["ProtectedFromScaleIn"], true);
    assert!(rig.entry("i-0bbb2222").is_none());
    assert!(
        rig.entry("i-0ccc3333").is_none(),
        "an oversized report was read"
    );
    // Its record was written all the same (a name is harmless; the registrar owns it).
    assert_eq!(rig.record_ip("i-0bbb2222").as_deref(), Some("203.0.113.11"));
    // Only a report's first bytes were asked for.
    assert!(
        rig.calls_of("get_object")
            .iter()
            .filter(|a| a["Key"].as_str().unwrap().starts_with("servers/"))
            .all(|a| a["Range"] == "bytes=0-16383"),
        "{:?}",
        rig.calls_of("get_object")
    );
}

#[test]
fn what_the_registrar_added_it_enables_even_a_run_later_and_nothing_else() {
    let rig = Rig::new();
    // A run added the server, and its enable (or the answer to addServer) was lost: the
    // entry is disabled and the registrar's note says "adding".
    rig.launch("i-0aaa1111", "InService", "203.0.113.10");
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    rig.report("i-0aaa1111", "salt0aaa1111salt");
    let id = rig
        .scalelite
        .add_directly(&url("i-0aaa1111"), "salt0aaa1111salt");
    rig.change(|s| s["buckets"][BUCKET]["registrar/i-0aaa1111/adding"] = json!(""));
    rig.run();
    assert_eq!(rig.scalelite.server(&id).unwrap().state, "enabled");
    assert_eq!(rig.scalelite.servers().len(), 1, "added twice");
    assert_eq!(rig.notes("i-0aaa1111"), ["registrar/i-0aaa1111/enabled"]);

    // An entry from before the registrar kept notes (an earlier release's server), disabled
    // by the operator's drain: left as it is, and noted.
    rig.launch("i-0bbb2222", "InService", "203.0.113.11");
    rig.fleet.add(&host("i-0bbb2222"), "salt0bbb2222salt");
    rig.report("i-0bbb2222", "salt0bbb2222salt");
    let old = rig
        .scalelite
        .add_directly(&url("i-0bbb2222"), "salt0bbb2222salt");
    rig.run();
    rig.run();
    assert_eq!(rig.scalelite.server(&old).unwrap().state, "disabled");
    assert_eq!(rig.notes("i-0bbb2222"), ["registrar/i-0bbb2222/enabled"]);

    // The drain takes the note with the server.
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");
    rig.run();
    rig.scalelite.poll();
    rig.run();
    assert!(rig.notes("i-0aaa1111").is_empty());
}

#[test]
fn scalelite_is_not_asked_before_its_name_exists() {
    let rig = Rig::new();
    rig.change(|s| {
        s["zones"][ZONE]
            .as_array_mut()
            .unwrap()
            .retain(|r| !r["Name"].as_str().unwrap().starts_with("scalelite."));
    });
    rig.launch("i-0aaa1111", "InService", "203.0.113.10");
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    rig.report("i-0aaa1111", "salt0aaa1111salt");
    let log = rig.run();
    // No lookup of a name that does not exist yet (a resolver would cache its absence).
    assert!(rig.scalelite.calls().is_empty(), "{log}");
    assert!(rig.calls_of("get_secret_value").is_empty());
    // The server's own name is written all the same.
    assert_eq!(rig.record_ip("i-0aaa1111").as_deref(), Some("203.0.113.10"));
}

#[test]
fn a_group_taken_apart_gets_no_new_name_no_entry_and_no_protection() {
    let rig = Rig::new();
    // A switch to single mode (or destroy) tagged the group; the one server it starts must
    // not be named bbb-<id> nor added to Scalelite.
    rig.change(|s| {
        s["groups"][0]["Tags"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Key": "bbbctl:protection", "Value": "off"}));
    });
    rig.launch("i-0aaa1111", "InService", "203.0.113.10");
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(1));
    rig.report("i-0aaa1111", "salt0aaa1111salt");
    rig.run();
    assert_eq!(rig.record("i-0aaa1111"), None);
    assert!(rig.scalelite.servers().is_empty());
    assert!(rig.calls_of("set_instance_protection").is_empty());
}

#[test]
fn a_second_entry_of_a_serving_server_is_cordoned_then_removed() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    let first = rig.entry("i-0aaa1111").unwrap().id;
    // Two runs that overlapped added it twice.
    let twin = rig
        .scalelite
        .add_directly(&url("i-0aaa1111"), "salt0aaa1111salt");
    rig.scalelite.enable(&twin);
    rig.run();
    assert_eq!(rig.scalelite.server(&twin).unwrap().state, "cordoned");
    assert_eq!(rig.scalelite.server(&first).unwrap().state, "enabled");
    rig.scalelite.set_load(&twin, 0.0);
    rig.scalelite.poll();
    rig.run();
    assert!(rig.scalelite.server(&twin).is_none());
    assert_eq!(rig.scalelite.server(&first).unwrap().state, "enabled");
}

#[test]
fn a_record_no_server_is_known_for_is_left_alone() {
    let rig = Rig::new();
    // A record of the servers' shape that the operator made, for no instance EC2 knows, and
    // that neither Scalelite nor the registrar ever knew as a server.
    rig.change(|s| {
        s["zones"][ZONE].as_array_mut().unwrap().push(json!({
            "Name": format!("bbb-0ddd4444.media.{DOMAIN}."), "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": "198.51.100.9"}]
        }));
    });
    rig.run();
    assert!(rig.record("i-0ddd4444").is_some());
}

#[test]
fn a_terminating_server_ec2_has_stopped_is_drained_without_its_api() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    let id = rig.entry("i-0aaa1111").unwrap().id;
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");
    // Its API no longer answers: while EC2 says it runs, the drain waits.
    rig.fleet.set_meetings(&host("i-0aaa1111"), None);
    rig.scalelite.set_offline(&id);
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Wait"
    );
    // EC2 says it stopped: no meeting runs there, none will; the drain goes on.
    rig.change(|s| s["instances"]["i-0aaa1111"]["State"]["Name"] = json!("stopped"));
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed"
    );
    assert!(rig.entry("i-0aaa1111").is_none());
}

// ---- issue 26: recordings -------------------------------------------------------------

#[test]
fn a_drain_waits_for_pending_recordings_and_heartbeats_each_run() {
    let rig = Rig::new();
    let (a, b) = (record_id(1), record_id(2));
    let busy = recordings(&[(&a, "process"), (&b, "publish")], 1, 0);
    rig.drained_of_meetings("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt", &busy);
    // Both runs of its drain so far waited, and each recorded a heartbeat.
    assert_eq!(rig.heartbeats("i-0aaa1111"), 2);

    // The agent reports again after the idle moment: still processing.
    rig.age_drain("i-0aaa1111", 120);
    rig.report_recordings("i-0aaa1111", "salt0aaa1111salt", &busy, now());
    for run in 3..=4 {
        let log = rig.run();
        assert_eq!(
            rig.member("i-0aaa1111")["LifecycleState"],
            "Terminating:Wait",
            "{log}"
        );
        assert_eq!(rig.heartbeats("i-0aaa1111"), run);
        // The log names what it waits for.
        assert!(
            log.contains(&format!("{a} (process)")) && log.contains(&format!("{b} (publish)")),
            "{log}"
        );
        assert!(log.contains("2 recording(s) pending"), "{log}");
    }
    assert!(
        rig.entry("i-0aaa1111").is_some(),
        "removed from Scalelite while processing"
    );
    assert!(rig.calls_of("complete_lifecycle_action").is_empty());
    let beat = &rig.calls_of("record_lifecycle_action_heartbeat")[0];
    assert_eq!(
        beat,
        &json!({"AutoScalingGroupName": GROUP, "InstanceId": "i-0aaa1111", "LifecycleHookName": "bbb-drain"})
    );

    // Processing jobs alone (nothing pending by the markers) hold it too.
    rig.report_recordings(
        "i-0aaa1111",
        "salt0aaa1111salt",
        &recordings(&[], 2, 0),
        now(),
    );
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Wait"
    );
}

#[test]
fn a_report_older_than_the_idle_moment_does_not_let_the_server_go() {
    let rig = Rig::new();
    let done = recordings(&[], 0, 0);
    rig.drained_of_meetings("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt", &done);
    let (_, idle) = rig.drain_note("i-0aaa1111");
    let idle = idle.unwrap();
    // A report that says "nothing pending", but written before the meetings were seen over
    // (a meeting that ended since may have left a recording it does not count), and one
    // written within seconds after (the agent reads its state before it writes).
    for written in [idle - 60, idle, idle + 10] {
        rig.report_recordings("i-0aaa1111", "salt0aaa1111salt", &done, written);
        let log = rig.run();
        assert_eq!(
            rig.member("i-0aaa1111")["LifecycleState"],
            "Terminating:Wait",
            "written at idle{:+}: {log}",
            written as i64 - idle as i64
        );
        assert!(log.contains("waiting for a report written after"), "{log}");
    }
    // The idle moment stays the one first noted, however many runs.
    assert_eq!(rig.drain_note("i-0aaa1111").1, Some(idle));
    rig.report_recordings("i-0aaa1111", "salt0aaa1111salt", &done, idle + 31);
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed"
    );
}

#[test]
fn a_fresh_report_with_nothing_pending_lets_the_server_go_after_its_entry_record_report_and_note() {
    let rig = Rig::new();
    let a = record_id(7);
    rig.drained_of_meetings(
        "i-0aaa1111",
        "203.0.113.10",
        "salt0aaa1111salt",
        &recordings(&[(&a, "transfer")], 0, 0),
    );
    rig.age_drain("i-0aaa1111", 120);
    // Published and copied to the spool; one earlier recording failed and was saved (safe).
    let saved = json!({"pending": 0, "jobs": 0, "failed": 1, "items": [
        {"id": record_id(3), "state": "failed", "saved": format!("failed/{ROLE_ID}:i-0aaa1111/{}.tar", record_id(3))}
    ]});
    rig.report_recordings("i-0aaa1111", "salt0aaa1111salt", &saved, now());
    let before = rig.calls().len();
    let log = rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed",
        "{log}"
    );
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleActionResult"],
        "CONTINUE"
    );
    assert!(rig.entry("i-0aaa1111").is_none());
    assert_eq!(rig.record("i-0aaa1111"), None);
    assert!(rig.state()["buckets"][BUCKET][report_key("i-0aaa1111")].is_null());
    assert!(rig.notes("i-0aaa1111").is_empty());
    // Everything went before the lifecycle action was completed.
    let calls: Vec<(String, String, Value)> = rig.calls().split_off(before);
    let at = |what: &dyn Fn(&str, &Value) -> bool| {
        calls
            .iter()
            .position(|(_, op, args)| what(op, args))
            .unwrap_or_else(|| panic!("not called: {calls:?}"))
    };
    let completed = at(&|op, _| op == "complete_lifecycle_action");
    let record = at(&|op, args| {
        op == "change_resource_record_sets"
            && args["ChangeBatch"]["Changes"][0]["Action"] == "DELETE"
    });
    let report =
        at(&|op, args| op == "delete_object" && args["Key"] == report_key("i-0aaa1111").as_str());
    let note = at(&|op, args| {
        op == "delete_object"
            && args["Key"]
                .as_str()
                .unwrap()
                .starts_with("registrar/i-0aaa1111/")
    });
    assert!(
        record < completed && report < completed && note < completed,
        "{calls:?}"
    );
    assert!(
        rig.scalelite
            .calls()
            .iter()
            .any(|c| c.action == "deleteServer"),
        "{:?}",
        rig.scalelite.calls()
    );
    // No heartbeat in the run that let it go.
    assert!(
        !calls
            .iter()
            .any(|(_, op, _)| op == "record_lifecycle_action_heartbeat")
    );
}

#[test]
fn an_earlier_agents_report_without_recordings_is_not_waited_on() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    let id = rig.entry("i-0aaa1111").unwrap().id;
    // rig.report writes {"secret": ..., "boot": ...} without recordings, as the agents of earlier releases.
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(1));
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");
    rig.run();
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(0));
    rig.scalelite.set_load(&id, 0.0);
    rig.scalelite.poll();
    let log = rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed",
        "{log}"
    );
    assert!(
        log.contains("reports no recordings (an earlier release)"),
        "{log}"
    );
}

#[test]
fn an_account_of_recordings_out_of_shape_is_unknown_and_waited_for() {
    let rig = Rig::new();
    let done = recordings(&[], 0, 0);
    rig.drained_of_meetings("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt", &done);
    rig.age_drain("i-0aaa1111", 120);
    let id = record_id(1);
    let malformed = [
        json!("none"),
        json!({"pending": -1, "jobs": 0, "failed": 0, "items": []}),
        json!({"pending": 0.0, "jobs": 0, "failed": 0, "items": []}),
        json!({"pending": false, "jobs": 0, "failed": 0, "items": []}),
        json!({"pending": "0", "jobs": 0, "failed": 0, "items": []}),
        json!({"pending": 100001, "jobs": 0, "failed": 0, "items": []}),
        json!({"pending": 0, "jobs": 0, "failed": 0}),
        json!({"pending": 0, "jobs": 0, "failed": 0, "items": [], "note": "x"}),
        json!({"pending": 0, "jobs": 0, "failed": 0, "items": {}}),
        // Items beyond their counts, of an unknown state, of an id not BBB's.
        json!({"pending": 0, "jobs": 0, "failed": 0, "items": [{"id": id, "state": "process"}]}),
        json!({"pending": 1, "jobs": 0, "failed": 0, "items": [{"id": id, "state": "done"}]}),
        json!({"pending": 1, "jobs": 0, "failed": 0, "items": [{"id": "../../x", "state": "queued"}]}),
        json!({"pending": 1, "jobs": 0, "failed": 0, "items": [{"id": format!("{id}\n"), "state": "queued"}]}),
        json!({"pending": 1, "jobs": 0, "failed": 0, "items": [{"id": id.to_uppercase(), "state": "queued"}]}),
        // "saved" on a recording not failed, or naming another server's object.
        json!({"pending": 0, "jobs": 0, "failed": 1, "items": [{"id": id, "state": "process", "saved": format!("failed/{ROLE_ID}:i-0aaa1111/{id}.tar")}]}),
        json!({"pending": 0, "jobs": 0, "failed": 1, "items": [{"id": id, "state": "failed", "saved": format!("failed/{ROLE_ID}:i-0bbb2222/{id}.tar")}]}),
    ];
    let mut too_many = recordings(&[], 0, 0);
    too_many["pending"] = json!(51);
    too_many["items"] = json!(
        (0..51)
            .map(|n| json!({"id": record_id(n), "state": "queued"}))
            .collect::<Vec<_>>()
    );
    for account in malformed.iter().chain([&too_many]) {
        rig.report_recordings("i-0aaa1111", "salt0aaa1111salt", account, now());
        let log = rig.run();
        assert_eq!(
            rig.member("i-0aaa1111")["LifecycleState"],
            "Terminating:Wait",
            "{account}: {log}"
        );
        assert!(log.contains("recordings unknown"), "{account}: {log}");
    }
    // Not JSON at all, and a report cut at 16 KiB: unknown too.
    for body in [
        "{\"secret\": \"salt0aaa1111salt\", \"recordings\": {".to_string(),
        json!({"secret": "salt0aaa1111salt", "recordings": done, "pad": "x".repeat(20000)})
            .to_string(),
    ] {
        rig.report_raw("i-0aaa1111", &body, now());
        rig.run();
        assert_eq!(
            rig.member("i-0aaa1111")["LifecycleState"],
            "Terminating:Wait"
        );
    }
    // The same account in shape lets it go: the waits were the shape's.
    rig.report_recordings("i-0aaa1111", "salt0aaa1111salt", &done, now());
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed"
    );
}

#[test]
fn at_the_drain_limit_the_server_goes_with_what_still_ran_in_the_log_and_its_tag() {
    let rig = Rig::new();
    let (a, b) = (record_id(1), record_id(2));
    let busy = recordings(&[(&a, "archive"), (&b, "failed")], 1, 0);
    rig.drained_of_meetings("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt", &busy);
    rig.report_recordings("i-0aaa1111", "salt0aaa1111salt", &busy, now());
    rig.age_drain("i-0aaa1111", DRAIN_LIMIT - 60);
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Wait"
    );

    // (A second past the limit: the registrar notes the start to the second, rounded.)
    rig.age_drain("i-0aaa1111", 61);
    let log = rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed",
        "{log}"
    );
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleActionResult"],
        "CONTINUE"
    );
    let line = log
        .lines()
        .find(|l| l.contains("drain limit reached"))
        .unwrap_or_else(|| panic!("nothing said at the limit:\n{log}"));
    for part in [
        "(14400 s from ",
        "still 0 meeting(s)",
        "2 recording(s) pending",
        &format!("{a} (archive)"),
        &format!("{b} (failed)"),
        "1 processing job(s)",
        "let go",
    ] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
    let tag = rig.drain_tag("i-0aaa1111").unwrap();
    assert!(
        tag.starts_with("limit reached at ")
            && tag.ends_with("Z: still 0 meeting(s), 2 recording(s) pending; let go"),
        "{tag}"
    );
    assert!(rig.entry("i-0aaa1111").is_none());
    assert!(rig.notes("i-0aaa1111").is_empty());

    // A server whose own API stops answering is let go at the limit all the same, and its
    // meetings show as unknown.
    rig.serving("i-0bbb2222", "203.0.113.11", "salt0bbb2222salt");
    rig.set_lifecycle("i-0bbb2222", "Terminating:Wait");
    rig.fleet.set_meetings(&host("i-0bbb2222"), None);
    rig.run();
    rig.age_drain("i-0bbb2222", DRAIN_LIMIT + 1);
    let log = rig.run();
    assert_eq!(
        rig.member("i-0bbb2222")["LifecycleState"],
        "Terminating:Proceed"
    );
    assert!(log.contains("still ? meeting(s)"), "{log}");
}

#[test]
fn a_server_with_recordings_pending_keeps_its_protection_without_a_meeting() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(1));
    rig.run();
    assert_eq!(rig.member("i-0aaa1111")["ProtectedFromScaleIn"], true);

    // The meeting ends. Each account in turn, and whether protection must hold after it.
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(0));
    let a = record_id(1);
    for (what, account, protected) in [
        // Its recording is being processed.
        (
            "a recording pending",
            recordings(&[(&a, "sanity")], 1, 0),
            true,
        ),
        // Out of shape: unknown, no reason to drop protection.
        ("an account out of shape", json!({"pending": "none"}), true),
        // Jobs alone hold it too.
        ("a job running", recordings(&[], 1, 0), true),
        // Safe (failed ones saved count for nothing): protection off.
        ("two failed and saved", recordings(&[], 0, 2), false),
    ] {
        rig.report_recordings("i-0aaa1111", "salt0aaa1111salt", &account, now());
        let log = rig.run();
        assert_eq!(
            rig.member("i-0aaa1111")["ProtectedFromScaleIn"],
            protected,
            "{what}: {log}"
        );
    }

    // Recordings pending on a server that never ran a meeting this run's API saw: on.
    let b = record_id(2);
    rig.report_recordings(
        "i-0aaa1111",
        "salt0aaa1111salt",
        &recordings(&[(&b, "queued")], 0, 0),
        now(),
    );
    let log = rig.run();
    assert_eq!(rig.member("i-0aaa1111")["ProtectedFromScaleIn"], true);
    assert!(
        log.contains("1 recording(s) pending, 0 job(s), scale-in protection on"),
        "{log}"
    );
}

#[test]
fn the_drain_tag_follows_the_drain_and_is_written_only_when_it_changes() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    let id = rig.entry("i-0aaa1111").unwrap().id;
    let a = record_id(1);
    rig.report_recordings(
        "i-0aaa1111",
        "salt0aaa1111salt",
        &recordings(&[(&a, "process")], 1, 3),
        now(),
    );
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(2));
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");
    rig.run();
    let (start, _) = rig.drain_note("i-0aaa1111");
    let since = rig.drain_tag("i-0aaa1111").expect("tagged");
    let re = regex::Regex::new(r"^waiting since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ): 2 meeting\(s\), 1 recording\(s\) pending, 3 failed and saved$").unwrap();
    assert!(re.is_match(&since), "{since}");
    // The same state: no second write.
    rig.run();
    rig.run();
    assert_eq!(rig.calls_of("create_tags").len(), 1);

    // The API stops answering: meetings unknown.
    rig.fleet.set_meetings(&host("i-0aaa1111"), None);
    rig.run();
    assert!(
        rig.drain_tag("i-0aaa1111")
            .unwrap()
            .contains(": ? meeting(s), 1 recording(s) pending")
    );
    // It answers again, no meeting; the report grows stale: recordings unknown.
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(0));
    rig.change(|s| s["modified"][BUCKET][report_key("i-0aaa1111")] = json!(now() - 3600));
    rig.run();
    assert!(
        rig.drain_tag("i-0aaa1111")
            .unwrap()
            .contains(": 0 meeting(s), ? recording(s) pending, 3 failed and saved")
    );
    assert_eq!(rig.calls_of("create_tags").len(), 3);
    // The start shown is the noted one, whatever the run.
    let shown = re.captures(&since).unwrap()[1].to_string();
    assert_eq!(shown, bbbctl::backup::timestamp(start as i64));

    // Done: the last word.
    rig.scalelite.set_load(&id, 0.0);
    rig.scalelite.poll();
    rig.run(); // the idle moment noted
    rig.age_drain("i-0aaa1111", 120);
    rig.report_recordings(
        "i-0aaa1111",
        "salt0aaa1111salt",
        &recordings(&[], 0, 3),
        now(),
    );
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed"
    );
    let done = rig.drain_tag("i-0aaa1111").unwrap();
    assert!(
        regex::Regex::new(r"^done at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: let go$")
            .unwrap()
            .is_match(&done),
        "{done}"
    );
    // Only that key, only this deployment's instances (the fake refuses others as the role does).
    for args in rig.calls_of("create_tags") {
        assert_eq!(args["Resources"], json!(["i-0aaa1111"]));
        assert_eq!(args["Tags"].as_array().unwrap().len(), 1);
        assert_eq!(args["Tags"][0]["Key"], "bbbctl:drain");
    }
}

#[test]
fn a_cordoned_server_that_reboots_and_reports_again_stays_cordoned() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    let id = rig.entry("i-0aaa1111").unwrap().id;
    rig.scalelite.cordon(&id);
    rig.run();
    let before = rig.scalelite.calls().len();
    // A reboot: the agent registers again with the same secret, its report rewritten (a new
    // LastModified, a new account of recordings).
    rig.report_recordings(
        "i-0aaa1111",
        "salt0aaa1111salt",
        &recordings(&[], 0, 0),
        now() + 1,
    );
    rig.run();
    rig.run();
    assert_eq!(rig.entry("i-0aaa1111").unwrap().state, "cordoned");
    assert_eq!(rig.scalelite.servers().len(), 1);
    let since = rig.scalelite.calls().split_off(before);
    assert!(since.iter().all(|c| c.action == "getServers"), "{since:?}");
    assert_eq!(rig.notes("i-0aaa1111"), ["registrar/i-0aaa1111/enabled"]);
}

#[test]
fn overlapping_runs_keep_the_earliest_drain_note() {
    let rig = Rig::new();
    rig.serving("i-0aaa1111", "203.0.113.10", "salt0aaa1111salt");
    rig.set_lifecycle("i-0aaa1111", "Terminating:Wait");
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(1));
    // Two runs that overlapped each noted the drain's start, and left "enabled" beside.
    let t = now();
    rig.change(|s| {
        let objects = s["buckets"][BUCKET].as_object_mut().unwrap();
        objects.insert(
            format!("registrar/i-0aaa1111/draining-{}", t - 100),
            json!(""),
        );
        objects.insert(
            format!("registrar/i-0aaa1111/draining-{}", t - 40),
            json!(""),
        );
    });
    let log = rig.run();
    let tag = rig.drain_tag("i-0aaa1111").unwrap();
    assert!(
        tag.starts_with(&format!(
            "waiting since {}:",
            bbbctl::backup::timestamp((t - 100) as i64)
        )),
        "{tag}\n{log}"
    );
    // All three notes are kept until the drain ends, and then all go.
    assert_eq!(rig.notes("i-0aaa1111").len(), 3);
    rig.fleet.set_meetings(&host("i-0aaa1111"), Some(0));
    let id = rig.entry("i-0aaa1111").unwrap().id;
    rig.scalelite.set_load(&id, 0.0);
    rig.scalelite.poll();
    rig.run();
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Terminating:Proceed"
    );
    assert!(rig.notes("i-0aaa1111").is_empty());
}

// ---- issue 27: the launch hook, the warm pool, DNS in sync, the S3 event -----------------

/// What the group's launch hook did to `instance`: the hooks whose action was completed.
fn completed(rig: &Rig, instance: &str) -> Vec<String> {
    let state = rig.state();
    let warm = state["warm"][GROUP].as_array().cloned().unwrap_or_default();
    state["groups"][0]["Instances"]
        .as_array()
        .unwrap()
        .iter()
        .chain(warm.iter())
        .find(|i| i["InstanceId"] == instance)
        .and_then(|i| i["Completed"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

fn launch_time(rig: &Rig, instance: &str) -> u64 {
    rig.state()["instances"][instance]["LaunchTime"]
        .as_u64()
        .unwrap()
}

#[test]
fn the_launch_hook_is_completed_only_on_a_ready_report_written_after_the_last_start() {
    let rig = Rig::new();
    rig.launch("i-0aaa1111", "Pending:Wait", "203.0.113.10");
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    let launched = launch_time(&rig, "i-0aaa1111");

    // No report yet: its name is written at once (Pending:Wait), the hook waits, says why.
    let log = rig.run();
    assert_eq!(rig.record_ip("i-0aaa1111").as_deref(), Some("203.0.113.10"));
    assert!(
        log.contains("waiting to go into service: no report yet"),
        "{log}"
    );
    assert_eq!(rig.member("i-0aaa1111")["LifecycleState"], "Pending:Wait");

    // Booting: a heartbeat each run, and the log says which path since when.
    let body = json!({"secret": "salt0aaa1111salt", "boot": boot("booting", launched + 20, "baked", "InService")});
    rig.report_raw("i-0aaa1111", &body.to_string(), launched + 30);
    let log = rig.run();
    assert!(log.contains("booting (baked) since"), "{log}");
    assert_eq!(rig.heartbeats("i-0aaa1111"), 1);
    rig.run();
    assert_eq!(rig.heartbeats("i-0aaa1111"), 2);
    assert!(rig.scalelite.servers().is_empty());

    // A ready report from before the last start (the warm boot's, or the last boot's before
    // a stop and start) does not count, nor does it earn a heartbeat.
    let stale = json!({"secret": "salt0aaa1111salt", "boot": boot("ready", launched - 900, "bare", "Warmed:Stopped")});
    rig.report_raw("i-0aaa1111", &stale.to_string(), launched - 5);
    let log = rig.run();
    assert!(log.contains("written before its last start"), "{log}");
    assert_eq!(rig.member("i-0aaa1111")["LifecycleState"], "Pending:Wait");
    assert_eq!(rig.heartbeats("i-0aaa1111"), 2);

    // Out of shape (an unknown state, a path of no boot, a key too many): not ready.
    for bad in [
        json!({"state": "READY", "started": launched + 20, "path": "baked", "lifecycle": "InService"}),
        json!({"state": "ready", "started": launched + 20, "path": "bake", "lifecycle": "InService"}),
        json!({"state": "ready", "started": "1", "path": "baked", "lifecycle": "InService"}),
        json!({"state": "ready", "started": launched + 20, "path": "baked", "lifecycle": "Serving"}),
        json!({"state": "ready", "started": launched + 20, "path": "baked", "lifecycle": "", "more": 1}),
    ] {
        let body = json!({"secret": "salt0aaa1111salt", "boot": bad});
        rig.report_raw("i-0aaa1111", &body.to_string(), now());
        let log = rig.run();
        assert!(
            log.contains("no account of its boot in shape"),
            "{bad}: {log}"
        );
        assert!(completed(&rig, "i-0aaa1111").is_empty(), "{bad}");
    }

    // Ready, written after the start: CONTINUE, and in the same run (its record in sync, its
    // API answering with the reported secret) added to Scalelite and enabled.
    let body = json!({"secret": "salt0aaa1111salt", "boot": boot("ready", launched + 20, "baked", "InService")});
    rig.report_raw("i-0aaa1111", &body.to_string(), now());
    let log = rig.run();
    assert_eq!(completed(&rig, "i-0aaa1111"), vec!["bbb-launch"], "{log}");
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleState"],
        "Pending:Proceed"
    );
    assert_eq!(
        rig.member("i-0aaa1111")["LifecycleActionResult"],
        "CONTINUE"
    );
    assert_eq!(
        rig.entry("i-0aaa1111").expect("registered").state,
        "enabled"
    );
    // The server never completes it: the registrar does, with its own role (logged).
    assert!(
        log.contains("boot ready (baked): let into service"),
        "{log}"
    );
}

#[test]
fn a_failed_boot_goes_in_at_once_unregistered_and_a_long_boot_stops_being_heartbeaten() {
    let rig = Rig::new();
    rig.launch("i-0aaa1111", "Pending:Wait", "203.0.113.10");
    // Its API even answers: a failed boot (say its identity check) is never added.
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    let launched = launch_time(&rig, "i-0aaa1111");
    let body = json!({"secret": "salt0aaa1111salt", "boot": boot("failed", launched + 20, "bare", "InService")});
    rig.report_raw("i-0aaa1111", &body.to_string(), now());
    let log = rig.run();
    assert_eq!(completed(&rig, "i-0aaa1111"), vec!["bbb-launch"]);
    assert!(log.contains("boot FAILED (bare)"), "{log}");
    assert!(rig.scalelite.servers().is_empty());
    rig.set_lifecycle("i-0aaa1111", "InService");
    let log = rig.run();
    assert!(rig.scalelite.servers().is_empty(), "{log}");
    assert!(log.contains("its report says its boot is failed"), "{log}");

    // A boot still "booting" past BOOT_LIMIT (90 min) gets no more heartbeats.
    rig.launch("i-0bbb2222", "Pending:Wait", "203.0.113.11");
    let body = json!({"secret": "salt0bbb2222salt", "boot": boot("booting", now() - 5500, "bare", "InService")});
    rig.report_raw("i-0bbb2222", &body.to_string(), now());
    let log = rig.run();
    assert_eq!(rig.heartbeats("i-0bbb2222"), 0, "{log}");
    assert!(log.contains("no more heartbeats"), "{log}");
}

#[test]
fn warm_instances_get_no_name_and_no_registration_and_go_in_and_out_of_the_pool() {
    let rig = Rig::new();
    // On its way into the pool (Warmed:Pending:Wait): running, with a public address, API up.
    rig.change(|s| {
        s["warm"][GROUP] = json!([
            {"InstanceId": "i-0aaa1111", "LifecycleState": "Warmed:Pending:Wait"},
            {"InstanceId": "i-0bbb2222", "LifecycleState": "Warmed:Terminating:Wait"},
            {"InstanceId": "i-0ccc3333", "LifecycleState": "Warmed:Stopped"},
        ]);
        for (id, ip) in [("i-0aaa1111", "203.0.113.10"), ("i-0bbb2222", "203.0.113.11"), ("i-0ccc3333", "203.0.113.12")] {
            s["instances"][id] = json!({"PublicIpAddress": ip, "State": {"Name": "running"}, "LaunchTime": now() - 600,
                "Tags": [{"Key": "bbbctl:stack", "Value": STACK}]});
        }
        s["instances"]["i-0ccc3333"]["State"]["Name"] = json!("stopped");
        // A record of a warm instance (none should exist): deleted.
        s["zones"][ZONE].as_array_mut().unwrap().push(json!({"Name": format!("{}.", host("i-0ccc3333")), "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "203.0.113.12"}]}));
    });
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    let body = json!({"secret": "salt0aaa1111salt", "boot": boot("booting", now() - 200, "bare", "Warmed:Stopped")});
    rig.report_raw("i-0aaa1111", &body.to_string(), now());

    // Warmed:Terminating:Wait is let go at once (stopped or not, it has nothing to drain);
    // the one preparing is heartbeaten.
    let log = rig.run();
    assert_eq!(completed(&rig, "i-0bbb2222"), vec!["bbb-drain"], "{log}");
    assert_eq!(rig.heartbeats("i-0aaa1111"), 1, "{log}");
    assert!(
        log.contains("waiting to go into the warm pool: booting (bare)"),
        "{log}"
    );
    assert_eq!(rig.record("i-0ccc3333"), None, "{log}");

    // One whose boot failed on its way into the pool is abandoned (terminated, the pool
    // prepares another), never kept stopped to be started into service later.
    rig.change(|s| {
        s["warm"][GROUP].as_array_mut().unwrap().push(
            json!({"InstanceId": "i-0ddd4444", "LifecycleState": "Warmed:Pending:Wait"}),
        );
        s["instances"]["i-0ddd4444"] = json!({"PublicIpAddress": "203.0.113.13", "State": {"Name": "running"}, "LaunchTime": now() - 600,
            "Tags": [{"Key": "bbbctl:stack", "Value": STACK}]});
    });
    let body = json!({"secret": "salt0ddd4444salt", "boot": boot("failed", now() - 100, "bare", "Warmed:Stopped")});
    rig.report_raw("i-0ddd4444", &body.to_string(), now());
    let log = rig.run();
    assert_eq!(completed(&rig, "i-0ddd4444"), vec!["bbb-launch"], "{log}");
    let abandoned = rig.calls_of("complete_lifecycle_action");
    assert!(
        abandoned
            .iter()
            .any(|c| c["InstanceId"] == "i-0ddd4444" && c["LifecycleActionResult"] == "ABANDON"),
        "{abandoned:?}"
    );
    assert!(log.contains("abandoned"), "{log}");

    // Its install is over: into the pool (where AWS stops it).
    let body = json!({"secret": "salt0aaa1111salt", "boot": boot("ready", now() - 100, "bare", "Warmed:Stopped")});
    rig.report_raw("i-0aaa1111", &body.to_string(), now());
    let log = rig.run();
    assert_eq!(completed(&rig, "i-0aaa1111"), vec!["bbb-launch"], "{log}");
    // Never a name, never Scalelite, never asked, never protected.
    for id in ["i-0aaa1111", "i-0bbb2222", "i-0ccc3333"] {
        assert_eq!(rig.record(id), None, "{id}");
        assert!(rig.entry(id).is_none(), "{id}");
    }
    assert!(rig.calls_of("set_instance_protection").is_empty());
    assert!(rig.calls_of("complete_lifecycle_action").len() == 3);
    // Its report stays (it is a live instance of the group's pool), its notes none.
    assert!(rig.state()["buckets"][BUCKET][report_key("i-0aaa1111")].is_string());
}

#[test]
fn registration_waits_until_the_record_is_insync_in_route53() {
    let rig = Rig::new();
    rig.change(|s| s["sync_after"] = json!(3600));
    rig.launch("i-0aaa1111", "InService", "203.0.113.10");
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    rig.report("i-0aaa1111", "salt0aaa1111salt");
    let log = rig.run();
    assert!(rig.record("i-0aaa1111").is_some());
    assert!(rig.scalelite.servers().is_empty(), "{log}");
    assert!(log.contains("not yet INSYNC"), "{log}");
    assert_eq!(rig.notes("i-0aaa1111").len(), 1, "{log}");
    assert!(rig.notes("i-0aaa1111")[0].contains("/named-C"));
    // Not even the registrar looked the name up (its API was not asked).
    let log = rig.run();
    assert!(rig.scalelite.servers().is_empty(), "{log}");

    // Route 53 is in sync: registered, and the note of the change is gone.
    rig.change(|s| s["sync_after"] = json!(0));
    let log = rig.run();
    assert_eq!(
        rig.entry("i-0aaa1111").expect("registered").state,
        "enabled",
        "{log}"
    );
    assert!(
        rig.notes("i-0aaa1111")
            .iter()
            .all(|n| !n.contains("/named-"))
    );
    let asked = rig.calls_of("get_change").len();
    rig.run();
    assert_eq!(
        rig.calls_of("get_change").len(),
        asked,
        "asked again once in sync"
    );
}

#[test]
fn an_s3_event_of_a_report_runs_the_registrar_and_one_of_an_unchanged_report_is_skipped() {
    let rig = Rig::new();
    rig.launch("i-0aaa1111", "Pending:Wait", "203.0.113.10");
    rig.fleet.add(&host("i-0aaa1111"), "salt0aaa1111salt");
    let body = json!({"secret": "salt0aaa1111salt", "boot": ready()}).to_string();
    rig.report_raw("i-0aaa1111", &body, now());
    // S3's event as EventBridge delivers it (Amazon S3 User Guide, "EventBridge event message
    // structure"): the ETag without quotes.
    let etag = format!("{:x}", md5_of(body.as_bytes()));
    let event = |etag: &str| {
        json!({
            "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "time": "2026-12-08T00:00:00Z", "region": "eu-central-1",
            "resources": [format!("arn:aws:s3:::{BUCKET}")],
            "detail": {"version": "0", "bucket": {"name": BUCKET},
                "object": {"key": report_key("i-0aaa1111"), "size": body.len(), "etag": etag, "sequencer": "0062E99A88DC407460"},
                "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "203.0.113.10",
                "reason": "PutObject"}
        })
    };
    // A cold function: the event makes a whole run, which lets the server in.
    let log = rig.run_events(&[event(&etag)]);
    assert_eq!(completed(&rig, "i-0aaa1111"), vec!["bbb-launch"], "{log}");
    // The same report written again (the agent's two-minute rewrite): a warm function that
    // read it already does nothing at all; a changed one (another ETag) makes a run.
    let calls = rig.calls().len();
    let log = rig.run_events(&[json!({"source": "aws.events"}), event(&etag)]);
    assert!(log.contains("written again unchanged"), "{log}");
    let after_schedule = rig.calls().len();
    assert!(after_schedule > calls);
    let log = rig.run_events(&[
        json!({"source": "aws.events"}),
        event(&etag),
        event("0123456789abcdef0123456789abcdef"),
    ]);
    assert_eq!(log.matches("written again unchanged").count(), 1, "{log}");
    assert_eq!(log.matches("\"actions\"").count(), 3, "{log}");
}

/// MD5 (RFC 1321) of `data`, as S3 gives a single-part upload's ETag.
fn md5_of(data: &[u8]) -> u128 {
    let out = Command::new("python3")
        .arg("-c")
        .arg("import hashlib, sys; print(hashlib.md5(sys.argv[1].encode()).hexdigest())")
        .arg(std::str::from_utf8(data).unwrap())
        .output()
        .unwrap();
    u128::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).unwrap()
}
