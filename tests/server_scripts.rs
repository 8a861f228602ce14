//! The BBB server's Scalelite agent (templates/scripts/bbb-scalelite.sh) run for real,
//! with the commands it calls replaced: the AWS CLI and `sleep` by recording fakes, the
//! instance metadata service and Scalelite by stand-ins on 127.0.0.1 (curl stays real).
//! Shows: registration retries until Scalelite answers (and the secret can be read),
//! failures are never taken for a registration, registration is idempotent across
//! reboots, and a drain cordons, waits for the meetings to end, removes the Scalelite
//! entry and the DNS record, and completes the lifecycle action.

mod standins;

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
             POLL_SECONDS=1\n",
            scalelite = scalelite.url(),
            state = dir.path().join("scalelite-server-id").display(),
            props = dir.path().join("bbb-web.properties").display(),
            imds = imds.url(),
        );
        fs::write(dir.path().join("bbb-scalelite.conf"), config).unwrap();
        Rig {
            dir,
            scalelite,
            _imds: imds,
            lifecycle,
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
