//! `bbbctl backup`, `backups` and `restore` on the emulator (moto_ext patches 24-27: Aurora
//! restored from a snapshot through CloudFormation, AWS Backup jobs of EFS, UsePreviousValue
//! of defaulted parameters, RunTask of a Fargate task definition), and the upgrade path of
//! the images and the installer pin.

mod common;
mod support;

use std::collections::BTreeMap;
use std::path::Path;

use bbbctl::aws::Aws;
use common::*;
use serde_json::Value;

fn json_of(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("JSON: {e}\n{}", stdout(o)))
}

/// A new deployment of `mode` (a zone of its own): (stack, domain, zone).
async fn deployment(aws: &Aws, dir: &Path, prefix: &str, mode: &str) -> (String, String, String) {
    let stack = unique(prefix);
    let domain = format!("{stack}.example.org");
    let zone = hosted_zone(aws, &domain).await;
    let o = bbbctl_in(
        dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--mode", mode, "--yes", "--no-check"],
        ),
    );
    assert_code(&o, 0);
    (stack, domain, zone)
}

/// The root stack's current parameters.
async fn parameters(aws: &Aws, stack: &str) -> BTreeMap<String, String> {
    bbbctl::cfn::ops::parameters(&described(aws, stack).await)
}

/// The deployment's Aurora cluster (DatabaseStack's DBCluster).
async fn cluster_of(aws: &Aws, stack: &str) -> String {
    let database = stack_resource(aws, stack, "DatabaseStack").await;
    stack_resource(aws, &database, "DBCluster").await
}

async fn clusters(aws: &Aws) -> Vec<String> {
    aws.rds
        .describe_db_clusters()
        .send()
        .await
        .unwrap()
        .db_clusters()
        .iter()
        .filter_map(|c| c.db_cluster_identifier().map(str::to_string))
        .collect()
}

/// The deployment id of each ECS service of the front end (changes with a forced deployment).
fn service_deployments(cluster: &str) -> BTreeMap<String, String> {
    let out = boto3(
        "ecs",
        &format!(
            "arns = client.list_services(cluster={cluster:?})['serviceArns']\n\
             d = client.describe_services(cluster={cluster:?}, services=arns)['services']\n\
             print(json.dumps({{s['serviceName']: s['deployments'][0]['id'] for s in d}}))"
        ),
    );
    serde_json::from_str(&out).unwrap()
}

fn copies<'a>(listed: &'a Value, holds: &str, origin: &str) -> Vec<&'a Value> {
    listed["copies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["holds"] == holds && c["origin"] == origin)
        .collect()
}

#[tokio::test]
async fn a_backup_is_listed_restored_and_outlives_the_deployment() {
    let aws = account().await;
    let dir = scratch_dir();
    let (stack, _, _) = deployment(&aws, &dir, "bk", "scalable").await;
    let run = |args: &[&str]| bbbctl_in(&dir, args);

    // Before any backup: Aurora's automated backup and point-in-time window, nothing else.
    let o = run(&["--output", "json", "backups", "-s", &stack]);
    assert_code(&o, 0);
    let listed = json_of(&o);
    assert_eq!(listed["exists"], true);
    assert_eq!(
        copies(&listed, "database", "automatic").len(),
        1,
        "{listed}"
    );
    assert_eq!(copies(&listed, "database", "point-in-time").len(), 1);
    assert!(copies(&listed, "database", "on-demand").is_empty());

    let o = run(&[
        "--output",
        "json",
        "backup",
        "-s",
        &stack,
        "--keep-days",
        "10",
    ]);
    assert_code(&o, 0);
    let taken = json_of(&o);
    let snapshot = copies(&taken, "database", "on-demand")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let point = copies(&taken, "recordings", "on-demand")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The snapshot is RDS's, tagged for the deployment; the recovery point AWS Backup's, in
    // the deployment's own vault, kept --keep-days.
    let s = aws
        .rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = s.db_cluster_snapshots()[0]
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
        .collect();
    assert!(
        tags.contains(&("bbbctl:deployment".into(), stack.clone())),
        "{tags:?}"
    );
    let vault = format!("bbbctl-{stack}");
    let days = boto3(
        "backup",
        &format!(
            "p = client.describe_recovery_point(BackupVaultName={vault:?}, RecoveryPointArn={point:?})\n\
             print((p['CalculatedLifecycle']['DeleteAt'] - p['CreationDate']).days, p['Status'])"
        ),
    );
    assert_eq!(days, "10 COMPLETED");

    // Another right away (the same second, most likely): its own snapshot, the same vault.
    let o = run(&["--output", "json", "backup", "-s", &stack, "--no-wait"]);
    assert_code(&o, 0);
    let again = json_of(&o);
    let second = copies(&again, "database", "on-demand")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, snapshot);
    assert_eq!(again["waited"], false);
    let second_point = copies(&again, "recordings", "on-demand")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let o = run(&["--output", "json", "backups", "-s", &stack]);
    assert_code(&o, 0);
    let listed = json_of(&o);
    let db = copies(&listed, "database", "on-demand");
    assert_eq!(db.len(), 2, "{listed}");
    aws.rds
        .delete_db_cluster_snapshot()
        .db_cluster_snapshot_identifier(&second)
        .send()
        .await
        .unwrap();
    boto3(
        "backup",
        &format!(
            "client.delete_recovery_point(BackupVaultName={vault:?}, RecoveryPointArn={second_point:?})"
        ),
    );
    let o = run(&["--output", "json", "backups", "-s", &stack]);
    assert_code(&o, 0);
    let listed = json_of(&o);
    let db = copies(&listed, "database", "on-demand");
    assert_eq!(db.len(), 1, "{listed}");
    assert_eq!(db[0]["id"], snapshot.as_str());
    assert_eq!(db[0]["until_deleted"], true);
    let rec = copies(&listed, "recordings", "on-demand");
    assert_eq!(rec.len(), 1, "{listed}");
    assert_eq!(rec[0]["id"], point.as_str());
    assert_eq!(
        rec[0]["expires"].as_i64().unwrap() - rec[0]["created"].as_i64().unwrap(),
        10 * 86_400
    );
    let o = run(&["backups", "-s", &stack]);
    assert_stdout_has(&o, &snapshot);
    assert_stdout_has(&o, "until deleted");

    // A restore replaces the database: without --yes (no terminal) nothing changes.
    let before = cluster_of(&aws, &stack).await;
    let o = run(&["restore", "-s", &stack, "--from", &snapshot]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("pass --yes"), "{}", stderr(&o));
    assert_stdout_has(&o, "everything written since");
    assert_eq!(parameters(&aws, &stack).await["BBBDatabaseSnapshot"], "");
    assert_eq!(cluster_of(&aws, &stack).await, before);

    let services_before = service_deployments(&format!("{stack}-frontend"));
    let o = run(&[
        "--output", "json", "restore", "-s", &stack, "--from", &snapshot, "--yes",
    ]);
    assert_code(&o, 0);
    let restored = json_of(&o);
    // CloudFormation made a new cluster from the snapshot (the parameter changed) and
    // deleted the old one after snapshotting it; the services were restarted.
    assert_eq!(
        parameters(&aws, &stack).await["BBBDatabaseSnapshot"],
        snapshot
    );
    let after = cluster_of(&aws, &stack).await;
    assert_ne!(after, before);
    assert_eq!(restored["cluster"], after.as_str());
    let now = clusters(&aws).await;
    assert!(
        now.contains(&after) && !now.contains(&before),
        "{before} → {after}: {now:?}"
    );
    let kept = restored["replaced_cluster_snapshots"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{restored}");
    let kept = kept[0].as_str().unwrap().to_string();
    let of_old = aws
        .rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(&kept)
        .send()
        .await
        .unwrap();
    assert_eq!(
        of_old.db_cluster_snapshots()[0].db_cluster_identifier(),
        Some(before.as_str())
    );
    let services_after = service_deployments(&format!("{stack}-frontend"));
    assert_eq!(services_after.len(), 4, "{services_after:?}");
    for (name, id) in &services_after {
        assert_ne!(
            services_before.get(name),
            Some(id),
            "{name} was not restarted"
        );
    }

    // setup keeps the restored-from parameter (no new cluster), and refuses to change it.
    let o = run(&["setup", "-s", &stack, "--yes", "--no-check"]);
    assert_code(&o, 0);
    assert_eq!(cluster_of(&aws, &stack).await, after);
    let emptied = dir.join("emptied.json");
    std::fs::write(&emptied, r#"{"Parameters": {"BBBDatabaseSnapshot": ""}}"#).unwrap();
    let o = run(&[
        "setup",
        "-s",
        &stack,
        "--params",
        &emptied.display().to_string(),
        "--yes",
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("BBBDatabaseSnapshot is written by `bbbctl restore`"),
        "{}",
        stderr(&o)
    );
    assert_eq!(cluster_of(&aws, &stack).await, after);

    // The recordings: AWS Backup restores into the same file system, then the deployment's
    // copy-back task runs once and ends with exit code 0.
    let o = run(&[
        "--output", "json", "restore", "-s", &stack, "--from", &point, "--yes",
    ]);
    assert_code(&o, 0);
    let recordings = json_of(&o);
    assert_eq!(recordings["restored"], "recordings");
    let job = recordings["restore_job"].as_str().unwrap();
    let restore = boto3(
        "backup",
        &format!(
            "j = client.describe_restore_job(RestoreJobId={job:?})\nprint(j['Status'], j['CreatedResourceArn'].split('/')[-1])"
        ),
    );
    let storage = stack_resource(&aws, &stack, "StorageStack").await;
    let fs = stack_resource(&aws, &storage, "FileSystem").await;
    assert_eq!(restore, format!("COMPLETED {fs}"));
    let task = recordings["copy_back_task"].as_str().unwrap();
    let ran = boto3(
        "ecs",
        &format!(
            "t = client.describe_tasks(cluster='{stack}-frontend', tasks=[{task:?}])['tasks'][0]\n\
             print(t['taskDefinitionArn'].split('/')[-1].split(':')[0], t['startedBy'], t['lastStatus'])"
        ),
    );
    assert_eq!(
        ran,
        format!("{stack}-recordings-restore bbbctl-restore STOPPED")
    );

    // Destroyed, the deployment's copies are still found by its name.
    let o = run(&["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    let o = run(&["--output", "json", "backups", "-s", &stack]);
    assert_code(&o, 0);
    let gone = json_of(&o);
    assert_eq!(gone["exists"], false);
    let ids: Vec<&str> = gone["copies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(ids.contains(&snapshot.as_str()), "{gone}");
    assert!(ids.contains(&kept.as_str()), "{gone}");
    assert!(ids.contains(&point.as_str()), "{gone}");
    let finals = copies(&gone, "database", "snapshot");
    assert!(
        finals.iter().any(|c| c["source"] == after.as_str()),
        "destroy's final snapshot of {after}: {gone}"
    );
    assert!(
        stderr(&o).contains("does not exist (any more)"),
        "{}",
        stderr(&o)
    );

    // Leave no recovery point and vault behind for the other tests' inventories.
    boto3(
        "backup",
        &format!(
            "client.delete_recovery_point(BackupVaultName={vault:?}, RecoveryPointArn={point:?})\n\
             client.delete_backup_vault(BackupVaultName={vault:?})"
        ),
    );
}

/// A cluster snapshot of a cluster outside the deployment, tagged `tags`.
async fn foreign_snapshot(aws: &Aws, version: &str, tags: &[(&str, &str)]) -> String {
    let cluster = unique("foreign");
    aws.rds
        .create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .engine_version(version)
        .master_username("master")
        .master_user_password("password1234")
        .send()
        .await
        .unwrap();
    let id = format!("{cluster}-snap");
    let mut req = aws
        .rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier(&cluster)
        .db_cluster_snapshot_identifier(&id);
    for (k, v) in tags {
        req = req.tags(aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build());
    }
    req.send().await.unwrap();
    aws.rds
        .delete_db_cluster()
        .db_cluster_identifier(&cluster)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_restore_from_a_wrong_copy_exits_2_and_changes_nothing() {
    let aws = account().await;
    let dir = scratch_dir();
    let (stack, _, _) = deployment(&aws, &dir, "bad", "scalable").await;
    let cluster = cluster_of(&aws, &stack).await;
    let params = parameters(&aws, &stack).await;
    let other = foreign_snapshot(&aws, "16.8", &[("bbbctl:deployment", "elsewhere")]).await;
    let older_major = foreign_snapshot(&aws, "15.10", &[("bbbctl:deployment", &stack)]).await;
    let newer_minor = foreign_snapshot(&aws, "16.9", &[("bbbctl:deployment", &stack)]).await;
    let unknown_point =
        "arn:aws:backup:us-east-1:123456789012:recovery-point:0000AAAA-1111-2222-3333-444455556666";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["restore", "-s", &stack, "--from", "not a snapshot"],
            "is not a copy bbbctl knows",
        ),
        (
            vec![
                "restore",
                "-s",
                &stack,
                "--from",
                "bbbctl-nowhere-1",
                "--yes",
            ],
            "no Aurora cluster snapshot bbbctl-nowhere-1 in account",
        ),
        (
            vec!["restore", "-s", &stack, "--from", &other, "--yes"],
            "belongs to deployment elsewhere",
        ),
        (
            vec![
                "restore",
                "-s",
                &stack,
                "--from",
                &older_major,
                "--yes",
                "--force",
            ],
            "a restore keeps the major version",
        ),
        (
            vec!["restore", "-s", &stack, "--from", &newer_minor, "--yes"],
            "cannot go back a version",
        ),
        (
            vec!["restore", "-s", &stack, "--from", unknown_point, "--yes"],
            "no recovery point",
        ),
        (
            vec![
                "restore",
                "-s",
                &stack,
                "--from",
                "snap-0123456789abcdef0",
                "--yes",
            ],
            "runs scalable mode",
        ),
        (
            vec!["backup", "-s", &stack, "--keep-days", "0"],
            "--keep-days 0 is out of range",
        ),
        (
            vec![
                "restore",
                "-s",
                "nosuchdeployment",
                "--from",
                &other,
                "--yes",
            ],
            "no deployment nosuchdeployment",
        ),
    ];
    for (args, says) in cases {
        let o = bbbctl_in(&dir, &args);
        assert_code(&o, 2);
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(parameters(&aws, &stack).await, params);
    assert_eq!(cluster_of(&aws, &stack).await, cluster);
    assert!(
        boto3(
            "backup",
            &format!(
                "try:\n    client.describe_backup_vault(BackupVaultName='bbbctl-{stack}')\n    print('exists')\nexcept client.exceptions.ResourceNotFoundException:\n    print('none')"
            )
        ) == "none",
        "a refused command created the vault"
    );

    // --force takes another deployment's snapshot (e.g. a destroyed one's final snapshot).
    let o = bbbctl_in(
        &dir,
        &[
            "restore", "-s", &stack, "--from", &other, "--yes", "--force",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(parameters(&aws, &stack).await["BBBDatabaseSnapshot"], other);
    assert_ne!(cluster_of(&aws, &stack).await, cluster);

    // A switch to single mode drops the database, and the snapshot it came from with it: a
    // switch back starts empty, as a new deployment does.
    let o = bbbctl_in(
        &dir,
        &[
            "setup",
            "-s",
            &stack,
            "--mode",
            "single",
            "--yes",
            "--no-check",
        ],
    );
    assert_code(&o, 0);
    assert_stdout_has(&o, &format!("BBBDatabaseSnapshot  {other} → (empty)"));
    assert_eq!(parameters(&aws, &stack).await["BBBDatabaseSnapshot"], "");
}

#[tokio::test]
async fn single_mode_snapshots_its_data_volume_and_gives_the_restore_steps() {
    let aws = account().await;
    let dir = scratch_dir();
    let (stack, _, _) = deployment(&aws, &dir, "one", "single").await;
    let servers = stack_resource(&aws, &stack, "BbbServersStack").await;
    let volume = stack_resource(&aws, &servers, "DataVolume").await;
    let o = bbbctl_in(&dir, &["--output", "json", "backup", "-s", &stack]);
    assert_code(&o, 0);
    let taken = json_of(&o);
    let copy = &copies(&taken, "data-volume", "on-demand")[0];
    let snapshot = copy["id"].as_str().unwrap().to_string();
    assert_eq!(copy["source"], volume.as_str());
    let found = bbbctl::signed::snapshot(&aws, &snapshot)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.volume, volume);
    assert_eq!(found.state, "completed");
    assert_eq!(
        found.tags.get("bbbctl:deployment").map(String::as_str),
        Some(stack.as_str())
    );

    let o = bbbctl_in(&dir, &["--output", "json", "backups", "-s", &stack]);
    assert_code(&o, 0);
    let listed = json_of(&o);
    let ids: Vec<&Value> = copies(&listed, "data-volume", "on-demand");
    assert_eq!(ids.len(), 1, "{listed}");
    assert_eq!(ids[0]["id"], snapshot.as_str());

    // The restore itself is the documented procedure: the steps, for this deployment.
    let o = bbbctl_in(
        &dir,
        &["restore", "-s", &stack, "--from", &snapshot, "--yes"],
    );
    assert_code(&o, 2);
    for said in [
        "not a bbbctl command",
        &format!("aws ec2 create-volume --snapshot-id {snapshot}"),
        "rsync -aHAX --delete /mnt/restore/ /var/bigbluebutton/",
    ] {
        assert!(stderr(&o).contains(said), "{said}: {}", stderr(&o));
    }
    // A snapshot of another volume is refused without --force.
    let elsewhere = aws_volume_snapshot(&aws).await;
    let o = bbbctl_in(
        &dir,
        &["restore", "-s", &stack, "--from", &elsewhere, "--yes"],
    );
    assert_code(&o, 2);
    assert!(stderr(&o).contains("pass --force"), "{}", stderr(&o));
    for id in [snapshot, elsewhere] {
        bbbctl::signed::delete_snapshot(&aws, &id).await.unwrap();
    }
}

/// A snapshot of a volume that is no deployment's.
async fn aws_volume_snapshot(aws: &Aws) -> String {
    let out = boto3(
        "ec2",
        "v = client.create_volume(AvailabilityZone='us-east-1a', Size=1)['VolumeId']\n\
         s = client.create_snapshot(VolumeId=v)['SnapshotId']\n\
         client.delete_volume(VolumeId=v)\nprint(s)",
    );
    let _ = aws;
    out
}

/// The image of each container of the front end's task definitions now in use by its services.
fn service_images(cluster: &str) -> Vec<String> {
    let out = boto3(
        "ecs",
        &format!(
            "arns = client.list_services(cluster={cluster:?})['serviceArns']\n\
             images = set()\n\
             for s in client.describe_services(cluster={cluster:?}, services=arns)['services']:\n\
             \x20   td = client.describe_task_definition(taskDefinition=s['taskDefinition'])['taskDefinition']\n\
             \x20   images.update(c['image'].split('/')[-1] for c in td['containerDefinitions'])\n\
             print(json.dumps(sorted(images)))"
        ),
    );
    serde_json::from_str(&out).unwrap()
}

#[tokio::test]
async fn image_upgrades_change_only_the_front_end_and_go_back() {
    let aws = account().await;
    let dir = scratch_dir();
    let (stack, _, _) = deployment(&aws, &dir, "up", "scalable").await;
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let servers = group_instances(&aws, &group).await;
    let cluster = cluster_of(&aws, &stack).await;
    let frontend = format!("{stack}-frontend");
    let old = service_images(&frontend);
    assert!(old.contains(&"greenlight:v3.8.2.4".to_string()), "{old:?}");
    let tags = dir.join("tags.json");
    std::fs::write(
        &tags,
        r#"{"Parameters": {"BBBGreenlightImageTag": "v3.8.3", "BBBScaleliteImageTag": "v1.8.6"}}"#,
    )
    .unwrap();
    let tags = tags.display().to_string();

    // The plan: the front end's stack, nothing else.
    let o = bbbctl_in(
        &dir,
        &["setup", "-s", &stack, "--params", &tags, "--dry-run"],
    );
    assert_code(&o, 0);
    assert_stdout_has(&o, "~ FrontendStack (AWS::CloudFormation::Stack)");
    assert_stdout_has(&o, "Plan: 0 to add, 1 to modify (0 replaced");
    for other in [
        "DatabaseStack",
        "StorageStack",
        "BbbServersStack",
        "CacheStack",
    ] {
        assert!(!stdout(&o).contains(other), "{other}: {}", stdout(&o));
    }

    let o = bbbctl_in(
        &dir,
        &[
            "setup",
            "-s",
            &stack,
            "--params",
            &tags,
            "--yes",
            "--no-check",
        ],
    );
    assert_code(&o, 0);
    let new = service_images(&frontend);
    assert!(new.contains(&"greenlight:v3.8.3".to_string()), "{new:?}");
    assert!(new.contains(&"scalelite:v1.8.6-api".to_string()), "{new:?}");
    assert!(
        !new.iter()
            .any(|i| i.contains("v3.8.2.4") || i.contains("v1.8.5")),
        "{new:?}"
    );
    assert_eq!(group_instances(&aws, &group).await, servers);
    assert_eq!(cluster_of(&aws, &stack).await, cluster);

    // Back: the previous tags, the same way.
    let back = dir.join("back.json");
    std::fs::write(
        &back,
        r#"{"Parameters": {"BBBGreenlightImageTag": "v3.8.2.4", "BBBScaleliteImageTag": "v1.8.5"}}"#,
    )
    .unwrap();
    let o = bbbctl_in(
        &dir,
        &[
            "setup",
            "-s",
            &stack,
            "--params",
            &back.display().to_string(),
            "--yes",
            "--no-check",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(service_images(&frontend), old);
    assert_eq!(group_instances(&aws, &group).await, servers);
}

#[tokio::test]
async fn a_new_installer_pin_leaves_the_running_servers_to_roll() {
    let aws = account().await;
    let dir = scratch_dir();
    let (stack, _, _) = deployment(&aws, &dir, "pin", "scalable").await;
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let servers = group_instances(&aws, &group).await;
    let cluster = cluster_of(&aws, &stack).await;
    // A templates folder whose bootstrap script pins another bbb-install commit.
    let templates = dir.join("templates");
    std::fs::create_dir_all(templates.join("scripts")).unwrap();
    let script =
        std::fs::read_to_string(repo().join("templates/scripts/bbb-bootstrap.sh")).unwrap();
    let pinned = script.replace(
        "readonly BBB_INSTALL_COMMIT=\"26ce2d16c2a82ef962d685525b0c20bb89d4d151\"",
        "readonly BBB_INSTALL_COMMIT=\"0000000000000000000000000000000000000001\"",
    );
    assert_ne!(pinned, script, "the pin moved: update this test");
    std::fs::write(templates.join("scripts/bbb-bootstrap.sh"), pinned).unwrap();
    let folder = templates.display().to_string();

    let o = bbbctl_in(
        &dir,
        &[
            "setup",
            "-s",
            &stack,
            "--templates-dir",
            &folder,
            "--dry-run",
        ],
    );
    assert_code(&o, 0);
    assert_stdout_has(&o, "~ BbbServersStack (AWS::CloudFormation::Stack)");
    // The plan says the servers change although no parameter of the operator's does (their
    // script is in their user data), and what that does to the running ones.
    assert_stdout_has(
        &o,
        "the servers' scripts (in their user data): scripts/bbb-bootstrap.sh",
    );
    assert_stdout_has(&o, "running servers keep theirs (no meeting is cut)");
    for other in ["DatabaseStack", "StorageStack", "FrontendStack"] {
        assert!(!stdout(&o).contains(other), "{other}: {}", stdout(&o));
    }
    let o = bbbctl_in(
        &dir,
        &[
            "setup",
            "-s",
            &stack,
            "--templates-dir",
            &folder,
            "--yes",
            "--no-check",
        ],
    );
    assert_code(&o, 0);
    // No meeting is cut: the running servers stay; `roll` replaces them (its own tests).
    assert_eq!(group_instances(&aws, &group).await, servers);
    assert_eq!(cluster_of(&aws, &stack).await, cluster);
    let o = bbbctl_in(&dir, &["status", "-s", &stack]);
    assert_code(&o, 0);
    assert_stdout_has(&o, &format!("`bbbctl roll -s {stack}` replaces them"));
}

/// The copy-back script of the RecordingsRestoreTask, with the file system's mount point
/// moved to `root`.
fn copy_back_script(root: &Path) -> String {
    let path = repo().join("templates/frontend.yaml");
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let container =
        &doc["Resources"]["RecordingsRestoreTask"]["Properties"]["ContainerDefinitions"][0];
    assert_eq!(
        container["MountPoints"][0]["ContainerPath"],
        "/mnt/recordings"
    );
    container["Command"][0]
        .as_str()
        .unwrap()
        .replace("/mnt/recordings", &root.display().to_string())
}

/// Runs the script as the task does: BusyBox's sh and applets (the image is Alpine), with
/// nothing else on PATH. (GNU cp behaves otherwise: `cp -n` into an existing directory
/// recurses there, BusyBox's skips it whole.)
fn run_copy_back(root: &Path, env: &[(&str, &str)]) -> std::process::Output {
    support::ensure_packages(&["busybox"]);
    let bin = tempfile::tempdir().unwrap();
    let install = std::process::Command::new("busybox")
        .arg("--install")
        .arg("-s")
        .arg(bin.path())
        .output()
        .unwrap();
    assert!(install.status.success(), "{install:?}");
    // chown is faked (the test need not run as root): it records what it was asked.
    let chown = bin.path().join("chown");
    std::fs::remove_file(&chown).unwrap();
    std::fs::write(
        &chown,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\n",
            root.join("chown.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&chown, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::process::Command::new(bin.path().join("sh"))
        .arg("-c")
        .arg(copy_back_script(root))
        .env_clear()
        .env("PATH", bin.path())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn the_copy_back_task_brings_back_what_is_missing_and_keeps_what_exists() {
    let fs = tempfile::tempdir().unwrap();
    let root = fs.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let restored = "aws-backup-restore_2026-01-31T12-00-00-000Z/var/bigbluebutton";
    write(
        &format!("{restored}/published/presentation/gone/index.json"),
        "from the backup",
    );
    write(
        &format!("{restored}/published/presentation/kept/index.json"),
        "old",
    );
    write(
        &format!("{restored}/unpublished/presentation/hidden/index.json"),
        "from the backup",
    );
    write(&format!("{restored}/spool/raw.tar"), "already imported");
    write(
        "var/bigbluebutton/published/presentation/kept/index.json",
        "newer",
    );
    write(
        "var/bigbluebutton/published/presentation/new/index.json",
        "made since",
    );

    let o = run_copy_back(root, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 copied back, 1 already there (kept)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).ok();
    let published = "var/bigbluebutton/published/presentation";
    assert_eq!(
        read(&format!("{published}/gone/index.json")).as_deref(),
        Some("from the backup")
    );
    assert_eq!(
        read(&format!("{published}/kept/index.json")).as_deref(),
        Some("newer")
    );
    assert_eq!(
        read(&format!("{published}/new/index.json")).as_deref(),
        Some("made since")
    );
    assert_eq!(
        read("var/bigbluebutton/unpublished/presentation/hidden/index.json").as_deref(),
        Some("from the backup")
    );
    assert_eq!(
        read("var/bigbluebutton/spool/raw.tar"),
        None,
        "the spool is not copied back"
    );
    assert!(
        !root
            .join("aws-backup-restore_2026-01-31T12-00-00-000Z")
            .exists(),
        "the restore directory is removed"
    );
    // A directory the copy makes is Scalelite's, as the access points make theirs (uid 1000,
    // gid 2000, 0775): a root-owned one would stop the importer (it writes as 1000:2000).
    let made = root.join("var/bigbluebutton/unpublished");
    let log = std::fs::read_to_string(root.join("chown.log")).unwrap_or_default();
    for dir in [made.clone(), made.join("presentation")] {
        assert!(
            log.lines()
                .any(|l| l == format!("1000:2000 {}", dir.display())),
            "{} not given to Scalelite: {log}",
            dir.display()
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&dir).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o775, "{}", dir.display());
    }
    assert!(
        log.lines()
            .all(|l| !l.ends_with("var/bigbluebutton/published/presentation")),
        "an existing directory keeps its owner: {log}"
    );

    // Two restore directories: it refuses and names them, unless RESTORE_DIR picks one.
    write(
        "aws-backup-restore_a/var/bigbluebutton/published/presentation/x/index.json",
        "a",
    );
    write(
        "aws-backup-restore_b/var/bigbluebutton/published/presentation/y/index.json",
        "b",
    );
    let o = run_copy_back(root, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("aws-backup-restore_a aws-backup-restore_b"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run_copy_back(root, &[("RESTORE_DIR", "aws-backup-restore_b")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        read("var/bigbluebutton/published/presentation/y/index.json").as_deref(),
        Some("b")
    );
    assert!(root.join("aws-backup-restore_a").exists());
    let o = run_copy_back(root, &[("RESTORE_DIR", "../etc")]);
    assert_eq!(o.status.code(), Some(2));
}

/// An upgrade from the release whose servers ran their own Scalelite agent (its root stack
/// has `BbbScaleliteScriptKey`): the plan says those servers report nothing to the registrar
/// and asks for `roll` soon; the running servers stay as they are until then.
#[tokio::test]
async fn an_upgrade_from_the_servers_own_agent_asks_for_a_roll() {
    let aws = account().await;
    let dir = scratch_dir();
    let stack = unique("agent");
    let domain = format!("{stack}.example.org");
    let zone = hosted_zone(&aws, &domain).await;
    // The earlier release, as far as this plan can tell it: its root parameter of the agent
    // script, and other server scripts.
    let templates = dir.join("earlier");
    std::fs::create_dir_all(templates.join("scripts")).unwrap();
    let root = std::fs::read_to_string(repo().join("templates/root.yaml")).unwrap();
    let earlier = root.replacen(
        "\n  BbbAgentScriptKey:\n",
        "\n  BbbScaleliteScriptKey:\n    Description: The earlier release's agent script.\n    Type: String\n    Default: \"\"\n  BbbAgentScriptKey:\n",
        1,
    );
    assert_ne!(earlier, root, "root.yaml moved: update this test");
    std::fs::write(templates.join("root.yaml"), earlier).unwrap();
    let script =
        std::fs::read_to_string(repo().join("templates/scripts/bbb-bootstrap.sh")).unwrap();
    std::fs::write(
        templates.join("scripts/bbb-bootstrap.sh"),
        format!("{script}# an earlier release\n"),
    )
    .unwrap();
    let folder = templates.display().to_string();
    let o = bbbctl_in(
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--templates-dir", &folder, "--yes", "--no-check"],
        ),
    );
    assert_code(&o, 0);
    assert!(
        parameters(&aws, &stack)
            .await
            .contains_key("BbbScaleliteScriptKey")
    );

    let o = bbbctl_in(&dir, &["setup", "-s", &stack, "--dry-run"]);
    assert_code(&o, 0);
    assert_stdout_has(&o, "running servers keep theirs (no meeting is cut)");
    assert_stdout_has(
        &o,
        &format!(
            "they report nothing to the registrar, which can serve them only while Scalelite knows them. Run `bbbctl roll -s {stack}` soon"
        ),
    );
    // The release of this plan does not say it of its own servers.
    let o = bbbctl_in(&dir, &["setup", "-s", &stack, "--yes", "--no-check"]);
    assert_code(&o, 0);
    assert!(
        !parameters(&aws, &stack)
            .await
            .contains_key("BbbScaleliteScriptKey")
    );
    let o = bbbctl_in(
        &dir,
        &[
            "setup",
            "-s",
            &stack,
            "--templates-dir",
            &folder,
            "--dry-run",
        ],
    );
    assert_code(&o, 0);
    assert!(
        !stdout(&o).contains("report nothing to the registrar"),
        "{}",
        stdout(&o)
    );
}
