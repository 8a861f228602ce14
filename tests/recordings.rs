//! Recordings still being processed hold the ways out that have no drain: a single server's
//! replacement waits for them (and `--force` goes on, naming what is lost), and `destroy` says
//! how many would be lost and, answered by `--yes` alone, refuses and changes nothing;
//! `--force` goes on. On the emulator nothing runs on the servers: the test writes each
//! server's report (`servers/<role id>:<instance id>.json` in the sources bucket) as its
//! agent (templates/scripts/bbb-agent.sh) would, and a saved failed recording under
//! `failed/`.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;

const ID: &str = "0123456789abcdef0123456789abcdef01234567-1765000000000";

/// The agent's report of `instance` with `pending` recordings (each in its sanity check).
async fn report(aws: &bbbctl::aws::Aws, bucket: &str, instance: &str, pending: u32) {
    let items: Vec<serde_json::Value> = (0..pending.min(1))
        .map(|_| serde_json::json!({"id": ID, "state": "sanity"}))
        .collect();
    let body = serde_json::json!({
        "secret": "0123456789abcdef0123456789abcdef",
        "recordings": {"pending": pending, "jobs": 0, "failed": 0, "items": items},
    });
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(format!("servers/AROATESTSERVERROLE:{instance}.json"))
        .body(ByteStream::from(serde_json::to_vec(&body).unwrap()))
        .send()
        .await
        .unwrap();
}

/// `setup` of the single-mode deployment, confirmed, without the final check, then `extra`.
fn single<'a>(zone: &'a str, stack: &'a str, domain: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--mode", "single", "--yes", "--no-check"];
    args.extend_from_slice(extra);
    setup_args(zone, stack, domain, &args)
}

async fn parameter(aws: &bbbctl::aws::Aws, stack: &str, name: &str) -> String {
    described(aws, stack)
        .await
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some(name))
        .and_then(|p| p.parameter_value())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_single_servers_replacement_waits_for_its_recordings_and_destroy_asks_first() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("rec"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("rec");
    let dir = scratch_dir();
    let o = bbbctl_in(&dir, &single(&zone, &stack, &domain, &[]));
    assert_code(&o, 0);
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let instances = group_instances(&aws, &group).await;
    assert_eq!(instances.len(), 1, "{instances:?}");
    let bucket = parameter(&aws, &stack, "TemplateBucket").await;
    report(&aws, &bucket, &instances[0], 2).await;

    // A new instance type replaces the single server: setup waits while it processes two
    // recordings, and changes nothing meanwhile.
    let params = dir.join("bigger.json");
    // (The earlier releases' default drain timeout, kept by a deployment: said below.)
    std::fs::write(
        &params,
        r#"{"Parameters": {"BBBServerInstanceType": "c5.4xlarge", "BBBServerDrainTimeout": 3600}}"#,
    )
    .unwrap();
    let file = params.display().to_string();
    let type_before = parameter(&aws, &stack, "BBBServerInstanceType").await;
    let args = single(&zone, &stack, &domain, &["--params", &file]);
    let waiting = bbbctl_command(&dir, &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        assert_eq!(
            parameter(&aws, &stack, "BBBServerInstanceType").await,
            type_before,
            "the update started while recordings were processing"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its recordings are safe: the update goes on.
    report(&aws, &bucket, &instances[0], 0).await;
    let o = waiting.wait_with_output().unwrap();
    assert_code(&o, 0);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        out.contains("waits until the single server has processed its recordings"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "waiting for recordings to be processed and safe: {}: 2 pending",
            instances[0]
        )),
        "{out}"
    );
    assert_eq!(
        parameter(&aws, &stack, "BBBServerInstanceType").await,
        "c5.4xlarge"
    );

    // --force replaces it at once, naming what is lost.
    let server = group_instances(&aws, &group).await;
    report(&aws, &bucket, &server[0], 1).await;
    std::fs::write(
        &params,
        r#"{"Parameters": {"BBBServerInstanceType": "c5.2xlarge", "BBBServerDrainTimeout": 3600}}"#,
    )
    .unwrap();
    let o = bbbctl_in(
        &dir,
        &single(&zone, &stack, &domain, &["--params", &file, "--force"]),
    );
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains(&format!(
            "replacing the single server while it still processes recordings (--force); they are lost: {}: 1 pending",
            server[0]
        )),
        "{}",
        stderr(&o)
    );
    // A deployment that kept the earlier default hears that it now bounds recordings too.
    assert!(
        stderr(&o).contains("BBBServerDrainTimeout is 3600 s (the default of earlier releases)"),
        "{}",
        stderr(&o)
    );

    // destroy says what would be lost; --yes alone refuses and deletes nothing.
    let server = group_instances(&aws, &group).await;
    report(&aws, &bucket, &server[0], 3).await;
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key(format!("failed/AROATESTSERVERROLE:{}/{ID}.tar", server[0]))
        .body(ByteStream::from(vec![0u8; 2048]))
        .send()
        .await
        .unwrap();
    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("3 recording(s) are still being processed on 1 BBB server(s)")
            && err.contains("1 failed recording(s) saved by the servers")
            && err.contains("Nothing was deleted")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        status_of(&aws, &stack).await.as_deref(),
        Some("UPDATE_COMPLETE")
    );
    assert_eq!(group_instances(&aws, &group).await, server);

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes", "--force"]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("Going on (--force)"), "{}", stderr(&o));
    assert_nothing_left(&aws, &stack, &before, &[]).await;
}
