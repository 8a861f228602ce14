//! Fault cases on the emulator in its asynchronous mode (`MOTO_EXT_STACK_SECONDS`): stack
//! operations stay `*_IN_PROGRESS` for a while, as in AWS, so Ctrl-C while bbbctl waits and
//! the re-run that attaches to the running operation can be tested end to end, and so can a
//! domain name that is taken between setup's pre-flight and the stack's create.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use bbbctl::aws::Aws;
use common::*;

/// How long the emulator takes for every root stack operation: long enough for the re-run to
/// find the operation still running on a busy 2-core CI machine.
const STACK_SECONDS: &str = "5";

/// This binary's emulator (asynchronous) and an account with the ECS service-linked role.
async fn async_account() -> Aws {
    endpoint_with_env(&[("MOTO_EXT_STACK_SECONDS", STACK_SECONDS)]);
    account().await
}

/// Spawns bbbctl with piped output, like `bbbctl_in` runs it.
fn spawn(dir: &std::path::Path, args: &[&str]) -> Child {
    bbbctl_command(dir, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning bbbctl")
}

/// Waits until `stack` is in `status` (seen through the SDK) and bbbctl follows it (its progress
/// line for the stack is out, so its Ctrl-C handler is in place), then sends SIGINT (Ctrl-C) to
/// bbbctl and returns its output.
async fn interrupt_when(aws: &Aws, mut child: Child, stack: &str, status: &str) -> Output {
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let out = child.stdout.take().expect("piped stdout");
        let (stack, status) = (stack.to_string(), status.to_string());
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(out).lines() {
                let line = line.expect("bbbctl stdout");
                if line.split_whitespace().nth(1) == Some(stack.as_str()) && line.contains(&status)
                {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = false;
    loop {
        seen = seen || status_of(aws, stack).await.as_deref() == Some(status);
        if seen && rx.try_recv().is_ok() {
            break;
        }
        if child.try_wait().expect("bbbctl status").is_some() {
            let o = child.wait_with_output().expect("bbbctl output");
            panic!(
                "bbbctl ended before {stack} was {status}\n--- stdout\n{}\n--- stderr\n{}",
                reader.join().expect("stdout reader"),
                stderr(&o)
            );
        }
        assert!(Instant::now() < deadline, "{stack} never {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(kill.success(), "kill -INT failed");
    let mut o = child.wait_with_output().expect("bbbctl output");
    o.stdout = reader.join().expect("stdout reader").into_bytes();
    o
}

fn assert_stopped_waiting(o: &Output) {
    assert_code(o, 130);
    let err = stderr(o);
    assert!(err.contains("stopped waiting"), "{err}");
    assert!(err.contains("Re-run the same bbbctl command"), "{err}");
}

#[tokio::test]
async fn ctrl_c_during_create_then_rerun_follows_it_to_the_end() {
    let _one_at_a_time = exclusive().await;
    let aws = async_account().await;
    let domain = format!("{}.example.org", unique("ic"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("ic");
    let dir = scratch_dir();
    let args = setup_args(&zone, &stack, &domain, &[]);

    let child = spawn(&dir, &args);
    let o = interrupt_when(&aws, child, &stack, "CREATE_IN_PROGRESS").await;
    assert_stopped_waiting(&o);
    assert!(
        stderr(&o).contains(&format!("the create of stack {stack} goes on in AWS")),
        "{}",
        stderr(&o)
    );

    let o = bbbctl_in(&dir, &args);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "Stack {stack} is busy (CREATE_IN_PROGRESS); following it to the end first"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("Deployment {stack} is ready"))
            || out.contains(&format!("Deployment {stack} is up to date")),
        "{out}"
    );
    // Followed to CREATE_COMPLETE, then (the servers' image recorded) an update.
    let status = root(&aws, &stack).await.0;
    assert!(
        ["CREATE_COMPLETE", "UPDATE_COMPLETE"].contains(&status.as_str()),
        "{status}"
    );
}

#[tokio::test]
async fn ctrl_c_during_destroy_then_rerun_deletes_everything() {
    let _one_at_a_time = exclusive().await;
    let aws = async_account().await;
    let domain = format!("{}.example.org", unique("id"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("id");
    let dir = scratch_dir();

    let o = bbbctl_in(&dir, &setup_args(&zone, &stack, &domain, &[]));
    assert_code(&o, 0);
    assert_eq!(root(&aws, &stack).await.0, "CREATE_COMPLETE");
    let sources = format!("{stack}-sources");
    let bucket = root(&aws, &sources).await.1["BucketName"].clone();
    assert!(bucket_names(&aws).await.contains(&bucket));

    let destroy = ["destroy", "-s", stack.as_str(), "--yes"];
    let child = spawn(&dir, &destroy);
    let o = interrupt_when(&aws, child, &stack, "DELETE_IN_PROGRESS").await;
    assert_stopped_waiting(&o);
    assert!(
        stderr(&o).contains(&format!("the delete of stack {stack} goes on in AWS")),
        "{}",
        stderr(&o)
    );

    let o = bbbctl_in(&dir, &destroy);
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!(
            "Stack {stack} is busy (DELETE_IN_PROGRESS); following it to the end first"
        )),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!("Deployment {stack} is deleted")),
        "{}",
        stdout(&o)
    );
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
}

/// Two deployments on one domain: setup's pre-flight refuses a domain whose names are taken,
/// but a record can appear between the pre-flight and the stack's create (another setup
/// running at the same time, the operator). Route 53 then refuses the second record, so the
/// create fails at the domain's record, as it would in AWS, and rolls back; the rollback and
/// a destroy of the failed deployment delete what it created and leave the record it did not.
#[tokio::test]
async fn a_record_taken_after_the_preflight_fails_the_create_and_destroy_leaves_it() {
    let _one_at_a_time = exclusive().await;
    let aws = async_account().await;
    let domain = format!("{}.example.org", unique("ir"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("ir");
    let dir = scratch_dir();
    let (out, err) = (dir.join("setup.out"), dir.join("setup.err"));
    let mut child = bbbctl_command(&dir, &setup_args(&zone, &stack, &domain, &[]))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawning bbbctl");

    // The sources stack comes after the pre-flight; the root stack, and with it the domain's
    // record, only once the sources stack is complete (STACK_SECONDS later, at least).
    let sources = format!("{stack}-sources");
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(&aws, &sources).await.is_none() {
        assert!(
            child.try_wait().expect("bbbctl status").is_none(),
            "setup ended before creating {sources}: {}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "{sources} never created");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status_of(&aws, &stack).await,
        None,
        "the root stack came too early"
    );
    upsert_a_record(&aws, &zone, &domain, "198.51.100.7").await;

    let status = child.wait().expect("bbbctl status");
    let (out, err) = (
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    );
    assert_eq!(
        status.code(),
        Some(1),
        "--- stdout\n{out}\n--- stderr\n{err}"
    );
    assert!(
        err.contains(&format!(
            "Tried to create resource record set [name='{domain}.', type='A'] but it already exists"
        )),
        "{err}"
    );
    assert_eq!(root(&aws, &stack).await.0, "ROLLBACK_COMPLETE");
    let only_the_other = vec![(
        format!("{domain}."),
        "A".to_string(),
        "198.51.100.7".to_string(),
    )];
    assert_eq!(
        zone_records(&aws, &zone).await,
        only_the_other,
        "after the rollback"
    );

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert_eq!(
        zone_records(&aws, &zone).await,
        only_the_other,
        "after destroy"
    );
}

/// The zone's records but NS and SOA: (name, type, values joined by a space).
async fn zone_records(aws: &Aws, zone: &str) -> Vec<(String, String, String)> {
    let page = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .expect("list records");
    page.resource_record_sets()
        .iter()
        .filter(|r| !matches!(r.r#type().as_str(), "NS" | "SOA"))
        .map(|r| {
            let values: Vec<&str> = r.resource_records().iter().map(|v| v.value()).collect();
            (
                r.name().to_string(),
                r.r#type().as_str().to_string(),
                values.join(" "),
            )
        })
        .collect()
}
