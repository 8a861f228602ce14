//! A few AWS calls made without their SDK crates — EC2 DescribeInstances (the BBB servers'
//! public addresses; the tags of the servers whose DNS records destroy sweeps), DescribeSnapshots and DeleteSnapshot (the single server's data volume),
//! ElastiCache DescribeReplicationGroups, ECS DescribeServices, CloudWatch Logs
//! DeleteLogGroup and GetLogEvents —
//! as small signed requests: SigV4 with the SDK's own signer and the credentials `Aws`
//! resolved, one function per protocol (query, JSON 1.1). The EC2 crate alone would take
//! longer to compile than the rest of bbbctl.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use hyper::Method;
use serde_json::Value;

use crate::aws::Aws;
use crate::http::{Http, Reply, Resolver};

/// POSTs `body` to `service`'s endpoint in the deployment's region (or the custom endpoint),
/// signed for `service`, with `headers` (content type, target) signed too.
async fn post(aws: &Aws, service: &str, headers: &[(&str, &str)], body: String) -> Result<Reply> {
    send(aws, service, Method::POST, "/", headers, body).await
}

/// Sends `body` with `method` to `path` (percent-encoded, with its query) of `service`'s
/// endpoint, signed for `service` with `headers`.
async fn send(
    aws: &Aws,
    service: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> Result<Reply> {
    let region = aws.region().to_string();
    let endpoint = match aws.config.endpoint_url() {
        Some(url) => format!("{}{path}", url.trim_end_matches('/')),
        None => format!("https://{service}.{region}.amazonaws.com{path}"),
    };
    let credentials = aws
        .config
        .credentials_provider()
        .ok_or_else(|| anyhow!("no AWS credentials"))?
        .provide_credentials()
        .await
        .context("AWS credentials")?;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .context("signing an AWS request")?
        .into();
    let signable = SignableRequest::new(
        method.as_str(),
        &endpoint,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .context("signing an AWS request")?;
    let (instructions, _) = sign(signable, &params)
        .context("signing an AWS request")?
        .into_parts();
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(instructions.headers());
    let http = Http::with(
        Duration::from_secs(30),
        Resolver::default(),
        crate::http::tls_config()?,
    )?;
    http.send(method, &endpoint, &all, Some(body.into_bytes()))
        .await
}

/// A query-protocol call (EC2, ElastiCache): the answer's XML, or its error in one line
/// ("Action: Code: message"). `params` values must be URL-encoded.
pub(crate) async fn query(
    aws: &Aws,
    service: &str,
    action: &str,
    version: &str,
    params: &[(String, String)],
) -> Result<String> {
    let mut body = format!("Action={action}&Version={version}");
    for (k, v) in params {
        body.push_str(&format!("&{k}={v}"));
    }
    let headers = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let reply = post(aws, service, &headers, body)
        .await
        .with_context(|| action.to_string())?;
    let text = reply.text();
    if reply.status != 200 {
        let code = between(&text, "<Code>", "</Code>").unwrap_or("?");
        let message = between(&text, "<Message>", "</Message>").unwrap_or("");
        bail!("{action}: {code}: {message}");
    }
    Ok(text)
}

/// A JSON 1.1 call (ECS): the answer, or its error in one line.
async fn json(aws: &Aws, service: &str, target: &str, body: &Value) -> Result<Value> {
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    let action = target.rsplit('.').next().unwrap_or(target);
    let reply = post(aws, service, &headers, body.to_string())
        .await
        .with_context(|| action.to_string())?;
    let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    if reply.status != 200 {
        let code = answer["__type"]
            .as_str()
            .unwrap_or("?")
            .rsplit('#')
            .next()
            .unwrap_or("?");
        bail!(
            "{action}: {code}: {}",
            answer["message"]
                .as_str()
                .or(answer["Message"].as_str())
                .unwrap_or("")
        );
    }
    Ok(answer)
}

/// SSM GetParameter: the value of parameter `name` (e.g. the AMI id a public
/// `/aws/service/...` parameter names now); `None` when it does not exist.
pub async fn ssm_parameter(aws: &Aws, name: &str) -> Result<Option<String>> {
    let body = serde_json::json!({ "Name": name });
    match json(aws, "ssm", "AmazonSSM.GetParameter", &body).await {
        Ok(answer) => Ok(answer["Parameter"]["Value"].as_str().map(str::to_string)),
        Err(e) if e.to_string().contains(": ParameterNotFound:") => Ok(None),
        Err(e) => Err(e),
    }
}

/// What bbbctl reads of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceInfo {
    pub public_ip: Option<String>,
    /// ISO 8601, as EC2 gives it.
    pub launched: Option<String>,
}

/// DescribeInstances of these instances (instance id → what bbbctl reads).
pub async fn instances(aws: &Aws, ids: &[String]) -> Result<BTreeMap<String, InstanceInfo>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let params: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("InstanceId.{}", i + 1), id.clone()))
        .collect();
    Ok(parse_instances(
        &query(aws, "ec2", "DescribeInstances", "2016-11-15", &params).await?,
    ))
}

/// Public IPv4 address of each instance that has one (instance id → address).
pub async fn public_addresses(aws: &Aws, ids: &[String]) -> Result<BTreeMap<String, String>> {
    Ok(instances(aws, ids)
        .await?
        .into_iter()
        .filter_map(|(id, i)| Some((id, i.public_ip?)))
        .collect())
}

/// The tags of each of these instances that EC2 still describes (a terminated one too, for
/// "usually less than one hour", as DescribeInstances documents): instance id → key → value.
/// Asked through the `instance-id` filter, so an id EC2 does not know is simply absent
/// (`InstanceId.N` fails the whole call on one unknown id).
pub async fn instance_tags(
    aws: &Aws,
    ids: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut found = BTreeMap::new();
    for batch in ids.chunks(100) {
        let mut token: Option<String> = None;
        loop {
            let mut params = vec![("Filter.1.Name".to_string(), "instance-id".to_string())];
            params.extend(
                batch
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (format!("Filter.1.Value.{}", i + 1), form_encode(id))),
            );
            if let Some(t) = &token {
                params.push(("NextToken".to_string(), form_encode(t)));
            }
            let xml = query(aws, "ec2", "DescribeInstances", "2016-11-15", &params).await?;
            found.extend(parse_instance_tags(&xml));
            token = child(&xml, "nextToken")
                .filter(|t| !t.is_empty())
                .map(unescape);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(found)
}

/// `value` for an `application/x-www-form-urlencoded` body (unreserved characters kept).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Status of an ElastiCache replication group (e.g. "available").
pub async fn replication_group_status(aws: &Aws, id: &str) -> Result<String> {
    let xml = query(
        aws,
        "elasticache",
        "DescribeReplicationGroups",
        "2015-02-02",
        &[("ReplicationGroupId".into(), id.into())],
    )
    .await?;
    between(&xml, "<Status>", "</Status>")
        .map(str::to_string)
        .ok_or_else(|| anyhow!("replication group {id} has no status"))
}

/// An ECS service's name, desired and running task counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCount {
    pub name: String,
    pub desired: i64,
    pub running: i64,
}

/// Desired and running tasks of ECS services (ARNs) of one cluster.
pub async fn service_counts(
    aws: &Aws,
    cluster: &str,
    services: &[String],
) -> Result<Vec<ServiceCount>> {
    let answer = json(
        aws,
        "ecs",
        "AmazonEC2ContainerServiceV20141113.DescribeServices",
        &serde_json::json!({"cluster": cluster, "services": services}),
    )
    .await?;
    Ok(answer["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| ServiceCount {
            name: s["serviceName"].as_str().unwrap_or_default().to_string(),
            desired: s["desiredCount"].as_i64().unwrap_or(0),
            running: s["runningCount"].as_i64().unwrap_or(0),
        })
        .collect())
}

/// CloudWatch Logs (JSON 1.1, target prefix `Logs_20140328`).
pub(crate) async fn logs(aws: &Aws, action: &str, body: &Value) -> Result<Value> {
    json(aws, "logs", &format!("Logs_20140328.{action}"), body).await
}

/// Whether an error of `json`/`query` is AWS's `code` ("Action: Code: message").
pub(crate) fn is_code(e: &anyhow::Error, code: &str) -> bool {
    e.to_string().contains(&format!(": {code}:"))
}

/// DeleteLogGroup: `true` when it was deleted, `false` when it did not exist (done either way).
pub async fn delete_log_group(aws: &Aws, name: &str) -> Result<bool> {
    match logs(
        aws,
        "DeleteLogGroup",
        &serde_json::json!({ "logGroupName": name }),
    )
    .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_code(&e, "ResourceNotFoundException") => Ok(false),
        Err(e) => Err(e.context(format!("deleting log group {name}"))),
    }
}

/// The last `lines` messages of a log stream, oldest first (GetLogEvents from the end,
/// `startFromHead` false); empty when the group or stream does not exist (yet).
pub async fn log_tail(aws: &Aws, group: &str, stream: &str, lines: usize) -> Result<Vec<String>> {
    let body = serde_json::json!({
        "logGroupName": group,
        "logStreamName": stream,
        "startFromHead": false,
        "limit": lines.clamp(1, 10_000),
    });
    match logs(aws, "GetLogEvents", &body).await {
        Ok(answer) => Ok(log_messages(&answer, lines)),
        Err(e) if is_code(&e, "ResourceNotFoundException") => Ok(Vec::new()),
        Err(e) => Err(e.context(format!("reading log stream {stream} of {group}"))),
    }
}

/// The messages of a GetLogEvents answer in time order, at most the last `lines`.
fn log_messages(answer: &Value, lines: usize) -> Vec<String> {
    let mut events: Vec<(i64, String)> = answer["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let message = e["message"].as_str()?.trim_end_matches('\n').to_string();
            Some((e["timestamp"].as_i64().unwrap_or(0), message))
        })
        .collect();
    events.sort_by_key(|(t, _)| *t); // stable: same-millisecond lines keep their order
    let skip = events.len().saturating_sub(lines);
    events.into_iter().skip(skip).map(|(_, m)| m).collect()
}

/// An EBS snapshot as bbbctl reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: String,
    pub volume: String,
    /// ISO 8601, as EC2 gives it.
    pub started: String,
    pub state: String,
    /// Of its volume, GiB.
    pub size_gib: Option<i64>,
    /// e.g. "100%".
    pub progress: String,
    pub tags: BTreeMap<String, String>,
}

/// The account's own EBS snapshots of volume `volume` (DescribeSnapshots, filter volume-id).
pub async fn volume_snapshots(aws: &Aws, volume: &str) -> Result<Vec<SnapshotInfo>> {
    let params = [
        ("Owner.1".to_string(), "self".to_string()),
        ("Filter.1.Name".to_string(), "volume-id".to_string()),
        ("Filter.1.Value.1".to_string(), volume.to_string()),
    ];
    Ok(parse_snapshots(
        &query(aws, "ec2", "DescribeSnapshots", "2016-11-15", &params).await?,
    ))
}

/// DeleteSnapshot: `true` when deleted, `false` when it did not exist.
pub async fn delete_snapshot(aws: &Aws, id: &str) -> Result<bool> {
    let params = [("SnapshotId".to_string(), id.to_string())];
    match query(aws, "ec2", "DeleteSnapshot", "2016-11-15", &params).await {
        Ok(_) => Ok(true),
        Err(e) if is_code(&e, "InvalidSnapshot.NotFound") => Ok(false),
        Err(e) => Err(e.context(format!("deleting snapshot {id}"))),
    }
}

/// Each snapshot of a DescribeSnapshots answer (each `<item>` of its `<snapshotSet>`; the
/// fields of CreateSnapshot's answer stand at its top level).
fn parse_snapshots(xml: &str) -> Vec<SnapshotInfo> {
    let snapshots = match child(xml, "snapshotSet") {
        Some(set) => items(set),
        None if xml.contains("<snapshotId>") => vec![xml],
        None => Vec::new(),
    };
    snapshots
        .into_iter()
        .filter_map(|item| {
            // The item's own fields: its <tagSet> holds <item>s of their own.
            let field = |name: &str| child(item, name).map(unescape);
            Some(SnapshotInfo {
                id: field("snapshotId")?,
                volume: field("volumeId")?,
                started: field("startTime").unwrap_or_default(),
                state: field("status").unwrap_or_default(),
                size_gib: field("volumeSize").and_then(|v| v.parse().ok()),
                progress: field("progress").unwrap_or_default(),
                tags: tag_set(item),
            })
        })
        .collect()
}

pub(crate) fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(text[start..end].trim())
}

/// Each instance of a DescribeInstances answer (its `<item>` holds one `<instanceId>`).
fn parse_instances(xml: &str) -> BTreeMap<String, InstanceInfo> {
    xml.split("<instanceId>")
        .skip(1)
        .filter_map(|part| {
            let id = part.split("</instanceId>").next()?.trim().to_string();
            let info = InstanceInfo {
                public_ip: between(part, "<ipAddress>", "</ipAddress>").map(str::to_string),
                launched: between(part, "<launchTime>", "</launchTime>").map(str::to_string),
            };
            Some((id, info))
        })
        .collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters (query values, path
/// segments).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A REST-JSON call (AWS Backup): `what` names it in errors; the answer (`{}` when empty),
/// or "what: Code: message".
async fn rest(
    aws: &Aws,
    service: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    what: &str,
) -> Result<Value> {
    let headers = [("content-type", "application/json")];
    let text = body.map(Value::to_string).unwrap_or_default();
    let reply = send(aws, service, method, path, &headers, text)
        .await
        .with_context(|| what.to_string())?;
    let answer: Value = if reply.body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
    };
    if !(200..300).contains(&reply.status) {
        let code = reply
            .header_values("x-amzn-errortype")
            .next()
            .map(str::to_string)
            .or_else(|| answer["__type"].as_str().map(str::to_string))
            .or_else(|| answer["Code"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {}", reply.status));
        let code = code.split(':').next().unwrap_or_default().to_string();
        let code = code.rsplit('#').next().unwrap_or_default().to_string();
        bail!(
            "{what}: {code}: {}",
            answer["Message"]
                .as_str()
                .or(answer["message"].as_str())
                .unwrap_or("")
        );
    }
    Ok(answer)
}

/// An AWS Backup recovery point as bbbctl reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryPoint {
    pub arn: String,
    pub vault: String,
    /// The backed-up resource (an EFS file system's ARN).
    pub resource: String,
    pub status: String,
    /// Epoch seconds.
    pub created: Option<f64>,
    /// When AWS Backup deletes it (CalculatedLifecycle.DeleteAt), epoch seconds.
    pub delete_at: Option<f64>,
    pub size_bytes: Option<i64>,
}

fn recovery_point(v: &Value) -> RecoveryPoint {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    RecoveryPoint {
        arn: text("RecoveryPointArn"),
        vault: text("BackupVaultName"),
        resource: text("ResourceArn"),
        status: text("Status"),
        created: v["CreationDate"].as_f64(),
        delete_at: v["CalculatedLifecycle"]["DeleteAt"].as_f64(),
        size_bytes: v["BackupSizeInBytes"]
            .as_i64()
            .or(v["BackupSizeBytes"].as_i64()),
    }
}

/// CreateBackupVault `name` with `tags`; `false` when it already existed.
pub async fn create_backup_vault(
    aws: &Aws,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<bool> {
    let body = serde_json::json!({ "BackupVaultTags": tags });
    let path = format!("/backup-vaults/{}", encode(name));
    match rest(
        aws,
        "backup",
        Method::PUT,
        &path,
        Some(&body),
        "CreateBackupVault",
    )
    .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_code(&e, "AlreadyExistsException") => Ok(false),
        Err(e) => Err(e),
    }
}

/// StartBackupJob of `resource` into `vault`, kept `days` days: (job id, recovery point ARN).
pub async fn start_backup_job(
    aws: &Aws,
    vault: &str,
    resource: &str,
    role: &str,
    days: u32,
    tags: &BTreeMap<String, String>,
    token: &str,
) -> Result<(String, String)> {
    let body = serde_json::json!({
        "BackupVaultName": vault,
        "ResourceArn": resource,
        "IamRoleArn": role,
        "IdempotencyToken": token,
        "Lifecycle": { "DeleteAfterDays": days },
        "RecoveryPointTags": tags,
    });
    let answer = rest(
        aws,
        "backup",
        Method::PUT,
        "/backup-jobs",
        Some(&body),
        "StartBackupJob",
    )
    .await?;
    Ok((
        answer["BackupJobId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        answer["RecoveryPointArn"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

/// The state of an AWS Backup backup or restore job: (state, percent done, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub percent: String,
    pub message: String,
}

/// DescribeBackupJob.
pub async fn backup_job(aws: &Aws, id: &str) -> Result<JobState> {
    let path = format!("/backup-jobs/{}", encode(id));
    let a = rest(aws, "backup", Method::GET, &path, None, "DescribeBackupJob").await?;
    Ok(JobState {
        state: a["State"].as_str().unwrap_or_default().to_string(),
        percent: a["PercentDone"].as_str().unwrap_or_default().to_string(),
        message: a["StatusMessage"].as_str().unwrap_or_default().to_string(),
    })
}

/// The recovery points in `vault` (of `resource` only, when given), every page; `None` when
/// the vault does not exist.
pub async fn recovery_points_in(
    aws: &Aws,
    vault: &str,
    resource: Option<&str>,
) -> Result<Option<Vec<RecoveryPoint>>> {
    let mut points = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/backup-vaults/{}/recovery-points/", encode(vault));
        let mut query = Vec::new();
        if let Some(r) = resource {
            query.push(format!("resourceArn={}", encode(r)));
        }
        if let Some(t) = &token {
            query.push(format!("nextToken={}", encode(t)));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        let answer = match rest(
            aws,
            "backup",
            Method::GET,
            &path,
            None,
            "ListRecoveryPointsByBackupVault",
        )
        .await
        {
            Ok(a) => a,
            Err(e) if is_code(&e, "ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(e),
        };
        points.extend(
            answer["RecoveryPoints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(recovery_point),
        );
        match answer["NextToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(Some(points)),
        }
    }
}

/// DescribeRecoveryPoint; `None` when `vault` or the point does not exist.
pub async fn describe_recovery_point(
    aws: &Aws,
    vault: &str,
    arn: &str,
) -> Result<Option<RecoveryPoint>> {
    let path = format!(
        "/backup-vaults/{}/recovery-points/{}",
        encode(vault),
        encode(arn)
    );
    match rest(
        aws,
        "backup",
        Method::GET,
        &path,
        None,
        "DescribeRecoveryPoint",
    )
    .await
    {
        Ok(a) => Ok(Some(recovery_point(&a))),
        Err(e) if is_code(&e, "ResourceNotFoundException") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The tags of an AWS Backup resource (a recovery point).
pub async fn backup_tags(aws: &Aws, arn: &str) -> Result<BTreeMap<String, String>> {
    let path = format!("/tags/{}/", encode(arn));
    let a = rest(aws, "backup", Method::GET, &path, None, "ListTags").await?;
    Ok(a["Tags"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect())
}

/// StartRestoreJob of an EFS recovery point into the existing file system `fs_id` (AWS Backup
/// writes it to a new aws-backup-restore_<time> directory there): the restore job's id.
pub async fn start_efs_restore(
    aws: &Aws,
    point: &str,
    fs_id: &str,
    role: &str,
    token: &str,
) -> Result<String> {
    let body = serde_json::json!({
        "RecoveryPointArn": point,
        "IamRoleArn": role,
        "IdempotencyToken": token,
        "ResourceType": "EFS",
        "Metadata": {
            "file-system-id": fs_id,
            "newFileSystem": "false",
            "Encrypted": "true",
            "PerformanceMode": "generalPurpose",
            "CreationToken": token,
        },
    });
    let a = rest(
        aws,
        "backup",
        Method::PUT,
        "/restore-jobs",
        Some(&body),
        "StartRestoreJob",
    )
    .await?;
    Ok(a["RestoreJobId"].as_str().unwrap_or_default().to_string())
}

/// DescribeRestoreJob.
pub async fn restore_job(aws: &Aws, id: &str) -> Result<JobState> {
    let path = format!("/restore-jobs/{}", encode(id));
    let a = rest(
        aws,
        "backup",
        Method::GET,
        &path,
        None,
        "DescribeRestoreJob",
    )
    .await?;
    Ok(JobState {
        state: a["Status"].as_str().unwrap_or_default().to_string(),
        percent: a["PercentDone"].as_str().unwrap_or_default().to_string(),
        message: a["StatusMessage"].as_str().unwrap_or_default().to_string(),
    })
}

/// CreateSnapshot of an EBS volume, tagged: the snapshot as EC2 answers it.
pub async fn create_snapshot(
    aws: &Aws,
    volume: &str,
    description: &str,
    tags: &BTreeMap<String, String>,
) -> Result<SnapshotInfo> {
    let mut params = vec![
        ("VolumeId".to_string(), volume.to_string()),
        ("Description".to_string(), encode(description)),
        (
            "TagSpecification.1.ResourceType".to_string(),
            "snapshot".to_string(),
        ),
    ];
    for (i, (k, v)) in tags.iter().enumerate() {
        params.push((format!("TagSpecification.1.Tag.{}.Key", i + 1), encode(k)));
        params.push((format!("TagSpecification.1.Tag.{}.Value", i + 1), encode(v)));
    }
    let xml = query(aws, "ec2", "CreateSnapshot", "2016-11-15", &params)
        .await
        .with_context(|| format!("snapshotting volume {volume}"))?;
    // CreateSnapshotResponse holds one snapshot's fields at its top level.
    parse_snapshots(&xml)
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("CreateSnapshot of {volume} answered no snapshot id"))
}

/// The account's own EBS snapshots that carry tag `key` = `value`.
pub async fn snapshots_tagged(aws: &Aws, key: &str, value: &str) -> Result<Vec<SnapshotInfo>> {
    let params = [
        ("Owner.1".to_string(), "self".to_string()),
        ("Filter.1.Name".to_string(), encode(&format!("tag:{key}"))),
        ("Filter.1.Value.1".to_string(), encode(value)),
    ];
    Ok(parse_snapshots(
        &query(aws, "ec2", "DescribeSnapshots", "2016-11-15", &params).await?,
    ))
}

/// One EBS snapshot of the account's; `None` when it does not exist.
pub async fn snapshot(aws: &Aws, id: &str) -> Result<Option<SnapshotInfo>> {
    let params = [("SnapshotId.1".to_string(), encode(id))];
    match query(aws, "ec2", "DescribeSnapshots", "2016-11-15", &params).await {
        Ok(xml) => Ok(parse_snapshots(&xml).into_iter().next()),
        Err(e)
            if is_code(&e, "InvalidSnapshot.NotFound")
                || is_code(&e, "InvalidSnapshotID.Malformed") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// ECS UpdateService with forceNewDeployment: the service's tasks are replaced (they read
/// their secrets again).
pub async fn force_new_deployment(aws: &Aws, cluster: &str, service: &str) -> Result<()> {
    json(
        aws,
        "ecs",
        "AmazonEC2ContainerServiceV20141113.UpdateService",
        &serde_json::json!({"cluster": cluster, "service": service, "forceNewDeployment": true}),
    )
    .await
    .with_context(|| format!("restarting ECS service {service}"))?;
    Ok(())
}

/// Where and how a one-off ECS task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOffTask {
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// FARGATE or the cluster's EC2 capacity provider.
    pub capacity_provider: String,
    pub started_by: String,
}

/// ECS RunTask of one task: its ARN.
pub async fn run_task(aws: &Aws, t: &OneOffTask) -> Result<String> {
    let answer = json(
        aws,
        "ecs",
        "AmazonEC2ContainerServiceV20141113.RunTask",
        &serde_json::json!({
            "cluster": t.cluster,
            "taskDefinition": t.task_definition,
            "count": 1,
            "startedBy": t.started_by,
            "capacityProviderStrategy": [{"capacityProvider": t.capacity_provider, "weight": 1}],
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": t.subnets,
                "securityGroups": t.security_groups,
                "assignPublicIp": "DISABLED",
            }},
        }),
    )
    .await?;
    if let Some(f) = answer["failures"].as_array().and_then(|f| f.first()) {
        bail!(
            "RunTask of {}: {} {}",
            t.task_definition,
            f["reason"].as_str().unwrap_or("failed"),
            f["detail"].as_str().unwrap_or("")
        );
    }
    answer["tasks"][0]["taskArn"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("RunTask of {} started no task", t.task_definition))
}

/// A task's last status and, once stopped, its first container's exit code and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    pub last_status: String,
    pub exit_code: Option<i64>,
    pub reason: String,
}

/// DescribeTasks of one task.
pub async fn task_state(aws: &Aws, cluster: &str, task: &str) -> Result<TaskState> {
    let answer = json(
        aws,
        "ecs",
        "AmazonEC2ContainerServiceV20141113.DescribeTasks",
        &serde_json::json!({"cluster": cluster, "tasks": [task]}),
    )
    .await?;
    parse_task_state(&answer).ok_or_else(|| anyhow!("task {task} is not known to ECS"))
}

fn parse_task_state(answer: &Value) -> Option<TaskState> {
    let t = answer["tasks"].as_array()?.first()?;
    let container = &t["containers"][0];
    let reason = [t["stoppedReason"].as_str(), container["reason"].as_str()]
        .into_iter()
        .flatten()
        .filter(|r| !r.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Some(TaskState {
        last_status: t["lastStatus"].as_str().unwrap_or_default().to_string(),
        exit_code: container["exitCode"].as_i64(),
        reason,
    })
}

/// Each instance's own tags in a DescribeInstances answer (instance id → key → value), read
/// by the nesting of the answer's `<item>`s: an instance's network interfaces are items of
/// its own, and AWS and moto order an instance's fields differently.
fn parse_instance_tags(xml: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    let reservations = child(xml, "reservationSet").unwrap_or_default();
    for reservation in items(reservations) {
        for instance in items(child(reservation, "instancesSet").unwrap_or_default()) {
            let Some(id) = child(instance, "instanceId") else {
                continue;
            };
            found.insert(unescape(id), tag_set(instance));
        }
    }
    found
}

/// The key/value items of an EC2 element's own `<tagSet>`.
pub(crate) fn tag_set(xml: &str) -> BTreeMap<String, String> {
    items(child(xml, "tagSet").unwrap_or_default())
        .into_iter()
        .filter_map(|tag| {
            Some((
                unescape(child(tag, "key")?),
                unescape(child(tag, "value").unwrap_or_default()),
            ))
        })
        .collect()
}

/// The contents of the top-level `<item>` elements of `xml`.
pub(crate) fn items(xml: &str) -> Vec<&str> {
    let (mut found, mut depth, mut start, mut at) = (Vec::new(), 0usize, 0usize, 0usize);
    while let Some(pos) = xml[at..].find('<') {
        let tag = at + pos;
        if xml[tag..].starts_with("<item>") {
            if depth == 0 {
                start = tag + "<item>".len();
            }
            depth += 1;
        } else if xml[tag..].starts_with("</item>") && depth > 0 {
            depth -= 1;
            if depth == 0 {
                found.push(&xml[start..tag]);
            }
        }
        at = tag + 1;
    }
    found
}

/// The text of the first `<name>` element of `xml` that is not inside one of its `<item>`s.
pub(crate) fn child<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let (mut depth, mut at) = (0usize, 0usize);
    while let Some(pos) = xml[at..].find('<') {
        let tag = at + pos;
        let rest = &xml[tag..];
        if rest.starts_with("<item>") {
            depth += 1;
        } else if rest.starts_with("</item>") {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && rest.starts_with(&open) {
            let start = tag + open.len();
            let end = xml[start..].find(&close)? + start;
            return Some(xml[start..end].trim());
        }
        at = tag + 1;
    }
    None
}

/// XML text with its five predefined entities resolved.
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_tags_are_each_instances_own() {
        // AWS's field order (instanceId first; an interface of its own with nested items),
        // and moto's (tagSet before instanceId); a reservation with two instances.
        let xml = "<DescribeInstancesResponse><reservationSet>\
                   <item><reservationId>r-1</reservationId><instancesSet>\
                   <item><instanceId>i-0aaa</instanceId><networkInterfaceSet><item>\
                   <networkInterfaceId>eni-1</networkInterfaceId><groupSet><item><groupId>sg-1</groupId>\
                   </item></groupSet></item></networkInterfaceSet><tagSet>\
                   <item><key>bbbctl:stack</key><value>bbb</value></item>\
                   <item><key>Name</key><value>a &amp; b</value></item></tagSet></item>\
                   <item><tagSet><item><key>bbbctl:stack</key><value>other</value></item></tagSet>\
                   <instanceId>i-0bbb</instanceId></item>\
                   </instancesSet></item>\
                   <item><instancesSet><item><instanceId>i-0ccc</instanceId><tagSet/></item>\
                   </instancesSet></item>\
                   </reservationSet></DescribeInstancesResponse>";
        let found = parse_instance_tags(xml);
        assert_eq!(found.len(), 3);
        assert_eq!(found["i-0aaa"]["bbbctl:stack"], "bbb");
        assert_eq!(found["i-0aaa"]["Name"], "a & b");
        assert_eq!(found["i-0bbb"]["bbbctl:stack"], "other");
        assert!(found["i-0ccc"].is_empty());
        assert!(
            parse_instance_tags(
                "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>"
            )
            .is_empty()
        );
        assert_eq!(form_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }

    #[test]
    fn addresses_are_read_per_instance() {
        let xml = "<reservationSet><item><instancesSet><item><instanceId>i-1</instanceId>\
                   <privateIpAddress>10.0.0.1</privateIpAddress><ipAddress>203.0.113.1</ipAddress></item>\
                   <item><instanceId>i-2</instanceId><privateIpAddress>10.0.0.2</privateIpAddress></item>\
                   </instancesSet></item></reservationSet>";
        let found = parse_instances(xml);
        assert_eq!(found["i-1"].public_ip.as_deref(), Some("203.0.113.1"));
        assert_eq!(found["i-2"].public_ip, None);
    }

    #[test]
    fn a_log_tail_is_the_last_lines_in_time_order() {
        // GetLogEvents as AWS documents its answer (startFromHead false: the newest page).
        let answer = serde_json::json!({
            "events": [
                {"timestamp": 1700000000002_i64, "message": "apt-get install failed\n", "ingestionTime": 1},
                {"timestamp": 1700000000001_i64, "message": "installing bbb", "ingestionTime": 1},
                {"timestamp": 1700000000003_i64, "message": "bootstrap failed: exit 100", "ingestionTime": 1}
            ],
            "nextForwardToken": "f/1",
            "nextBackwardToken": "b/1"
        });
        assert_eq!(
            log_messages(&answer, 2),
            vec!["apt-get install failed", "bootstrap failed: exit 100"]
        );
        assert_eq!(log_messages(&answer, 10).len(), 3);
        assert!(log_messages(&serde_json::json!({"events": []}), 5).is_empty());
    }

    #[test]
    fn a_snapshot_carries_its_size_progress_and_tags() {
        // DescribeSnapshots as the EC2 API reference gives an item.
        let xml = "<DescribeSnapshotsResponse><snapshotSet><item><snapshotId>snap-1</snapshotId>\
                   <volumeId>vol-1</volumeId><status>pending</status><startTime>2026-01-01T00:00:00.000Z</startTime>\
                   <progress>40%</progress><volumeSize>100</volumeSize><tagSet>\
                   <item><key>bbbctl:deployment</key><value>bbb</value></item>\
                   <item><key>Name</key><value>bbb-bbb-data</value></item></tagSet></item>\
                   <item><snapshotId>snap-2</snapshotId><volumeId>vol-2</volumeId></item>\
                   </snapshotSet></DescribeSnapshotsResponse>";
        let found = parse_snapshots(xml);
        assert_eq!(found[0].size_gib, Some(100));
        assert_eq!(found[0].progress, "40%");
        assert_eq!(found[0].tags["bbbctl:deployment"], "bbb");
        assert_eq!(found[0].tags.len(), 2);
        assert!(
            found[1].tags.is_empty(),
            "the next item's tags are not the first's"
        );
    }

    #[test]
    fn tags_before_the_id_belong_to_their_own_item() {
        // The order the emulator writes: <tagSet> first.
        let xml = "<DescribeSnapshotsResponse><snapshotSet>\
                   <item><tagSet/><snapshotId>snap-1</snapshotId><volumeId>vol-1</volumeId></item>\
                   <item><tagSet><item><key>k</key><value>v</value></item></tagSet>\
                   <snapshotId>snap-2</snapshotId><volumeId>vol-2</volumeId></item>\
                   </snapshotSet></DescribeSnapshotsResponse>";
        let found = parse_snapshots(xml);
        assert_eq!(found.len(), 2);
        assert!(found[0].tags.is_empty());
        assert_eq!(found[1].tags["k"], "v");
        // CreateSnapshot: one snapshot's fields at the top level.
        let created = parse_snapshots(
            "<CreateSnapshotResponse><snapshotId>snap-3</snapshotId><volumeId>vol-3</volumeId>\
             <status>pending</status></CreateSnapshotResponse>",
        );
        assert_eq!(created[0].id, "snap-3");
        assert_eq!(created[0].state, "pending");
    }

    #[test]
    fn a_stopped_task_gives_its_exit_code_and_reasons() {
        let answer = serde_json::json!({"tasks": [{
            "lastStatus": "STOPPED",
            "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "recordings-restore", "exitCode": 4, "reason": ""}]
        }], "failures": []});
        assert_eq!(
            parse_task_state(&answer),
            Some(TaskState {
                last_status: "STOPPED".into(),
                exit_code: Some(4),
                reason: "Essential container in task exited".into()
            })
        );
        assert_eq!(parse_task_state(&serde_json::json!({"tasks": []})), None);
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(
            encode("arn:aws:elasticfilesystem:eu-central-1:1:file-system/fs-1"),
            "arn%3Aaws%3Aelasticfilesystem%3Aeu-central-1%3A1%3Afile-system%2Ffs-1"
        );
        assert_eq!(encode("a b~c_d.e"), "a%20b~c_d.e");
    }

    #[test]
    fn snapshots_are_read_per_item() {
        let xml = "<DescribeSnapshotsResponse><snapshotSet>\
                   <item><snapshotId>snap-1</snapshotId><volumeId>vol-1</volumeId>\
                   <status>completed</status><startTime>2026-01-01T00:00:00.000Z</startTime></item>\
                   <item><snapshotId>snap-2</snapshotId><volumeId>vol-1</volumeId>\
                   <status>pending</status><startTime>2026-01-02T00:00:00.000Z</startTime></item>\
                   </snapshotSet></DescribeSnapshotsResponse>";
        let found = parse_snapshots(xml);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].id, "snap-2");
        assert_eq!(found[1].state, "pending");
        assert_eq!(found[0].started, "2026-01-01T00:00:00.000Z");
    }
}
