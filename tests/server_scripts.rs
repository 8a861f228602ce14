//! The BBB server's agent (templates/scripts/bbb-agent.sh) run for real, with the AWS CLI
//! and redis-cli replaced by recording fakes, over a fake /var/bigbluebutton/recording tree
//! with the status markers BigBlueButton 3.0 writes: it writes this server's report (its
//! API secret and its recordings: pending, Resque jobs, failed and saved) to its own object
//! (servers/<role id>:<instance id>.json, the key its role may write), when it changes and
//! again after REFRESH_SECONDS; it saves the raw files of a failed recording once, to
//! failed/<role id>:<instance id>/<record id>.tar; a Redis that does not answer is never
//! taken for "no jobs"; it never sources its settings; it calls nothing but sts, that put
//! and those saves (no Scalelite, no DNS, no Auto Scaling: the registrar does those,
//! tests/registrar.rs).
//! The bootstrap log shipper (templates/scripts/bbb-logship.sh) with a fake AWS CLI:
//! every line reaches CloudWatch Logs once, in order and in batches, resuming where it
//! stopped; a refused call loses no line and repeats none.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::json;
use tempfile::TempDir;

const SALT: &str = "bbbsalt0123456789abcdef";
const INSTANCE: &str = "i-0abc1234";
const BUCKET: &str = "bbb-sources-sourcesbucket-0123";
const USER_ID: &str = "AROAEXAMPLEROLEID0001:i-0abc1234";

/// A recording AWS CLI for the agent: sts get-caller-identity answers the instance role
/// session's UserId; s3api put-object keeps the body it is given as put-<n>.json (with
/// put.log naming bucket and key); `s3 cp - s3://B/K` keeps what it reads from standard
/// input as cp-<n>.tar (cp.log names bucket and key); `put-failures` and `cp-failures`
/// hold how many of each are refused first.
const FAKE_AWS_AGENT: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_DIR/aws.log"
refuse() {
  n=$(cat "$FAKE_DIR/$1-failures" 2>/dev/null || echo 0)
  if [ "$n" -gt 0 ]; then
    echo $((n - 1)) >"$FAKE_DIR/$1-failures"
    echo "An error occurred (AccessDenied) when calling the PutObject operation" >&2
    exit 254
  fi
}
case "$1 $2" in
  "sts get-caller-identity") cat "$FAKE_DIR/user-id" ;;
  "s3api put-object")
    refuse put
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
  "s3 cp")
    [ "$3" = - ] || { echo "fake aws: only a stream is expected: $*" >&2; exit 255; }
    count=0; [ -e "$FAKE_DIR/cp.log" ] && count=$(wc -l <"$FAKE_DIR/cp.log")
    cat >"$FAKE_DIR/cp-$count.part"
    refuse cp
    mv "$FAKE_DIR/cp-$count.part" "$FAKE_DIR/cp-$count.tar"
    target=${4#s3://}
    printf '%s %s\n' "${target%%/*}" "${target#*/}" >>"$FAKE_DIR/cp.log"
    ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 255 ;;
esac
"#;

/// redis-cli against a Redis kept as files: redis/sets/<key> (a member a line),
/// redis/lists/<key> (an element a line), redis/strings/<key>, redis/hashes/<key>/<field>;
/// TIME answers this machine's clock as Redis does (seconds, then microseconds); `redis-down`
/// makes it fail as redis-cli does when nothing listens. Every call goes to redis.log.
const FAKE_REDIS_CLI: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_DIR/redis.log"
if [ -e "$FAKE_DIR/redis-down" ]; then
  echo "Could not connect to Redis at 127.0.0.1:6379: Connection refused" >&2
  exit 1
fi
while [ $# -gt 0 ]; do
  case "$1" in
    -h | -p) shift 2 ;;
    --raw) shift ;;
    *) break ;;
  esac
done
db=$FAKE_DIR/redis
case "$1" in
  SMEMBERS) cat "$db/sets/$2" 2>/dev/null || true ;;
  LLEN) if [ -e "$db/lists/$2" ]; then wc -l <"$db/lists/$2"; else echo 0; fi ;;
  LRANGE) [ -e "$db/lists/$2" ] && sed -n "$(($3 + 1)),$(($4 + 1))p" "$db/lists/$2" ;;
  GET) cat "$db/strings/$2" 2>/dev/null || echo ;;
  HGET) cat "$db/hashes/$2/$3" 2>/dev/null || echo ;;
  TIME) date +%s; echo 0 ;;
  *) echo "ERR unknown command '$1'"; exit 1 ;;
esac
"#;

/// curl against the instance metadata service (IMDSv2), as the agent asks it: PUT
/// /latest/api/token answers a token; GET .../autoscaling/target-lifecycle-state answers the
/// file `lifecycle` only with that token's header, and fails as `curl -f` does on a 404 when
/// there is no such file (an instance outside a group) or no token; `imds-down` makes every
/// call fail as when nothing answers. Every call goes to curl.log.
const FAKE_CURL: &str = r#"#!/usr/bin/env bash
printf '%s
' "$*" >>"$FAKE_DIR/curl.log"
[ -e "$FAKE_DIR/imds-down" ] && exit 28
method=GET header="" url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -X) method=$2; shift ;;
    -H) header=$2; shift ;;
    --max-time) shift ;;
    -*) ;;
    *) url=$1 ;;
  esac
  shift
done
case "$method $url" in
  "PUT http://169.254.169.254/latest/api/token") printf 'AQAEAtoken==' ;;
  "GET http://169.254.169.254/latest/meta-data/autoscaling/target-lifecycle-state")
    [ "$header" = "X-aws-ec2-metadata-token: AQAEAtoken==" ] || exit 22
    [ -e "$FAKE_DIR/lifecycle" ] || exit 22
    cat "$FAKE_DIR/lifecycle" ;;
  *) echo "fake curl: unexpected $method $url" >&2; exit 2 ;;
esac
"#;

/// Record ids as BigBlueButton makes them: <sha1 of the external id>-<epoch ms>.
fn record(n: u8) -> String {
    format!("{:040x}-17650000000{n:02}", u128::from(n) * 0x1_0000_0001)
}

struct AgentRig {
    dir: TempDir,
}

impl AgentRig {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("bin")).unwrap();
        write_executable(&dir.path().join("bin/aws"), FAKE_AWS_AGENT);
        write_executable(&dir.path().join("bin/redis-cli"), FAKE_REDIS_CLI);
        write_executable(&dir.path().join("bin/curl"), FAKE_CURL);
        fs::write(dir.path().join("user-id"), USER_ID).unwrap();
        for step in ["recorded", "archived", "sanity", "processed", "published"] {
            fs::create_dir_all(dir.path().join("recording/status").join(step)).unwrap();
        }
        fs::create_dir_all(dir.path().join("recording/raw")).unwrap();
        for kind in ["sets", "lists", "strings", "hashes"] {
            fs::create_dir_all(dir.path().join("redis").join(kind)).unwrap();
        }
        let rig = AgentRig { dir };
        rig.set_salt(SALT);
        rig.configure("");
        rig
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// /etc/default/bbb-agent as bbb-bootstrap.sh writes it (scalable mode), plus the
    /// fake tree's places and `extra` lines.
    fn configure(&self, extra: &str) {
        fs::write(
            self.path("bbb-agent.conf"),
            format!(
                "AWS_DEFAULT_REGION=eu-central-1\nREPORT_BUCKET={BUCKET}\nSTATE_FILE={state}\n\
                 SAVED_DIR={saved}\nTRANSFER=scalelite\nBBB_PROPERTIES={props}\n\
                 STATUS_DIR={status}\nRAW_DIR={raw}\nBOOT_FILE={boot}\n{extra}",
                boot = self.path("boot").display(),
                state = self.path("reported.sha256").display(),
                saved = self.path("saved").display(),
                props = self.path("bbb-web.properties").display(),
                status = self.path("recording/status").display(),
                raw = self.path("recording/raw").display(),
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

    /// A status marker, e.g. ("sanity", "<id>.done"), written `age` ago.
    fn mark(&self, step: &str, name: &str, age: Duration) {
        let path = self.path(&format!("recording/status/{step}/{name}"));
        fs::write(&path, "").unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    /// The markers of a recording through `step` (archive, sanity, process, publish),
    /// written `age` ago, format presentation.
    fn through(&self, id: &str, step: &str, age: Duration) {
        let steps = ["archive", "sanity", "process", "publish"];
        let last = steps.iter().position(|s| *s == step).unwrap();
        for s in &steps[..=last] {
            match *s {
                "archive" => self.mark("archived", &format!("{id}.done"), age),
                "sanity" => self.mark("sanity", &format!("{id}.done"), age),
                "process" => self.mark("processed", &format!("{id}-presentation.done"), age),
                _ => self.mark("published", &format!("{id}-presentation.done"), age),
            }
        }
    }

    /// The raw directory BigBlueButton keeps of a recording, with `files` in it.
    fn raw(&self, id: &str, files: &[(&str, &str)]) {
        let dir = self.path(&format!("recording/raw/{id}"));
        fs::create_dir_all(&dir).unwrap();
        for (name, body) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, body).unwrap();
        }
    }

    /// Redis as Resque keeps it: a line added to a set, list or string key.
    fn redis(&self, kind: &str, key: &str, line: &str) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&format!("redis/{kind}/{key}")))
            .unwrap();
        writeln!(f, "{line}").unwrap();
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

    /// The "recordings" of the last report written.
    fn recordings(&self) -> serde_json::Value {
        self.puts().last().expect("a report").2["recordings"].clone()
    }

    /// (bucket, key, member paths of the tar) of every accepted `s3 cp`.
    fn saves(&self) -> Vec<(String, String, Vec<String>)> {
        lines(&self.path("cp.log"))
            .iter()
            .enumerate()
            .map(|(n, l)| {
                let (bucket, key) = l.split_once(' ').unwrap();
                let tar = self.path(&format!("cp-{n}.tar"));
                let out = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
                assert!(out.status.success(), "cp-{n}.tar is a tar");
                let mut members: Vec<String> = String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .filter(|m| !m.ends_with('/'))
                    .map(str::to_string)
                    .collect();
                members.sort();
                (bucket.to_string(), key.to_string(), members)
            })
            .collect()
    }
}

const RECENT: Duration = Duration::from_secs(60);
const HOURS_AGO: Duration = Duration::from_secs(2 * 3600);

#[test]
fn the_agent_reports_its_secret_to_its_own_key_once_per_change() {
    let rig = AgentRig::new();
    support::assert_success(&rig.report());
    let puts = rig.puts();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].0, BUCKET);
    assert_eq!(puts[0].1, format!("servers/{USER_ID}.json"));
    assert_eq!(
        puts[0].2,
        json!({"secret": SALT, "recordings": {"pending": 0, "jobs": 0, "failed": 0, "items": []}})
    );

    // Unchanged: nothing written again.
    support::assert_success(&rig.report());
    assert_eq!(rig.puts().len(), 1);

    // A new secret (bbb-conf --setsecret): reported.
    rig.set_salt("newsalt0123456789abcdef");
    support::assert_success(&rig.report());
    let puts = rig.puts();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[1].2["secret"], "newsalt0123456789abcdef");

    // A meeting ends with a recording (bbb-web writes recorded/<id>.done): reported.
    rig.mark("recorded", &format!("{}.done", record(1)), RECENT);
    let out = logged(&rig.report());
    assert_eq!(rig.puts().len(), 3);
    assert_eq!(rig.recordings()["pending"], 1);
    // The secret is in the report only, never in the log.
    assert!(!out.contains("newsalt") && !out.contains(SALT), "{out}");

    // It calls nothing but sts and its put: no Scalelite, no DNS, no Auto Scaling.
    for call in lines(&rig.path("aws.log")) {
        assert!(
            call.starts_with("sts get-caller-identity") || call.starts_with("s3api put-object"),
            "unexpected call: {call}"
        );
    }
}

/// Every recording of the server counts, each in the state BigBlueButton 3.0's markers and
/// Resque's Redis keys say, and a recording without recording marks (.norecord) never.
#[test]
fn the_report_counts_every_recording_in_each_state_and_the_resque_jobs() {
    let rig = AgentRig::new();
    let [
        queued,
        archiving,
        sanity,
        captions,
        process,
        publish,
        transfer,
    ] = [1, 2, 3, 4, 5, 6, 7].map(record);
    let [done, norecord] = [8, 9].map(record);
    // The meeting ended; rap-starter has not queued it yet.
    rig.mark("recorded", &format!("{queued}.done"), RECENT);
    // rap-starter made raw/<id> and queued the archive job (and deleted recorded/<id>.done).
    rig.raw(&archiving, &[]);
    rig.redis("sets", "resque:queues", "rap:archive");
    rig.redis(
        "lists",
        "resque:queue:rap:archive",
        &format!(r#"{{"class":"BigBlueButton::Resque::ArchiveWorker","args":[{{"meeting_id":"{archiving}","break_timestamp":null}}]}}"#),
    );
    rig.through(&sanity, "archive", RECENT);
    // Sanity done, and the one worker works on its captions job (no marker of its own).
    rig.through(&captions, "sanity", RECENT);
    rig.redis(
        "sets",
        "resque:workers",
        "ip-10-0-0-5:4242:rap:archive,rap:publish,rap:process,rap:sanity,rap:captions,rap:events",
    );
    rig.redis(
        "strings",
        "resque:worker:ip-10-0-0-5:4242:rap:archive,rap:publish,rap:process,rap:sanity,rap:captions,rap:events",
        &format!(r#"{{"queue":"rap:captions","run_at":"2026-12-07T10:00:00Z","payload":{{"class":"BigBlueButton::Resque::CaptionsWorker","args":[{{"meeting_id":"{captions}","single_step":false}}]}}}}"#),
    );
    // A worker that is registered but idle holds nothing.
    rig.redis("sets", "resque:workers", "ip-10-0-0-5:4243:rap:events");
    rig.through(&process, "sanity", RECENT);
    rig.redis("sets", "resque:queues", "rap:process");
    rig.redis(
        "lists",
        "resque:queue:rap:process",
        &format!(r#"{{"class":"BigBlueButton::Resque::ProcessWorker","args":[{{"meeting_id":"{process}","single_step":false,"format_name":"presentation"}}]}}"#),
    );
    // Another application's queue in the same Redis is none of its business.
    rig.redis("sets", "resque:queues", "mail");
    rig.redis(
        "lists",
        "resque:queue:mail",
        r#"{"class":"Mailer","args":[]}"#,
    );
    rig.through(&publish, "process", RECENT);
    // Published, Scalelite's hook has not copied it yet.
    rig.through(&transfer, "publish", RECENT);
    // Published and copied to the spool: safe.
    rig.through(&done, "publish", HOURS_AGO);
    rig.mark("published", &format!("{done}-sender.done"), RECENT);
    // No recording marks: archive writes .norecord and the chain ends (a sanity .fail of a
    // worker that went on anyway changes nothing).
    rig.mark("archived", &format!("{norecord}.norecord"), RECENT);
    rig.mark("sanity", &format!("{norecord}.fail"), RECENT);
    rig.raw(&norecord, &[("events.xml", "<recording/>")]);

    let out = logged(&rig.report());
    let state = |id: &str, state: &str| json!({"id": id, "state": state});
    assert_eq!(
        rig.recordings(),
        json!({
            "pending": 7,
            // one archive job and one process job queued, one captions job being worked on
            "jobs": 3,
            "failed": 0,
            "items": [
                state(&queued, "queued"),
                state(&archiving, "archive"),
                state(&sanity, "sanity"),
                state(&captions, "captions"),
                state(&process, "process"),
                state(&publish, "publish"),
                state(&transfer, "transfer"),
            ]
        }),
        "{out}"
    );
    // Nothing failed, nothing saved.
    assert!(rig.saves().is_empty());

    // The hook copies the last one; the queues empty as the worker goes on.
    rig.mark(
        "published",
        &format!("{transfer}-sender.done"),
        Duration::ZERO,
    );
    fs::remove_file(rig.path("redis/lists/resque:queue:rap:process")).unwrap();
    support::assert_success(&rig.report());
    let recordings = rig.recordings();
    assert_eq!(recordings["pending"], 6);
    assert_eq!(recordings["jobs"], 2);
    assert!(!recordings["items"].to_string().contains(&transfer));
}

/// A processing failure is saved once (its raw files, as a tar, to the server's own
/// failed/ prefix), logged by record id and key, and then counts as failed, not pending;
/// until it is saved it is pending. A recording the hook never copied within
/// TRANSFER_GRACE of its last publish marker is a failure too.
#[test]
fn a_failed_recording_is_saved_once_and_then_counts_as_failed_not_pending() {
    let rig = AgentRig::new();
    rig.configure("TRANSFER_GRACE=1800\nREFRESH_SECONDS=3600\n");
    let [failed, stuck, late, young] = [11, 12, 13, 14].map(record);
    rig.through(&failed, "sanity", RECENT);
    rig.mark("processed", &format!("{failed}-presentation.fail"), RECENT);
    rig.raw(
        &failed,
        &[
            ("events.xml", "<recording/>"),
            ("audio/0001.opus", "opus"),
            ("presentation/d2d9a672/slide-1.png", "png"),
        ],
    );
    // Published two hours ago, never copied (the hook's rsync failed: no sender marker).
    rig.through(&stuck, "publish", HOURS_AGO);
    rig.raw(&stuck, &[("events.xml", "<stuck/>")]);
    // The hook copied an earlier format, not the one published after it.
    rig.through(&late, "publish", HOURS_AGO);
    rig.mark(
        "published",
        &format!("{late}-sender.done"),
        HOURS_AGO + Duration::from_secs(600),
    );
    rig.raw(&late, &[("events.xml", "<late/>")]);
    // Published a minute ago: still within the grace.
    rig.through(&young, "publish", RECENT);

    // One upload a round, after the report (it says what was so before the upload). The
    // first is refused: that recording is still pending (failed, not saved), like the two
    // not tried yet.
    fs::write(rig.path("cp-failures"), "1").unwrap();
    let first_log = logged(&rig.report());
    let out = first_log.clone();
    let key = |id: &str| format!("failed/{USER_ID}/{id}.tar");
    assert!(rig.saves().is_empty(), "{out}");
    let first = rig.recordings();
    assert_eq!(first["pending"], 4, "{first}");
    assert_eq!(first["failed"], 0, "{first}");
    assert!(out.contains("trying again later"), "{out}");

    // Within SAVE_RETRY_SECONDS (900 by default) the refused one is not tried again (each
    // attempt reads all of its raw files): the next rounds save the other two, one each.
    let mut all_logs = first_log;
    for round in 1..=2 {
        all_logs.push_str(&logged(&rig.report()));
        assert_eq!(rig.saves().len(), round);
        assert_eq!(rig.recordings()["pending"], 5 - round, "round {round}");
    }
    assert!(!rig.saves().iter().any(|s| s.1 == key(&failed)));

    // Past it (here: at once), the one left is saved too; none is put twice.
    rig.configure("TRANSFER_GRACE=1800\nREFRESH_SECONDS=3600\nSAVE_RETRY_SECONDS=0\n");
    let out = logged(&rig.report());
    all_logs.push_str(&out);
    let saves = rig.saves();
    assert_eq!(saves.len(), 3, "{out}");
    let mut keys: Vec<&str> = saves.iter().map(|s| s.1.as_str()).collect();
    keys.sort_unstable();
    let mut want = vec![key(&failed), key(&stuck), key(&late)];
    want.sort();
    assert_eq!(keys, want);
    assert!(saves.iter().all(|s| s.0 == BUCKET));
    let (_, _, members) = saves.iter().find(|s| s.1 == key(&failed)).unwrap();
    assert_eq!(
        members,
        &[
            format!("{failed}/audio/0001.opus"),
            format!("{failed}/events.xml"),
            format!("{failed}/presentation/d2d9a672/slide-1.png"),
        ]
    );
    // The tar holds the raw files byte for byte.
    let n = lines(&rig.path("cp.log"))
        .iter()
        .position(|l| l.ends_with(&key(&failed)))
        .unwrap();
    let unpacked = rig.path("unpacked");
    fs::create_dir(&unpacked).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(rig.path(&format!("cp-{n}.tar")))
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        fs::read_to_string(unpacked.join(&failed).join("audio/0001.opus")).unwrap(),
        "opus"
    );
    // Logged by record id, failed step and key.
    for (id, step) in [
        (&failed, "process"),
        (&stuck, "transfer"),
        (&late, "transfer"),
    ] {
        let line = format!(
            "recording {id} failed ({step}): raw files saved as s3://{BUCKET}/{}",
            key(id)
        );
        assert_eq!(all_logs.matches(&line).count(), 1, "{line} in {all_logs}");
    }
    // The next report says so.
    support::assert_success(&rig.report());
    let saved = |id: &str| json!({"id": id, "state": "failed", "saved": key(id)});
    let mut failed_items = vec![saved(&failed), saved(&stuck), saved(&late)];
    failed_items.sort_by_key(|i| i["id"].as_str().unwrap().to_string());
    let mut items = vec![json!({"id": young, "state": "transfer"})];
    items.extend(failed_items);
    assert_eq!(
        rig.recordings(),
        json!({"pending": 1, "jobs": 0, "failed": 3, "items": items})
    );

    // Saved once: more rounds put nothing again.
    support::assert_success(&rig.report());
    support::assert_success(&rig.report());
    assert_eq!(rig.saves().len(), 3);

    // In single mode (TRANSFER=none) a published recording is final: nothing waits for a
    // hook that is not there.
    let single = AgentRig::new();
    single.configure("TRANSFER=none\n");
    single.through(&young, "publish", HOURS_AGO);
    support::assert_success(&single.report());
    assert_eq!(
        single.recordings(),
        json!({"pending": 0, "jobs": 0, "failed": 0, "items": []})
    );
    assert!(single.saves().is_empty());

    // A single server's replacement finds, on the data volume it took over, a recording its
    // predecessor saved under its own key: saved again under this server's (the readers
    // accept only a server's own failed/ prefix), and listed with that key.
    let next = AgentRig::new();
    next.configure("TRANSFER=none\n");
    next.through(&failed, "sanity", HOURS_AGO);
    next.mark(
        "processed",
        &format!("{failed}-presentation.fail"),
        HOURS_AGO,
    );
    next.raw(&failed, &[("events.xml", "<recording/>")]);
    fs::create_dir_all(next.path("saved")).unwrap();
    fs::write(
        next.path("saved").join(&failed),
        format!("failed/AROAEXAMPLEROLEID0001:i-0predecessor1/{failed}.tar\n"),
    )
    .unwrap();
    support::assert_success(&next.report());
    assert_eq!(
        next.saves().iter().map(|s| s.1.clone()).collect::<Vec<_>>(),
        [key(&failed)]
    );
    // (The report of the next round says so.)
    support::assert_success(&next.report());
    assert_eq!(
        next.recordings(),
        json!({"pending": 0, "jobs": 0, "failed": 1, "items": [saved(&failed)]})
    );
}

/// A Redis that does not answer says nothing about the jobs: the report never claims 0
/// then (it says 1, "at least one"), logs why, and goes back to the count when Redis answers.
#[test]
fn a_redis_that_does_not_answer_is_never_taken_for_no_jobs() {
    let rig = AgentRig::new();
    rig.through(&record(21), "archive", RECENT);
    fs::write(rig.path("redis-down"), "").unwrap();
    let out = logged(&rig.report());
    assert!(
        out.contains("Redis at 127.0.0.1:6379 does not answer") && out.contains("reported as 1"),
        "{out}"
    );
    let recordings = rig.recordings();
    assert_eq!(recordings["jobs"], 1);
    // What the markers say is still reported.
    assert_eq!(recordings["pending"], 1);
    assert_eq!(recordings["items"][0]["state"], "sanity");
    assert!(
        !lines(&rig.path("redis.log")).is_empty(),
        "redis-cli was asked"
    );

    fs::remove_file(rig.path("redis-down")).unwrap();
    support::assert_success(&rig.report());
    assert_eq!(rig.puts().len(), 2, "the change is reported");
    assert_eq!(rig.recordings()["jobs"], 0);
    // redis-cli asked the host and port of the settings.
    assert!(
        lines(&rig.path("redis.log"))
            .iter()
            .all(|c| c.starts_with("-h 127.0.0.1 -p 6379 --raw "))
    );
}

/// Unchanged, the report is written again once REFRESH_SECONDS have passed since the last
/// write: its S3 LastModified proves how fresh the account is.
#[test]
fn an_unchanged_report_is_written_again_after_refresh_seconds() {
    let rig = AgentRig::new();
    rig.configure("REFRESH_SECONDS=4\n");
    support::assert_success(&rig.report());
    support::assert_success(&rig.report());
    assert_eq!(
        rig.puts().len(),
        1,
        "unchanged and fresh: not written again"
    );
    std::thread::sleep(Duration::from_millis(4200));
    support::assert_success(&rig.report());
    let puts = rig.puts();
    assert_eq!(puts.len(), 2, "refreshed");
    assert_eq!(puts[0].2, puts[1].2, "the same report");
    assert_eq!(puts[0].1, puts[1].1, "to the same key");
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

    // No status directory (the data volume not there): the recordings are unknown, so no
    // report claims anything; the old one grows old.
    fs::rename(
        rig.path("recording/status"),
        rig.path("recording/status.away"),
    )
    .unwrap();
    rig.set_salt("othersalt0123456789abcd");
    let out = rig.report();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recording status directory"));
    assert_eq!(rig.puts().len(), 1);
}

#[test]
fn the_agent_reads_its_settings_as_data_and_only_as_an_instance_role() {
    let rig = AgentRig::new();
    // Settings that a shell would run if the file were sourced.
    rig.configure(
        "REPORT_SECONDS=$(touch pwned)\n`touch pwned2`=1\nTRANSFER_GRACE=`touch pwned3`\n\
         REFRESH_SECONDS=1;touch pwned4\n",
    );
    let out = logged(&rig.report());
    for marker in ["pwned", "pwned2", "pwned3", "pwned4"] {
        assert!(!rig.path(marker).exists(), "{marker}");
    }
    assert!(
        out.contains("TRANSFER_GRACE"),
        "a setting that is no number is named: {out}"
    );

    // Credentials that are not an instance profile's: nothing written, nothing saved.
    rig.through(&record(31), "archive", RECENT);
    rig.mark("sanity", &format!("{}.fail", record(31)), RECENT);
    fs::write(rig.path("user-id"), "AIDAEXAMPLEUSER").unwrap();
    fs::remove_file(rig.path("reported.sha256")).unwrap();
    let out = rig.report();
    assert!(!out.status.success());
    assert_eq!(rig.puts().len(), 1);
    assert!(rig.saves().is_empty());
}

/// Asserts that the agent succeeded; its log (standard error).
fn logged(out: &Output) -> String {
    support::assert_success(out);
    String::from_utf8_lossy(&out.stderr).into_owned()
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

/// A recording in a step with no job left for it anywhere (none queued, none at work) and no
/// change for STALL_GRACE will never be taken up again (each step is queued from inside the
/// job before it): it counts as failed and is saved, so it holds no server for ever. A young
/// one, or one while any job is left, stays pending. A transfer past its grace while a
/// publish job still works on that recording is not declared failed (it may still be
/// copying).
#[test]
fn a_stalled_recording_is_saved_as_failed_and_a_copy_under_way_is_not() {
    let rig = AgentRig::new();
    rig.configure("REFRESH_SECONDS=3600\nSTALL_GRACE=900\n");
    let [stalled, fresh, copying] = [31, 32, 33].map(record);
    // Sanity done two hours ago, nothing since, no job: stalled.
    rig.through(&stalled, "sanity", HOURS_AGO);
    rig.raw(&stalled, &[("events.xml", "<stalled/>")]);
    // Archived a minute ago: its next job may just be on its way.
    rig.through(&fresh, "archive", RECENT);
    // A worker killed hard left its entry with the stalled one's job, and a heartbeat that
    // stopped an hour ago (Resque's prune interval is 5 minutes): no job any more.
    let dead = "ip-10-0-0-5:4000:rap:archive,rap:publish,rap:process,rap:sanity,rap:captions";
    rig.redis("sets", "resque:workers", dead);
    rig.redis(
        "strings",
        &format!("resque:worker:{dead}"),
        &format!(r#"{{"queue":"rap:process","run_at":"2026-12-07T09:00:00Z","payload":{{"class":"BigBlueButton::Resque::ProcessWorker","args":[{{"meeting_id":"{stalled}","format_name":"presentation"}}]}}}}"#),
    );
    let hour_ago = aws_smithy_types::DateTime::from(SystemTime::now() - HOURS_AGO / 2)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    fs::create_dir_all(rig.path("redis/hashes/resque:workers:heartbeat")).unwrap();
    fs::write(
        rig.path(&format!("redis/hashes/resque:workers:heartbeat/{dead}")),
        hour_ago,
    )
    .unwrap();
    support::assert_success(&rig.report());
    let key = format!("failed/{USER_ID}/{stalled}.tar");
    assert_eq!(
        rig.saves().iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        [key.as_str()]
    );
    // (The report of the next round says so.)
    support::assert_success(&rig.report());
    assert_eq!(
        rig.recordings(),
        json!({"pending": 1, "jobs": 0, "failed": 1, "items": [
            {"id": fresh, "state": "sanity"},
            {"id": stalled, "state": "failed", "saved": key},
        ]})
    );

    // While any job is left in Redis, nothing is taken for stalled; and a recording whose
    // copy is past its grace is not failed while a publish job works on it.
    let busy = AgentRig::new();
    busy.configure("REFRESH_SECONDS=3600\nSTALL_GRACE=900\nTRANSFER_GRACE=1800\n");
    busy.through(&stalled, "sanity", HOURS_AGO);
    busy.through(&copying, "publish", HOURS_AGO);
    busy.redis("sets", "resque:workers", "ip-10-0-0-5:4242:rap:publish");
    // Its heartbeat a few seconds old: alive.
    fs::create_dir_all(busy.path("redis/hashes/resque:workers:heartbeat")).unwrap();
    fs::write(
        busy.path("redis/hashes/resque:workers:heartbeat/ip-10-0-0-5:4242:rap:publish"),
        aws_smithy_types::DateTime::from(SystemTime::now())
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap(),
    )
    .unwrap();
    busy.redis(
        "strings",
        "resque:worker:ip-10-0-0-5:4242:rap:publish",
        &format!(r#"{{"queue":"rap:publish","run_at":"2026-12-07T10:00:00Z","payload":{{"class":"BigBlueButton::Resque::PublishWorker","args":[{{"meeting_id":"{copying}","format_name":"video"}}]}}}}"#),
    );
    support::assert_success(&busy.report());
    assert!(busy.saves().is_empty());
    let recordings = busy.recordings();
    assert_eq!(
        (
            recordings["pending"].clone(),
            recordings["jobs"].clone(),
            recordings["failed"].clone()
        ),
        (json!(2), json!(1), json!(0)),
        "{recordings}"
    );
}

/// The secret is bbb-web's: its defaults file, overridden by /etc/bigbluebutton's file, the
/// last securitySalt winning (as bbb-web reads them, and bbb-install takes it); a salt set in
/// the defaults only is found too.
#[test]
fn the_secret_comes_from_bbb_webs_defaults_then_its_overrides() {
    let rig = AgentRig::new();
    let defaults = rig.path("bigbluebutton.properties");
    fs::write(&defaults, "securitySalt=defaultsalt0123456789\n").unwrap();
    fs::write(
        rig.path("bbb-web.properties"),
        "bigbluebutton.web.serverURL=https://bbb-0abc1234.bbb.example.org\n",
    )
    .unwrap();
    rig.configure(&format!("BBB_DEFAULT_PROPERTIES={}\n", defaults.display()));
    support::assert_success(&rig.report());
    assert_eq!(rig.puts()[0].2["secret"], "defaultsalt0123456789");
    rig.set_salt("overridesalt0123456789");
    support::assert_success(&rig.report());
    assert_eq!(rig.puts()[1].2["secret"], "overridesalt0123456789");
}

// ---- issue 27: the boot in the report (contract 27 section 5) ---------------------------

impl AgentRig {
    /// /run/bbbctl/boot as the bootstrap and bbb-identity write it.
    fn set_boot(&self, line: &str) {
        fs::write(self.path("boot"), format!("{line}\n")).unwrap();
    }

    fn set_lifecycle(&self, state: &str) {
        fs::write(self.path("lifecycle"), state).unwrap();
    }

    fn last(&self) -> serde_json::Value {
        self.puts().last().expect("a report").2.clone()
    }
}

#[test]
fn the_report_says_how_the_boot_goes_from_the_boot_file_and_the_target_lifecycle_state() {
    let rig = AgentRig::new();
    // A bare install under way, on its way into the warm pool: bbb-web has no secret yet and
    // there is no recording tree. The report holds the boot only.
    fs::write(rig.path("bbb-web.properties"), "").unwrap();
    fs::rename(rig.path("recording/status"), rig.path("status.later")).unwrap();
    rig.set_boot("booting 1765000000 bare");
    rig.set_lifecycle("Warmed:Stopped");
    support::assert_success(&rig.report());
    assert_eq!(
        rig.last(),
        json!({"boot": {"state": "booting", "started": 1765000000, "path": "bare", "lifecycle": "Warmed:Stopped"}})
    );
    // IMDSv2: a token first, then the item with it.
    let calls = lines(&rig.path("curl.log"));
    assert!(
        calls[0].contains("-X PUT http://169.254.169.254/latest/api/token"),
        "{calls:?}"
    );
    assert!(
        calls[1].contains("X-aws-ec2-metadata-token: AQAEAtoken=="),
        "{calls:?}"
    );

    // Installed and ready: the whole report, with its boot.
    rig.set_salt(SALT);
    fs::rename(rig.path("status.later"), rig.path("recording/status")).unwrap();
    rig.set_boot("ready 1765000000 bare");
    support::assert_success(&rig.report());
    let report = rig.last();
    assert_eq!(report["secret"], SALT);
    assert_eq!(report["recordings"]["pending"], 0);
    assert_eq!(
        report["boot"],
        json!({"state": "ready", "started": 1765000000, "path": "bare", "lifecycle": "Warmed:Stopped"})
    );

    // Started from the pool: a new boot (restart path), then in service; each is a change,
    // so each is written.
    rig.set_boot("booting 1765003600 restart");
    rig.set_lifecycle("InService");
    support::assert_success(&rig.report());
    assert_eq!(rig.last()["boot"]["state"], "booting");
    assert_eq!(rig.last()["boot"]["lifecycle"], "InService");
    assert_eq!(rig.last()["secret"], SALT, "installed: the whole report");
    rig.set_boot("ready 1765003600 restart");
    support::assert_success(&rig.report());
    assert_eq!(rig.puts().len(), 4);
    assert_eq!(rig.last()["boot"]["path"], "restart");

    // IMDS names no target state (outside a group) or does not answer: "".
    fs::remove_file(rig.path("lifecycle")).unwrap();
    support::assert_success(&rig.report());
    assert_eq!(rig.last()["boot"]["lifecycle"], "");
    fs::write(rig.path("imds-down"), "").unwrap();
    support::assert_success(&rig.report());
    assert_eq!(rig.last()["boot"]["lifecycle"], "");
    fs::remove_file(rig.path("imds-down")).unwrap();
    // Something IMDS should never say is not passed on.
    rig.set_lifecycle("Pending:Wait\"}");
    support::assert_success(&rig.report());
    assert_eq!(rig.last()["boot"]["lifecycle"], "");
}

#[test]
fn a_boot_line_out_of_shape_is_no_boot_and_none_is_never_ready() {
    let rig = AgentRig::new();
    rig.set_lifecycle("InService");
    // No boot file yet this boot: no "boot" (the registrar: not ready), and IMDS not asked.
    support::assert_success(&rig.report());
    assert!(rig.last().get("boot").is_none(), "{}", rig.last());
    assert!(!rig.path("curl.log").exists());
    for line in [
        "ready",
        "ready 1765000000",
        "READY 1765000000 baked",
        "ready 1765000000 bake",
        "ready 17650000x0 baked",
        "ready 1765000000 baked extra",
        "ready $(touch pwned) baked",
    ] {
        rig.set_boot(line);
        logged(&rig.report());
        assert!(rig.last().get("boot").is_none(), "{line}: {}", rig.last());
        assert!(!rig.path("pwned").exists());
    }
    // Installing with no valid line: nothing claims anything (no report at all).
    fs::write(rig.path("bbb-web.properties"), "").unwrap();
    rig.set_boot("booting soon bare");
    let out = rig.report();
    assert!(!out.status.success());
    // A good line again is reported.
    rig.set_salt(SALT);
    rig.set_boot("ready 1765000000 baked");
    support::assert_success(&rig.report());
    assert_eq!(rig.last()["boot"]["state"], "ready");
}

#[test]
fn watch_reports_a_change_of_boot_state_at_once() {
    let rig = AgentRig::new();
    // A long round (REPORT_SECONDS, REFRESH_SECONDS): only the boot's change can write early.
    rig.configure("REPORT_SECONDS=300\nREFRESH_SECONDS=600\nBOOT_POLL_SECONDS=1\n");
    rig.set_boot("booting 1765000000 baked");
    rig.set_lifecycle("InService");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/scripts/bbb-agent.sh");
    let path = format!(
        "{}:{}",
        rig.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg(script)
        .arg("watch")
        .current_dir(rig.path(""))
        .env("PATH", path)
        .env("FAKE_DIR", rig.path(""))
        .env("BBB_AGENT_CONFIG", rig.path("bbb-agent.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |n: usize| {
        let start = std::time::Instant::now();
        while rig.puts().len() < n && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        start.elapsed()
    };
    wait_for(1);
    assert_eq!(rig.puts().len(), 1);
    assert_eq!(rig.last()["boot"]["state"], "booting");
    rig.set_boot("ready 1765000000 baked");
    let took = wait_for(2);
    // The lifecycle changes too (into the pool's target state): written at once as well.
    rig.set_lifecycle("Warmed:Stopped");
    let took_too = wait_for(3);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        rig.puts().len(),
        3,
        "written at each change, not after 300 s"
    );
    assert_eq!(rig.puts()[1].2["boot"]["state"], "ready");
    assert_eq!(rig.puts()[2].2["boot"]["lifecycle"], "Warmed:Stopped");
    assert!(
        took < Duration::from_secs(5) && took_too < Duration::from_secs(5),
        "{took:?} {took_too:?}"
    );
}
