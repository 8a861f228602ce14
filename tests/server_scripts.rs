//! The BBB server's agent (templates/scripts/bbb-agent.sh) run for real, with the AWS CLI
//! replaced by a recording fake: it writes this server's API secret to its own report object
//! (servers/<role id>:<instance id>.json, the key its role may write), once per change; it
//! never sources its settings; it calls nothing but sts and that one put (no Scalelite, no
//! DNS, no Auto Scaling: the registrar does those, tests/registrar.rs).
//! The bootstrap log shipper (templates/scripts/bbb-logship.sh) with a fake AWS CLI:
//! every line reaches CloudWatch Logs once, in order and in batches, resuming where it
//! stopped; a refused call loses no line and repeats none.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

const SALT: &str = "bbbsalt0123456789abcdef";
const INSTANCE: &str = "i-0abc1234";
const BUCKET: &str = "bbb-sources-sourcesbucket-0123";
const USER_ID: &str = "AROAEXAMPLEROLEID0001:i-0abc1234";

/// A recording AWS CLI for the agent: sts get-caller-identity answers the instance role
/// session's UserId; s3api put-object keeps the body it is given as put-<n>.json (with
/// put.log naming bucket and key); `put-failures` holds how many puts are refused first.
const FAKE_AWS_AGENT: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_DIR/aws.log"
case "$1 $2" in
  "sts get-caller-identity") cat "$FAKE_DIR/user-id" ;;
  "s3api put-object")
    n=$(cat "$FAKE_DIR/put-failures" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then
      echo $((n - 1)) >"$FAKE_DIR/put-failures"
      echo "An error occurred (AccessDenied) when calling the PutObject operation" >&2
      exit 254
    fi
    bucket="" key="" body=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --bucket) bucket=$2 ;;
        --key) key=$2 ;;
        --body) body=$2 ;;
      esac
      shift
    done
    count=$(wc -l <"$FAKE_DIR/put.log" 2>/dev/null || echo 0)
    cp "$body" "$FAKE_DIR/put-$count.json"
    printf '%s %s\n' "$bucket" "$key" >>"$FAKE_DIR/put.log"
    echo '{"ETag": "\"0\""}'
    ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 255 ;;
esac
"#;

struct AgentRig {
    dir: TempDir,
}

impl AgentRig {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("bin")).unwrap();
        write_executable(&dir.path().join("bin/aws"), FAKE_AWS_AGENT);
        fs::write(dir.path().join("user-id"), USER_ID).unwrap();
        let rig = AgentRig { dir };
        rig.set_salt(SALT);
        rig.configure("");
        rig
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// /etc/default/bbb-agent as bbb-bootstrap.sh writes it, plus `extra` lines.
    fn configure(&self, extra: &str) {
        fs::write(
            self.path("bbb-agent.conf"),
            format!(
                "AWS_DEFAULT_REGION=eu-central-1\nREPORT_BUCKET={BUCKET}\nSTATE_FILE={state}\nBBB_PROPERTIES={props}\n{extra}",
                state = self.path("reported.sha256").display(),
                props = self.path("bbb-web.properties").display(),
            ),
        )
        .unwrap();
    }

    fn set_salt(&self, salt: &str) {
        fs::write(
            self.path("bbb-web.properties"),
            format!("bigbluebutton.web.serverURL=https://bbb-0abc1234.bbb.example.org\nsecuritySalt={salt}\n"),
        )
        .unwrap();
    }

    fn report(&self) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/scripts/bbb-agent.sh");
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .arg(script)
            .arg("report")
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("FAKE_DIR", self.dir.path())
            .env("BBB_AGENT_CONFIG", self.path("bbb-agent.conf"))
            .stdin(Stdio::null())
            .output()
            .expect("run bash")
    }

    /// (bucket, key, body) of every accepted put.
    fn puts(&self) -> Vec<(String, String, serde_json::Value)> {
        lines(&self.path("put.log"))
            .iter()
            .enumerate()
            .map(|(n, l)| {
                let (bucket, key) = l.split_once(' ').unwrap();
                let body = fs::read_to_string(self.path(&format!("put-{n}.json"))).unwrap();
                (
                    bucket.to_string(),
                    key.to_string(),
                    serde_json::from_str(&body).unwrap(),
                )
            })
            .collect()
    }
}

#[test]
fn the_agent_reports_its_secret_to_its_own_key_once_per_change() {
    let rig = AgentRig::new();
    support::assert_success(&rig.report());
    let puts = rig.puts();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].0, BUCKET);
    assert_eq!(puts[0].1, format!("servers/{USER_ID}.json"));
    assert_eq!(puts[0].2, serde_json::json!({"secret": SALT}));

    // Unchanged: nothing written again.
    support::assert_success(&rig.report());
    assert_eq!(rig.puts().len(), 1);

    // A new secret (bbb-conf --setsecret): reported.
    rig.set_salt("newsalt0123456789abcdef");
    support::assert_success(&rig.report());
    let puts = rig.puts();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[1].2["secret"], "newsalt0123456789abcdef");

    // It calls nothing but sts and its put: no Scalelite, no DNS, no Auto Scaling.
    for call in lines(&rig.path("aws.log")) {
        assert!(
            call.starts_with("sts get-caller-identity") || call.starts_with("s3api put-object"),
            "unexpected call: {call}"
        );
    }
}

#[test]
fn a_refused_or_premature_report_is_a_failure_and_is_tried_again() {
    let rig = AgentRig::new();
    // bbb-web has no secret yet (still installing).
    fs::write(rig.path("bbb-web.properties"), "").unwrap();
    let out = rig.report();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no securitySalt"));
    assert!(rig.puts().is_empty());

    rig.set_salt(SALT);
    fs::write(rig.path("put-failures"), "1").unwrap();
    let out = rig.report();
    assert!(!out.status.success(), "a refused put must fail");
    assert!(rig.puts().is_empty());
    // Not remembered as written: the next round writes it.
    support::assert_success(&rig.report());
    assert_eq!(rig.puts().len(), 1);
}

#[test]
fn the_agent_reads_its_settings_as_data_and_only_as_an_instance_role() {
    let rig = AgentRig::new();
    // A setting that a shell would run if the file were sourced.
    rig.configure("REPORT_SECONDS=$(touch pwned)\n`touch pwned2`=1\n");
    support::assert_success(&rig.report());
    assert!(!rig.path("pwned").exists() && !rig.path("pwned2").exists());

    // Credentials that are not an instance profile's: nothing written.
    fs::write(rig.path("user-id"), "AIDAEXAMPLEUSER").unwrap();
    fs::remove_file(rig.path("reported.sha256")).unwrap();
    let out = rig.report();
    assert!(!out.status.success());
    assert_eq!(rig.puts().len(), 1);
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_executable(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------------
// bbb-logship (templates/scripts/bbb-logship.sh): the bootstrap log to CloudWatch Logs,
// with the AWS CLI replaced by a recording fake that keeps every accepted event.

/// A recording AWS CLI for CloudWatch Logs: `put-log-events` appends the events file it
/// is given to events.jsonl (one JSON array a line); `put-failures` holds how many puts
/// are refused first.
const FAKE_AWS_LOGS: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_DIR/aws.log"
case "$1 $2" in
  "logs create-log-stream") ;;
  "logs put-log-events")
    n=$(cat "$FAKE_DIR/put-failures" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then
      echo $((n - 1)) >"$FAKE_DIR/put-failures"
      echo "An error occurred (ThrottlingException) when calling the PutLogEvents operation" >&2
      exit 254
    fi
    while [ $# -gt 0 ]; do
      if [ "$1" = --log-events ]; then
        tr -d '\n' <"${2#file://}" >>"$FAKE_DIR/events.jsonl"
        echo >>"$FAKE_DIR/events.jsonl"
      fi
      shift
    done
    ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 255 ;;
esac
"#;

struct LogRig {
    dir: TempDir,
}

impl LogRig {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("bin")).unwrap();
        fs::create_dir(dir.path().join("state")).unwrap();
        write_executable(&dir.path().join("bin/aws"), FAKE_AWS_LOGS);
        let config = format!(
            "AWS_DEFAULT_REGION=eu-central-1\n\
             LOG_GROUP=bbb-BbbServersStack-1A2B-BootstrapLogGroup-3C4D\n\
             LOG_STREAM={INSTANCE}\n\
             LOG_FILE={log}\n\
             STATE_DIR={state}\n\
             MAX_EVENTS=2\n",
            log = dir.path().join("bbb-bootstrap.log").display(),
            state = dir.path().join("state").display(),
        );
        fs::write(dir.path().join("bbb-logship.conf"), config).unwrap();
        LogRig { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn append(&self, text: &str) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("bbb-bootstrap.log"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Runs `bbb-logship flush`; its exit status and stderr.
    fn flush(&self) -> (bool, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/scripts/bbb-logship.sh");
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .arg(script)
            .arg("flush")
            .env("PATH", path)
            .env("FAKE_DIR", self.dir.path())
            .env("BBB_LOGSHIP_CONFIG", self.path("bbb-logship.conf"))
            .stdin(Stdio::null())
            .output()
            .expect("run bash");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Every message CloudWatch accepted, in order, and the number of accepted calls.
    fn shipped(&self) -> (Vec<String>, usize) {
        let calls = lines(&self.path("events.jsonl"));
        let mut messages = Vec::new();
        for call in &calls {
            let events: Vec<serde_json::Value> = serde_json::from_str(call).expect("events JSON");
            let mut last = 0;
            for event in events {
                let ts = event["timestamp"].as_i64().expect("timestamp");
                assert!(ts >= last, "events of one call in chronological order");
                last = ts;
                messages.push(event["message"].as_str().expect("message").to_string());
            }
        }
        (messages, calls.len())
    }

    fn aws_calls(&self) -> Vec<String> {
        lines(&self.path("aws.log"))
    }
}

#[test]
fn log_shipper_sends_every_line_once_in_order_and_resumes_where_it_stopped() {
    let rig = LogRig::new();
    rig.append("2026-01-01T00:00:00Z bbb-bootstrap: instance i-0abc1234\n\nrunning bbb-install\n");
    let (ok, err) = rig.flush();
    assert!(ok, "flush: {err}");
    let (messages, calls) = rig.shipped();
    // An empty line is sent as one space: CloudWatch refuses empty messages.
    assert_eq!(
        messages,
        [
            "2026-01-01T00:00:00Z bbb-bootstrap: instance i-0abc1234",
            " ",
            "running bbb-install"
        ]
    );
    assert_eq!(calls, 2, "MAX_EVENTS=2 splits three lines into two calls");

    // Only what is new goes out next time; a last line without its newline too (flush).
    rig.append("bbb-install failed\nERROR: last words");
    let (ok, err) = rig.flush();
    assert!(ok, "flush: {err}");
    let (messages, _) = rig.shipped();
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert_eq!(&messages[3..], ["bbb-install failed", "ERROR: last words"]);

    // Nothing new: no call at all. The stream was created once.
    let before = rig.aws_calls().len();
    let (ok, err) = rig.flush();
    assert!(ok, "flush: {err}");
    assert_eq!(rig.aws_calls().len(), before);
    let creates = rig
        .aws_calls()
        .iter()
        .filter(|c| c.starts_with("logs create-log-stream"))
        .count();
    assert_eq!(creates, 1);
    assert!(
        rig.aws_calls()
            .iter()
            .all(|c| c.contains(&format!("--log-stream-name {INSTANCE}")))
    );
}

#[test]
fn a_refused_put_loses_no_line_and_ships_none_twice() {
    let rig = LogRig::new();
    rig.append("one\ntwo\nthree\n");
    fs::write(rig.path("put-failures"), "2").unwrap();
    // The first call is refused: the flush fails and nothing counts as shipped.
    let (ok, err) = rig.flush();
    assert!(!ok, "a refused put must fail the flush");
    assert!(err.contains("put-log-events"), "{err}");
    assert!(rig.shipped().0.is_empty());
    // Next time the first batch is refused again, then accepted the time after.
    assert!(!rig.flush().0);
    let (ok, err) = rig.flush();
    assert!(ok, "flush: {err}");
    assert_eq!(rig.shipped().0, ["one", "two", "three"]);
}
