//! `bbbctl destroy`: empties the versioned sources bucket and the deployment's own buckets
//! (Greenlight's uploaded files), lifts the BBB servers' scale-in protection (CloudFormation
//! cannot delete a group whose instances are protected), deletes the root stack with
//! progress, then the sources stack; then the log groups AWS services created for the
//! deployment and (unless kept) the final snapshot of single mode's data volume; and says
//! what stays on purpose. Re-running after an interruption carries on.

use anyhow::{Result, bail};
use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_cloudformation::types::Stack;
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::{delete, ensure_ours, stack_resources};
use crate::aws::Aws;
use crate::cfn::ops::{describe_stack, outputs, parameters};
use crate::cli::DestroyArgs;
use crate::error::AwsContext;
use crate::memory;
use crate::settings::{Global, P_DOMAIN, P_ZONE, sources_stack_name};
use crate::signed;
use crate::templates::Bundle;
use crate::ui::Printer;
use crate::upload;

/// Tag destroy puts on the deployment's Auto Scaling groups before it lifts scale-in
/// protection: the registrar's role denies `autoscaling:SetInstanceProtection` on a group that
/// carries it (templates/bbb-servers.yaml, `StopProtectingOnDestroy`), and the registrar
/// (templates/scripts/bbb_registrar.py) does not try, so no server is protected again.
pub const PROTECTION_TAG: &str = "bbbctl:protection";

pub async fn run(g: &Global, p: &Printer, stack: &str, args: &DestroyArgs) -> Result<()> {
    let (keep_data_snapshot, force) = (args.keep_data_snapshot, args.force);
    let sources_name = sources_stack_name(stack);
    let aws = connect(g, p, stack).await?;
    let root = describe_stack(&aws.cfn, stack).await?;
    let sources = describe_stack(&aws.cfn, &sources_name).await?;
    if root.is_none() && sources.is_none() {
        bail!(
            "no deployment {stack} in account {} region {}: neither stack {stack} nor {sources_name} exists. Check -s/--stack, --region and -p/--profile",
            aws.account,
            aws.region()
        );
    }
    for st in root.iter().chain(&sources) {
        ensure_ours(&aws, st, stack).await?;
    }
    // Read before the stacks go: the names AWS services derive their own resources from.
    let found = match &root {
        Some(root) => Found::read(&aws, root).await?,
        None => Found::default(),
    };
    let bucket = sources
        .as_ref()
        .and_then(|s| outputs(s).remove(out::BUCKET));
    if let Some(bucket) = &bucket {
        recordings_at_stake(&aws, g, p, bucket, &found.groups, stack, force).await?;
    }
    if !g.yes {
        let mut question = format!(
            "This deletes deployment {stack} in account {}, region {}: every stack, server, secret, Greenlight's uploaded files and the source bucket with its contents.",
            aws.account,
            aws.region()
        );
        let scalable = root.as_ref().is_some_and(|r| {
            parameters(r)
                .get(crate::settings::P_MODE)
                .map(String::as_str)
                == Some("scalable")
        });
        if scalable {
            question.push_str(&format!(" Every recording goes with the EFS file system (AWS Backup keeps its recovery points: the automatic daily ones in vault aws/efs/automatic-backup-vault for their retention, 35 days by default, and those of `bbbctl backup` in vault bbbctl-{stack} for the days they were given; a recording imported since the newest of them is in none: `bbbctl backup -s {stack}` first keeps it), and Greenlight's and Scalelite's databases with Aurora (a final snapshot is kept, and the snapshots of `bbbctl backup`). `bbbctl backups -s {stack}` lists the copies now, with when each expires (each costs until it does); after the destroy, bbbctl names where they are."));
        }
        if let Some(volume) = &found.data_volume {
            question.push(' ');
            question.push_str(&data_volume_notice(volume, keep_data_snapshot));
        }
        if !p.confirm_by_typing(&question, stack)? {
            bail!("not confirmed: nothing was deleted");
        }
    }

    let kept = match &root {
        Some(root) => kept_on_delete(&aws, root).await?,
        None => Vec::new(),
    };
    let started = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let mut objects = 0;
    if let Some(bucket) = &bucket {
        objects = upload::empty_bucket(&aws.s3, bucket).await?;
        p.info(format!(
            "Bucket {bucket}: {objects} object version(s) deleted"
        ));
    }
    // CloudFormation deletes only empty buckets: Greenlight's uploads go first.
    for bucket in &found.buckets {
        let n = upload::empty_bucket(&aws.s3, bucket).await?;
        p.info(format!("Bucket {bucket}: {n} object version(s) deleted"));
        objects += n;
    }
    // CloudFormation deletes a group by setting it to 0 and does not force-delete: a server
    // holding scale-in protection (a meeting runs on it) would make the delete hang, then fail.
    let lifted = lift_protection(&aws, &found.groups).await?;
    if !lifted.is_empty() {
        p.info(protection_text(lifted.len()));
    }
    // The warm pool first (its prepared servers and their launch hooks, which only the
    // registrar answers, and the registrar goes with the stacks).
    for group in &found.groups {
        if crate::drain::delete_warm_pool(&aws, p, group).await? {
            p.info(format!(
                "Deleted the warm pool of {group} with its prepared servers"
            ));
        }
    }
    // A builder a killed `bake` left holds the servers' security group and subnet.
    let builders = crate::bake::terminate_builders(&aws, stack).await?;
    if !builders.is_empty() {
        p.info(format!(
            "Terminated the server image builder(s) {} that an interrupted bake left",
            builders.join(", ")
        ));
    }
    let image_cache = root
        .as_ref()
        .and_then(|r| outputs(r).remove(out::IMAGE_CACHE));
    let server_names = root.as_ref().map(|r| {
        let params = parameters(r);
        (
            params.get(P_ZONE).cloned().unwrap_or_default(),
            params.get(P_DOMAIN).cloned().unwrap_or_default(),
        )
    });
    let mut deleted = Vec::new();
    let mut skipped = Vec::new();
    for stack in [root, sources].into_iter().flatten() {
        // While the root stack went, the servers and the registrar may have written to the
        // sources bucket (a report, a note, the delete markers of a versioned bucket):
        // CloudFormation deletes only an empty bucket, so it is emptied once more.
        if Some(stack.stack_name()) == Some(Some(sources_name.as_str()))
            && let Some(bucket) = &bucket
        {
            objects += upload::empty_bucket(&aws.s3, bucket).await?;
        }
        let outcome = delete(&aws, p, &stack).await?;
        for node in outcome.tree.nodes() {
            for (logical, status) in &node.resources {
                if status == "DELETE_SKIPPED" {
                    skipped.push(format!("{} › {logical}", node.label));
                }
            }
        }
        deleted.push(stack.stack_name().unwrap_or_default().to_string());
    }
    let (zone, swept) = match &server_names {
        Some((zone, domain)) if !zone.is_empty() && !domain.is_empty() => (
            zone.as_str(),
            sweep_server_records(&aws, zone, domain, stack).await?,
        ),
        _ => ("", Sweep::default()),
    };
    // The pull-through cache rule went with the root stack; the repositories its first
    // pulls created are ECR's, not CloudFormation's.
    let cached = match &image_cache {
        Some(prefix) => delete_cached_images(&aws, prefix).await?,
        None => Vec::new(),
    };
    // Created by RDS (log export) and ECS (Container Insights), not by the stacks: they
    // never expire, and nothing else would delete them.
    // The deployment is gone by now: what fails here is said, and destroy goes on.
    let log_groups = delete_log_groups(&aws, p, found.service_log_groups()).await;
    let (data_snapshots, deleted_snapshots) = match &found.data_volume {
        Some(volume) => final_data_snapshots(&aws, p, volume, &started, keep_data_snapshot).await?,
        None => (Vec::new(), Vec::new()),
    };
    // The servers' images `bbbctl bake` made (tagged for this deployment and as baked by
    // bbbctl): after the stacks, whose launch template named one of them.
    let (images, image_snapshots, kept_images) = if args.keep_images {
        let kept: Vec<String> = crate::bake::images_of(&aws, stack)
            .await?
            .into_iter()
            .map(|i| {
                format!(
                    "{} ({}, snapshots {})",
                    i.id,
                    i.name,
                    i.snapshots.join(", ")
                )
            })
            .collect();
        (Vec::new(), Vec::new(), kept)
    } else {
        let (i, s) = crate::bake::delete_images(&aws, stack).await?;
        (i, s, Vec::new())
    };
    memory::forget(stack, aws.region());
    let mut left = Vec::new();
    left.extend(kept_images.iter().map(|i| {
        format!("baked server image {i} (--keep-images); deregister it and delete its snapshots when you no longer need it")
    }));
    // The data volume's snapshot is handled above (deleted, or named below when kept).
    for k in kept.iter().filter(|k| k.kind != "AWS::EC2::Volume") {
        left.extend(k.what_is_left(&aws, &started).await?);
    }
    if let Some(volume) = &found.data_volume {
        left.extend(data_snapshots.iter().map(|id| {
            format!(
                "final snapshot {id} of the single server's data volume {volume} (Greenlight's users and rooms, recordings, the certificate; DeletionPolicy Snapshot); delete it when you no longer need the data"
            )
        }));
    }
    for fs in &found.file_systems {
        left.push(recordings_backups(&aws, fs, stack));
    }
    let mut text = format!(
        "Deployment {stack} is deleted (stacks: {}).",
        deleted.join(", ")
    );
    if !lifted.is_empty() {
        text.push_str(&format!("\n{}", protection_text(lifted.len())));
    }
    if !deleted_snapshots.is_empty() {
        text.push_str(&format!(
            "\nDeleted the final snapshot of the single server's data volume: {} (--keep-data-snapshot keeps it)",
            deleted_snapshots.join(", ")
        ));
    }
    if !images.is_empty() || !image_snapshots.is_empty() {
        text.push_str(&format!(
            "\nDeregistered the baked server images {} and deleted their snapshots {} (--keep-images keeps them)",
            if images.is_empty() { "(none left)".to_string() } else { images.join(", ") },
            image_snapshots.join(", ")
        ));
    }
    if !log_groups.is_empty() {
        text.push_str(&format!(
            "\nDeleted the log groups AWS services created for the deployment: {}",
            log_groups.join(", ")
        ));
    }
    for k in &left {
        text.push_str(&format!("\nLeft on purpose: {k}"));
    }
    for s in &skipped {
        text.push_str(&format!("\nNot deleted (retained by CloudFormation): {s}"));
    }
    if !cached.is_empty() {
        text.push_str(&format!(
            "\nDeleted the cached Docker Hub images: {}",
            cached.join(", ")
        ));
    }
    if !swept.deleted.is_empty() {
        text.push_str(&format!(
            "\nRemoved DNS records that servers which did not shut down cleanly left behind: {}",
            swept.deleted.join(", ")
        ));
    }
    for k in &swept.kept {
        text.push_str(&format!(
            "\nNot deleted: DNS record {} (hosted zone {zone}) has the shape of a BBB server's, but {}. If it is stale, delete it: aws route53 change-resource-record-sets --hosted-zone-id {zone} --change-batch '{}'",
            k.name, k.why, k.delete_batch
        ));
    }
    p.result(
        text,
        &json!({
            "stack": stack,
            "deleted_stacks": deleted,
            "bucket": bucket,
            "deleted_objects": objects,
            "left_on_purpose": left,
            "not_deleted": skipped,
            "swept_records": swept.deleted,
            "kept_records": swept.kept.iter().map(|k| json!({
                "name": k.name,
                "instance": k.instance,
                "reason": k.why,
            })).collect::<Vec<_>>(),
            "deleted_image_repositories": cached,
            "lifted_protection": lifted,
            "deleted_log_groups": log_groups,
            "deregistered_images": images,
            "deleted_image_snapshots": image_snapshots,
            "deleted_data_snapshots": deleted_snapshots,
        }),
    );
    Ok(())
}

/// Recordings a destroy would lose: those the servers still process (their agents' reports)
/// and the failed ones the agents saved in the sources bucket. Said first; without --force a
/// destroy asks (and with --yes alone refuses, changing nothing).
async fn recordings_at_stake(
    aws: &Aws,
    g: &Global,
    p: &Printer,
    bucket: &str,
    groups: &[String],
    stack: &str,
    force: bool,
) -> Result<()> {
    let mut instances = Vec::new();
    for group in groups {
        if let Some(asg) = super::stacks::server_group(aws, group).await? {
            instances.extend(
                super::stacks::group_instances(&asg)
                    .into_iter()
                    .map(|i| i.0),
            );
        }
    }
    let (account, saved) = match (
        crate::recordings::account(aws, bucket, &instances).await,
        crate::recordings::failed_saved(aws, bucket).await,
    ) {
        (Ok(a), Ok(s)) => (a, s),
        (Err(e), _) | (_, Err(e)) => {
            p.warn(format!(
                "the servers' recordings could not be read from {bucket} ({e:#}); recordings still being processed, if any, go with the servers"
            ));
            return Ok(());
        }
    };
    if !account.stale.is_empty() {
        p.warn(format!(
            "{} server(s) have not reported their recordings recently, so some may still be processing there: {}",
            account.stale.len(),
            account
                .stale
                .iter()
                .map(|(i, t)| format!("{i}: {t}"))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let mut lost = Vec::new();
    if !account.busy.is_empty() {
        lost.push(format!(
            "{} recording(s) are still being processed on {} BBB server(s) ({}); destroying now loses them. Waiting until `bbbctl servers -s {stack}` shows none pending keeps them",
            account.pending(),
            account.busy.len(),
            account
                .busy
                .iter()
                .map(|(i, _, t)| format!("{i}: {t}"))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if !saved.is_empty() {
        let bytes: i64 = saved.iter().map(|s| s.bytes).sum();
        lost.push(format!(
            "{} failed recording(s) saved by the servers in s3://{bucket}/{} ({} MiB) go with the bucket; copy them first: aws s3 cp --recursive s3://{bucket}/{} ./failed-recordings/",
            saved.len(),
            crate::recordings::FAILED,
            (bytes.max(0) as u64).div_ceil(1 << 20),
            crate::recordings::FAILED
        ));
    }
    if lost.is_empty() {
        return Ok(());
    }
    let text = lost.join(". ");
    if force {
        p.warn(format!("{text}. Going on (--force)."));
        return Ok(());
    }
    if g.yes {
        bail!(
            "{text}. Nothing was deleted: run destroy again once they are safe, or add --force to destroy anyway"
        );
    }
    if !p.confirm(&format!("{text}. Destroy anyway and lose them?"))? {
        bail!("not confirmed: nothing was deleted");
    }
    Ok(())
}

/// What destroy reads of the deployment's nested stacks before deleting them, by the stacks'
/// own resource lists: nothing outside the deployment is touched.
#[derive(Debug, Default)]
struct Found {
    /// S3 buckets (Greenlight's uploaded files).
    buckets: Vec<String>,
    /// Auto Scaling groups (the BBB servers; ECS's EC2 capacity when used).
    groups: Vec<String>,
    /// Aurora cluster identifiers.
    aurora_clusters: Vec<String>,
    /// ECS cluster names.
    ecs_clusters: Vec<String>,
    /// Single mode's data volume (`DataVolume` of the servers' stack).
    data_volume: Option<String>,
    /// The recordings' EFS file systems.
    file_systems: Vec<String>,
}

impl Found {
    async fn read(aws: &Aws, root: &Stack) -> Result<Self> {
        let mut stacks = vec![root.stack_id().unwrap_or_default().to_string()];
        let mut found = Found::default();
        while let Some(stack) = stacks.pop() {
            for r in stack_resources(aws, &stack).await? {
                let (Some(kind), Some(id)) = (r.resource_type(), r.physical_resource_id()) else {
                    continue;
                };
                if id.is_empty()
                    || r.resource_status()
                        .is_some_and(|s| s.as_str() == "DELETE_COMPLETE")
                {
                    continue;
                }
                let id = id.to_string();
                match kind {
                    "AWS::CloudFormation::Stack" => stacks.push(id),
                    "AWS::S3::Bucket" => found.buckets.push(id),
                    "AWS::AutoScaling::AutoScalingGroup" => found.groups.push(id),
                    "AWS::RDS::DBCluster" => found.aurora_clusters.push(id),
                    "AWS::EFS::FileSystem" => found.file_systems.push(id),
                    // Ref (and the physical id) is the name; an ARN ends with it.
                    "AWS::ECS::Cluster" => found
                        .ecs_clusters
                        .push(id.rsplit('/').next().unwrap_or(&id).to_string()),
                    "AWS::EC2::Volume" if r.logical_resource_id() == Some("DataVolume") => {
                        found.data_volume = Some(id)
                    }
                    _ => {}
                }
            }
        }
        Ok(found)
    }

    /// The log groups RDS and ECS create for this deployment's clusters and CloudFormation
    /// never deletes: Aurora's exported PostgreSQL log (database.yaml
    /// `EnableCloudwatchLogsExports: [postgresql]`) and Container Insights' performance log
    /// (ecs.yaml `containerInsights: enabled`). Only these names, only these clusters.
    fn service_log_groups(&self) -> Vec<String> {
        self.aurora_clusters
            .iter()
            .map(|id| format!("/aws/rds/cluster/{id}/postgresql"))
            .chain(
                self.ecs_clusters
                    .iter()
                    .map(|name| format!("/aws/ecs/containerinsights/{name}/performance")),
            )
            .collect()
    }
}

/// Deletes the log groups `names` (services', not the stacks'); what fails is said and the
/// caller goes on. Returns those deleted.
pub(super) async fn delete_log_groups(aws: &Aws, p: &Printer, names: Vec<String>) -> Vec<String> {
    let mut deleted = Vec::new();
    for name in names {
        match signed::delete_log_group(aws, &name).await {
            Ok(true) => deleted.push(name),
            Ok(false) => {}
            Err(e) => p.warn(format!(
                "{e:#}: delete log group {name} yourself (aws logs delete-log-group --log-group-name {name})"
            )),
        }
    }
    deleted
}

/// Before a switch away from scalable mode: the log groups RDS and ECS made for the
/// clusters the switch deletes (destroy would no longer find them afterwards).
pub(super) async fn service_log_groups_of(aws: &Aws, root: &Stack) -> Result<Vec<String>> {
    Ok(Found::read(aws, root).await?.service_log_groups())
}

/// Where the recordings of a deleted EFS file system still are: AWS Backup's recovery
/// points, which outlive it (the automatic ones are found only by the file system's ARN once
/// it is gone; `bbbctl backups` finds bbbctl's own by the deployment's name).
pub(super) fn recordings_backups(aws: &Aws, fs: &str, stack: &str) -> String {
    let arn = format!(
        "arn:{}:elasticfilesystem:{}:{}:file-system/{fs}",
        aws.partition(),
        aws.region(),
        aws.account
    );
    format!(
        "the recordings of EFS file system {fs} in AWS Backup's recovery points: the automatic daily ones in vault aws/efs/automatic-backup-vault, each kept 35 days by default (a file system younger than a day may have none): aws backup list-recovery-points-by-backup-vault --backup-vault-name aws/efs/automatic-backup-vault --by-resource-arn {arn}; those of `bbbctl backup` in vault bbbctl-{stack}, until their date: bbbctl backups -s {stack}"
    )
}

/// What destroy's confirmation says about single mode's data volume.
fn data_volume_notice(volume: &str, keep: bool) -> String {
    let then = if keep {
        "destroy keeps that snapshot (--keep-data-snapshot) and names it at the end"
    } else {
        "destroy then deletes that snapshot (pass --keep-data-snapshot to keep it)"
    };
    format!(
        "The single server's data volume {volume} (Greenlight's users and rooms, recordings, the certificate) is snapshotted by CloudFormation before it is deleted (DeletionPolicy Snapshot); {then}."
    )
}

fn protection_text(servers: usize) -> String {
    format!(
        "Lifted scale-in protection from {servers} server(s) (meetings on them end with the deployment)."
    )
}

/// Stops the registrar protecting servers (the group tag its role's Deny reads), then lifts scale-in
/// protection from every protected instance of each group, 50 ids a call (the API's limit),
/// and looks again: a registrar run already under way may have set it once more. Returns
/// the instances it was lifted from.
pub(super) async fn lift_protection(aws: &Aws, groups: &[String]) -> Result<Vec<String>> {
    let mut lifted = std::collections::BTreeSet::new();
    for name in groups {
        if protected_instances(aws, name).await?.is_none() {
            continue; // gone already (a re-run)
        }
        let tag = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(name)
            .resource_type("auto-scaling-group")
            .key(PROTECTION_TAG)
            .value("off")
            .propagate_at_launch(false)
            .build();
        aws.autoscaling
            .create_or_update_tags()
            .tags(tag)
            .send()
            .await
            .aws_context(format_args!("tagging Auto Scaling group {name}"))?;
        for _ in 0..3 {
            let protected = protected_instances(aws, name).await?.unwrap_or_default();
            if protected.is_empty() {
                break;
            }
            for batch in protected.chunks(50) {
                aws.autoscaling
                    .set_instance_protection()
                    .auto_scaling_group_name(name)
                    .set_instance_ids(Some(batch.to_vec()))
                    .protected_from_scale_in(false)
                    .send()
                    .await
                    .aws_context(format_args!(
                        "lifting scale-in protection in Auto Scaling group {name}"
                    ))?;
            }
            lifted.extend(protected);
        }
    }
    Ok(lifted.into_iter().collect())
}

/// Undoes what an interrupted or failed destroy left on a group that is kept after all (setup
/// runs again): the tag under which the servers' role denies them scale-in protection.
/// Returns whether the tag was there.
pub async fn allow_protection(aws: &Aws, asg: &AutoScalingGroup) -> Result<bool> {
    let name = asg.auto_scaling_group_name().unwrap_or_default();
    if !asg.tags().iter().any(|t| t.key() == Some(PROTECTION_TAG)) {
        return Ok(false);
    }
    let tag = aws_sdk_autoscaling::types::Tag::builder()
        .resource_id(name)
        .resource_type("auto-scaling-group")
        .key(PROTECTION_TAG)
        .build();
    aws.autoscaling
        .delete_tags()
        .tags(tag)
        .send()
        .await
        .aws_context(format_args!("untagging Auto Scaling group {name}"))?;
    Ok(true)
}

/// The protected instances of a group (not those already terminating); `None` when the
/// group does not exist.
async fn protected_instances(aws: &Aws, group: &str) -> Result<Option<Vec<String>>> {
    Ok(super::stacks::server_group(aws, group).await?.map(|g| {
        g.instances()
            .iter()
            .filter(|i| i.protected_from_scale_in() == Some(true))
            .filter(|i| {
                !i.lifecycle_state()
                    .is_some_and(|s| s.as_str().starts_with("Terminat"))
            })
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect()
    }))
}

/// The snapshots CloudFormation took of the data volume while this destroy ran (its
/// DeletionPolicy Snapshot; older ones, e.g. the user's own backups, are not touched):
/// deleted unless `keep`. Returns (kept, deleted); one that cannot be deleted is kept, and
/// a warning says why.
async fn final_data_snapshots(
    aws: &Aws,
    p: &Printer,
    volume: &str,
    since: &aws_smithy_types::DateTime,
    keep: bool,
) -> Result<(Vec<String>, Vec<String>)> {
    let taken: Vec<String> = signed::volume_snapshots(aws, volume)
        .await?
        .into_iter()
        .filter(|s| {
            aws_smithy_types::DateTime::from_str(
                &s.started,
                aws_smithy_types::date_time::Format::DateTime,
            )
            .map_or(true, |t| t.secs() >= since.secs() - 60)
        })
        .map(|s| s.id)
        .collect();
    if taken.is_empty() {
        tracing::warn!("no final snapshot of data volume {volume} was found");
    }
    if keep {
        return Ok((taken, Vec::new()));
    }
    let (mut kept, mut deleted) = (Vec::new(), Vec::new());
    for id in taken {
        match signed::delete_snapshot(aws, &id).await {
            Ok(true) => deleted.push(id),
            Ok(false) => {}
            Err(e) => {
                p.warn(format!("{e:#}: the snapshot stays"));
                kept.push(id);
            }
        }
    }
    Ok((kept, deleted))
}

/// Deletes the ECR repositories under the deployment's pull-through cache prefix (with their
/// images) and returns their names. Only `<prefix>/...`: the prefix is the deployment's own.
async fn delete_cached_images(aws: &Aws, prefix: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut pages = aws.ecr.describe_repositories().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context("listing the ECR repositories")?;
        names.extend(
            page.repositories()
                .iter()
                .filter_map(|r| r.repository_name())
                .filter(|n| n.starts_with(&format!("{prefix}/")))
                .map(str::to_string),
        );
    }
    for name in &names {
        aws.ecr
            .delete_repository()
            .repository_name(name)
            .force(true)
            .send()
            .await
            .aws_context(format_args!("deleting ECR repository {name}"))?;
    }
    Ok(names)
}

/// The tag every BBB server carries (templates/bbb-servers.yaml, the group's tags with
/// PropagateAtLaunch): the name of the deployment (its root stack) it belongs to.
const SERVER_STACK_TAG: &str = "bbbctl:stack";

/// What the DNS sweep did: the records it deleted, and those of a server's shape it left.
#[derive(Debug, Default)]
struct Sweep {
    /// Names of the records deleted (servers of this deployment that did not shut down
    /// cleanly).
    deleted: Vec<String>,
    /// Records of that shape that are not this deployment's servers', with why.
    kept: Vec<KeptRecord>,
}

#[derive(Debug)]
struct KeptRecord {
    name: String,
    instance: String,
    why: String,
    /// The change batch that deletes it, for `aws route53 change-resource-record-sets`.
    delete_batch: String,
}

/// After a first setup whose stack rolled back: the registrar named the servers that started
/// (`bbb-<id>` records) and went with them, so their records would point at addresses AWS hands
/// to someone else. Swept as destroy sweeps them (only records of this deployment's servers,
/// which EC2 still describes); what is left is named. Never fails the setup's own error.
pub(super) async fn sweep_after_failed_create(
    aws: &Aws,
    p: &Printer,
    zone: &str,
    domain: &str,
    stack: &str,
) {
    if zone.is_empty() || domain.is_empty() {
        return;
    }
    match describe_stack(&aws.cfn, stack).await {
        Ok(Some(root))
            if !matches!(
                root.stack_status().map(|s| s.as_str()),
                Some("ROLLBACK_COMPLETE" | "DELETE_COMPLETE")
            ) =>
        {
            return; // still there, or not rolled back: its servers keep their names
        }
        Err(_) => return,
        _ => {}
    }
    match sweep_server_records(aws, zone, domain, stack).await {
        Ok(sweep) => {
            if !sweep.deleted.is_empty() {
                p.info(format!(
                    "Deleted the DNS records of the servers the rolled-back stack had started: {}",
                    sweep.deleted.join(", ")
                ));
            }
            for kept in &sweep.kept {
                p.warn(format!("DNS record {} left: {}", kept.name, kept.why));
            }
        }
        Err(e) => p.warn(format!(
            "the DNS records of the rolled-back stack's servers could not be swept ({e:#}); `bbbctl destroy -s {stack}` sweeps them"
        )),
    }
}

/// The registrar writes the BBB servers' records, `bbb-<instance id without i->.media.<domain>` (A),
/// and deletes each when its server drains or is gone (templates/scripts/bbb_registrar.py). The
/// stack's deletion removes the drain hook and the registrar with the servers, so their records
/// stay: a record of that shape still in the zone would point at an address AWS hands to
/// someone else. Only that shape, under the deployment's own domain, and only when EC2 still
/// describes the instance it names as a server of this deployment (its `bbbctl:stack` tag;
/// EC2 describes a terminated instance for up to about an hour): a record of that shape can
/// as well be another deployment's server's, or the operator's. Those are left, and named.
async fn sweep_server_records(aws: &Aws, zone: &str, domain: &str, stack: &str) -> Result<Sweep> {
    let name = regex::Regex::new(&format!(
        r"^bbb-([0-9a-f]{{8,17}})\.{}\.?$",
        regex::escape(&crate::fleet::fleet_domain(domain))
    ))?;
    let mut left = Vec::new();
    let mut next: Option<(String, aws_sdk_route53::types::RrType)> = None;
    loop {
        let mut req = aws.route53.list_resource_record_sets().hosted_zone_id(zone);
        if let Some((n, t)) = next.take() {
            req = req.start_record_name(n).start_record_type(t);
        }
        let page = req
            .send()
            .await
            .aws_context(format_args!("listing the records of hosted zone {zone}"))?;
        left.extend(page.resource_record_sets().iter().filter_map(|r| {
            let hex = name.captures(r.name())?.get(1)?.as_str().to_string();
            (r.r#type() == &aws_sdk_route53::types::RrType::A)
                .then(|| (format!("i-{hex}"), r.clone()))
        }));
        match (
            page.is_truncated(),
            page.next_record_name(),
            page.next_record_type(),
        ) {
            (true, Some(n), Some(t)) => next = Some((n.to_string(), t.clone())),
            _ => break,
        }
    }
    let mut sweep = Sweep::default();
    if left.is_empty() {
        return Ok(sweep);
    }
    let ids: Vec<String> = left.iter().map(|(id, _)| id.clone()).collect();
    // The deployment is gone by now: when EC2 cannot be asked, nothing is deleted and the
    // records are named, and destroy goes on.
    let tags = signed::instance_tags(aws, &ids).await;
    for (instance, record) in left {
        let shown = record.name().trim_end_matches('.').to_string();
        let why = match tags
            .as_ref()
            .map(|t| t.get(&instance).map(|t| t.get(SERVER_STACK_TAG)))
        {
            Ok(Some(Some(owner))) if owner == stack => {
                delete_record(aws, zone, &record).await?;
                sweep.deleted.push(shown);
                continue;
            }
            Ok(Some(Some(owner))) => {
                format!("instance {instance} is a server of deployment {owner}")
            }
            Ok(Some(None)) => format!("instance {instance} is not a bbbctl server"),
            Ok(None) => format!(
                "EC2 knows no instance {instance} in this region (it forgets terminated ones after about an hour)"
            ),
            Err(e) => format!("EC2 could not say whose instance {instance} is ({e:#})"),
        };
        sweep.kept.push(KeptRecord {
            delete_batch: delete_batch(&record),
            name: shown,
            instance,
            why,
        });
    }
    Ok(sweep)
}

async fn delete_record(
    aws: &Aws,
    zone: &str,
    record: &aws_sdk_route53::types::ResourceRecordSet,
) -> Result<()> {
    let change = aws_sdk_route53::types::Change::builder()
        .action(aws_sdk_route53::types::ChangeAction::Delete)
        .resource_record_set(record.clone())
        .build()?;
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(change)
                .build()?,
        )
        .send()
        .await
        .aws_context(format_args!("deleting the record {}", record.name()))?;
    Ok(())
}

/// The change batch (JSON, as the aws CLI takes it) that deletes `record`: a DELETE must
/// repeat the record's values.
fn delete_batch(record: &aws_sdk_route53::types::ResourceRecordSet) -> String {
    let mut set = json!({"Name": record.name(), "Type": record.r#type().as_str()});
    if let Some(ttl) = record.ttl() {
        set["TTL"] = json!(ttl);
    }
    if !record.resource_records().is_empty() {
        set["ResourceRecords"] = record
            .resource_records()
            .iter()
            .map(|r| json!({"Value": r.value()}))
            .collect();
    }
    if let Some(alias) = record.alias_target() {
        set["AliasTarget"] = json!({
            "HostedZoneId": alias.hosted_zone_id(),
            "DNSName": alias.dns_name(),
            "EvaluateTargetHealth": alias.evaluate_target_health(),
        });
    }
    json!({"Changes": [{"Action": "DELETE", "ResourceRecordSet": set}]}).to_string()
}

/// A resource the templates keep on delete (DeletionPolicy), with its physical id.
struct Kept {
    kind: String,
    physical: String,
    policy: String,
}

impl Kept {
    /// What really stays after the delete began at `since`: for `Snapshot` on an Aurora
    /// cluster, the final snapshots RDS lists for it (none, when the snapshot failed or was
    /// already deleted: then nothing is claimed, and a warning says so).
    async fn what_is_left(
        &self,
        aws: &Aws,
        since: &aws_smithy_types::DateTime,
    ) -> Result<Vec<String>> {
        let Kept {
            kind,
            physical,
            policy,
        } = self;
        if policy != "Snapshot" {
            return Ok(vec![format!("{kind} {physical} (DeletionPolicy {policy})")]);
        }
        if kind != "AWS::RDS::DBCluster" {
            return Ok(vec![format!(
                "a final snapshot of {kind} {physical} (DeletionPolicy Snapshot)"
            )]);
        }
        let snapshots = final_cluster_snapshots(aws, physical, since).await?;
        Ok(snapshots
            .into_iter()
            .map(|id| {
                format!(
                    "final snapshot {id} of Aurora cluster {physical} (DeletionPolicy Snapshot); delete it when you no longer need the data"
                )
            })
            .collect())
    }
}

/// The manual snapshots RDS lists for Aurora cluster `cluster` taken since `since` (a minute's
/// leeway for clocks): the final snapshot CloudFormation takes when it deletes the cluster
/// (DeletionPolicy Snapshot). None, with a warning in the log, when it failed or is gone.
pub(super) async fn final_cluster_snapshots(
    aws: &Aws,
    cluster: &str,
    since: &aws_smithy_types::DateTime,
) -> Result<Vec<String>> {
    // CloudFormation's snapshots of it since then (bbbctl backup's left out), every page.
    let snapshots = crate::backup::kept_snapshots(aws, cluster, since.secs() - 60).await?;
    if snapshots.is_empty() {
        tracing::warn!("no final snapshot of Aurora cluster {cluster} was found");
    }
    Ok(snapshots)
}

/// What deleting the root stack leaves behind by design (e.g. the database's final snapshot):
/// the templates' DeletionPolicy, with the physical ids of the live nested stacks' resources.
async fn kept_on_delete(aws: &Aws, root: &Stack) -> Result<Vec<Kept>> {
    let templates = Bundle::embedded().nested_templates()?;
    let root_id = root.stack_id().unwrap_or_default();
    let mut kept = Vec::new();
    for nested in stack_resources(aws, root_id).await? {
        let (Some(logical), Some(id)) =
            (nested.logical_resource_id(), nested.physical_resource_id())
        else {
            continue;
        };
        let Some(info) = templates
            .get(logical)
            .filter(|t| !t.kept_on_delete.is_empty())
        else {
            continue;
        };
        for r in stack_resources(aws, id).await? {
            let Some((_, kind, policy)) = info
                .kept_on_delete
                .iter()
                .find(|(l, _, _)| Some(l.as_str()) == r.logical_resource_id())
            else {
                continue;
            };
            kept.push(Kept {
                kind: kind.clone(),
                physical: r.physical_resource_id().unwrap_or("?").to_string(),
                policy: policy.clone(),
            });
        }
    }
    Ok(kept)
}
