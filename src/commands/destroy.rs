//! `bbbctl destroy`: empties the versioned sources bucket and the deployment's own buckets
//! (Greenlight's uploaded files), deletes the root stack with progress, then the sources
//! stack, and says what stays on purpose. Re-running after an
//! interruption carries on.

use anyhow::{Result, bail};
use aws_sdk_cloudformation::types::Stack;
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::{delete, ensure_ours, stack_resources};
use crate::aws::Aws;
use crate::cfn::ops::{describe_stack, outputs, parameters};
use crate::error::AwsContext;
use crate::memory;
use crate::settings::{Global, P_DOMAIN, P_ZONE, sources_stack_name};
use crate::templates::Bundle;
use crate::ui::Printer;
use crate::upload;

pub async fn run(g: &Global, p: &Printer, stack: &str) -> Result<()> {
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
    if !g.yes {
        let question = format!(
            "This deletes deployment {stack} in account {}, region {}: every stack, server, secret, Greenlight's uploaded files and the source bucket with its contents.",
            aws.account,
            aws.region()
        );
        if !p.confirm_by_typing(&question, stack)? {
            bail!("not confirmed: nothing was deleted");
        }
    }

    let kept = match &root {
        Some(root) => kept_on_delete(&aws, root).await?,
        None => Vec::new(),
    };
    let started = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let bucket = sources
        .as_ref()
        .and_then(|s| outputs(s).remove(out::BUCKET));
    let mut objects = 0;
    if let Some(bucket) = &bucket {
        objects = upload::empty_bucket(&aws.s3, bucket).await?;
        p.info(format!(
            "Bucket {bucket}: {objects} object version(s) deleted"
        ));
    }
    // CloudFormation deletes only empty buckets: Greenlight's uploads go first.
    if let Some(root) = &root {
        for bucket in deployment_buckets(&aws, root).await? {
            let n = upload::empty_bucket(&aws.s3, &bucket).await?;
            p.info(format!("Bucket {bucket}: {n} object version(s) deleted"));
            objects += n;
        }
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
    let swept = match &server_names {
        Some((zone, domain)) if !zone.is_empty() && !domain.is_empty() => {
            sweep_server_records(&aws, zone, domain).await?
        }
        _ => Vec::new(),
    };
    // The pull-through cache rule went with the root stack; the repositories its first
    // pulls created are ECR's, not CloudFormation's.
    let cached = match &image_cache {
        Some(prefix) => delete_cached_images(&aws, prefix).await?,
        None => Vec::new(),
    };
    memory::forget(stack);
    let mut left = Vec::new();
    for k in &kept {
        left.extend(k.what_is_left(&aws, &started).await?);
    }
    let mut text = format!(
        "Deployment {stack} is deleted (stacks: {}).",
        deleted.join(", ")
    );
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
    if !swept.is_empty() {
        text.push_str(&format!(
            "\nRemoved DNS records that servers which did not shut down cleanly left behind: {}",
            swept.join(", ")
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
            "swept_records": swept,
            "deleted_image_repositories": cached,
        }),
    );
    Ok(())
}

/// The S3 buckets of the deployment's nested stacks (Greenlight's uploaded files), by the
/// stacks' own resource lists: nothing outside the deployment is touched.
async fn deployment_buckets(aws: &Aws, root: &Stack) -> Result<Vec<String>> {
    let mut stacks = vec![root.stack_id().unwrap_or_default().to_string()];
    let mut buckets = Vec::new();
    while let Some(stack) = stacks.pop() {
        for r in stack_resources(aws, &stack).await? {
            let (Some(kind), Some(id)) = (r.resource_type(), r.physical_resource_id()) else {
                continue;
            };
            match kind {
                "AWS::CloudFormation::Stack" => stacks.push(id.to_string()),
                "AWS::S3::Bucket" => buckets.push(id.to_string()),
                _ => {}
            }
        }
    }
    Ok(buckets)
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

/// The BBB servers write their own records, `bbb-<instance id without i->.<domain>` (A), and each
/// deletes its own when it shuts down (templates/scripts/bbb-scalelite.sh `dns-delete`). Once
/// the deployment's stacks are gone, so are its servers: a record of that shape still in the
/// zone was left by a server that crashed, and would point at an address AWS hands to someone
/// else. Only that shape, under the deployment's own domain, is touched.
async fn sweep_server_records(aws: &Aws, zone: &str, domain: &str) -> Result<Vec<String>> {
    let name = regex::Regex::new(&format!(
        r"^bbb-[0-9a-f]{{8,17}}\.{}\.?$",
        regex::escape(domain)
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
        left.extend(
            page.resource_record_sets()
                .iter()
                .filter(|r| {
                    r.r#type() == &aws_sdk_route53::types::RrType::A && name.is_match(r.name())
                })
                .cloned(),
        );
        match (
            page.is_truncated(),
            page.next_record_name(),
            page.next_record_type(),
        ) {
            (true, Some(n), Some(t)) => next = Some((n.to_string(), t.clone())),
            _ => break,
        }
    }
    let mut swept = Vec::new();
    for record in left {
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
        swept.push(record.name().trim_end_matches('.').to_string());
    }
    Ok(swept)
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
        let out = aws
            .rds
            .describe_db_cluster_snapshots()
            .db_cluster_identifier(physical)
            .snapshot_type("manual")
            .send()
            .await
            .aws_context(format_args!("looking up the final snapshot of {physical}"))?;
        let snapshots: Vec<String> = out
            .db_cluster_snapshots()
            .iter()
            .filter(|s| {
                s.snapshot_create_time()
                    .is_none_or(|t| t.secs() >= since.secs() - 60)
            })
            .filter_map(|s| s.db_cluster_snapshot_identifier().map(str::to_string))
            .collect();
        if snapshots.is_empty() {
            tracing::warn!("no final snapshot of Aurora cluster {physical} was found");
        }
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
