//! `bbbctl backup`, `backups` and `restore`: copies of a deployment's data now, every copy
//! there is (also once the stacks are gone), and a restore from one. The copies and the
//! steps beside CloudFormation are the engine's (`crate::backup`); here: which deployment,
//! what the user confirms, the root stack's update with progress, and what is printed.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::types::Stack;
use serde_json::json;

use super::connect;
use super::stacks::{Deployment, TAG, ensure_ours, nested_resource, server_group, stack_resources};
use crate::aws::Aws;
use crate::backup::{
    self as engine, Copy, From, Holdings, Holds, Origin, P_DB_ENGINE_VERSION, P_DB_SNAPSHOT,
};
use crate::cfn::ops::{describe_stack, outputs, parameters, status};
use crate::error::usage;
use crate::settings::{Global, P_MODE};
use crate::signed::{self, OneOffTask};
use crate::ui::Printer;

/// Outputs and parameters of the nested stacks bbbctl reads here.
const O_BACKUP_ROLE: &str = "BackupRoleArn";
const O_FILE_SYSTEM_ARN: &str = "FileSystemArn";
const O_FILE_SYSTEM_ID: &str = "FileSystemId";
const O_DB_SECRET: &str = "SecretArn";
const O_RESTORE_TASK: &str = "RecordingsRestoreTaskArn";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A deployment as its copies need it: the root stack (`None` once it is gone) and its nested
/// stacks by logical id.
struct Found {
    root: Option<Stack>,
    nested: BTreeMap<String, Stack>,
    holdings: Holdings,
}

impl Found {
    async fn read(aws: &Aws, stack: &str) -> Result<Self> {
        let mut holdings = Holdings {
            stack: stack.to_string(),
            ..Holdings::default()
        };
        let Some(root) = describe_stack(&aws.cfn, stack).await? else {
            return Ok(Found {
                root: None,
                nested: BTreeMap::new(),
                holdings,
            });
        };
        ensure_ours(aws, &root, stack).await?;
        let mut nested = BTreeMap::new();
        for r in stack_resources(aws, root.stack_id().unwrap_or(stack)).await? {
            if r.resource_type() != Some("AWS::CloudFormation::Stack")
                || r.resource_status()
                    .is_some_and(|s| s.as_str() == "DELETE_COMPLETE")
            {
                continue;
            }
            let (Some(logical), Some(id)) = (r.logical_resource_id(), r.physical_resource_id())
            else {
                continue;
            };
            if let Some(child) = describe_stack(&aws.cfn, id).await? {
                nested.insert(logical.to_string(), child);
            }
        }
        holdings.cluster = nested_resource(aws, &root, "DatabaseStack", "DBCluster").await?;
        holdings.file_system_arn = nested
            .get("StorageStack")
            .and_then(|s| outputs(s).remove(O_FILE_SYSTEM_ARN));
        holdings.data_volume = nested_resource(aws, &root, "BbbServersStack", "DataVolume").await?;
        Ok(Found {
            root: Some(root),
            nested,
            holdings,
        })
    }

    fn mode(&self) -> String {
        self.root
            .as_ref()
            .and_then(|r| parameters(r).remove(P_MODE))
            .unwrap_or_default()
    }

    fn nested_output(&self, stack: &str, key: &str) -> Option<String> {
        self.nested.get(stack).and_then(|s| outputs(s).remove(key))
    }

    fn nested_parameter(&self, stack: &str, key: &str) -> Option<String> {
        self.nested
            .get(stack)
            .and_then(|s| parameters(s).remove(key))
    }
}

/// The message for a deployment whose templates lack what a command needs.
fn set_up_again(stack: &str, lacks: &str) -> anyhow::Error {
    usage(format!(
        "deployment {stack} was set up by an older bbbctl: its stacks have no {lacks}. Run `bbbctl setup -s {stack}` first (it changes nothing else), then try again"
    ))
}

pub async fn backup(
    g: &Global,
    p: &Printer,
    args: &crate::cli::BackupArgs,
    stack: &str,
) -> Result<()> {
    if !(1..=36_500).contains(&args.keep_days) {
        return Err(usage(format!(
            "--keep-days {} is out of range: AWS Backup keeps a recovery point 1 to 36500 days (e.g. --keep-days 35)",
            args.keep_days
        )));
    }
    let aws = connect(g, p, stack).await?;
    Deployment::find(&aws, stack).await?;
    let found = Found::read(&aws, stack).await?;
    let timeout = Duration::from_secs(args.timeout);
    let report = |line: String| p.info(line);
    let started = now();
    let mut copies: Vec<Copy> = Vec::new();
    if found.mode() == "single" {
        let Some(volume) = found.holdings.data_volume.clone() else {
            return Err(usage(format!(
                "deployment {stack} runs single mode in an existing VPC (BBBExistingVPC): its data is on the server's own volume, which the stacks do not hold. \
                 Snapshot it by hand: `aws ec2 create-snapshot --volume-id <the server's /dev/sdf volume>` (README: Backup, restore and upgrades)"
            )));
        };
        p.info(format!(
            "Backing up deployment {stack}: an EBS snapshot of the data volume {volume} (Greenlight's users and rooms, recordings, the certificate)…"
        ));
        let mut snap = engine::snapshot_volume(&aws, stack, &volume).await?;
        p.info(format!("  data volume snapshot {} started", snap.id));
        if !args.no_wait {
            snap = engine::wait_volume_snapshot(&aws, &snap.id, timeout, &report).await?;
        }
        copies.push(Copy {
            holds: Holds::DataVolume,
            origin: Origin::OnDemand,
            id: snap.id.clone(),
            source: volume,
            created: Some(started),
            expires: None,
            until_deleted: true,
            size_bytes: snap.size_gib.map(|g| g << 30),
            status: snap.state.clone(),
            note: String::new(),
        });
    } else {
        let cluster = found
            .holdings
            .cluster
            .clone()
            .with_context(|| format!("deployment {stack} has no Aurora cluster (its database stack is missing): run `bbbctl setup -s {stack}`"))?;
        let fs =
            found.holdings.file_system_arn.clone().ok_or_else(|| {
                set_up_again(stack, "recordings file system output (FileSystemArn)")
            })?;
        let role = found
            .nested_output("StorageStack", O_BACKUP_ROLE)
            .ok_or_else(|| {
                set_up_again(stack, "AWS Backup role (StorageStack output BackupRoleArn)")
            })?;
        p.info(format!(
            "Backing up deployment {stack}: a snapshot of Aurora cluster {cluster} (Greenlight's and Scalelite's databases), \
             and an AWS Backup job of the recordings file system into vault {} (kept {} days)…",
            engine::vault_name(stack),
            args.keep_days
        ));
        let snapshot = engine::snapshot_cluster(&aws, stack, &cluster, started).await?;
        p.info(format!("  database snapshot {snapshot} started"));
        // One job per backup: a retried request (the same snapshot) is the same job.
        let token = snapshot.clone();
        let (job, point) =
            engine::back_up_recordings(&aws, stack, &fs, &role, args.keep_days, &token).await?;
        p.info(format!(
            "  recordings backup job {job} started: recovery point {point}"
        ));
        let mut db_status = "creating".to_string();
        let mut rec_status = "CREATED".to_string();
        if !args.no_wait {
            let s = engine::wait_cluster_snapshot(&aws, &snapshot, timeout, &report).await?;
            db_status = s.status().unwrap_or_default().to_string();
            let remaining = timeout.saturating_sub(Duration::from_secs((now() - started) as u64));
            let j = engine::wait_job(
                &format!("recordings backup job {job}"),
                remaining,
                &report,
                || signed::backup_job(&aws, &job),
            )
            .await?;
            rec_status = j.state;
        }
        let vault = engine::vault_name(stack);
        let described = signed::describe_recovery_point(&aws, &vault, &point).await?;
        copies.push(Copy {
            holds: Holds::Database,
            origin: Origin::OnDemand,
            id: snapshot,
            source: cluster,
            created: Some(started),
            expires: None,
            until_deleted: true,
            size_bytes: None,
            status: db_status,
            note: String::new(),
        });
        copies.push(Copy {
            holds: Holds::Recordings,
            origin: Origin::OnDemand,
            id: point,
            source: fs,
            created: Some(started),
            expires: described
                .as_ref()
                .and_then(|d| d.delete_at.map(|t| t as i64))
                .or(Some(started + i64::from(args.keep_days) * 86_400)),
            until_deleted: false,
            size_bytes: described.as_ref().and_then(|d| d.size_bytes),
            status: described.map(|d| d.status).unwrap_or(rec_status),
            note: String::new(),
        });
    }
    let mut text = format!(
        "{} deployment {stack}:\n{}",
        if args.no_wait {
            "Backup started of"
        } else {
            "Backed up"
        },
        engine::render(&copies)
    );
    text.push_str(&format!(
        "\nSnapshots stay until you delete them; the recordings' recovery point until the date shown (AWS Backup deletes it).\n\
         `bbbctl backups -s {stack}` lists every copy; `bbbctl restore -s {stack} --from ID` restores one."
    ));
    p.result(
        text,
        &json!({ "deployment": stack, "waited": !args.no_wait, "copies": copies }),
    );
    Ok(())
}

pub async fn list(g: &Global, p: &Printer, stack: &str) -> Result<()> {
    let aws = connect(g, p, stack).await?;
    let found = Found::read(&aws, stack).await?;
    if found.root.is_none() {
        p.info(format!(
            "Deployment {stack} does not exist (any more) in account {} region {}: listing the copies that carry its name (tags, vault {}).",
            aws.account,
            aws.region(),
            engine::vault_name(stack)
        ));
    }
    let copies = engine::all_copies(&aws, &found.holdings).await?;
    let text = format!(
        "Copies of deployment {stack}'s data:\n{}\n\
         Database snapshots and data volume snapshots stay until deleted; automated Aurora backups and recovery points of the recordings until the date shown.\n\
         Restore one: `bbbctl restore -s {stack} --from ID`.",
        engine::render(&copies)
    );
    p.result(
        text,
        &json!({ "deployment": stack, "exists": found.root.is_some(), "copies": copies }),
    );
    Ok(())
}

pub async fn restore(
    g: &Global,
    p: &Printer,
    args: &crate::cli::RestoreArgs,
    stack: &str,
) -> Result<()> {
    let from = engine::parse_from(&args.from)?;
    let aws = connect(g, p, stack).await?;
    if describe_stack(&aws.cfn, stack).await?.is_none() {
        return Err(usage(format!(
            "no deployment {stack} in account {} region {}: a restore goes into an existing deployment. \
             Create it first (`bbbctl setup -s {stack} …`), then restore into it (a copy of another deployment needs --force)",
            aws.account,
            aws.region()
        )));
    }
    let found = Found::read(&aws, stack).await?;
    match from {
        From::ClusterSnapshot(id) => restore_database(&aws, g, p, args, stack, &found, &id).await,
        From::RecoveryPoint(arn) => restore_recordings(&aws, g, p, args, stack, &found, &arn).await,
        From::VolumeSnapshot(id) => single_mode_steps(&aws, stack, &found, &id, args.force).await,
    }
}

/// Refuses (exit 2) what a restore cannot start from: a deployment busy or failed.
fn settled(stack: &str, root: &Stack) -> Result<()> {
    let st = status(root);
    if matches!(
        st,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE"
    ) {
        return Ok(());
    }
    Err(usage(format!(
        "deployment {stack} is {st}: a restore starts from a settled deployment. Let its operation end (`bbbctl status -s {stack}`), or repair it with `bbbctl setup -s {stack}`, then restore"
    )))
}

/// The root stack of a scalable deployment that no operation is changing (a database or
/// recordings restore starts from nothing else); `single` says what single mode has instead.
fn settled_scalable<'a>(stack: &str, found: &'a Found, single: &str) -> Result<&'a Stack> {
    let root = found.root.as_ref().expect("checked by restore");
    if found.mode() != "scalable" {
        return Err(usage(format!(
            "deployment {stack} runs single mode: {single}; restore that from an EBS snapshot (--from snap-…)"
        )));
    }
    settled(stack, root)?;
    Ok(root)
}

async fn restore_database(
    aws: &Aws,
    g: &Global,
    p: &Printer,
    args: &crate::cli::RestoreArgs,
    stack: &str,
    found: &Found,
    id: &str,
) -> Result<()> {
    let root = settled_scalable(
        stack,
        found,
        "it has no Aurora database, Greenlight's database is on the data volume",
    )?;
    let params = parameters(root);
    let Some(current) = params.get(P_DB_SNAPSHOT) else {
        return Err(set_up_again(stack, &format!("parameter {P_DB_SNAPSHOT}")));
    };
    let Some(snapshot) = engine::cluster_snapshot(aws, id).await? else {
        return Err(usage(format!(
            "no Aurora cluster snapshot {id} in account {} region {}: `bbbctl backups -s {stack}` lists this deployment's copies",
            aws.account,
            aws.region()
        )));
    };
    if snapshot.status() != Some("available") {
        return Err(usage(format!(
            "cluster snapshot {id} is {} ({}%), not available yet: wait for it (`bbbctl backups -s {stack}`), then restore",
            snapshot.status().unwrap_or("?"),
            snapshot.percent_progress().unwrap_or(0)
        )));
    }
    if snapshot.engine() != Some("aurora-postgresql") {
        return Err(usage(format!(
            "cluster snapshot {id} is of engine {}, not aurora-postgresql: it is not a bbbctl deployment's database",
            snapshot.engine().unwrap_or("?")
        )));
    }
    let tags: BTreeMap<String, String> = snapshot
        .tag_list()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    let ours = engine::tagged_for(&tags, stack)
        || (found.holdings.cluster.is_some()
            && snapshot.db_cluster_identifier() == found.holdings.cluster.as_deref());
    if !ours && !args.force {
        let whose = tags
            .get(TAG)
            .or(tags.get(engine::STACK_TAG))
            .map(|d| format!("belongs to deployment {d}"))
            .unwrap_or_else(|| "carries no tag of a bbbctl deployment".to_string());
        return Err(usage(format!(
            "cluster snapshot {id} (of cluster {}) {whose}, not to {stack}: restoring it gives {stack} that database. Pass --force if that is what you want",
            snapshot.db_cluster_identifier().unwrap_or("?")
        )));
    }
    let engine_version = params.get(P_DB_ENGINE_VERSION).cloned().unwrap_or_default();
    if let Err(why) = engine::engine_fits(
        snapshot.engine_version().unwrap_or_default(),
        &engine_version,
    ) {
        return Err(usage(format!("cluster snapshot {id}: {why}")));
    }
    let taken = snapshot
        .snapshot_create_time()
        .map(|t| engine::timestamp(t.secs()))
        .unwrap_or_else(|| "?".into());
    let old_cluster = found.holdings.cluster.clone().unwrap_or_default();
    let started = now();
    if current == id {
        p.info(format!(
            "Deployment {stack}'s database was already restored from {id} ({P_DB_SNAPSHOT}); finishing the restore: master password, services."
        ));
    } else {
        p.info(format!(
            "Restoring deployment {stack}'s database from cluster snapshot {id} (taken {taken}):\n  \
             CloudFormation creates a new Aurora cluster from it and replaces cluster {old_cluster} (Greenlight's users, rooms and settings, Scalelite's servers and recording index):\n  \
             everything written since {taken} is replaced. The current cluster is snapshotted before it is deleted (UpdateReplacePolicy Snapshot):\n  \
             `bbbctl backups -s {stack}` lists that snapshot, and restoring it undoes this.\n  \
             Greenlight and Scalelite cannot reach their database until the new cluster is up and they restart (tens of minutes)."
        ));
        if !g.yes
            && !p.confirm(&format!(
                "Replace the database of deployment {stack} with snapshot {id}?"
            ))?
        {
            bail!("not confirmed: deployment {stack} is unchanged");
        }
        crate::deployment::update_parameter(
            aws,
            p,
            root,
            stack,
            (P_DB_SNAPSHOT, id),
            "the database is the one it was",
        )
        .await?;
    }
    let root_after = describe_stack(&aws.cfn, stack)
        .await?
        .with_context(|| format!("stack {stack} vanished"))?;
    let cluster = nested_resource(aws, &root_after, "DatabaseStack", "DBCluster")
        .await?
        .with_context(|| format!("deployment {stack} has no Aurora cluster after the restore"))?;
    let after = Found::read(aws, stack).await?;
    let secret = after
        .nested_output("DatabaseStack", O_DB_SECRET)
        .context("the database stack has no output SecretArn")?;
    p.info(format!(
        "Setting cluster {cluster}'s master password to the deployment's own (the snapshot brought its own)…"
    ));
    engine::reset_master_password(aws, &cluster, &secret, Duration::from_secs(args.timeout))
        .await?;
    let restarted = restart_services(aws, &after).await?;
    let kept = if old_cluster.is_empty() || old_cluster == cluster {
        Vec::new()
    } else {
        engine::kept_snapshots(aws, &old_cluster, started).await?
    };
    let mut text = format!(
        "Deployment {stack}'s database is cluster {cluster}, restored from snapshot {id} (taken {taken}).\n\
         Restarted {} service(s) so they read the new database address: {}.\n\
         `bbbctl check -s {stack} --wait 900` tells when Greenlight and Scalelite answer again.",
        restarted.len(),
        restarted.join(", ")
    );
    if !kept.is_empty() {
        text.push_str(&format!(
            "\nThe replaced cluster {old_cluster} was kept as snapshot {} (until you delete it): `bbbctl restore -s {stack} --from {}` goes back.",
            kept.join(", "),
            kept[0]
        ));
    }
    text.push_str(&format!(
        "\n{P_DB_SNAPSHOT} is now {id}: setup keeps it. Do not empty it, that would replace the database with an empty one."
    ));
    p.result(
        text,
        &json!({
            "deployment": stack,
            "restored": "database",
            "from": id,
            "cluster": cluster,
            "replaced_cluster": old_cluster,
            "replaced_cluster_snapshots": kept,
            "restarted_services": restarted,
        }),
    );
    Ok(())
}

/// Forces a new deployment of every ECS service of the front end (they read the database's
/// address and password from their secrets when a task starts): the names restarted.
async fn restart_services(aws: &Aws, found: &Found) -> Result<Vec<String>> {
    let Some(frontend) = found.nested.get("FrontendStack") else {
        return Ok(Vec::new());
    };
    let cluster = parameters(frontend)
        .remove("ClusterName")
        .context("the front-end stack has no parameter ClusterName")?;
    let mut restarted = Vec::new();
    for r in stack_resources(aws, frontend.stack_id().unwrap_or_default()).await? {
        if r.resource_type() != Some("AWS::ECS::Service") {
            continue;
        }
        if let Some(service) = r.physical_resource_id() {
            signed::force_new_deployment(aws, &cluster, service).await?;
            restarted.push(service.rsplit('/').next().unwrap_or(service).to_string());
        }
    }
    Ok(restarted)
}

async fn restore_recordings(
    aws: &Aws,
    g: &Global,
    p: &Printer,
    args: &crate::cli::RestoreArgs,
    stack: &str,
    found: &Found,
    arn: &str,
) -> Result<()> {
    settled_scalable(stack, found, "its recordings are on the data volume")?;
    let fs_id = found
        .nested_output("StorageStack", O_FILE_SYSTEM_ID)
        .with_context(|| format!("deployment {stack} has no recordings file system"))?;
    let role = found
        .nested_output("StorageStack", O_BACKUP_ROLE)
        .ok_or_else(|| {
            set_up_again(stack, "AWS Backup role (StorageStack output BackupRoleArn)")
        })?;
    let task_definition = found
        .nested_output("FrontendStack", O_RESTORE_TASK)
        .ok_or_else(|| {
            set_up_again(
                stack,
                "restore task (FrontendStack output RecordingsRestoreTaskArn)",
            )
        })?;
    let vault = engine::vault_name(stack);
    let point = match signed::describe_recovery_point(aws, &vault, arn).await? {
        Some(point) => point,
        None => {
            if signed::describe_recovery_point(aws, engine::AUTOMATIC_EFS_VAULT, arn)
                .await
                .ok()
                .flatten()
                .is_some()
            {
                return Err(usage(format!(
                    "recovery point {arn} is one of the EFS automatic backups: their vault {} denies restores by its access policy (AWS creates it so). \
                     Either restore it with AWS Backup yourself after allowing backup:StartRestoreJob in that vault's policy (README: Backup, restore and upgrades), \
                     or use a recovery point of `bbbctl backup` (vault {vault})",
                    engine::AUTOMATIC_EFS_VAULT
                )));
            }
            return Err(usage(format!(
                "no recovery point {arn} in vault {vault} (account {}, region {}): `bbbctl backups -s {stack}` lists this deployment's",
                aws.account,
                aws.region()
            )));
        }
    };
    // DescribeRecoveryPoint: COMPLETED, and AVAILABLE in AWS's current reference ("ready for
    // use"); both mean the backup is whole.
    if !matches!(point.status.as_str(), "COMPLETED" | "AVAILABLE") {
        return Err(usage(format!(
            "recovery point {arn} is {}, not COMPLETED or AVAILABLE: wait for its backup to end, then restore",
            point.status
        )));
    }
    let tags = signed::backup_tags(aws, arn).await?;
    let ours = engine::tagged_for(&tags, stack)
        || found.holdings.file_system_arn.as_deref() == Some(point.resource.as_str());
    if !ours && !args.force {
        return Err(usage(format!(
            "recovery point {arn} is of file system {}, not deployment {stack}'s: pass --force to copy its recordings in",
            point.resource
        )));
    }
    let taken = point
        .created
        .map(|t| engine::timestamp(t as i64))
        .unwrap_or_else(|| "?".into());
    p.info(format!(
        "Restoring deployment {stack}'s recordings from {arn} (taken {taken}):\n  \
         AWS Backup writes that day's files into a new aws-backup-restore_<time> directory of file system {fs_id} (it never overwrites);\n  \
         then a one-off task copies back every published or unpublished recording that is missing now, keeps every file that exists\n  \
         (nothing newer is lost) and removes that directory. Scalelite lists a recording only if its database knows it:\n  \
         if those rows are gone too, restore the database from the same time (`bbbctl backup` takes both at once)."
    ));
    if !g.yes
        && !p.confirm(&format!(
            "Copy the recordings of {taken} back into deployment {stack}?"
        ))?
    {
        bail!("not confirmed: deployment {stack} is unchanged");
    }
    let timeout = Duration::from_secs(args.timeout);
    let report = |line: String| p.info(line);
    let token = format!("bbbctl-restore-{stack}-{}", now());
    let job = signed::start_efs_restore(aws, arn, &fs_id, &role, &token).await?;
    p.info(format!("  restore job {job} started"));
    engine::wait_job(&format!("restore job {job}"), timeout, &report, || {
        signed::restore_job(aws, &job)
    })
    .await?;
    let frontend = found
        .nested
        .get("FrontendStack")
        .context("deployment has no front-end stack")?;
    let fp = parameters(frontend);
    let param = |k: &str| {
        fp.get(k)
            .cloned()
            .with_context(|| format!("the front-end stack has no parameter {k}"))
    };
    let task = OneOffTask {
        cluster: param("ClusterName")?,
        task_definition,
        subnets: param("PrivateSubnetIds")?
            .split(',')
            .map(|s| s.trim().to_string())
            .collect(),
        security_groups: vec![param("TaskSecurityGroupId")?],
        capacity_provider: param("CapacityProvider")?,
        started_by: "bbbctl-restore".to_string(),
    };
    let task_arn = engine::run_copy_back(aws, &task).await?;
    let task_id = task_arn.rsplit('/').next().unwrap_or(&task_arn).to_string();
    let logs = found
        .nested_output("FrontendStack", "LogGroupName")
        .map(|g| format!("log group {g}, stream recordings-restore/recordings-restore/{task_id}"))
        .unwrap_or_default();
    p.info(format!("  copy-back task {task_id} started ({logs})"));
    if !args.no_wait {
        engine::wait_copy_back(aws, &task.cluster, &task_arn, timeout, &report).await?;
    }
    let text = if args.no_wait {
        format!(
            "Restore job {job} wrote the recordings of {taken} into file system {fs_id}; the copy-back task {task_id} runs ({logs}).\n\
             Follow it: `aws ecs describe-tasks --cluster {} --tasks {task_id}` (exit code 0: done).",
            task.cluster
        )
    } else {
        format!(
            "Deployment {stack}'s recordings of {taken} are back in place: missing ones copied, existing ones kept as they were, the restore directory removed."
        )
    };
    p.result(
        text,
        &json!({
            "deployment": stack,
            "restored": "recordings",
            "from": arn,
            "restore_job": job,
            "copy_back_task": task_arn,
            "waited": !args.no_wait,
        }),
    );
    Ok(())
}

/// Single mode: CloudFormation cannot restore its data volume in place (a changed SnapshotId
/// does not make a new volume), so restore prints the steps for this deployment, after
/// checking the snapshot, and changes nothing (exit 2).
async fn single_mode_steps(
    aws: &Aws,
    stack: &str,
    found: &Found,
    id: &str,
    force: bool,
) -> Result<()> {
    if found.mode() != "single" {
        return Err(usage(format!(
            "deployment {stack} runs scalable mode: an EBS snapshot is single mode's data volume. Restore its database from an Aurora snapshot and its recordings from a recovery point (`bbbctl backups -s {stack}`)"
        )));
    }
    let Some(snapshot) = signed::snapshot(aws, id).await? else {
        return Err(usage(format!(
            "no EBS snapshot {id} of this account in region {}: `bbbctl backups -s {stack}` lists this deployment's",
            aws.region()
        )));
    };
    let Some(volume) = found.holdings.data_volume.clone() else {
        return Err(usage(format!(
            "deployment {stack} runs single mode in an existing VPC: its data is on the server's own volume, not a volume of the stack; README: Backup, restore and upgrades"
        )));
    };
    let ours = engine::tagged_for(&snapshot.tags, stack) || snapshot.volume == volume;
    if !ours && !force {
        return Err(usage(format!(
            "EBS snapshot {id} (of volume {}) is not of deployment {stack}'s data volume {volume}: pass --force to restore it anyway",
            snapshot.volume
        )));
    }
    let zone = found
        .nested_parameter("BbbServersStack", "DataVolumeAvailabilityZone")
        .unwrap_or_else(|| "<the data volume's zone>".into());
    let root = found.root.as_ref().expect("checked by restore");
    let instance = match outputs(root).remove(super::out::SERVER_GROUP) {
        Some(group) => server_group(aws, &group).await?.and_then(|g| {
            g.instances()
                .first()
                .and_then(|i| i.instance_id().map(str::to_string))
        }),
        None => None,
    }
    .unwrap_or_else(|| "<the server's instance id>".into());
    Err(usage(format!(
        "restoring single mode's data volume is not a bbbctl command: CloudFormation cannot put a snapshot into the volume it holds. \
         Copy it in on the server, with Greenlight and BigBlueButton stopped (README: Backup, restore and upgrades). For deployment {stack}:\n  \
         aws ec2 create-volume --snapshot-id {id} --availability-zone {zone} --volume-type gp3 --encrypted\n  \
         aws ec2 attach-volume --volume-id <the new volume> --instance-id {instance} --device /dev/sdg\n  \
         aws ssm start-session --target {instance}, then as root:\n    \
         bbb-conf --stop; docker compose -f /root/greenlight-v3/docker-compose.yml down\n    \
         mkdir -p /mnt/restore && mount -o ro /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_<new volume id without the dash> /mnt/restore\n    \
         rsync -aHAX --delete /mnt/restore/ /var/bigbluebutton/ && umount /mnt/restore\n    \
         docker compose -f /root/greenlight-v3/docker-compose.yml up -d; bbb-conf --start\n  \
         aws ec2 detach-volume --volume-id <the new volume>; aws ec2 delete-volume --volume-id <the new volume>\n\
         The data volume {volume} is snapshotted first by `bbbctl backup -s {stack}`, to go back."
    )))
}
