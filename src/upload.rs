//! Uploads template assets to the sources bucket: concurrently, and only the objects that are
//! not there yet (keys are content-addressed, so an existing key means unchanged content).

use std::collections::HashSet;

use anyhow::Result;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures::{StreamExt, TryStreamExt};

use crate::error::AwsContext;
use crate::templates::Asset;

/// How many uploads run at once.
const CONCURRENCY: usize = 8;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub uploaded: Vec<String>,
    pub unchanged: usize,
}

/// The URL CloudFormation reads a template from (virtual-hosted form: it works in every region,
/// and it is the form the emulator understands too).
pub fn template_url(bucket: &str, region: &str, key: &str) -> String {
    format!("https://{bucket}.s3.{region}.amazonaws.com/{key}")
}

/// Every key in the bucket.
pub async fn existing_keys(s3: &Client, bucket: &str) -> Result<HashSet<String>> {
    let mut keys = HashSet::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(format_args!("listing bucket {bucket}"))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    Ok(keys)
}

/// Uploads the assets whose keys are not in the bucket yet.
pub async fn sync(s3: &Client, bucket: &str, assets: &[Asset]) -> Result<SyncReport> {
    let existing = existing_keys(s3, bucket).await?;
    let missing: Vec<&Asset> = assets
        .iter()
        .filter(|a| !existing.contains(&a.key))
        .collect();
    let unchanged = assets.len() - missing.len();
    let uploaded: Vec<String> = futures::stream::iter(missing)
        .map(|a| async move {
            s3.put_object()
                .bucket(bucket)
                .key(&a.key)
                .content_type(a.content_type)
                .body(ByteStream::from(a.body.clone()))
                .send()
                .await
                .aws_context(format_args!("uploading {} to bucket {bucket}", a.path))?;
            tracing::info!(key = %a.key, "uploaded");
            anyhow::Ok(a.key.clone())
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(SyncReport {
        uploaded,
        unchanged,
    })
}

/// Deletes every object version and delete marker of a versioned bucket, page by page
/// (at most 1000 per request). Returns how many were deleted; a missing bucket counts as empty.
pub async fn empty_bucket(s3: &Client, bucket: &str) -> Result<usize> {
    let mut deleted = 0;
    loop {
        let page = match s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1000)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if crate::error::aws_code(&e) == Some("NoSuchBucket") => return Ok(deleted),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "listing the objects of bucket {bucket}: {}",
                    crate::error::describe(&e)
                ));
            }
        };
        let ids: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .set_key(key.map(str::to_string))
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(deleted);
        }
        let n = ids.len();
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .aws_context(format_args!("deleting objects from bucket {bucket}"))?;
        if let Some(err) = out.errors().first() {
            anyhow::bail!(
                "could not delete {} from bucket {bucket}: {}",
                err.key().unwrap_or("an object"),
                err.message().unwrap_or("unknown error")
            );
        }
        deleted += n;
    }
}
