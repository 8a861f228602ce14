//! Setup's pre-flight of the service quotas a deployment needs: On-Demand Standard vCPUs
//! (BBB servers and ECS container instances), Elastic IPs, VPCs, NAT gateways per
//! Availability Zone and Fargate vCPUs. Before anything is created it reads each quota
//! that the deployment (or, for an update, the increase over what it holds now) would use
//! (Service Quotas `GetServiceQuota`, else `GetAWSDefaultServiceQuota`) and what is in use
//! now where EC2 tells it cheaply, and refuses (exit 2) naming the quota, its code, what is
//! needed against what is left, and how to raise it. When Service Quotas cannot be read
//! (denied, unavailable) it says so in one line and lets setup go on.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use aws_sdk_cloudformation::types::Stack;

use crate::aws::Aws;
use crate::cfn::ops::parameters;
use crate::cost::{self, Shape};
use crate::error::{UsageError, aws_code, describe, usage};
use crate::settings::{P_MODE, SetupSettings, user_params};
use crate::signed::{between, query};
use crate::ui::Printer;

/// One quota of Service Quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quota {
    pub service: &'static str,
    pub code: &'static str,
    pub name: &'static str,
    /// What it counts, one and more.
    pub one: &'static str,
    pub unit: &'static str,
    /// Its name in a summary line.
    pub short: &'static str,
}

pub const STANDARD_VCPUS: Quota = Quota {
    service: "ec2",
    code: "L-1216C47A",
    name: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    one: "vCPU",
    unit: "vCPUs",
    short: "On-Demand Standard vCPUs",
};
pub const ELASTIC_IPS: Quota = Quota {
    service: "ec2",
    code: "L-0263D0A3",
    name: "EC2-VPC Elastic IPs",
    one: "Elastic IP address",
    unit: "Elastic IP addresses",
    short: "Elastic IPs",
};
pub const VPCS: Quota = Quota {
    service: "vpc",
    code: "L-F678F1CE",
    name: "VPCs per Region",
    one: "VPC",
    unit: "VPCs",
    short: "VPCs",
};
pub const NAT_GATEWAYS_PER_AZ: Quota = Quota {
    service: "vpc",
    code: "L-FE5A380F",
    name: "NAT gateways per Availability Zone",
    one: "NAT gateway",
    unit: "NAT gateways",
    short: "NAT gateways",
};
pub const FARGATE_VCPUS: Quota = Quota {
    service: "fargate",
    code: "L-3032A538",
    name: "Fargate On-Demand vCPU resource count",
    one: "vCPU",
    unit: "vCPUs",
    short: "Fargate vCPUs",
};

const EC2_VERSION: &str = "2016-11-15";
const SERVER_TYPE: &str = "BBBServerInstanceType";
const ECS_TYPE: &str = "BBBECSInstanceType";

/// Whether On-Demand instances of this type count against the Standard quota, whose name
/// lists its families (A, C, D, H, I, M, R, T, Z; `im`/`is` are I families). Others (G, P,
/// X, Inf, DL, Trn, HPC, U, Mac, F, VT) have quotas of their own.
pub fn is_standard(instance_type: &str) -> bool {
    let family: String = instance_type
        .chars()
        .take_while(char::is_ascii_lowercase)
        .collect();
    matches!(
        family.as_str(),
        "a" | "c" | "d" | "h" | "i" | "im" | "is" | "m" | "r" | "t" | "z"
    )
}

/// EC2 instances of one kind a deployment runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Instances {
    /// The parameter that chose the type.
    pub parameter: &'static str,
    pub instance_type: String,
    pub count: u32,
}

/// What a deployment holds that counts against the quotas.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Demand {
    pub instances: Vec<Instances>,
    pub elastic_ips: u32,
    pub vpcs: u32,
    /// One NAT gateway in each of the region's first `nat_azs` Availability Zones.
    pub nat_azs: u32,
    pub fargate_vcpus: f64,
}

/// What a deployment of this shape holds, with `servers` BBB servers (scalable mode; a
/// single server is one) and the ECS container instances its group starts with.
pub fn demand(shape: &Shape, own_vpc: bool, servers: u32) -> Demand {
    let single = shape.mode == "single";
    let mut instances = vec![Instances {
        parameter: SERVER_TYPE,
        instance_type: shape.server_type.clone(),
        count: if single { 1 } else { servers },
    }];
    if let Some(t) = &shape.ecs_instance {
        instances.push(Instances {
            parameter: ECS_TYPE,
            instance_type: t.clone(),
            count: shape.ecs_group.0,
        });
    }
    Demand {
        instances,
        elastic_ips: shape.nat_gateways + u32::from(single),
        vpcs: u32::from(own_vpc),
        nat_azs: shape.nat_gateways,
        fargate_vcpus: if shape.ecs_instance.is_none() {
            shape.tasks.iter().map(|t| t.vcpu * t.count).sum()
        } else {
            0.0
        },
    }
}

/// The deployment's demand from its parameters (root.yaml defaults fill the rest).
fn demand_of(
    s: &SetupSettings,
    params: &BTreeMap<String, String>,
    region: &str,
    servers: Option<u32>,
) -> Result<Demand> {
    let shape = cost::shape(&s.bundle, params, region, servers.map(f64::from))?;
    let own_vpc = params.get("BBBExistingVPC").is_none_or(|v| v.is_empty());
    Ok(demand(&shape, own_vpc, shape.servers as u32))
}

/// The instance types a demand needs the vCPUs of.
fn types(d: &Demand) -> BTreeSet<String> {
    d.instances
        .iter()
        .filter(|i| i.count > 0)
        .map(|i| i.instance_type.clone())
        .collect()
}

/// On-Demand Standard vCPUs of a demand, and what it needs of it in words.
fn standard_vcpus(d: &Demand, vcpus: &BTreeMap<String, u32>) -> (f64, Vec<String>) {
    let mut total = 0.0;
    let mut words = Vec::new();
    for i in d.instances.iter().filter(|i| i.count > 0) {
        if let (true, Some(v)) = (is_standard(&i.instance_type), vcpus.get(&i.instance_type)) {
            total += f64::from(i.count * v);
            words.push(format!("{} × {} of {} vCPUs", i.count, i.instance_type, v));
        }
    }
    (total, words)
}

/// One quota the deployment needs more of, with what the account has.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub quota: Quota,
    /// Only for a per-AZ quota: the zone.
    pub zone: Option<String>,
    pub needed: f64,
    /// What it is for, in words.
    pub detail: String,
    pub limit: f64,
    /// `None`: not known (Fargate, or EC2 could not tell).
    pub in_use: Option<f64>,
}

impl Need {
    pub fn left(&self) -> f64 {
        (self.limit - self.in_use.unwrap_or(0.0)).max(0.0)
    }

    pub fn short(&self) -> bool {
        self.needed > self.left() + 1e-9
    }
}

fn number(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The refusal: every quota that is short, what it is short of, and how to raise it.
pub fn refusal(region: &str, short: &[&Need]) -> String {
    let mut text = format!(
        "not enough AWS service quota in region {region} for this deployment; nothing was created:"
    );
    for n in short {
        let q = n.quota;
        let zone = n
            .zone
            .as_deref()
            .map(|z| format!(" in {z}"))
            .unwrap_or_default();
        let used = match n.in_use {
            Some(u) => format!("{} in use, {} left", number(u), number(n.left())),
            None => "what runs now not counted".to_string(),
        };
        let desired = (n.in_use.unwrap_or(0.0) + n.needed).ceil();
        text.push_str(&format!(
            "\n  - {name} ({service} quota {code}){zone}: needs {needed} more {unit} ({detail}); the quota is {limit}, {used}. \
             Raise it in the Service Quotas console (https://console.aws.amazon.com/servicequotas/home/services/{service}/quotas/{code}, region {region}) \
             or with `aws service-quotas request-service-quota-increase --region {region} --service-code {service} --quota-code {code} --desired-value {desired}`",
            name = q.name,
            service = q.service,
            code = q.code,
            needed = number(n.needed),
            unit = if n.needed == 1.0 { q.one } else { q.unit },
            detail = n.detail,
            limit = number(n.limit),
            desired = number(desired),
        ));
    }
    text.push_str(
        "\nRun setup again once the increase is granted (Service Quotas shows the request's status), or ask for less (fewer or smaller servers, one NAT gateway, an existing VPC).",
    );
    text
}

/// Reads the quota's value: the account's applied value, else (no applied value) AWS's
/// default. `Err`: Service Quotas could not be read (denied, unavailable), in words.
async fn quota_value(aws: &Aws, q: Quota) -> std::result::Result<f64, String> {
    let applied = aws
        .quotas
        .get_service_quota()
        .service_code(q.service)
        .quota_code(q.code)
        .send()
        .await;
    let quota = match applied {
        Ok(out) => out.quota().cloned(),
        Err(e) if aws_code(&e) == Some("NoSuchResourceException") => aws
            .quotas
            .get_aws_default_service_quota()
            .service_code(q.service)
            .quota_code(q.code)
            .send()
            .await
            .map_err(|e| describe(&e))?
            .quota()
            .cloned(),
        Err(e) => return Err(describe(&e)),
    };
    quota
        .and_then(|x| x.value())
        .ok_or_else(|| format!("no value for {} {}", q.service, q.code))
}

/// Percent-encodes a query-protocol parameter value.
fn enc(value: &str) -> String {
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

/// The top-level `<item>` elements of every `<set>` element of an EC2 answer.
pub fn items<'a>(xml: &'a str, set: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{set}>"), format!("</{set}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let body = &rest[at + open.len()..];
        let (mut depth, mut pos, mut start) = (0usize, 0usize, 0usize);
        loop {
            let Some(lt) = body[pos..].find('<') else {
                return found;
            };
            let tag = pos + lt;
            let tail = &body[tag..];
            if tail.starts_with("<item>") {
                if depth == 0 {
                    start = tag + "<item>".len();
                }
                depth += 1;
                pos = tag + "<item>".len();
            } else if tail.starts_with("</item>") {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    found.push(&body[start..tag]);
                }
                pos = tag + "</item>".len();
            } else if depth == 0 && tail.starts_with(&close) {
                pos = tag + close.len();
                break;
            } else {
                pos = tag + 1;
            }
        }
        rest = &body[pos..];
    }
    found
}

/// Every page of an EC2 Describe call: the answers' XML.
async fn pages(aws: &Aws, action: &str, params: &[(&str, &str)]) -> Result<Vec<String>> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut p: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), enc(v)))
            .collect();
        if let Some(t) = &token {
            p.push(("NextToken".into(), enc(t)));
        }
        let xml = query(aws, "ec2", action, EC2_VERSION, &p).await?;
        token = between(&xml, "<nextToken>", "</nextToken>")
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        all.push(xml);
        if token.is_none() {
            return Ok(all);
        }
    }
}

/// vCPUs of each instance type (DescribeInstanceTypes). An unknown type is the user's
/// input error, named by `parameter_of`.
async fn vcpus_of(
    aws: &Aws,
    types: &BTreeSet<String>,
    parameter_of: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<BTreeMap<String, u32>> {
    let mut found = BTreeMap::new();
    let list: Vec<&String> = types.iter().collect();
    for chunk in list.chunks(100) {
        let params: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("InstanceType.{}", i + 1), enc(t)))
            .collect();
        let xml = match query(aws, "ec2", "DescribeInstanceTypes", EC2_VERSION, &params).await {
            Ok(xml) => xml,
            Err(e) if e.to_string().contains(": InvalidInstanceType:") => {
                let unknown: Vec<String> = chunk
                    .iter()
                    .filter(|t| e.to_string().contains(t.as_str()))
                    .map(|t| match parameter_of(t) {
                        Some(p) => format!("{p} {t}"),
                        None => t.to_string(),
                    })
                    .collect();
                return Err(usage(format!(
                    "{} is not an EC2 instance type offered in region {} (EC2 says: {e:#}). Choose one that is, e.g. c5.2xlarge for the BBB servers (`aws ec2 describe-instance-type-offerings --region {}` lists them)",
                    unknown.join(", "),
                    aws.region(),
                    aws.region()
                )));
            }
            Err(e) => return Err(e),
        };
        for item in items(&xml, "instanceTypeSet") {
            let name = between(item, "<instanceType>", "</instanceType>");
            let v = between(item, "<defaultVCpus>", "</defaultVCpus>").and_then(|v| v.parse().ok());
            if let (Some(name), Some(v)) = (name, v) {
                found.insert(name.to_string(), v);
            }
        }
    }
    Ok(found)
}

/// Running (and pending) On-Demand instances: their types (spot and scheduled ones count
/// against other quotas).
async fn running_on_demand(aws: &Aws) -> Result<Vec<String>> {
    let params = [
        ("Filter.1.Name", "instance-state-name"),
        ("Filter.1.Value.1", "pending"),
        ("Filter.1.Value.2", "running"),
        ("MaxResults", "1000"),
    ];
    let mut found = Vec::new();
    for xml in pages(aws, "DescribeInstances", &params).await? {
        for item in items(&xml, "instancesSet") {
            let lifecycle = between(item, "<instanceLifecycle>", "</instanceLifecycle>");
            if matches!(lifecycle, Some("spot" | "scheduled")) {
                continue;
            }
            if let Some(t) = between(item, "<instanceType>", "</instanceType>") {
                found.push(t.to_string());
            }
        }
    }
    Ok(found)
}

/// This deployment's BBB servers running now (its instances tagged as servers).
async fn servers_running(aws: &Aws, stack: &str) -> Result<u32> {
    let params = [
        ("Filter.1.Name", "instance-state-name"),
        ("Filter.1.Value.1", "pending"),
        ("Filter.1.Value.2", "running"),
        ("Filter.2.Name", "tag:bbbctl:stack"),
        ("Filter.2.Value.1", stack),
        ("Filter.3.Name", "tag:bbbctl:role"),
        ("Filter.3.Value.1", "bbb-server"),
        ("MaxResults", "1000"),
    ];
    let mut n = 0;
    for xml in pages(aws, "DescribeInstances", &params).await? {
        n += items(&xml, "instancesSet").len() as u32;
    }
    Ok(n)
}

/// The region's Availability Zones, in the order `Fn::GetAZs` gives them.
async fn zones(aws: &Aws) -> Result<Vec<String>> {
    let xml = query(aws, "ec2", "DescribeAvailabilityZones", EC2_VERSION, &[]).await?;
    Ok(items(&xml, "availabilityZoneInfo")
        .into_iter()
        .filter(|z| {
            between(z, "<zoneType>", "</zoneType>").is_none_or(|t| t == "availability-zone")
                && between(z, "<zoneState>", "</zoneState>").is_none_or(|s| s == "available")
        })
        .filter_map(|z| between(z, "<zoneName>", "</zoneName>").map(str::to_string))
        .collect())
}

/// NAT gateways (pending or available) per Availability Zone.
async fn nat_gateways_per_zone(aws: &Aws) -> Result<BTreeMap<String, f64>> {
    let params = [
        ("Filter.1.Name", "state"),
        ("Filter.1.Value.1", "pending"),
        ("Filter.1.Value.2", "available"),
        ("MaxResults", "1000"),
    ];
    let mut subnets: Vec<String> = Vec::new();
    for xml in pages(aws, "DescribeNatGateways", &params).await? {
        subnets.extend(
            items(&xml, "natGatewaySet")
                .into_iter()
                .filter_map(|g| between(g, "<subnetId>", "</subnetId>").map(str::to_string)),
        );
    }
    let mut per_zone = BTreeMap::new();
    let unique: BTreeSet<&String> = subnets.iter().collect();
    let unique: Vec<&String> = unique.into_iter().collect();
    let mut zone_of = BTreeMap::new();
    for chunk in unique.chunks(200) {
        let params: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("SubnetId.{}", i + 1), enc(s)))
            .collect();
        let xml = query(aws, "ec2", "DescribeSubnets", EC2_VERSION, &params).await?;
        for s in items(&xml, "subnetSet") {
            if let (Some(id), Some(zone)) = (
                between(s, "<subnetId>", "</subnetId>"),
                between(s, "<availabilityZone>", "</availabilityZone>"),
            ) {
                zone_of.insert(id.to_string(), zone.to_string());
            }
        }
    }
    for s in &subnets {
        if let Some(z) = zone_of.get(s) {
            *per_zone.entry(z.clone()).or_insert(0.0) += 1.0;
        }
    }
    Ok(per_zone)
}

async fn count(aws: &Aws, action: &str, set: &str, params: &[(&str, &str)]) -> Result<f64> {
    let mut n = 0;
    for xml in pages(aws, action, params).await? {
        n += items(&xml, set).len();
    }
    Ok(n as f64)
}

/// Setup's pre-flight: refuses (exit 2) a deployment, or the increase an update asks for,
/// that the account's quotas in the region cannot hold.
pub async fn check(
    aws: &Aws,
    p: &Printer,
    s: &SetupSettings,
    existing: Option<&Stack>,
) -> Result<()> {
    let region = aws.region().to_string();
    let before = existing.map(|st| user_params(&s.root, parameters(st)));
    let mut new = demand_of(s, &s.params, &region, None)?;
    let mut old = match &before {
        Some(params) => demand_of(s, params, &region, None)?,
        None => Demand::default(),
    };
    // An update keeps the servers that run (setup does not change their number): what
    // changes is what each of them, or the ECS instances, are.
    let kinds = |d: &Demand| -> Vec<(&'static str, String)> {
        d.instances
            .iter()
            .map(|i| (i.parameter, i.instance_type.clone()))
            .collect()
    };
    if existing.is_some() && kinds(&new) != kinds(&old) {
        let running = match servers_running(aws, &s.stack).await {
            Ok(n) => n,
            Err(e) => {
                p.warn(format!(
                    "Service quotas not checked: this deployment's servers cannot be counted ({e:#})"
                ));
                return Ok(());
            }
        };
        for d in [&mut new, &mut old] {
            if let Some(i) = d.instances.iter_mut().find(|i| i.parameter == SERVER_TYPE) {
                i.count = running;
            }
        }
    } else if existing.is_some() {
        old.instances.clone_from(&new.instances);
    }
    // A mode switch creates the new mode's addresses and servers before the update's
    // clean-up releases the old mode's (a switch to single takes the scalable servers out
    // first): at its peak the account holds both.
    if let Some(from) = before.as_ref().and_then(|b| b.get(P_MODE))
        && *from != s.mode
    {
        old.elastic_ips = 0;
        old.instances.clear();
    }

    let mut needs: Vec<Need> = Vec::new();
    let mut limits: BTreeMap<Quota, f64> = BTreeMap::new();
    macro_rules! limit {
        ($q:expr) => {
            match limits.get(&$q) {
                Some(v) => *v,
                None => match quota_value(aws, $q).await {
                    Ok(v) => {
                        limits.insert($q, v);
                        v
                    }
                    Err(why) => {
                        p.warn(format!(
                            "Service quotas not checked: {} ({} {}) cannot be read ({why}). bbbctl's operator policy (iam/bbbctl-operator-1.json) allows servicequotas:GetServiceQuota and GetAWSDefaultServiceQuota",
                            $q.name, $q.service, $q.code
                        ));
                        return Ok(());
                    }
                },
            }
        };
    }
    let unread = |what: &str, e: &anyhow::Error| {
        p.warn(format!(
            "{what} in use cannot be read ({e:#}); compared with the quota alone"
        ));
    };

    // On-Demand Standard vCPUs.
    let wanted_types: BTreeSet<String> = types(&new).union(&types(&old)).cloned().collect();
    for i in new.instances.iter().filter(|i| i.count > 0) {
        if !is_standard(&i.instance_type) {
            p.info(format!(
                "{} {} counts against another EC2 On-Demand quota than the Standard one: not checked",
                i.parameter, i.instance_type
            ));
        }
    }
    if new.instances != old.instances && wanted_types.iter().any(|t| is_standard(t)) {
        let parameter_of = |t: &str| {
            new.instances
                .iter()
                .find(|i| i.instance_type == t)
                .map(|i| i.parameter)
        };
        let mut vcpus = match vcpus_of(aws, &wanted_types, &parameter_of).await {
            Ok(v) => v,
            Err(e) if e.downcast_ref::<UsageError>().is_some() => return Err(e),
            Err(e) => {
                p.warn(format!(
                    "{} not checked: EC2 instance types cannot be read ({e:#})",
                    STANDARD_VCPUS.short
                ));
                BTreeMap::new()
            }
        };
        let (need_new, words) = standard_vcpus(&new, &vcpus);
        let (need_old, _) = standard_vcpus(&old, &vcpus);
        let needed = need_new - need_old;
        let detail = if need_old > 0.0 {
            format!("{}, instead of {} now", words.join(" + "), number(need_old))
        } else {
            words.join(" + ")
        };
        if needed > 0.0 {
            let limit = limit!(STANDARD_VCPUS);
            let in_use = match running_on_demand(aws).await {
                Ok(running) => {
                    let missing: BTreeSet<String> = running
                        .iter()
                        .filter(|t| is_standard(t) && !vcpus.contains_key(*t))
                        .cloned()
                        .collect();
                    let known = match missing.is_empty() {
                        true => Ok(()),
                        false => vcpus_of(aws, &missing, &|_| None)
                            .await
                            .map(|more| vcpus.extend(more)),
                    };
                    match known {
                        Ok(()) => Some(
                            running
                                .iter()
                                .filter(|t| is_standard(t))
                                .filter_map(|t| vcpus.get(t))
                                .map(|v| f64::from(*v))
                                .sum(),
                        ),
                        Err(e) => {
                            unread("On-Demand instances", &e);
                            None
                        }
                    }
                }
                Err(e) => {
                    unread("On-Demand instances", &e);
                    None
                }
            };
            needs.push(Need {
                quota: STANDARD_VCPUS,
                zone: None,
                needed,
                detail,
                limit,
                in_use,
            });
        }
    }

    // Elastic IPs and VPCs.
    if new.elastic_ips > old.elastic_ips {
        let limit = limit!(ELASTIC_IPS);
        let in_use = count(
            aws,
            "DescribeAddresses",
            "addressesSet",
            &[("Filter.1.Name", "domain"), ("Filter.1.Value.1", "vpc")],
        )
        .await
        .map_err(|e| unread("Elastic IP addresses", &e))
        .ok();
        needs.push(Need {
            quota: ELASTIC_IPS,
            zone: None,
            needed: f64::from(new.elastic_ips - old.elastic_ips),
            detail: "the NAT gateways' and the single server's fixed addresses".into(),
            limit,
            in_use,
        });
    }
    if new.vpcs > old.vpcs {
        let limit = limit!(VPCS);
        let in_use = count(aws, "DescribeVpcs", "vpcSet", &[("MaxResults", "1000")])
            .await
            .map_err(|e| unread("VPCs", &e))
            .ok();
        needs.push(Need {
            quota: VPCS,
            zone: None,
            needed: f64::from(new.vpcs - old.vpcs),
            detail: "the deployment's own; BBBExistingVPC would use one of yours".into(),
            limit,
            in_use,
        });
    }

    // NAT gateways, per Availability Zone.
    if new.nat_azs > old.nat_azs {
        let limit = limit!(NAT_GATEWAYS_PER_AZ);
        match (zones(aws).await, nat_gateways_per_zone(aws).await) {
            (Ok(zones), Ok(per_zone)) => {
                for zone in zones
                    .iter()
                    .take(new.nat_azs as usize)
                    .skip(old.nat_azs as usize)
                {
                    needs.push(Need {
                        quota: NAT_GATEWAYS_PER_AZ,
                        zone: Some(zone.clone()),
                        needed: 1.0,
                        detail: "the private subnets' way out".into(),
                        limit,
                        in_use: Some(per_zone.get(zone).copied().unwrap_or(0.0)),
                    });
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                unread("NAT gateways", &e);
                needs.push(Need {
                    quota: NAT_GATEWAYS_PER_AZ,
                    zone: None,
                    needed: 1.0,
                    detail: "the private subnets' way out".into(),
                    limit,
                    in_use: None,
                });
            }
        }
    }

    // Fargate vCPUs (the front end's tasks). What runs on Fargate now is not counted: it
    // would take a listing of every cluster's tasks.
    let fargate = new.fargate_vcpus - old.fargate_vcpus;
    if fargate > 1e-9 {
        let limit = limit!(FARGATE_VCPUS);
        needs.push(Need {
            quota: FARGATE_VCPUS,
            zone: None,
            needed: fargate,
            detail: "the Greenlight and Scalelite tasks".into(),
            limit,
            in_use: None,
        });
    }

    let short: Vec<&Need> = needs.iter().filter(|n| n.short()).collect();
    if !short.is_empty() {
        return Err(usage(refusal(&region, &short)));
    }
    if !needs.is_empty() {
        let fits: Vec<String> = needs
            .iter()
            .map(|n| {
                format!(
                    "{}{} {} of {}{}",
                    n.quota.short,
                    n.zone
                        .as_deref()
                        .map(|z| format!(" in {z}"))
                        .unwrap_or_default(),
                    number(n.needed),
                    number(n.left()),
                    if n.in_use.is_none() {
                        " (what runs now not counted)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        p.info(format!(
            "Service quotas in {region} hold this deployment (needed of left): {}.",
            fits.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Task;

    fn shape(mode: &str, servers: f64, server_type: &str, ecs: Option<&str>, nat: u32) -> Shape {
        Shape {
            mode: mode.into(),
            region: "eu-central-1".into(),
            azs: 2,
            nat_gateways: nat,
            tasks: vec![
                Task {
                    name: "Greenlight".into(),
                    vcpu: 1.0,
                    gib: 2.0,
                    count: 2.0,
                },
                Task {
                    name: "Poller".into(),
                    vcpu: 0.25,
                    gib: 0.5,
                    count: 1.0,
                },
            ],
            ecs_instance: ecs.map(str::to_string),
            ecs_group: (1, 6),
            db: None,
            cache: None,
            efs: true,
            alb: true,
            servers,
            server_type: server_type.into(),
            server_volume_gb: 150.0,
            kept_volume_gb: 0.0,
            warm: 0.0,
            secrets: 8,
            log_retention_days: 30.0,
        }
    }

    #[test]
    fn standard_families_are_the_ones_its_name_lists() {
        for t in [
            "c5.2xlarge",
            "m7i-flex.large",
            "t3.micro",
            "r6g.large",
            "i4i.large",
            "im4gn.large",
            "is4gen.large",
            "d3en.xlarge",
            "z1d.large",
            "a1.large",
            "h1.2xlarge",
        ] {
            assert!(is_standard(t), "{t}");
        }
        for t in [
            "g5.xlarge",
            "p4d.24xlarge",
            "x2idn.16xlarge",
            "inf2.xlarge",
            "dl1.24xlarge",
            "trn1.2xlarge",
            "hpc7g.4xlarge",
            "u-6tb1.metal",
            "mac1.metal",
            "f1.2xlarge",
            "vt1.3xlarge",
        ] {
            assert!(!is_standard(t), "{t}");
        }
    }

    #[test]
    fn a_scalable_deployment_needs_servers_ecs_instances_nat_and_its_vpc() {
        let d = demand(
            &shape("scalable", 3.0, "c5.2xlarge", Some("t3.large"), 2),
            true,
            3,
        );
        assert_eq!(d.instances.len(), 2);
        assert_eq!((d.instances[0].count, d.instances[1].count), (3, 1));
        assert_eq!((d.elastic_ips, d.vpcs, d.nat_azs), (2, 1, 2));
        assert_eq!(d.fargate_vcpus, 0.0, "ECS on EC2: no Fargate");
        let vcpus = BTreeMap::from([("c5.2xlarge".into(), 8), ("t3.large".into(), 2)]);
        let (total, words) = standard_vcpus(&d, &vcpus);
        assert_eq!(total, 26.0);
        assert_eq!(
            words.join(" + "),
            "3 × c5.2xlarge of 8 vCPUs + 1 × t3.large of 2 vCPUs"
        );
    }

    #[test]
    fn fargate_counts_every_task_and_a_single_server_its_address() {
        let d = demand(&shape("scalable", 1.0, "c5.xlarge", None, 1), false, 1);
        assert_eq!(d.fargate_vcpus, 2.25);
        assert_eq!(
            (d.elastic_ips, d.vpcs),
            (1, 0),
            "existing VPC: none of its own"
        );
        let single = demand(&shape("single", 4.0, "c5.xlarge", None, 0), true, 4);
        assert_eq!(single.instances[0].count, 1, "single mode runs one server");
        assert_eq!((single.elastic_ips, single.nat_azs), (1, 0));
    }

    #[test]
    fn items_are_the_top_level_elements_of_each_set() {
        let xml = "<r><reservationSet><item><instancesSet><item><instanceType>c5.large</instanceType>\
                   <networkInterfaceSet><item><x>1</x></item></networkInterfaceSet></item>\
                   <item><instanceType>t3.micro</instanceType><instanceLifecycle>spot</instanceLifecycle></item>\
                   </instancesSet></item><item><instancesSet><item><instanceType>m5.large</instanceType></item>\
                   </instancesSet></item></reservationSet><nextToken>abc</nextToken></r>";
        let found = items(xml, "instancesSet");
        assert_eq!(found.len(), 3);
        assert!(found[0].contains("c5.large") && found[0].contains("networkInterfaceSet"));
        assert_eq!(
            between(found[1], "<instanceLifecycle>", "</instanceLifecycle>"),
            Some("spot")
        );
        assert_eq!(
            between(found[2], "<instanceType>", "</instanceType>"),
            Some("m5.large")
        );
        assert!(items("<a><vpcSet/></a>", "vpcSet").is_empty());
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(enc("a+b/c= d"), "a%2Bb%2Fc%3D%20d");
        assert_eq!(enc("tag:bbbctl:stack"), "tag%3Abbbctl%3Astack");
    }

    #[test]
    fn a_refusal_names_the_quota_what_is_left_and_how_to_raise_it() {
        let n = Need {
            quota: STANDARD_VCPUS,
            zone: None,
            needed: 16.0,
            detail: "2 × c5.2xlarge of 8 vCPUs".into(),
            limit: 5.0,
            in_use: Some(2.0),
        };
        assert!(n.short());
        let text = refusal("eu-central-1", &[&n]);
        assert!(text.contains("Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (ec2 quota L-1216C47A)"), "{text}");
        assert!(
            text.contains(
                "needs 16 more vCPUs (2 × c5.2xlarge of 8 vCPUs); the quota is 5, 2 in use, 3 left"
            ),
            "{text}"
        );
        assert!(text.contains("aws service-quotas request-service-quota-increase --region eu-central-1 --service-code ec2 --quota-code L-1216C47A --desired-value 18"), "{text}");
        assert!(text.contains("nothing was created"));
        let fits = Need {
            needed: 3.0,
            ..n.clone()
        };
        assert!(!fits.short());
    }
}
