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
    let region = aws.region().to_string();
    let endpoint = match aws.config.endpoint_url() {
        Some(url) => format!("{}/", url.trim_end_matches('/')),
        None => format!("https://{service}.{region}.amazonaws.com/"),
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
        "POST",
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
    http.send(Method::POST, &endpoint, &all, Some(body.into_bytes()))
        .await
}

/// A query-protocol call (EC2, ElastiCache): the answer's XML, or its error in one line.
async fn query(
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
async fn logs(aws: &Aws, action: &str, body: &Value) -> Result<Value> {
    json(aws, "logs", &format!("Logs_20140328.{action}"), body).await
}

/// Whether an error of `json`/`query` is AWS's `code` ("Action: Code: message").
fn is_code(e: &anyhow::Error, code: &str) -> bool {
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

/// Each snapshot of a DescribeSnapshots answer (one `<snapshotId>` per `<item>`).
fn parse_snapshots(xml: &str) -> Vec<SnapshotInfo> {
    xml.split("<snapshotId>")
        .skip(1)
        .filter_map(|part| {
            Some(SnapshotInfo {
                id: part.split("</snapshotId>").next()?.trim().to_string(),
                volume: between(part, "<volumeId>", "</volumeId>")?.to_string(),
                started: between(part, "<startTime>", "</startTime>")
                    .unwrap_or_default()
                    .to_string(),
                state: between(part, "<status>", "</status>")
                    .unwrap_or_default()
                    .to_string(),
            })
        })
        .collect()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
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
            let tags = items(child(instance, "tagSet").unwrap_or_default())
                .into_iter()
                .filter_map(|tag| {
                    Some((
                        unescape(child(tag, "key")?),
                        unescape(child(tag, "value").unwrap_or_default()),
                    ))
                })
                .collect();
            found.insert(unescape(id), tags);
        }
    }
    found
}

/// The contents of the top-level `<item>` elements of `xml`.
fn items(xml: &str) -> Vec<&str> {
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
fn child<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
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
fn unescape(text: &str) -> String {
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
