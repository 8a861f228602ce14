//! Both deployment modes on the emulator: a fresh single-mode deployment, a switch to scalable
//! and back, and a destroy that leaves nothing behind. The single server's data volume is
//! snapshotted by CloudFormation when a switch or destroy deletes it (DeletionPolicy Snapshot,
//! moto_ext patch 22): the switch names the snapshot, destroy deletes it unless
//! `--keep-data-snapshot`.

mod common;

use std::collections::BTreeMap;

use bbbctl::signed::volume_snapshots;
use bbbctl::templates::Bundle;
use common::*;

/// The nested stacks the root template creates for a mode (from its own conditions).
fn layers(mode: &str) -> Vec<String> {
    let root = Bundle::embedded().root_info().unwrap();
    let params: BTreeMap<String, String> =
        [("BBBEnvironmentType".to_string(), mode.to_string())].into();
    root.nested_in_effect(&params)
        .iter()
        .map(|n| n.logical_id.clone())
        .collect()
}

#[tokio::test]
async fn single_mode_then_scalable_and_back() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("mode"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("mode");
    let dir = scratch_dir();
    let setup = |mode: &str| {
        bbbctl_in(
            &dir,
            &setup_args(&zone, &stack, &domain, &["--mode", mode, "--yes"]),
        )
    };
    let single = layers("single");
    let scalable = layers("scalable");
    assert!(scalable.len() > single.len(), "{scalable:?} vs {single:?}");

    let o = setup("single");
    assert_code(&o, 0);
    // Single mode runs one server: what comes next does not suggest `scale`.
    assert!(!stdout(&o).contains("bbbctl scale"), "{}", stdout(&o));
    let nested = nested_stacks(&aws, &stack).await;
    assert_eq!(nested.keys().cloned().collect::<Vec<_>>(), {
        let mut s = single.clone();
        s.sort();
        s
    });
    assert!(
        nested.values().all(|s| s == "CREATE_COMPLETE"),
        "{nested:?}"
    );
    let o = bbbctl_in(&dir, &["--output", "json", "admin-login"]);
    assert_code(&o, 0);
    // The single server's data volume is the stack's own (a replacement attaches it), in the
    // zone of the one subnet its group uses; the launch template maps no data volume.
    let servers = stack_resource(&aws, &stack, "BbbServersStack").await;
    let volume = stack_resource(&aws, &servers, "DataVolume").await;
    let volumes = inventory::inventory()
        .remove("ec2:volumes")
        .unwrap_or_default();
    assert!(
        volumes.iter().any(|v| v.ends_with(&volume)),
        "{volume} not in {volumes:?}"
    );

    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let first = group_instances(&aws, &group).await;
    // A change that replaces the server says the data stays, and the volume is the same one.
    let bigger = dir.join("bigger.json");
    std::fs::write(
        &bigger,
        r#"{"Parameters": {"BBBServerInstanceType": "c5.4xlarge"}}"#,
    )
    .unwrap();
    let o = bbbctl_in(
        &dir,
        &[
            "setup",
            "-s",
            &stack,
            "--params",
            &bigger.display().to_string(),
            "--yes",
        ],
    );
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("The new server attaches the data volume of the old one"),
        "{}",
        stdout(&o)
    );
    let servers = stack_resource(&aws, &stack, "BbbServersStack").await;
    assert_eq!(stack_resource(&aws, &servers, "DataVolume").await, volume);
    // Single mode: CloudFormation replaced the server (rolling update).
    let second = group_instances(&aws, &group).await;
    assert!(
        second.len() == 1 && second != first,
        "{first:?} → {second:?}"
    );

    // The switch starts as many servers as BBBServerCount says (2, from a named file), not
    // as many as the single server's group held.
    std::fs::write(
        dir.join("two.json"),
        r#"{"Parameters": {"BBBServerCount": 2}}"#,
    )
    .unwrap();
    let o = bbbctl_in(
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--mode", "scalable", "--yes", "--params", "two.json"],
        ),
    );
    assert_code(&o, 0);
    assert!(
        !stdout(&o).contains("Keeping 1 BBB server(s)"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("switches from single to scalable mode"),
        "{}",
        stdout(&o)
    );
    // The prompt says what happens to the data volume; CloudFormation snapshotted it, and
    // setup names that snapshot.
    for said in [
        "removed: DataVolume (BbbServersStack)",
        "CloudFormation snapshots it, then deletes it",
        "NOT migrated",
    ] {
        assert_stdout_has(&o, said);
    }
    let switched_out = volume_snapshots(&aws, &volume).await.unwrap();
    assert_eq!(switched_out.len(), 1, "{switched_out:?}");
    assert_eq!(switched_out[0].volume, volume);
    assert_stdout_has(
        &o,
        &format!(
            "was deleted after CloudFormation snapshotted it: snapshot {}",
            switched_out[0].id
        ),
    );
    let volumes = inventory::inventory()
        .remove("ec2:volumes")
        .unwrap_or_default();
    assert!(!volumes.iter().any(|v| v.ends_with(&volume)), "{volumes:?}");
    let nested = nested_stacks(&aws, &stack).await;
    assert_eq!(nested.keys().cloned().collect::<Vec<_>>(), {
        let mut s = scalable.clone();
        s.sort();
        s
    });
    let (status, outputs) = root(&aws, &stack).await;
    assert_eq!(status, "UPDATE_COMPLETE");
    assert_eq!(outputs["EnvironmentType"], "scalable");
    // The registrar (which does not run here) ends each scalable server's drain.
    let registrar = common::registrar::Registrar::everywhere();
    assert!(outputs.contains_key("ScaleliteURL"), "{outputs:?}");
    // A mode switch replaces the servers too: the single server is of no use to Scalelite.
    let switched = group_instances(&aws, &outputs["BBBServerGroupName"]).await;
    assert!(
        switched.len() == 2 && switched.iter().all(|i| !second.contains(i)),
        "{second:?} → {switched:?}"
    );

    let now = inventory::created_since(&before);
    for kind in [
        "ecs:clusters",
        "rds:clusters",
        "efs:file_systems",
        "elbv2:load_balancers",
    ] {
        assert!(now.contains_key(kind), "scalable mode has {kind}: {now:#?}");
    }

    // A meeting runs on a scalable server: its agent holds scale-in protection, which would
    // block the group's way down to one server. The switch releases it first, and says so.
    aws.autoscaling
        .set_instance_protection()
        .auto_scaling_group_name(&outputs["BBBServerGroupName"])
        .instance_ids(&switched[0])
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    // Greenlight's uploads: CloudFormation deletes only an empty bucket (AWS leaves a full
    // one behind in the update's clean-up, outside the deployment), so setup empties it.
    let frontend = stack_resource(&aws, &stack, "FrontendStack").await;
    let uploads = stack_resource(&aws, &frontend, "GreenlightStorageBucket").await;
    aws.s3
        .put_object()
        .bucket(&uploads)
        .key("avatars/admin.png")
        .body(b"png".to_vec().into())
        .send()
        .await
        .unwrap();
    // What RDS and ECS made for the clusters the switch deletes (destroy could no longer
    // find them afterwards).
    let database = stack_resource(&aws, &stack, "DatabaseStack").await;
    let cluster = stack_resource(&aws, &database, "DBCluster").await;
    let storage = stack_resource(&aws, &stack, "StorageStack").await;
    let file_system = stack_resource(&aws, &storage, "FileSystem").await;
    let service_logs = [
        format!("/aws/rds/cluster/{cluster}/postgresql"),
        format!("/aws/ecs/containerinsights/{stack}-frontend/performance"),
    ];
    for name in &service_logs {
        put_log_lines(name, "s", &["x"]);
    }
    // A warm pool of prepared scalable servers: emptied before the switch (the group would
    // start the single server from it), then gone with the update.
    assert_code(&bbbctl_in(&dir, &["scale", "-s", &stack, "--warm", "1"]), 0);
    let o = setup("single");
    assert_code(&o, 0);
    assert_stdout_has(&o, "Emptying the warm pool of");
    assert_stdout_has(&o, "start the switch when no meeting runs");
    assert_stdout_has(&o, "Taking the BBB servers out before the switch");
    assert_stdout_has(&o, "0 BBB servers left in the group");
    assert_eq!(
        registrar.let_go().len(),
        2,
        "both servers drained on their way out"
    );
    drop(registrar);
    for name in &service_logs {
        assert_stdout_has(&o, &format!("Deleted log group {name}"));
    }
    assert_stdout_has(
        &o,
        &format!("its uploads bucket {uploads} emptied (1 object version(s) deleted"),
    );
    assert!(!bucket_names(&aws).await.contains(&uploads));
    assert_stdout_has(
        &o,
        "Lifted scale-in protection from 1 server(s) for the switch",
    );
    let nested = nested_stacks(&aws, &stack).await;
    assert_eq!(nested.len(), single.len(), "{nested:?}");
    // The layers that went took their resources with them (the database its final snapshot).
    let now = inventory::created_since(&before);
    for kind in [
        "ecs:clusters",
        "ecs:services",
        "rds:clusters",
        "efs:file_systems",
        "elbv2:load_balancers",
        "elbv2:target_groups",
        "elasticache:cache_clusters",
    ] {
        assert!(
            !now.contains_key(kind),
            "{kind} left after the switch to single: {now:#?}"
        );
    }
    assert!(now.contains_key("rds:cluster_snapshots"), "{now:#?}");
    // The plan never promises data a switch does not carry over; afterwards setup names what
    // is kept: the final snapshot by its id, and the file system's backups.
    let out = stdout(&o);
    assert!(
        !out.contains("attaches the data volume of the old one"),
        "{out}"
    );
    assert_stdout_has(&o, "! Nothing is migrated");
    let snapshot = out
        .split("databases: final snapshot ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no final snapshot named in:\n{out}"));
    assert!(
        now["rds:cluster_snapshots"]
            .iter()
            .any(|id| id.ends_with(&format!(":{snapshot}"))),
        "{snapshot} vs {now:#?}"
    );
    assert_stdout_has(
        &o,
        &format!("of Aurora cluster {cluster}, kept until you delete it"),
    );
    assert_stdout_has(
        &o,
        &format!(
            "the recordings of EFS file system {file_system} in AWS Backup's recovery points: the automatic daily ones in vault aws/efs/automatic-backup-vault"
        ),
    );

    // Back in single mode: a new, empty data volume (the snapshot is not restored).
    let servers = stack_resource(&aws, &stack, "BbbServersStack").await;
    let second_volume = stack_resource(&aws, &servers, "DataVolume").await;
    assert_ne!(second_volume, volume);
    // destroy's confirmation says what happens to it.
    let o = bbbctl_in(&dir, &["destroy", "-s", &stack]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(&format!("The single server's data volume {second_volume}"))
            && stderr(&o).contains("is snapshotted by CloudFormation before it is deleted")
            && stderr(&o).contains(
                "destroy then deletes that snapshot (pass --keep-data-snapshot to keep it)"
            ),
        "{}",
        stderr(&o)
    );

    let o = bbbctl_in(&dir, &["destroy", "--yes"]);
    assert_code(&o, 0);
    // CloudFormation's final snapshot of the data volume is deleted by destroy.
    assert_stdout_has(
        &o,
        "Deleted the final snapshot of the single server's data volume: snap-",
    );
    assert!(
        volume_snapshots(&aws, &second_volume)
            .await
            .unwrap()
            .is_empty()
    );
    // The switch's snapshot is the user's to delete (it is of another volume).
    assert_eq!(volume_snapshots(&aws, &volume).await.unwrap(), switched_out);
    bbbctl::signed::delete_snapshot(&aws, &switched_out[0].id)
        .await
        .unwrap();
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
}

#[tokio::test]
async fn destroy_keeps_the_data_snapshot_when_asked() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("keep"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("keep");
    let dir = scratch_dir();
    let o = bbbctl_in(
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--mode", "single", "--yes", "--no-check"],
        ),
    );
    assert_code(&o, 0);
    let servers = stack_resource(&aws, &stack, "BbbServersStack").await;
    let volume = stack_resource(&aws, &servers, "DataVolume").await;

    let o = bbbctl_in(
        &dir,
        &["destroy", "-s", &stack, "--yes", "--keep-data-snapshot"],
    );
    assert_code(&o, 0);
    let kept = volume_snapshots(&aws, &volume).await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_stdout_has(
        &o,
        &format!(
            "Left on purpose: final snapshot {} of the single server's data volume {volume}",
            kept[0].id
        ),
    );
    assert!(
        !stdout(&o).contains("Deleted the final snapshot"),
        "{}",
        stdout(&o)
    );
    assert_nothing_left(&aws, &stack, &before, &["ec2:snapshots"]).await;
    bbbctl::signed::delete_snapshot(&aws, &kept[0].id)
        .await
        .unwrap();
}

/// A switch to single that fails (here its network stack: a subnet outside the VPC) before
/// the servers' stack is touched leaves the scalable deployment as it was: the servers taken
/// out for the switch start again.
#[tokio::test]
async fn a_failed_switch_to_single_brings_the_servers_back() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("back"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("back");
    let dir = scratch_dir();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), 2, &["--no-check"]);
    assert_code(&o, 0);
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    // The registrar (which does not run here) ends each server's drain.
    let _registrar = common::registrar::Registrar::start(&group);
    // A warm pool: emptied for the switch, set back when it fails.
    assert_code(&bbbctl_in(&dir, &["scale", "-s", &stack, "--warm", "1"]), 0);
    let warm_size = || {
        boto3(
            "autoscaling",
            &format!(
                "c = client.describe_warm_pool(AutoScalingGroupName={group:?})\n\
                 print(c.get('WarmPoolConfiguration', {{}}).get('MinSize'), len(c['Instances']))"
            ),
        )
    };
    assert_eq!(warm_size(), "1 1");

    let fixture = repo().join("tests/fixtures/failing-network");
    let o = bbbctl_in(
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &[
                "--mode",
                "single",
                "--yes",
                "--no-check",
                "--templates-dir",
                fixture.to_str().unwrap(),
            ],
        ),
    );
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_stdout_has(&o, "Taking the BBB servers out before the switch");
    assert!(
        stderr(&o).contains("The switch failed: the 2 BBB server(s) taken out for it start again"),
        "{}",
        stderr(&o)
    );
    assert_stdout_has(&o, "Emptying the warm pool of");
    assert_eq!(warm_size(), "1 1", "the pool set back");
    // The launch hook, taken off for single mode, is back.
    let hooks = boto3(
        "autoscaling",
        &format!(
            "print([h['LifecycleHookName'] for h in client.describe_lifecycle_hooks(AutoScalingGroupName={group:?})['LifecycleHooks']])"
        ),
    );
    assert!(hooks.contains("'bbb-launch'"), "{hooks}");
    let asg = auto_scaling_group(&aws, &group).await;
    assert_eq!(asg.desired_capacity(), Some(2));
    // ... and may hold scale-in protection again (the release tagged the group).
    assert!(
        asg.tags()
            .iter()
            .all(|t| t.key() != Some("bbbctl:protection")),
        "{:?}",
        asg.tags()
    );
    let status = root(&aws, &stack).await.0;
    assert!(status.starts_with("UPDATE_ROLLBACK"), "{status}");

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
}
