//! Copies of a deployment's data and their restore, below `bbbctl backup`, `backups` and
//! `restore`: what a copy is (an Aurora cluster snapshot, an AWS Backup recovery point of the
//! recordings file system, an EBS snapshot of single mode's data volume), how long each one
//! lives, finding every copy of a deployment by its name (also once its stacks are gone),
//! taking new ones and waiting for them, and the steps of a restore that are not
//! CloudFormation's (the master password, the services' restart, the recordings' copy back).
//!
//! Reports go through a `&dyn Fn(String)` the caller passes (the printer): no UI here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_rds::types::{DbClusterSnapshot, Tag};
use aws_smithy_types::date_time::Format;
use serde::Serialize;

use crate::aws::Aws;
use crate::error::{AwsContext, usage};
use crate::signed::{self, JobState, OneOffTask, RecoveryPoint, SnapshotInfo};

/// Tag every bbbctl stack carries (and CloudFormation passes on to the resources in them);
/// bbbctl's own copies carry it too.
pub const DEPLOYMENT_TAG: &str = "bbbctl:deployment";
/// Tag the templates put on the deployment's resources (the Aurora cluster copies it to its
/// snapshots, CopyTagsToSnapshot; the data volume's final snapshot may carry it).
pub const STACK_TAG: &str = "bbbctl:stack";
/// Tag of the copies `bbbctl backup` takes (value `on-demand`).
pub const KIND_TAG: &str = "bbbctl:backup";
/// Root parameter naming the cluster snapshot the database was restored from.
pub const P_DB_SNAPSHOT: &str = "BBBDatabaseSnapshot";
/// Root parameter with the deployment's Aurora engine version.
pub const P_DB_ENGINE_VERSION: &str = "BBBDBEngineVersion";
/// The vault of the EFS automatic backups (AWS Backup's default EFS plan: daily, 35 days).
pub const AUTOMATIC_EFS_VAULT: &str = "aws/efs/automatic-backup-vault";
/// Days the default EFS backup plan keeps a daily recovery point.
pub const AUTOMATIC_EFS_DAYS: u32 = 35;

/// The AWS Backup vault of a deployment's on-demand recovery points. bbbctl creates it on
/// the first `backup`, outside the stacks, so that it outlives the deployment with them.
pub fn vault_name(stack: &str) -> String {
    format!("bbbctl-{stack}")
}

/// The identifier of a cluster snapshot `bbbctl backup` takes at `now` (epoch seconds):
/// `bbbctl-<stack>-<yyyymmdd>-<hhmmss>`, lower case, single hyphens, as RDS requires.
pub fn snapshot_name(stack: &str, now: i64) -> String {
    let stamp = timestamp(now)
        .replace(['-', ':'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string();
    let mut name = format!("bbbctl-{}-{stamp}", stack.to_lowercase());
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    name
}

/// An epoch time in UTC as ISO 8601 (`2026-01-31T12:00:00Z`).
pub fn timestamp(secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

/// What a copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holds {
    /// The Aurora cluster: Greenlight's and Scalelite's databases (scalable mode).
    Database,
    /// The EFS file system: published, unpublished and spooled recordings (scalable mode).
    Recordings,
    /// Single mode's data volume: Greenlight's database and uploads, recordings, the
    /// certificate.
    DataVolume,
}

impl Holds {
    pub fn label(self) -> &'static str {
        match self {
            Holds::Database => "database",
            Holds::Recordings => "recordings",
            Holds::DataVolume => "data volume",
        }
    }
}

/// How a copy came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `bbbctl backup`.
    OnDemand,
    /// AWS's own schedule: Aurora's automated backups, EFS automatic backups.
    Automatic,
    /// CloudFormation's snapshot of a resource it deleted or replaced (destroy, a mode
    /// switch, a restore), or one taken by hand.
    Snapshot,
    /// Aurora's point-in-time window (not a copy one can name: a range).
    PointInTime,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::OnDemand => "bbbctl backup",
            Origin::Automatic => "automatic",
            Origin::Snapshot => "kept snapshot",
            Origin::PointInTime => "point in time",
        }
    }
}

/// One copy of a deployment's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Copy {
    pub holds: Holds,
    pub origin: Origin,
    /// What `bbbctl restore --from` takes (a snapshot id, a recovery point ARN); for the
    /// point-in-time window, the cluster.
    pub id: String,
    /// What it is a copy of: cluster, file system ARN, volume.
    pub source: String,
    /// Epoch seconds.
    pub created: Option<i64>,
    /// Epoch seconds; `None` with `until_deleted`, or when AWS does not say.
    pub expires: Option<i64>,
    /// Lives until someone deletes it (manual snapshots).
    pub until_deleted: bool,
    pub size_bytes: Option<i64>,
    pub status: String,
    /// One line more, for the point-in-time window (its range).
    pub note: String,
}

impl Copy {
    /// How long it lives, in words.
    pub fn lives(&self) -> String {
        if self.until_deleted {
            return "until deleted".to_string();
        }
        if self.origin == Origin::PointInTime {
            return "rolling window".to_string();
        }
        match self.expires {
            Some(t) => format!("until {}", timestamp(t)),
            None => "unknown".to_string(),
        }
    }
}

/// `n` bytes in GiB or MiB, for a table.
pub fn size_text(n: Option<i64>) -> String {
    match n {
        None => "-".to_string(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

/// The copies as a table, newest first within each kind of data.
pub fn render(copies: &[Copy]) -> String {
    if copies.is_empty() {
        return "  (no copies)".to_string();
    }
    let mut sorted: Vec<&Copy> = copies.iter().collect();
    sorted.sort_by(|a, b| a.holds.cmp(&b.holds).then(b.created.cmp(&a.created)));
    let rows: Vec<[String; 6]> = sorted
        .iter()
        .map(|c| {
            [
                c.holds.label().to_string(),
                c.origin.label().to_string(),
                c.created.map(timestamp).unwrap_or_else(|| "-".into()),
                c.lives(),
                size_text(c.size_bytes),
                if c.note.is_empty() {
                    c.id.clone()
                } else {
                    format!("{} ({})", c.id, c.note)
                },
            ]
        })
        .collect();
    let head = ["what", "origin", "created", "lives", "size", "id"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: [&str; 6]| {
        let mut s = String::from(" ");
        for (i, cell) in r.iter().enumerate().take(5) {
            s.push_str(&format!(" {cell:<w$}", w = widths[i]));
        }
        s.push_str(&format!(" {}", r[5]));
        s.trim_end().to_string()
    };
    let mut out = vec![line(head)];
    for r in &rows {
        out.push(line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    out.join("\n")
}

/// What `restore --from` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// An Aurora cluster snapshot (its identifier; an ARN is reduced to it).
    ClusterSnapshot(String),
    /// An AWS Backup recovery point of the recordings (its ARN).
    RecoveryPoint(String),
    /// An EBS snapshot of single mode's data volume.
    VolumeSnapshot(String),
}

/// Reads `--from`; a value of no known shape is a usage error that lists the shapes.
pub fn parse_from(id: &str) -> Result<From> {
    let id = id.trim();
    let shapes = "an Aurora cluster snapshot (its identifier, e.g. bbbctl-bbb-20260131-120000, or its ARN), \
                  an AWS Backup recovery point ARN (arn:aws:backup:REGION:ACCOUNT:recovery-point:ID) or an EBS snapshot id (snap-…); \
                  `bbbctl backups -s STACK` lists a deployment's";
    if let Some(hex) = id.strip_prefix("snap-") {
        if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(From::VolumeSnapshot(id.to_string()));
        }
        return Err(usage(format!(
            "--from {id:?} is not an EBS snapshot id: {shapes}"
        )));
    }
    if let Some(rest) = id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() == 5 && parts[1] == "backup" && parts[4].starts_with("recovery-point:") {
            let point = &parts[4]["recovery-point:".len()..];
            if !point.is_empty() && point.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Ok(From::RecoveryPoint(id.to_string()));
            }
        }
        if parts.len() == 5 && parts[1] == "rds" && parts[4].starts_with("cluster-snapshot:") {
            let name = &parts[4]["cluster-snapshot:".len()..];
            if is_snapshot_name(name) {
                return Ok(From::ClusterSnapshot(name.to_string()));
            }
        }
        return Err(usage(format!(
            "--from {id:?} is not an ARN bbbctl restores from: {shapes}"
        )));
    }
    if is_snapshot_name(id) {
        return Ok(From::ClusterSnapshot(id.to_string()));
    }
    Err(usage(format!(
        "--from {id:?} is not a copy bbbctl knows: {shapes}"
    )))
}

/// An RDS cluster snapshot identifier: a letter, then letters, digits, hyphens (automated
/// ones start `rds:`), at most 255.
fn is_snapshot_name(name: &str) -> bool {
    let plain = name.strip_prefix("rds:").unwrap_or(name);
    !plain.is_empty()
        && name.len() <= 255
        && plain.starts_with(|c: char| c.is_ascii_alphabetic())
        && plain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !plain.ends_with('-')
        && !plain.contains("--")
}

/// Whether a snapshot of engine version `snapshot` can be restored into a deployment whose
/// BBBDBEngineVersion is `deployment`: the same major version, not newer. Err: why not and
/// what to do.
pub fn engine_fits(snapshot: &str, deployment: &str) -> std::result::Result<(), String> {
    let parse = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    let (s, d) = (parse(snapshot), parse(deployment));
    if s.is_empty() || d.is_empty() {
        return Ok(()); // nothing to compare: RDS itself decides
    }
    if s[0] != d[0] {
        return Err(format!(
            "the snapshot is of Aurora PostgreSQL {snapshot}, the deployment runs major version {} ({P_DB_ENGINE_VERSION} {deployment}): \
             a restore keeps the major version. Set {P_DB_ENGINE_VERSION} to {snapshot} (`bbbctl setup --params`), restore, then upgrade",
            d[0]
        ));
    }
    if s > d {
        return Err(format!(
            "the snapshot is of Aurora PostgreSQL {snapshot}, newer than the deployment's {deployment} ({P_DB_ENGINE_VERSION}): \
             a database cannot go back a version. Set {P_DB_ENGINE_VERSION} to {snapshot} (`bbbctl setup --params`), then restore"
        ));
    }
    Ok(())
}

/// Whether tags say the copy belongs to `stack`.
pub fn tagged_for(tags: &BTreeMap<String, String>, stack: &str) -> bool {
    [DEPLOYMENT_TAG, STACK_TAG]
        .iter()
        .any(|k| tags.get(*k).is_some_and(|v| v == stack))
}

/// The deployment as the copies need it: what it holds now (`None` where it has none, or
/// its stacks are gone).
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    pub stack: String,
    /// The live Aurora cluster.
    pub cluster: Option<String>,
    /// The recordings file system's ARN.
    pub file_system_arn: Option<String>,
    /// Single mode's data volume.
    pub data_volume: Option<String>,
}

fn cluster_snapshot_tags(s: &DbClusterSnapshot) -> BTreeMap<String, String> {
    s.tag_list()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn secs(t: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    t.map(|t| t.secs())
}

/// Every Aurora cluster snapshot of the account, manual or automated (every page).
async fn cluster_snapshots(
    aws: &Aws,
    kind: &str,
    cluster: Option<&str>,
) -> Result<Vec<DbClusterSnapshot>> {
    let mut out = Vec::new();
    let mut pages = aws
        .rds
        .describe_db_cluster_snapshots()
        .snapshot_type(kind)
        .set_db_cluster_identifier(cluster.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context("listing Aurora cluster snapshots")?;
        out.extend(page.db_cluster_snapshots().iter().cloned());
    }
    Ok(out)
}

/// One cluster snapshot by its identifier; `None` when it does not exist.
pub async fn cluster_snapshot(aws: &Aws, id: &str) -> Result<Option<DbClusterSnapshot>> {
    match aws
        .rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_cluster_snapshots().first().cloned()),
        Err(e) if crate::error::aws_code(&e) == Some("DBClusterSnapshotNotFoundFault") => Ok(None),
        Err(e) => Err(anyhow::anyhow!(
            "reading cluster snapshot {id}: {}",
            crate::error::describe(&e)
        )),
    }
}

fn database_copy(s: &DbClusterSnapshot, origin: Origin, retention_days: Option<i32>) -> Copy {
    let created = secs(s.snapshot_create_time());
    let automated = origin == Origin::Automatic;
    Copy {
        holds: Holds::Database,
        origin,
        id: s
            .db_cluster_snapshot_identifier()
            .unwrap_or_default()
            .to_string(),
        source: s.db_cluster_identifier().unwrap_or_default().to_string(),
        created,
        expires: match (automated, created, retention_days) {
            (true, Some(c), Some(days)) => Some(c + i64::from(days) * 86_400),
            _ => None,
        },
        until_deleted: !automated,
        size_bytes: None,
        status: s.status().unwrap_or_default().to_string(),
        note: String::new(),
    }
}

/// The database's copies: the manual snapshots of this deployment (its tags, or taken of its
/// live cluster), the automated ones of the live cluster and its point-in-time window.
pub async fn database_copies(aws: &Aws, h: &Holdings) -> Result<Vec<Copy>> {
    let mut copies = Vec::new();
    for s in cluster_snapshots(aws, "manual", None).await? {
        let tags = cluster_snapshot_tags(&s);
        let of_live = h.cluster.is_some() && s.db_cluster_identifier() == h.cluster.as_deref();
        if !(tagged_for(&tags, &h.stack) || of_live) {
            continue;
        }
        let origin = if tags.get(KIND_TAG).is_some_and(|v| v == "on-demand") {
            Origin::OnDemand
        } else {
            Origin::Snapshot
        };
        copies.push(database_copy(&s, origin, None));
    }
    let Some(cluster) = &h.cluster else {
        return Ok(copies);
    };
    let described = aws
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .aws_context(format_args!("reading Aurora cluster {cluster}"))?;
    let live = described.db_clusters().first();
    let retention = live.and_then(|c| c.backup_retention_period());
    for s in cluster_snapshots(aws, "automated", Some(cluster)).await? {
        copies.push(database_copy(&s, Origin::Automatic, retention));
    }
    if let Some(c) = live
        && let (Some(from), Some(to)) = (c.earliest_restorable_time(), c.latest_restorable_time())
    {
        copies.push(Copy {
            holds: Holds::Database,
            origin: Origin::PointInTime,
            id: cluster.clone(),
            source: cluster.clone(),
            created: Some(from.secs()),
            expires: None,
            until_deleted: false,
            size_bytes: None,
            status: c.status().unwrap_or_default().to_string(),
            note: format!(
                "any second from {} to {}, kept {} day(s); README: restoring to a point in time",
                timestamp(from.secs()),
                timestamp(to.secs()),
                retention.unwrap_or(0)
            ),
        });
    }
    Ok(copies)
}

fn recordings_copy(p: &RecoveryPoint, origin: Origin) -> Copy {
    let created = p.created.map(|t| t as i64);
    Copy {
        holds: Holds::Recordings,
        origin,
        id: p.arn.clone(),
        source: p.resource.clone(),
        created,
        expires: p
            .delete_at
            .map(|t| t as i64)
            .or_else(|| match (origin, created) {
                // The default EFS plan's retention, when AWS does not list the date.
                (Origin::Automatic, Some(c)) => Some(c + i64::from(AUTOMATIC_EFS_DAYS) * 86_400),
                _ => None,
            }),
        until_deleted: false,
        size_bytes: p.size_bytes,
        status: p.status.clone(),
        note: String::new(),
    }
}

/// The recordings' copies: every recovery point in the deployment's own vault (also of file
/// systems it had before a destroy), and the automatic ones of those file systems.
pub async fn recordings_copies(aws: &Aws, h: &Holdings) -> Result<Vec<Copy>> {
    let mut copies = Vec::new();
    let mut file_systems: Vec<String> = h.file_system_arn.iter().cloned().collect();
    if let Some(points) = signed::recovery_points_in(aws, &vault_name(&h.stack), None).await? {
        for p in &points {
            if !p.resource.is_empty() && !file_systems.contains(&p.resource) {
                file_systems.push(p.resource.clone());
            }
            copies.push(recordings_copy(p, Origin::OnDemand));
        }
    }
    for fs in &file_systems {
        match signed::recovery_points_in(aws, AUTOMATIC_EFS_VAULT, Some(fs)).await {
            Ok(Some(points)) => {
                copies.extend(points.iter().map(|p| recordings_copy(p, Origin::Automatic)))
            }
            Ok(None) => break, // no automatic EFS backups in this account and region
            Err(e) => tracing::warn!("automatic EFS backups of {fs} could not be listed: {e:#}"),
        }
    }
    Ok(copies)
}

fn volume_copy(s: &SnapshotInfo) -> Copy {
    let on_demand = s.tags.get(KIND_TAG).is_some_and(|v| v == "on-demand");
    Copy {
        holds: Holds::DataVolume,
        origin: if on_demand {
            Origin::OnDemand
        } else {
            Origin::Snapshot
        },
        id: s.id.clone(),
        source: s.volume.clone(),
        created: aws_smithy_types::DateTime::from_str(&s.started, Format::DateTime)
            .ok()
            .map(|t| t.secs()),
        expires: None,
        until_deleted: true,
        size_bytes: s.size_gib.map(|g| g << 30),
        status: s.state.clone(),
        note: String::new(),
    }
}

/// Single mode's data volume copies: EBS snapshots tagged for the deployment, and those of its
/// live data volume.
pub async fn data_volume_copies(aws: &Aws, h: &Holdings) -> Result<Vec<Copy>> {
    let mut found: BTreeMap<String, SnapshotInfo> = BTreeMap::new();
    for key in [DEPLOYMENT_TAG, STACK_TAG] {
        for s in signed::snapshots_tagged(aws, key, &h.stack).await? {
            found.insert(s.id.clone(), s);
        }
    }
    if let Some(volume) = &h.data_volume {
        for s in signed::volume_snapshots(aws, volume).await? {
            found.insert(s.id.clone(), s);
        }
    }
    Ok(found.values().map(volume_copy).collect())
}

/// Every copy of the deployment's data.
pub async fn all_copies(aws: &Aws, h: &Holdings) -> Result<Vec<Copy>> {
    let mut copies = database_copies(aws, h).await?;
    copies.extend(recordings_copies(aws, h).await?);
    copies.extend(data_volume_copies(aws, h).await?);
    Ok(copies)
}

/// Calls `check` until it answers `Some`, at most `timeout`; pauses grow from 2 s to 15 s.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_secs(2);
    loop {
        if let Some(done) = check().await? {
            return Ok(done);
        }
        if start.elapsed() >= timeout {
            bail!(
                "{what} did not finish within {} s (--timeout); it goes on in AWS",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(15));
    }
}

/// Starts a manual cluster snapshot of `cluster`, tagged as `bbbctl backup`'s: its identifier
/// (`snapshot_name`, with `-2`, `-3`, … when a backup of the same second holds the name).
pub async fn snapshot_cluster(aws: &Aws, stack: &str, cluster: &str, now: i64) -> Result<String> {
    let base = snapshot_name(stack, now);
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    for n in 1..=9 {
        let id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let sent = aws
            .rds
            .create_db_cluster_snapshot()
            .db_cluster_identifier(cluster)
            .db_cluster_snapshot_identifier(&id)
            .tags(tag(DEPLOYMENT_TAG, stack))
            .tags(tag(KIND_TAG, "on-demand"))
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(id),
            Err(e) if crate::error::aws_code(&e) == Some("DBClusterSnapshotAlreadyExistsFault") => {
                continue;
            }
            Err(e) => {
                return Err(e).aws_context(format_args!("snapshotting Aurora cluster {cluster}"));
            }
        }
    }
    bail!("snapshots {base} to {base}-9 exist already: wait a second and run backup again")
}

/// Waits for a cluster snapshot to be available; `report` hears each new state.
pub async fn wait_cluster_snapshot(
    aws: &Aws,
    id: &str,
    timeout: Duration,
    report: &dyn Fn(String),
) -> Result<DbClusterSnapshot> {
    let last = RefCell::new(String::new());
    wait_for(timeout, &format!("cluster snapshot {id}"), || async {
        let s = cluster_snapshot(aws, id)
            .await?
            .with_context(|| format!("cluster snapshot {id} vanished"))?;
        let state = format!(
            "{} ({}%)",
            s.status().unwrap_or("?"),
            s.percent_progress().unwrap_or(0)
        );
        if *last.borrow() != state {
            report(format!("  database snapshot {id}: {state}"));
            *last.borrow_mut() = state;
        }
        match s.status() {
            Some("available") => Ok(Some(s)),
            Some("failed") | Some("deleted") | Some("deleting") => {
                bail!("cluster snapshot {id} ended {}", s.status().unwrap_or("?"))
            }
            _ => Ok(None),
        }
    })
    .await
}

/// The recordings' on-demand backup: the deployment's vault (created on first use, tagged),
/// then an AWS Backup job kept `days` days: (job id, recovery point ARN).
pub async fn back_up_recordings(
    aws: &Aws,
    stack: &str,
    file_system_arn: &str,
    role: &str,
    days: u32,
    token: &str,
) -> Result<(String, String)> {
    let vault = vault_name(stack);
    let tags: BTreeMap<String, String> = [(DEPLOYMENT_TAG.to_string(), stack.to_string())].into();
    if signed::create_backup_vault(aws, &vault, &tags).await? {
        tracing::info!("created AWS Backup vault {vault}");
    }
    let mut point_tags = tags.clone();
    point_tags.insert(KIND_TAG.to_string(), "on-demand".to_string());
    signed::start_backup_job(aws, &vault, file_system_arn, role, days, &point_tags, token).await
}

/// Waits for an AWS Backup job (`describe`: backup or restore) to complete.
pub async fn wait_job<F, Fut>(
    what: &str,
    timeout: Duration,
    report: &dyn Fn(String),
    mut describe: F,
) -> Result<JobState>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<JobState>>,
{
    let last = RefCell::new(String::new());
    let last = &last;
    wait_for(timeout, what, || {
        let fut = describe();
        async move {
            let j = fut.await?;
            let state = if j.percent.is_empty() {
                j.state.clone()
            } else {
                format!("{} ({}%)", j.state, j.percent.trim_end_matches(".0"))
            };
            if *last.borrow() != state {
                report(format!("  {what}: {state}"));
                *last.borrow_mut() = state;
            }
            match j.state.as_str() {
                "COMPLETED" => Ok(Some(j)),
                "FAILED" | "ABORTED" | "EXPIRED" | "PARTIAL" => bail!(
                    "{what} ended {}{}",
                    j.state,
                    if j.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", j.message)
                    }
                ),
                _ => Ok(None),
            }
        }
    })
    .await
}

/// Snapshots single mode's data volume, tagged as `bbbctl backup`'s.
pub async fn snapshot_volume(aws: &Aws, stack: &str, volume: &str) -> Result<SnapshotInfo> {
    let tags: BTreeMap<String, String> = [
        (DEPLOYMENT_TAG.to_string(), stack.to_string()),
        (KIND_TAG.to_string(), "on-demand".to_string()),
        ("Name".to_string(), format!("{stack}-bbb-data")),
    ]
    .into();
    signed::create_snapshot(
        aws,
        volume,
        &format!("bbbctl backup of the data volume of deployment {stack}"),
        &tags,
    )
    .await
}

/// Waits for an EBS snapshot to be completed.
pub async fn wait_volume_snapshot(
    aws: &Aws,
    id: &str,
    timeout: Duration,
    report: &dyn Fn(String),
) -> Result<SnapshotInfo> {
    let last = RefCell::new(String::new());
    wait_for(timeout, &format!("snapshot {id}"), || async {
        let s = signed::snapshot(aws, id)
            .await?
            .with_context(|| format!("snapshot {id} vanished"))?;
        let state = if s.progress.is_empty() {
            s.state.clone()
        } else {
            format!("{} ({})", s.state, s.progress)
        };
        if *last.borrow() != state {
            report(format!("  data volume snapshot {id}: {state}"));
            *last.borrow_mut() = state;
        }
        match s.state.as_str() {
            "completed" => Ok(Some(s)),
            "error" => bail!("snapshot {id} failed"),
            _ => Ok(None),
        }
    })
    .await
}

/// After a restore from a snapshot the cluster has the snapshot's master password: sets it
/// to the deployment's own (the secret `secret_arn`), so the front end's init containers log
/// in, and waits until the cluster is available again. The password is never printed.
pub async fn reset_master_password(
    aws: &Aws,
    cluster: &str,
    secret_arn: &str,
    timeout: Duration,
) -> Result<()> {
    let text = aws
        .secrets
        .get_secret_value()
        .secret_id(secret_arn)
        .send()
        .await
        .aws_context("reading the database's master login")?
        .secret_string()
        .map(str::to_string)
        .context("the database's master login secret holds no text")?;
    let password = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["password"].as_str().map(str::to_string))
        .context("the database's master login secret has no \"password\"")?;
    aws.rds
        .modify_db_cluster()
        .db_cluster_identifier(cluster)
        .master_user_password(password)
        .apply_immediately(true)
        .send()
        .await
        .aws_context(format_args!(
            "setting the master password of cluster {cluster}"
        ))?;
    wait_for(timeout, &format!("Aurora cluster {cluster}"), || async {
        let out = aws
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .aws_context(format_args!("reading Aurora cluster {cluster}"))?;
        Ok(out
            .db_clusters()
            .first()
            .filter(|c| c.status() == Some("available"))
            .map(|_| ()))
    })
    .await
}

/// The snapshots CloudFormation took of `cluster` as it replaced or deleted it, at or after
/// `since` (epoch seconds): its manual snapshots then, but `bbbctl backup`'s.
pub async fn kept_snapshots(aws: &Aws, cluster: &str, since: i64) -> Result<Vec<String>> {
    Ok(cluster_snapshots(aws, "manual", Some(cluster))
        .await?
        .iter()
        .filter(|s| secs(s.snapshot_create_time()).is_some_and(|t| t >= since))
        .filter(|s| {
            cluster_snapshot_tags(s)
                .get(KIND_TAG)
                .is_none_or(|v| v != "on-demand")
        })
        .filter_map(|s| s.db_cluster_snapshot_identifier().map(str::to_string))
        .collect())
}

/// Starts the one-off task that copies restored recordings back in place.
pub async fn run_copy_back(aws: &Aws, task: &OneOffTask) -> Result<String> {
    signed::run_task(aws, task).await
}

/// Waits for the copy-back task to stop: Ok when its container exited 0.
pub async fn wait_copy_back(
    aws: &Aws,
    cluster: &str,
    task: &str,
    timeout: Duration,
    report: &dyn Fn(String),
) -> Result<()> {
    let last = RefCell::new(String::new());
    let state = wait_for(timeout, &format!("task {task}"), || async {
        let s = signed::task_state(aws, cluster, task).await?;
        if *last.borrow() != s.last_status {
            report(format!("  copy-back task: {}", s.last_status));
            *last.borrow_mut() = s.last_status.clone();
        }
        Ok((s.last_status == "STOPPED").then_some(s))
    })
    .await?;
    match state.exit_code {
        Some(0) => Ok(()),
        code => bail!(
            "the copy-back task {task} stopped {}{}",
            code.map(|c| format!("with exit code {c}"))
                .unwrap_or_else(|| "before its container ran".to_string()),
            if state.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", state.reason)
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_what_rds_takes() {
        // 2026-01-31T12:34:56Z
        assert_eq!(
            snapshot_name("Bbb--Prod", 1_769_862_896),
            "bbbctl-bbb-prod-20260131-123456"
        );
        assert!(is_snapshot_name(&snapshot_name("bbb", 0)));
    }

    #[test]
    fn from_takes_the_three_kinds_and_refuses_the_rest() {
        assert_eq!(
            parse_from("bbbctl-bbb-20260131-123456").unwrap(),
            From::ClusterSnapshot("bbbctl-bbb-20260131-123456".into())
        );
        assert_eq!(
            parse_from("arn:aws:rds:eu-central-1:123456789012:cluster-snapshot:final-1").unwrap(),
            From::ClusterSnapshot("final-1".into())
        );
        assert_eq!(
            parse_from("rds:cluster-2026-01-31-03-00").unwrap(),
            From::ClusterSnapshot("rds:cluster-2026-01-31-03-00".into())
        );
        let point = "arn:aws:backup:eu-central-1:123456789012:recovery-point:1EB3B5E7-9EB0-435A-A80B-108B488B0D45";
        assert_eq!(
            parse_from(point).unwrap(),
            From::RecoveryPoint(point.into())
        );
        assert_eq!(
            parse_from("snap-0123456789abcdef0").unwrap(),
            From::VolumeSnapshot("snap-0123456789abcdef0".into())
        );
        for bad in [
            "",
            "snap-xyz",
            "1snapshot",
            "a--b",
            "arn:aws:s3:::bucket",
            "arn:aws:backup:eu-central-1:123456789012:backup-vault:x",
            "name with spaces",
        ] {
            let e = parse_from(bad).unwrap_err();
            assert_eq!(crate::error::exit_code(&e), 2, "{bad}");
            assert!(e.to_string().contains("bbbctl backups"), "{e}");
        }
    }

    #[test]
    fn a_restore_keeps_the_major_version_and_never_goes_back() {
        assert!(engine_fits("16.8", "16.8").is_ok());
        assert!(engine_fits("16.6", "16.8").is_ok());
        let newer = engine_fits("16.9", "16.8").unwrap_err();
        assert!(newer.contains("cannot go back"), "{newer}");
        let major = engine_fits("15.10", "16.8").unwrap_err();
        assert!(major.contains("keeps the major version"), "{major}");
        assert!(engine_fits("17.2", "16.8").is_err());
    }

    #[test]
    fn copies_say_how_long_they_live() {
        let mut c = Copy {
            holds: Holds::Recordings,
            origin: Origin::OnDemand,
            id: "arn:aws:backup:us-east-1:1:recovery-point:A".into(),
            source: "fs".into(),
            created: Some(0),
            expires: Some(35 * 86_400),
            until_deleted: false,
            size_bytes: Some(3 << 30),
            status: "COMPLETED".into(),
            note: String::new(),
        };
        assert_eq!(c.lives(), "until 1970-02-05T00:00:00Z");
        let table = render(std::slice::from_ref(&c));
        assert!(table.contains("recordings"), "{table}");
        assert!(table.contains("3.0 GiB"), "{table}");
        c.until_deleted = true;
        assert_eq!(c.lives(), "until deleted");
        assert_eq!(render(&[]), "  (no copies)");
    }

    #[test]
    fn automatic_recovery_points_expire_after_the_default_plan_when_unlisted() {
        let p = RecoveryPoint {
            arn: "a".into(),
            vault: AUTOMATIC_EFS_VAULT.into(),
            resource: "fs".into(),
            status: "COMPLETED".into(),
            created: Some(100.0),
            delete_at: None,
            size_bytes: None,
        };
        assert_eq!(
            recordings_copy(&p, Origin::Automatic).expires,
            Some(100 + 35 * 86_400)
        );
        assert_eq!(recordings_copy(&p, Origin::OnDemand).expires, None);
    }
}
