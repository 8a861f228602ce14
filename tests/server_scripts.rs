//! The BBB server's Scalelite agent (templates/scripts/bbb-scalelite.sh) run for real,
//! with the commands it calls replaced: the AWS CLI and `sleep` by recording fakes, the
//! instance metadata service and Scalelite by stand-ins on 127.0.0.1 (curl stays real).
//! Shows: registration retries until Scalelite answers (and the secret can be read),
//! failures are never taken for a registration, registration is idempotent across
//! reboots, and a drain cordons, waits for the meetings to end - by the server's own
//! getMeetings, whatever Scalelite's poller says (offline, disabled, no answer) - removes
//! the Scalelite entry and the DNS record, and completes the lifecycle action.
//! The bootstrap log shipper (templates/scripts/bbb-logship.sh) with a fake AWS CLI:
//! every line reaches CloudWatch Logs once, in order and in batches, resuming where it
//! stopped; a refused call loses no line and repeats none.

mod standins;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use standins::http::{Response, Server as HttpServer};
use standins::scalelite::Scalelite;
use tempfile::TempDir;

const LB_SECRET: &str = "lbsecret0123456789abcdef";
const SALT: &str = "bbbsalt0123456789abcdef";
const HOST: &str = "bbb-0abc1234.bbb.example.org";
const INSTANCE: &str = "i-0abc1234";
const PUBLIC_IP: &str = "203.0.113.10";
const GROUP: &str = "bbb-BbbServersStack-1A2B-ServerGroup-3C4D";
const ZONE: &str = "Z0123456789ABCDEFGHIJ";
const TIMEOUT: Duration = Duration::from_secs(60);

/// A recording AWS CLI: appends its arguments to aws.log and answers the calls the
/// agent makes. `secret-failures` holds how many secret lookups fail first.
const FAKE_AWS: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_DIR/aws.log"
case "$1 $2" in
  "secretsmanager get-secret-value")
    n=$(cat "$FAKE_DIR/secret-failures" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then
      echo $((n - 1)) >"$FAKE_DIR/secret-failures"
      echo "An error occurred (ThrottlingException) when calling the GetSecretValue operation" >&2
      exit 254
    fi
    cat "$FAKE_DIR/lb-secret"
    ;;
  "route53 change-resource-record-sets") echo '{"ChangeInfo":{"Id":"/change/C0001","Status":"PENDING"}}' ;;
  "autoscaling complete-lifecycle-action") ;;
  "autoscaling set-instance-protection") ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 255 ;;
esac
"#;

/// A recording `sleep` that waits only 50 ms.
const FAKE_SLEEP: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_DIR/sleep.log"
exec /bin/sleep 0.05
"#;

struct Rig {
    dir: TempDir,
    scalelite: Scalelite,
    _imds: HttpServer,
    lifecycle: Arc<Mutex<String>>,
    /// Meetings this server's own API lists (getMeetings); -1: the API does not answer.
    meetings: Arc<Mutex<i64>>,
    _bbb: HttpServer,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        write_executable(&bin.join("aws"), FAKE_AWS);
        write_executable(&bin.join("sleep"), FAKE_SLEEP);
        fs::write(dir.path().join("lb-secret"), LB_SECRET).unwrap();
        fs::write(
            dir.path().join("bbb-web.properties"),
            format!("bigbluebutton.web.serverURL=https://{HOST}\nsecuritySalt={SALT}\n"),
        )
        .unwrap();

        let scalelite = Scalelite::start(LB_SECRET);
        let lifecycle = Arc::new(Mutex::new("InService".to_string()));
        let imds = imds_standin(Arc::clone(&lifecycle));
        let meetings = Arc::new(Mutex::new(0i64));
        let bbb = bbb_api_standin(Arc::clone(&meetings));
        let config = format!(
            "AWS_DEFAULT_REGION=eu-central-1\n\
             SCALELITE_URL={scalelite}\n\
             SERVER_URL=https://{HOST}/bigbluebutton/api/\n\
             LB_SECRET_ARN=arn:aws:secretsmanager:eu-central-1:123456789012:secret:lb\n\
             STATE_FILE={state}\n\
             HOSTED_ZONE={ZONE}\n\
             HOST_NAME={HOST}\n\
             DNS_TTL=60\n\
             BBB_PROPERTIES={props}\n\
             IMDS={imds}/latest\n\
             RETRY_SECONDS=1\n\
             POLL_SECONDS=1\n\
             BBB_API_URL={bbb}/bigbluebutton/api\n",
            scalelite = scalelite.url(),
            state = dir.path().join("scalelite-server-id").display(),
            props = dir.path().join("bbb-web.properties").display(),
            imds = imds.url(),
            bbb = bbb.url(),
        );
        fs::write(dir.path().join("bbb-scalelite.conf"), config).unwrap();
        Rig {
            dir,
            scalelite,
            _imds: imds,
            lifecycle,
            meetings,
            _bbb: bbb,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, arg: &str) -> Command {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/scripts/bbb-scalelite.sh");
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(script)
            .arg(arg)
            .env("PATH", path)
            .env("FAKE_DIR", self.dir.path())
            .env("BBB_SCALELITE_CONFIG", self.path("bbb-scalelite.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.path(&format!("{arg}.stderr"))).unwrap());
        cmd
    }

    fn spawn(&self, arg: &str) -> Child {
        self.command(arg).spawn().expect("run bash")
    }

    /// Runs `bbb-scalelite ARG` to its end and requires success.
    fn run_ok(&self, arg: &str) {
        let mut child = self.spawn(arg);
        let status = self.wait(&mut child, arg);
        assert!(
            status.success(),
            "bbb-scalelite {arg}: {status}\n{}",
            self.stderr(arg)
        );
    }

    fn wait(&self, child: &mut Child, arg: &str) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                panic!("bbb-scalelite {arg} did not finish\n{}", self.stderr(arg));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&self, arg: &str) -> String {
        fs::read_to_string(self.path(&format!("{arg}.stderr"))).unwrap_or_default()
    }

    /// The drain `agent` ends, successfully.
    fn drain_finishes(&self, agent: &mut Child) {
        let status = self.wait(agent, "drain");
        assert!(status.success(), "{}", self.stderr("drain"));
    }

    fn lifecycle_action_completed(&self) -> bool {
        self.aws_calls()
            .iter()
            .any(|c| c.starts_with("autoscaling complete-lifecycle-action"))
    }

    fn aws_calls(&self) -> Vec<String> {
        lines(&self.path("aws.log"))
    }

    fn sleeps(&self) -> usize {
        lines(&self.path("sleep.log")).len()
    }

    fn stored_id(&self) -> Option<String> {
        fs::read_to_string(self.path("scalelite-server-id"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn calls_to(&self, action: &str) -> usize {
        self.scalelite
            .calls()
            .iter()
            .filter(|c| c.action == action && c.status < 300)
            .count()
    }
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

/// The instance metadata service, IMDSv2 only (a token from PUT api/token first).
fn imds_standin(lifecycle: Arc<Mutex<String>>) -> HttpServer {
    HttpServer::start(move |req| {
        if req.method == "PUT" && req.path == "/latest/api/token" {
            return if req.header("x-aws-ec2-metadata-token-ttl-seconds").is_some() {
                Response::new(200, "text/plain", "TOKEN")
            } else {
                Response::new(400, "text/plain", "missing ttl")
            };
        }
        if req.header("x-aws-ec2-metadata-token") != Some("TOKEN") {
            return Response::new(401, "text/plain", "");
        }
        let value = match req.path.as_str() {
            "/latest/meta-data/instance-id" => INSTANCE.to_string(),
            "/latest/meta-data/public-ipv4" => PUBLIC_IP.to_string(),
            "/latest/meta-data/tags/instance/aws:autoscaling:groupName" => GROUP.to_string(),
            "/latest/meta-data/autoscaling/target-lifecycle-state" => {
                lifecycle.lock().unwrap().clone()
            }
            _ => return Response::new(404, "text/plain", "Not Found"),
        };
        Response::new(200, "text/plain", value)
    })
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn registration_retries_until_scalelite_answers_and_the_secret_is_readable() {
    let rig = Rig::new();
    rig.scalelite.set_available(false);
    fs::write(rig.path("secret-failures"), "2").unwrap();

    let mut agent = rig.spawn("register");
    wait_until("three attempts against an unavailable Scalelite", || {
        rig.scalelite
            .calls()
            .iter()
            .filter(|c| c.status == 503)
            .count()
            >= 3
    });
    assert!(agent.try_wait().unwrap().is_none(), "register gave up");
    assert!(rig.scalelite.servers().is_empty());
    assert_eq!(
        rig.stored_id(),
        None,
        "an id was stored without a registration"
    );

    rig.scalelite.set_available(true);
    let status = rig.wait(&mut agent, "register");
    assert!(status.success(), "{}", rig.stderr("register"));

    let servers = rig.scalelite.servers();
    assert_eq!(servers.len(), 1);
    let server = &servers[0];
    assert_eq!(server.url, format!("https://{HOST}/bigbluebutton/api/"));
    assert_eq!(server.secret, SALT);
    assert_eq!(server.state, "enabled");
    assert_eq!(rig.stored_id().as_deref(), Some(server.id.as_str()));
    let lookups = rig
        .aws_calls()
        .iter()
        .filter(|c| c.starts_with("secretsmanager get-secret-value"))
        .count();
    assert!(
        lookups >= 3,
        "the failing secret lookup was not retried ({lookups} lookups)"
    );
    assert!(rig.sleeps() >= 5, "no pause between attempts");
}

#[test]
fn a_rejected_checksum_is_a_failure_not_a_registration() {
    let rig = Rig::new();
    fs::write(rig.path("lb-secret"), "not-the-load-balancer-secret").unwrap();

    let mut agent = rig.spawn("register");
    wait_until("two checksum errors", || {
        rig.scalelite
            .calls()
            .iter()
            .filter(|c| c.error == "checksumError")
            .count()
            >= 2
    });
    assert!(
        agent.try_wait().unwrap().is_none(),
        "register stopped on an error answer"
    );
    assert!(rig.scalelite.servers().is_empty());
    assert_eq!(rig.stored_id(), None);

    // The secret is read again on every attempt: once it is right, registration completes.
    fs::write(rig.path("lb-secret"), LB_SECRET).unwrap();
    let status = rig.wait(&mut agent, "register");
    assert!(status.success(), "{}", rig.stderr("register"));
    assert_eq!(rig.scalelite.servers().len(), 1);
    assert_eq!(rig.calls_to("addServer"), 1);
}

#[test]
fn registration_is_idempotent_across_reboots() {
    let rig = Rig::new();
    rig.run_ok("register");
    let first = rig.stored_id().expect("stored id");

    // A reboot: cordoned on the way down, registered again on the way up.
    rig.run_ok("cordon");
    assert_eq!(rig.scalelite.server(&first).unwrap().state, "cordoned");
    rig.run_ok("register");
    assert_eq!(rig.scalelite.servers().len(), 1);
    assert_eq!(rig.scalelite.server(&first).unwrap().state, "enabled");
    assert_eq!(rig.stored_id().as_deref(), Some(first.as_str()));
    assert_eq!(rig.calls_to("addServer"), 1, "added again although known");

    // Scalelite forgot the server: the stored id is not reused, a new entry is made.
    rig.scalelite.forget(&first);
    rig.run_ok("register");
    let servers = rig.scalelite.servers();
    assert_eq!(servers.len(), 1);
    let second = servers[0].id.clone();
    assert_ne!(second, first);
    assert_eq!(servers[0].state, "enabled");
    assert_eq!(rig.stored_id().as_deref(), Some(second.as_str()));

    // The stored id is lost but Scalelite has this URL: no duplicate.
    fs::remove_file(rig.path("scalelite-server-id")).unwrap();
    rig.run_ok("register");
    assert_eq!(rig.scalelite.servers().len(), 1);
    assert_eq!(rig.stored_id().as_deref(), Some(second.as_str()));
    assert_eq!(rig.calls_to("addServer"), 2);

    // An entry for this URL made before this server first registered is adopted too.
    let rig = Rig::new();
    let existing = rig
        .scalelite
        .add_directly(&format!("https://{HOST}/bigbluebutton/api/"), "old-salt");
    rig.run_ok("register");
    let servers = rig.scalelite.servers();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].id, existing);
    assert_eq!(
        servers[0].secret, SALT,
        "the secret was not brought up to date"
    );
    assert_eq!(servers[0].state, "enabled");
}

#[test]
fn drain_waits_for_meetings_then_removes_the_server_and_completes_the_lifecycle_action() {
    let rig = Rig::new();
    rig.run_ok("register");
    let id = rig.stored_id().expect("stored id");
    rig.scalelite.set_load(&id, 12.0); // meetings are running
    *rig.meetings.lock().unwrap() = 2;

    let mut agent = rig.spawn("watch");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rig.scalelite.server(&id).unwrap().state,
        "enabled",
        "drained before termination"
    );

    *rig.lifecycle.lock().unwrap() = "Terminated".to_string();
    wait_until("the server to be cordoned", || {
        rig.scalelite.server(&id).unwrap().state == "cordoned"
    });

    // Meetings still run: the poller keeps it cordoned and the agent keeps waiting.
    for _ in 0..5 {
        rig.scalelite.poll();
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(rig.scalelite.server(&id).unwrap().state, "cordoned");
    assert!(
        agent.try_wait().unwrap().is_none(),
        "drain finished while meetings ran"
    );
    assert!(
        !rig.aws_calls()
            .iter()
            .any(|c| c.contains("complete-lifecycle-action")),
        "lifecycle action completed while meetings ran"
    );

    // The last meeting ends: load 0, and the poller disables the cordoned server.
    *rig.meetings.lock().unwrap() = 0;
    rig.scalelite.set_load(&id, 0.0);
    rig.scalelite.poll();
    let status = rig.wait(&mut agent, "watch");
    assert!(status.success(), "{}", rig.stderr("watch"));

    assert!(
        rig.scalelite.servers().is_empty(),
        "the Scalelite entry is left"
    );
    assert_eq!(rig.calls_to("deleteServer"), 1);
    assert_eq!(rig.stored_id(), None);

    let calls = rig.aws_calls();
    let dns = calls
        .iter()
        .position(|c| c.starts_with("route53 change-resource-record-sets"))
        .expect("DNS record deleted");
    let record = &calls[dns];
    for part in [
        &format!("--hosted-zone-id {ZONE}"),
        "\"Action\": \"DELETE\"",
        &format!("\"Name\": \"{HOST}\""),
        "\"Type\": \"A\"",
        "\"TTL\": 60",
        &format!("\"Value\": \"{PUBLIC_IP}\""),
    ] {
        assert!(record.contains(part), "{part} missing in {record}");
    }
    let done = calls
        .iter()
        .position(|c| c.starts_with("autoscaling complete-lifecycle-action"))
        .expect("lifecycle action completed");
    assert_eq!(
        calls[done],
        format!(
            "autoscaling complete-lifecycle-action --lifecycle-hook-name bbb-drain \
             --auto-scaling-group-name {GROUP} --instance-id {INSTANCE} --lifecycle-action-result CONTINUE"
        )
    );
    assert!(
        dns < done,
        "the record must go before the instance is released"
    );
}

/// Whether the drain went past its wait: the Scalelite entry removed or the lifecycle action
/// completed.
fn drain_went_on(rig: &Rig) -> bool {
    rig.calls_to("deleteServer") > 0 || rig.lifecycle_action_completed()
}

/// A few more rounds of the drain go by without it going on (a meeting runs here).
fn assert_drain_waits(rig: &Rig) {
    let sleeps = rig.sleeps();
    wait_until("a few more rounds", || {
        rig.sleeps() >= sleeps + 4 || drain_went_on(rig)
    });
    assert!(!drain_went_on(rig), "drained with a meeting running");
}

#[test]
fn a_server_scalelite_marks_offline_is_not_drained_while_its_own_api_lists_meetings() {
    // Scalelite's poller (lib/tasks/poll.rake) sets a server offline after failed polls and
    // forgets its meetings; when the network is what failed, they still run on the server.
    let rig = Rig::new();
    rig.run_ok("register");
    let id = rig.stored_id().expect("stored id");
    rig.scalelite.set_load(&id, 12.0);
    *rig.meetings.lock().unwrap() = 2;

    let mut agent = rig.spawn("drain");
    wait_until("the server to be cordoned", || {
        rig.scalelite.server(&id).unwrap().state == "cordoned"
    });
    rig.scalelite.set_offline(&id);
    let not_done = |what: &str| {
        let sleeps = rig.sleeps();
        wait_until("a few more rounds", || {
            rig.sleeps() >= sleeps + 4 || drain_went_on(&rig)
        });
        assert!(
            !drain_went_on(&rig),
            "drain finished {what}\n{}",
            rig.stderr("drain")
        );
    };
    not_done("while Scalelite reported the server offline and meetings ran on it");
    assert!(agent.try_wait().unwrap().is_none());

    // Not knowing is no reason to go either: this server's API does not answer.
    *rig.meetings.lock().unwrap() = -1;
    not_done("while this server's own API did not answer");
    assert!(agent.try_wait().unwrap().is_none());

    // The meetings end on the server: its own empty list is enough while Scalelite still
    // reports it offline (cordoned, never disabled by the poller).
    *rig.meetings.lock().unwrap() = 0;
    rig.drain_finishes(&mut agent);
    assert_eq!(rig.calls_to("deleteServer"), 1);
    assert!(rig.scalelite.servers().is_empty());
    assert!(rig.lifecycle_action_completed());
}

#[test]
fn a_drain_goes_on_by_the_servers_own_account_when_scalelite_stops_answering() {
    let rig = Rig::new();
    rig.run_ok("register");
    let id = rig.stored_id().expect("stored id");
    *rig.meetings.lock().unwrap() = 1;
    let mut agent = rig.spawn("drain");
    wait_until("the server to be cordoned", || {
        rig.scalelite.server(&id).unwrap().state == "cordoned"
    });
    // Scalelite goes away (its load balancer answers 503) while a meeting still runs here.
    rig.scalelite.set_available(false);
    assert_drain_waits(&rig);
    // The meeting ends: the server's own empty list is enough; the entry it cannot remove
    // is left, and the lifecycle action completes.
    *rig.meetings.lock().unwrap() = 0;
    rig.drain_finishes(&mut agent);
    assert!(
        rig.stderr("drain")
            .contains(&format!("could not remove {id} from Scalelite")),
        "{}",
        rig.stderr("drain")
    );
    assert_eq!(rig.scalelite.servers().len(), 1);
    assert!(rig.lifecycle_action_completed());
}

#[test]
fn a_drain_that_starts_while_scalelite_is_down_goes_on_by_the_servers_own_account() {
    let rig = Rig::new();
    rig.run_ok("register");
    let id = rig.stored_id().expect("stored id");
    *rig.meetings.lock().unwrap() = 1;
    rig.scalelite.set_available(false);
    let mut agent = rig.spawn("drain");
    // Scalelite is asked a bounded number of times, then the server's own list decides.
    wait_until("the drain to give up on Scalelite", || {
        rig.stderr("drain")
            .contains("draining by this server's own account")
    });
    assert_drain_waits(&rig);
    assert!(agent.try_wait().unwrap().is_none());
    *rig.meetings.lock().unwrap() = 0;
    rig.drain_finishes(&mut agent);
    assert!(
        rig.stderr("drain")
            .contains(&format!("could not remove {id} from Scalelite")),
        "{}",
        rig.stderr("drain")
    );
    assert!(rig.lifecycle_action_completed());
}

#[test]
fn a_disabled_server_is_not_drained_while_its_own_api_lists_meetings() {
    // Scalelite says disabled (say, an operator disabled it by hand), but meetings still run
    // here: the drain waits for them.
    let rig = Rig::new();
    rig.run_ok("register");
    let id = rig.stored_id().expect("stored id");
    *rig.meetings.lock().unwrap() = 1;
    let mut agent = rig.spawn("drain");
    wait_until("the server to be cordoned", || {
        rig.scalelite.server(&id).unwrap().state == "cordoned"
    });
    rig.scalelite.set_load(&id, 0.0);
    rig.scalelite.poll();
    assert_eq!(rig.scalelite.server(&id).unwrap().state, "disabled");
    assert_drain_waits(&rig);
    *rig.meetings.lock().unwrap() = 0;
    rig.drain_finishes(&mut agent);
    assert_eq!(rig.calls_to("deleteServer"), 1);
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

#[test]
fn the_dns_record_is_written_at_boot_and_deleted_at_shutdown_with_the_same_values() {
    // bbb-dns.service: ExecStart=bbb-scalelite dns-register, ExecStop=bbb-scalelite dns-delete.
    let rig = Rig::new();
    rig.run_ok("dns-register");
    rig.run_ok("dns-delete");
    let calls: Vec<String> = rig
        .aws_calls()
        .into_iter()
        .filter(|c| c.starts_with("route53 change-resource-record-sets"))
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for (call, action) in calls.iter().zip(["UPSERT", "DELETE"]) {
        for part in [
            &format!("--hosted-zone-id {ZONE}"),
            &format!("\"Action\": \"{action}\""),
            &format!("\"Name\": \"{HOST}\""),
            "\"Type\": \"A\"",
            "\"TTL\": 60",
            &format!("\"Value\": \"{PUBLIC_IP}\""),
        ] {
            assert!(call.contains(part), "{part} missing in {call}");
        }
    }
    // Scalelite is not involved: a shutdown never waits for it.
    assert!(rig.scalelite.calls().is_empty());
}

/// A BBB server's own API on 127.0.0.1 (getMeetings signed with its securitySalt), with as
/// many meetings as `meetings` holds; -1 makes it fail (503).
fn bbb_api_standin(meetings: Arc<Mutex<i64>>) -> HttpServer {
    HttpServer::start(move |req| {
        let n = *meetings.lock().unwrap();
        if n < 0 {
            return Response::new(503, "text/html", "unavailable");
        }
        if req.path != "/bigbluebutton/api/getMeetings"
            || !standins::scalelite::checksum_ok("getMeetings", &req.query, SALT)
        {
            return Response::new(
                200,
                "text/xml",
                "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey></response>",
            );
        }
        if n == 0 {
            // As BigBlueButton says it: an empty list and the noMeetings key.
            return Response::new(
                200,
                "text/xml",
                "<response><returncode>SUCCESS</returncode><meetings/><messageKey>noMeetings</messageKey><message>no meetings were found on this server</message></response>",
            );
        }
        let list: String = (0..n)
            .map(|i| format!("<meeting><meetingID>m{i}</meetingID></meeting>"))
            .collect();
        Response::new(
            200,
            "text/xml",
            format!(
                "<response><returncode>SUCCESS</returncode><meetings>{list}</meetings></response>"
            ),
        )
    })
}

#[test]
fn scale_in_protection_is_held_while_meetings_run_and_dropped_when_idle() {
    let rig = Rig::new();
    let meetings = Arc::clone(&rig.meetings);
    let protections = || -> Vec<String> {
        rig.aws_calls()
            .into_iter()
            .filter(|c| c.starts_with("autoscaling set-instance-protection"))
            .collect()
    };
    let mut child = rig.spawn("protect");
    let expect = |flag: &str| {
        format!(
            "autoscaling set-instance-protection --instance-ids {INSTANCE} --auto-scaling-group-name {GROUP} {flag}"
        )
    };
    // Idle at start: protection off, once.
    wait_until("protection dropped", || protections().len() == 1);
    assert_eq!(protections()[0], expect("--no-protected-from-scale-in"));
    // A meeting starts: protection on.
    *meetings.lock().unwrap() = 2;
    wait_until("protection held", || protections().len() == 2);
    assert_eq!(protections()[1], expect("--protected-from-scale-in"));
    // The API stops answering: nothing changes, however long.
    *meetings.lock().unwrap() = -1;
    let sleeps = rig.sleeps();
    wait_until("a few rounds", || rig.sleeps() >= sleeps + 3);
    assert_eq!(protections().len(), 2);
    // The meetings are over: protection off again.
    *meetings.lock().unwrap() = 0;
    wait_until("protection dropped again", || protections().len() == 3);
    assert_eq!(protections()[2], expect("--no-protected-from-scale-in"));
    child.kill().unwrap();
    let _ = child.wait();
}

/// Scalelite keeps its servers in its (unpersisted) cache: when it loses them, a server that
/// registered and still serves registers again from its protect loop; one the group takes
/// out (target state Terminated) does not.
#[test]
fn a_server_scalelite_forgot_registers_again_while_it_serves() {
    let rig = Rig::new();
    rig.run_ok("register");
    let first = rig.stored_id().expect("registered");
    assert_eq!(rig.scalelite.servers().len(), 1);
    let mut child = rig.spawn("protect");
    // Known: nothing is added, however many rounds.
    let sleeps = rig.sleeps();
    wait_until("a few rounds", || rig.sleeps() >= sleeps + 3);
    assert_eq!(rig.calls_to("addServer"), 1);
    // The cache lost it: it is added and enabled again, under a new id.
    rig.scalelite.forget(&first);
    wait_until("registered again", || rig.scalelite.servers().len() == 1);
    let again = rig.scalelite.servers()[0].clone();
    assert_ne!(again.id, first);
    wait_until("enabled again", || {
        rig.scalelite
            .server(&again.id)
            .is_some_and(|s| s.state == "enabled")
    });
    wait_until("its id stored", || {
        rig.stored_id().as_deref() == Some(again.id.as_str())
    });
    // Being taken out: forgotten again, it stays out.
    *rig.lifecycle.lock().unwrap() = "Terminated".to_string();
    rig.scalelite.forget(&again.id);
    let sleeps = rig.sleeps();
    wait_until("a few rounds", || rig.sleeps() >= sleeps + 3);
    assert!(rig.scalelite.servers().is_empty());
    child.kill().unwrap();
    let _ = child.wait();
    let log = rig.stderr("protect");
    assert_eq!(
        log.matches("does not know this server any more").count(),
        1,
        "{log}"
    );
}

#[test]
fn the_agent_loops_run_as_systemd_services_after_registration() {
    let dir = tempfile::tempdir().unwrap();
    let function = support::shell_function("templates/scripts/bbb-bootstrap.sh", "agent_unit");
    // install_unit as a stub that keeps the unit it is given.
    let script = format!(
        "set -euo pipefail\ninstall_unit() {{ cat >\"$UNITS/$1.service\"; }}\n{function}\n\
         agent_unit bbb-scalelite-protect protect \"Hold the group's scale-in protection\"\n"
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("UNITS", dir.path())
        .output()
        .unwrap();
    support::assert_success(&out);
    let unit = fs::read_to_string(dir.path().join("bbb-scalelite-protect.service")).unwrap();
    for line in [
        "Description=Hold the group's scale-in protection",
        "After=network-online.target",
        "ExecStart=/usr/local/sbin/bbb-scalelite protect",
        "Restart=on-failure",
        "WantedBy=multi-user.target",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "{line} missing in:\n{unit}"
        );
    }
}
