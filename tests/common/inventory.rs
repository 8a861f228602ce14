//! What lives in the emulator, per resource kind, from moto's `GET /moto-api/data.json`
//! (which moto_ext makes list live resources only: patch 13 in `tests/emulator/moto_ext.py`).
//!
//! Use it to prove that a test leaves nothing behind:
//!
//! ```ignore
//! let before = common::inventory::inventory();
//! // ... bbbctl setup, updates, destroy ...
//! let left = common::inventory::created_since(&before);
//! assert!(left.is_empty(), "left behind: {left:#?}");
//! ```
//!
//! Tests share one emulator and run in parallel, so `created_since` also sees what other
//! tests created meanwhile: filter the result by the test's unique stack name when the binary
//! runs more than one test (`retain` on identifiers containing it), or run that test alone.
//! A scalable-mode destroy keeps, as in AWS, the final snapshot of the Aurora cluster
//! (`rds:cluster_snapshots`, DeletionPolicy Snapshot); tests expecting it remove that kind.
//!
//! Baseline (measured on a freshly reset moto 5.2.5 + moto_ext): what an AWS account or moto
//! has by default is never listed, so it cannot show up as "created":
//! - EC2: AMIs and their snapshots, AWS-managed prefix lists, the default VPC with its
//!   default subnets, main route table and routes, default network ACL and its entries,
//!   default security groups (of any VPC) and their rules;
//! - IAM account summary and AWS managed policies, ElastiCache's `default` user,
//!   SSM public parameters (`/aws/...`), AWS-managed KMS keys and `alias/aws/...` aliases,
//!   RDS `default.*` parameter groups, Route 53 delegation sets (moto bookkeeping), the
//!   `default` EventBridge event bus;
//! - records that are not resources: CloudFormation events, model parts without an
//!   identifier of their own (ELBv2 actions, S3 grants, …: they go with their owner);
//! - what AWS still describes after deleting it: NAT gateways `deleted`, instances
//!   `terminated`, ECS clusters/services/task definitions `INACTIVE`, stacks
//!   `DELETE_COMPLETE`, secrets scheduled for deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// Live resources per kind (`"ecs:clusters"`, `"ec2:vpcs"`, …; unknown models as
/// `"service:Model"`), each with its sorted identifiers (ARN where moto has one).
pub fn inventory() -> BTreeMap<String, Vec<String>> {
    let data = fetch_data_json(super::endpoint());
    parse(&data)
}

/// What exists now and did not exist in `before` (kinds without new identifiers omitted).
pub fn created_since(before: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    inventory()
        .into_iter()
        .filter_map(|(kind, ids)| {
            let old: BTreeSet<&String> = before.get(&kind).into_iter().flatten().collect();
            let new: Vec<String> = ids.into_iter().filter(|id| !old.contains(id)).collect();
            (!new.is_empty()).then_some((kind, new))
        })
        .collect()
}

/// Friendly kind names for the models bbbctl's templates create.
const KINDS: &[(&str, &str)] = &[
    ("acm:CertBundle", "acm:certificates"),
    ("autoscaling:FakeAutoScalingGroup", "autoscaling:groups"),
    (
        "autoscaling:FakeLaunchConfiguration",
        "autoscaling:launch_configurations",
    ),
    ("cloudformation:Stack", "cloudformation:stacks"),
    ("ec2:ElasticAddress", "ec2:addresses"),
    ("ec2:Instance", "ec2:instances"),
    ("ec2:InternetGateway", "ec2:internet_gateways"),
    ("ec2:LaunchTemplate", "ec2:launch_templates"),
    ("ec2:NatGateway", "ec2:nat_gateways"),
    ("ec2:NetworkAcl", "ec2:network_acls"),
    ("ec2:NetworkInterface", "ec2:network_interfaces"),
    ("ec2:Route", "ec2:routes"),
    ("ec2:RouteTable", "ec2:route_tables"),
    ("ec2:SecurityGroup", "ec2:security_groups"),
    ("ec2:SecurityGroupRule", "ec2:security_group_rules"),
    ("ec2:Snapshot", "ec2:snapshots"),
    ("ec2:Subnet", "ec2:subnets"),
    (
        "ec2:SubnetRouteTableAssociation",
        "ec2:route_table_associations",
    ),
    ("ec2:VPC", "ec2:vpcs"),
    ("ec2:VPCGatewayAttachment", "ec2:vpc_gateway_attachments"),
    ("ec2:Volume", "ec2:volumes"),
    ("ecs:CapacityProvider", "ecs:capacity_providers"),
    ("ecs:Cluster", "ecs:clusters"),
    ("ecs:Service", "ecs:services"),
    ("ecs:TaskDefinition", "ecs:task_definitions"),
    ("efs:AccessPoint", "efs:access_points"),
    ("efs:FileSystem", "efs:file_systems"),
    ("efs:MountTarget", "efs:mount_targets"),
    (
        "elasticache:ReplicationGroup",
        "elasticache:replication_groups",
    ),
    ("elasticache:CacheCluster", "elasticache:cache_clusters"),
    ("elbv2:FakeListener", "elbv2:listeners"),
    ("elbv2:FakeListenerRule", "elbv2:listener_rules"),
    ("elbv2:FakeRule", "elbv2:rules"),
    ("elbv2:FakeLoadBalancer", "elbv2:load_balancers"),
    ("elbv2:FakeTargetGroup", "elbv2:target_groups"),
    ("iam:InstanceProfile", "iam:instance_profiles"),
    ("iam:ManagedPolicy", "iam:policies"),
    ("iam:Role", "iam:roles"),
    ("logs:LogGroup", "logs:log_groups"),
    ("rds:DBCluster", "rds:clusters"),
    ("rds:DBClusterSnapshot", "rds:cluster_snapshots"),
    ("rds:DBInstance", "rds:instances"),
    ("rds:DBInstanceClustered", "rds:instances"),
    ("rds:DBSnapshot", "rds:snapshots"),
    ("rds:DBSubnetGroup", "rds:subnet_groups"),
    ("rds:DBParameterGroup", "rds:parameter_groups"),
    ("route53:FakeZone", "route53:hosted_zones"),
    ("route53:RecordSet", "route53:record_sets"),
    ("s3:FakeBucket", "s3:buckets"),
    ("s3:FakeKey", "s3:objects"),
    ("secretsmanager:FakeSecret", "secretsmanager:secrets"),
    ("ses:EmailIdentity", "ses:identities"),
    ("sns:Topic", "sns:topics"),
    ("ssm:Parameter", "ssm:parameters"),
];

/// Kinds that are never resources of ours (see the module doc).
const SKIPPED_KINDS: &[&str] = &[
    "cloudformation:Event",
    "ec2:Ami",
    "ec2:ManagedPrefixList",
    "ec2:NetworkAclEntry",
    "iam:AWSManagedPolicy",
    "iam:AccountSummary",
    "route53:DelegationSet",
];

/// Fields that identify a model instance, most specific first.
const ID_FIELDS: &[&str] = &[
    "arn",
    "physical_resource_id",
    "id",
    "email_identity",
    "identifier",
    "name",
];

fn parse(data: &Value) -> BTreeMap<String, Vec<String>> {
    let rows = |service: &str, model: &str| -> Vec<&Value> {
        data.get(service)
            .and_then(|s| s.get(model))
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    let text = |row: &Value, field: &str| -> String {
        match row.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    // The default VPCs, and what belongs to them or is a default of any VPC.
    let default_vpcs: BTreeSet<String> = rows("ec2", "VPC")
        .into_iter()
        .filter(|r| r.get("is_default") == Some(&Value::Bool(true)))
        .map(|r| text(r, "id"))
        .collect();
    let default_groups: BTreeSet<String> = rows("ec2", "SecurityGroup")
        .into_iter()
        .filter(|r| text(r, "name") == "default" || default_vpcs.contains(&text(r, "vpc_id")))
        .map(|r| text(r, "id"))
        .collect();
    let default_route_tables: BTreeSet<String> = rows("ec2", "RouteTable")
        .into_iter()
        .filter(|r| default_vpcs.contains(&text(r, "vpc_id")))
        .map(|r| text(r, "id"))
        .collect();
    // moto creates the AWS-managed key of alias/aws/ebs as a CUSTOMER key
    let aws_keys: BTreeSet<String> = rows("kms", "Alias")
        .into_iter()
        .filter(|r| text(r, "alias_name").starts_with("alias/aws/"))
        .map(|r| text(r, "target_key_id"))
        .collect();

    let is_default = |kind: &str, row: &Value| -> bool {
        let field = |f: &str| text(row, f);
        match kind {
            "ec2:VPC" => default_vpcs.contains(&field("id")),
            "ec2:Subnet" => {
                field("default_for_az") == "true" || default_vpcs.contains(&field("vpc_id"))
            }
            "ec2:SecurityGroup" => default_groups.contains(&field("id")),
            "ec2:SecurityGroupRule" => default_groups.contains(&field("group_id")),
            "ec2:NetworkAcl" => {
                field("default") == "true" || default_vpcs.contains(&field("vpc_id"))
            }
            "ec2:RouteTable" => default_route_tables.contains(&field("id")),
            "ec2:Route" => field("id")
                .split('~')
                .next()
                .is_some_and(|t| default_route_tables.contains(t)),
            "ec2:Snapshot" => !field("from_ami").is_empty(),
            "elasticache:User" => field("name") == "default" || field("id") == "default",
            "ssm:Parameter" => field("name").starts_with("/aws/"),
            "kms:Alias" => field("alias_name").starts_with("alias/aws/"),
            // Every account has its region's default event bus (moto makes it on first use).
            "events:EventBus" => field("name") == "default",
            "kms:Key" => field("key_manager") == "AWS" || aws_keys.contains(&field("id")),
            "rds:DBParameterGroup" | "rds:DBClusterParameterGroup" => {
                field("name").starts_with("default.")
            }
            _ => false,
        }
    };
    let is_gone = |row: &Value| -> bool {
        let state = ["state", "status", "stack_status", "resource_status"]
            .iter()
            .map(|f| text(row, f))
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        matches!(
            state.as_str(),
            "deleted" | "terminated" | "INACTIVE" | "DELETE_COMPLETE"
        ) || !text(row, "deleted_date").is_empty()
    };

    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let Some(services) = data.as_object() else {
        return BTreeMap::new();
    };
    for (service, models) in services {
        let Some(models) = models.as_object() else {
            continue;
        };
        for (model, list) in models {
            let raw = format!("{service}:{model}");
            if SKIPPED_KINDS.contains(&raw.as_str()) {
                continue;
            }
            let kind = KINDS
                .iter()
                .find(|(m, _)| *m == raw)
                .map(|(_, k)| k.to_string())
                .unwrap_or_else(|| raw.clone());
            for row in list.as_array().into_iter().flatten() {
                if is_default(&raw, row) || is_gone(row) {
                    continue;
                }
                let id = ID_FIELDS
                    .iter()
                    .map(|f| text(row, f))
                    .find(|s| !s.is_empty());
                let Some(mut id) = id else {
                    continue; // a part of another resource (see the module doc)
                };
                if raw == "route53:RecordSet" {
                    id = format!("{id} {}", text(row, "type_"));
                }
                out.entry(kind.clone()).or_default().insert(id);
            }
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect()
}

/// `GET {endpoint}/moto-api/data.json` over a plain HTTP/1.1 connection (std only).
fn fetch_data_json(endpoint: &str) -> Value {
    let authority = endpoint
        .strip_prefix("http://")
        .expect("the emulator endpoint is http://HOST:PORT")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .unwrap_or_else(|e| panic!("connecting to the emulator at {authority}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    write!(
        stream,
        "GET /moto-api/data.json HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .expect("sending the data.json request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("reading the data.json response");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response header");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("200"));
    assert!(status_ok, "GET /moto-api/data.json: {head}");
    let mut body = response[split + 4..].to_vec();
    if head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    }) {
        body = dechunk(&body);
    }
    serde_json::from_slice(&body).expect("data.json is JSON")
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&body[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}
