//! Test harness: one moto server per test binary (started on first use, on a free loopback
//! port, stopped by itself when the test process ends), a runner for the built `bbbctl` binary
//! with emulator-only environment, and SDK clients to check the resulting AWS state.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use bbbctl::aws::Aws;

pub mod inventory;
pub mod registrar;

pub const REGION: &str = "us-east-1";
pub const EMAIL: &str = "ops@example.org";

/// `setup -e ops@example.org -h ZONE -s STACK -d DOMAIN` followed by `extra`.
pub fn setup_args<'a>(
    zone: &'a str,
    stack: &'a str,
    domain: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["setup", "-e", EMAIL, "-h", zone, "-s", stack, "-d", domain];
    args.extend_from_slice(extra);
    args
}

/// The stack's status, `None` while it does not exist (by name).
pub async fn status_of(aws: &Aws, stack: &str) -> Option<String> {
    let out = aws
        .cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .ok()?;
    out.stacks()
        .first()
        .and_then(|s| s.stack_status())
        .map(|s| s.as_str().to_string())
}

/// The stack as DescribeStacks answers it (it must exist).
pub async fn described(aws: &Aws, stack: &str) -> aws_sdk_cloudformation::types::Stack {
    let out = aws
        .cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .expect("describe stack");
    out.stacks()[0].clone()
}

/// The root stack's status and outputs, as the SDK sees them.
pub async fn root(aws: &Aws, stack: &str) -> (String, std::collections::BTreeMap<String, String>) {
    let s = described(aws, stack).await;
    (
        s.stack_status().expect("status").as_str().to_string(),
        bbbctl::cfn::ops::outputs(&s),
    )
}

/// The nested stacks of a root stack: logical id → status.
pub async fn nested_stacks(aws: &Aws, stack: &str) -> std::collections::BTreeMap<String, String> {
    let out = aws
        .cfn
        .list_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .expect("list resources");
    out.stack_resource_summaries()
        .iter()
        .filter(|r| r.resource_type() == Some("AWS::CloudFormation::Stack"))
        .map(|r| {
            (
                r.logical_resource_id().unwrap_or_default().to_string(),
                r.resource_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs boto3 (the emulator's venv) against the emulator, for services bbbctl has no SDK
/// crate of (CloudWatch Logs): `code` sees `client`, a boto3 client of `service`, and
/// `json`; what it prints is returned.
pub fn boto3(service: &str, code: &str) -> String {
    let out = Command::new(repo().join(".venv/emulator/bin/python"))
        .arg("-c")
        .arg(format!(
            "import boto3, json\nclient = boto3.client({service:?}, region_name='{REGION}', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test')\n{code}",
            endpoint()
        ))
        .output()
        .expect("running the emulator's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `lines` as the log stream `stream` of `group` (both created if missing), the way
/// a BBB server's log shipper does.
pub fn put_log_lines(group: &str, stream: &str, lines: &[&str]) {
    boto3(
        "logs",
        &format!(
            "import time\n\
             try: client.create_log_group(logGroupName={group:?})\n\
             except client.exceptions.ResourceAlreadyExistsException: pass\n\
             try: client.create_log_stream(logGroupName={group:?}, logStreamName={stream:?})\n\
             except client.exceptions.ResourceAlreadyExistsException: pass\n\
             now = int(time.time() * 1000)\n\
             client.put_log_events(logGroupName={group:?}, logStreamName={stream:?}, logEvents=[{{'timestamp': now + i, 'message': m}} for i, m in enumerate({lines:?})])"
        ),
    );
}

/// The emulator's endpoint URL; starts it on first call (the server started by
/// `endpoint_with_env` when that came first).
pub fn endpoint() -> &'static str {
    &server(&[]).0
}

/// The endpoint of this test binary's emulator, started with `env` added to the server's
/// environment (e.g. `MOTO_EXT_STACK_SECONDS`). A binary that needs it calls it before anything
/// else in every test; the server is started once, so every call must pass the same `env`.
pub fn endpoint_with_env(env: &[(&str, &str)]) -> &'static str {
    let (url, started_with) = server(env);
    let wanted: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        started_with, &wanted,
        "this test binary's emulator was started with another environment"
    );
    url
}

fn server(env: &[(&str, &str)]) -> &'static (String, Vec<(String, String)>) {
    static SERVER: OnceLock<(String, Vec<(String, String)>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (start_emulator(&env), env)
    })
}

fn start_emulator(env: &[(String, String)]) -> String {
    let script = repo().join("tests/emulator/moto.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg("install")
        .status()
        .expect("running tests/emulator/moto.sh install");
    assert!(status.success(), "tests/emulator/moto.sh install failed");
    let python = repo().join(".venv/emulator/bin/python");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let log = std::fs::File::create(std::env::temp_dir().join(format!("bbbctl-moto-{port}.log")))
        .expect("log file");
    // Never waited for: the server ends itself when this test process is gone (--watch-pid).
    #[allow(clippy::zombie_processes)]
    Command::new(python)
        .env_remove("MOTO_EXT_STACK_SECONDS") // only what `env` asks for
        .env_remove("MOTO_EXT_HOOK_TIME_SCALE")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg(repo().join("tests/emulator/server.py"))
        .args(["--port", &port.to_string()])
        .args(["--watch-pid", &std::process::id().to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("starting the moto server");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// A unique, valid name per test (tests share one emulator).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 10_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs `bbbctl` against the emulator, in a scratch folder (no stray parameter file) with a
/// scratch HOME (no real AWS profile), with dummy credentials.
pub fn bbbctl(args: &[&str]) -> Output {
    bbbctl_in(&scratch_dir(), args)
}

pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("bbbctl-test-"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub fn bbbctl_in(dir: &Path, args: &[&str]) -> Output {
    bbbctl_command(dir, args)
        .stdin(Stdio::null())
        .output()
        .expect("running bbbctl")
}

/// The `bbbctl` command `bbbctl_in` runs (folder, HOME, environment, arguments), for tests
/// that spawn it themselves.
pub fn bbbctl_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bbbctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BBBCTL_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args);
    cmd
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code and prints both streams when it differs.
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Asserts that `o`'s stdout says `text`, printing it when not.
pub fn assert_stdout_has(o: &Output, text: &str) {
    assert!(stdout(o).contains(text), "{text:?} not in:\n{}", stdout(o));
}

/// `setup` of a new deployment with `servers` BBB servers (a parameter file in `dir`).
pub fn setup_with_servers(
    dir: &Path,
    (zone, stack, domain): (&str, &str, &str),
    servers: usize,
    extra: &[&str],
) -> Output {
    let params = dir.join("params.json");
    std::fs::write(
        &params,
        format!(r#"{{"Parameters": {{"BBBServerCount": {servers}}}}}"#),
    )
    .unwrap();
    let file = params.display().to_string();
    let mut args = vec!["--params", file.as_str()];
    args.extend_from_slice(extra);
    bbbctl_in(dir, &setup_args(zone, stack, domain, &args))
}

/// The instance ids of an Auto Scaling group, sorted.
pub async fn group_instances(aws: &Aws, group: &str) -> Vec<String> {
    let mut ids: Vec<String> = auto_scaling_group(aws, group)
        .await
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

/// An Auto Scaling group as described now.
pub async fn auto_scaling_group(
    aws: &Aws,
    name: &str,
) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    aws.autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()[0]
        .clone()
}

/// Scalelite's load-balancer secret of a deployment (the front end's LoadBalancerSecretArn).
pub async fn load_balancer_secret(aws: &Aws, stack: &str) -> String {
    let frontend = described(aws, &stack_resource(aws, stack, "FrontendStack").await).await;
    let arn = bbbctl::cfn::ops::parameters(&frontend)
        .remove("LoadBalancerSecretArn")
        .unwrap();
    aws.secrets
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string()
}

/// SDK clients against the emulator, for checking state.
pub async fn aws() -> Aws {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(bbbctl::aws::https_client())
        .region(Region::new(REGION))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    Aws::from_config(config, true)
}

/// SDK clients against the emulator in another region than `REGION`.
pub async fn aws_in(region: &str) -> Aws {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(bbbctl::aws::https_client())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    Aws::from_config(config, true)
}

/// SDK clients against an emulator account set up like a typical AWS account: it has the ECS
/// service-linked role (created once per emulator). Tests of a bare account use `aws()`.
pub async fn account() -> Aws {
    static BASELINE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let aws = aws().await;
    // The deployment's registrar ends the servers' drains on AWS: its stand-in runs here.
    registrar::Registrar::everywhere();
    BASELINE
        .get_or_init(|| async {
            let exists = aws
                .iam
                .get_role()
                .role_name("AWSServiceRoleForECS")
                .send()
                .await
                .is_ok();
            if !exists {
                aws.iam
                    .create_service_linked_role()
                    .aws_service_name("ecs.amazonaws.com")
                    .send()
                    .await
                    .expect("create the ECS service-linked role");
            }
        })
        .await;
    aws
}

/// Creates a public hosted zone for `domain` and returns its id (without `/hostedzone/`).
pub async fn hosted_zone(aws: &Aws, domain: &str) -> String {
    let out = aws
        .route53
        .create_hosted_zone()
        .name(domain)
        .caller_reference(unique("ref"))
        .send()
        .await
        .expect("create hosted zone");
    out.hosted_zone()
        .expect("zone")
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

/// The physical id of resource `logical` of `stack`.
pub async fn stack_resource(aws: &Aws, stack: &str, logical: &str) -> String {
    aws.cfn
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id(logical)
        .send()
        .await
        .unwrap()
        .stack_resource_detail()
        .and_then(|r| r.physical_resource_id())
        .unwrap()
        .to_string()
}

/// Names of the stacks that exist (not deleted).
pub async fn live_stacks(aws: &Aws) -> Vec<String> {
    let out = aws
        .cfn
        .describe_stacks()
        .send()
        .await
        .expect("describe stacks");
    out.stacks()
        .iter()
        .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
        .filter_map(|s| s.stack_name().map(str::to_string))
        .collect()
}

pub async fn bucket_names(aws: &Aws) -> Vec<String> {
    let out = aws.s3.list_buckets().send().await.expect("list buckets");
    out.buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect()
}

/// After a destroy: no stack of the deployment, no bucket of its name, and no resource of any
/// kind that was not there before (`before`: `inventory::inventory()` taken before the first
/// setup; `kept`: kinds that stay on purpose, e.g. `rds:cluster_snapshots`). Tests that call it
/// hold `exclusive()`, so no other test of the binary creates resources meanwhile.
pub async fn assert_nothing_left(
    aws: &Aws,
    stack: &str,
    before: &std::collections::BTreeMap<String, Vec<String>>,
    kept: &[&str],
) {
    let left = live_stacks(aws).await;
    assert!(
        !left.iter().any(|s| s.starts_with(stack)),
        "stacks left: {left:?}"
    );
    let prefix = stack.to_lowercase();
    let buckets = bucket_names(aws).await;
    assert!(
        !buckets.iter().any(|b| b.starts_with(&prefix)),
        "buckets left: {buckets:?}"
    );
    let mut created = inventory::created_since(before);
    for k in kept {
        assert!(
            created.remove(*k).is_some(),
            "{k} should stay on purpose: {created:#?}"
        );
    }
    assert!(created.is_empty(), "resources left behind: {created:#?}");
}

/// One test at a time in this test binary, for tests that compare the emulator's whole
/// inventory before and after.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Writes an A record `name` → `address` into `zone` (Route 53 UPSERT), as someone other
/// than bbbctl would: the operator's own site, or another deployment's name.
#[allow(dead_code)]
pub async fn upsert_a_record(aws: &Aws, zone: &str, name: &str, address: &str) {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(address).build().unwrap())
        .build()
        .unwrap();
    let change = Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(set)
        .build()
        .unwrap();
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .expect("upsert a record");
}
