//! `bbbctl cost`: what a deployment costs per month, from its own definition — the templates
//! bbbctl ships and the deployment's parameters — priced line by line.
//!
//! [`Shape`] is what the parameters deploy (read from the templates where they say it: task
//! sizes, secrets, NAT gateways); [`estimate`] prices it with a [`prices::PriceBook`] and the
//! usage [`Assumptions`]. Both are pure.

pub mod cron;
pub mod prices;

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Serialize;
use serde_yaml_ng::Value;

use crate::templates::{Bundle, TemplateInfo};
use crate::ui::{WIDTH, wrap};
use prices::{Meter, PriceBook};

/// Hours in the average month (365 × 24 / 12), as AWS's own calculator counts.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// A quantity that usage decides: low and high (equal when it is fixed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Band {
    pub low: f64,
    pub high: f64,
}

impl Band {
    pub fn fixed(v: f64) -> Self {
        Band { low: v, high: v }
    }

    pub fn new(low: f64, high: f64) -> Self {
        Band { low, high }
    }

    fn times(self, f: f64) -> Self {
        Band::new(self.low * f, self.high * f)
    }

    fn is_fixed(&self) -> bool {
        (self.high - self.low).abs() < 1e-9
    }

    /// Parses `N` or `LOW-HIGH`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{text:?} is not a number ≥ 0 or a range LOW-HIGH"))
        };
        match text.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{text:?}: LOW is above HIGH"));
                }
                Ok(Band::new(a, b))
            }
            None => Ok(Band::fixed(num(text)?)),
        }
    }
}

/// The usage the estimate assumes: every one a flag of `bbbctl cost` with a documented default.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assumptions {
    /// Participant-hours a month across all meetings (a participant in a meeting for an hour).
    pub participant_hours: f64,
    /// GB sent to participants per participant-hour: audio and slides only at the low end,
    /// webcams at the high end.
    pub gb_per_participant_hour: Band,
    /// Recordings kept on EFS (scalable mode), GB.
    pub recordings_gb: f64,
    /// BBB server-hours a month; `None`: count × 730, or the timetable's.
    pub server_hours: Option<f64>,
    /// Average load balancer capacity units.
    pub lcu: Band,
    /// Log data written to CloudWatch a month, GB.
    pub log_gb: Band,
    /// Data through the NAT gateways a month (image pulls, updates, API calls), GB.
    pub nat_gb: Band,
    /// Aurora I/O requests a month, millions.
    pub db_io_millions: Band,
    /// Aurora storage used, GB.
    pub db_gb: f64,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            participant_hours: 10_000.0,
            gb_per_participant_hour: Band::new(0.05, 0.5),
            recordings_gb: 100.0,
            server_hours: None,
            lcu: Band::new(0.5, 2.0),
            log_gb: Band::new(1.0, 10.0),
            nat_gb: Band::new(5.0, 50.0),
            db_io_millions: Band::new(1.0, 20.0),
            db_gb: 5.0,
        }
    }
}

/// One ECS service: its task size (from its task definition) and how many run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Task {
    pub name: String,
    pub vcpu: f64,
    pub gib: f64,
    pub count: f64,
}

/// What a deployment's parameters deploy, as far as it costs money.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shape {
    pub mode: String,
    pub region: String,
    pub azs: u32,
    pub nat_gateways: u32,
    /// ECS services (scalable mode).
    pub tasks: Vec<Task>,
    /// `None`: Fargate; else the EC2 instance type of the ECS capacity provider.
    pub ecs_instance: Option<String>,
    /// The EC2 capacity provider's group size bounds (min, max).
    pub ecs_group: (u32, u32),
    /// `db.serverless` with (min, max) ACUs, or an instance class.
    pub db: Option<Db>,
    /// (engine as the price list names it, node type, nodes)
    pub cache: Option<(String, String, u32)>,
    pub efs: bool,
    pub alb: bool,
    pub servers: f64,
    pub server_type: String,
    /// Root + data volume of one server, GB.
    pub server_volume_gb: f64,
    /// Single mode with a VPC of bbbctl's: the data volume outlives the server.
    pub kept_volume_gb: f64,
    /// Scalable mode: prepared servers kept stopped in the warm pool (BBBWarmPoolSize).
    pub warm: f64,
    pub secrets: u32,
    pub log_retention_days: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Db {
    Serverless { min_acu: f64, max_acu: f64 },
    Instance { class: String },
}

/// One line of the estimate.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub item: String,
    pub meter: String,
    pub quantity: Band,
    pub unit: String,
    /// `None`: no price known for this meter (not in the total).
    pub unit_price: Option<f64>,
    pub currency: &'static str,
    /// quantity × unit price, in cents ([`cents`]).
    pub monthly: Band,
    pub depends_on: String,
    /// The AWS Price List file the unit price is in (a URL to open).
    pub source: Option<String>,
    /// The price list record, when the price came from the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The price's date: the record's publication date, or the day the snapshot was taken.
    pub price_date: Option<String>,
    /// The price is bbbctl's snapshot's, not the API's answer of today.
    pub from_snapshot: bool,
}

/// A USD amount rounded to cents: every amount of an estimate goes through here once, so
/// that the lines and the total, in text and JSON, are the same numbers.
pub fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

/// The priced deployment.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub shape: Shape,
    pub lines: Vec<Line>,
    pub total: Band,
    pub assumptions: Assumptions,
    pub prices: String,
    /// Meters without a price (left out of the total).
    pub unpriced: Vec<String>,
}

fn num(params: &BTreeMap<String, String>, name: &str, default: f64) -> f64 {
    params
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The task definitions of the front end's services (frontend.yaml): vCPU and memory of
/// each, how many run (`DesiredCount`: a number, or `TaskCount`), and the service's condition.
fn tasks(frontend: &TemplateInfo, task_count: f64, greenlight: bool) -> Vec<Task> {
    let by_id: BTreeMap<&str, &crate::templates::Resource> = frontend
        .resources
        .iter()
        .map(|r| (r.logical_id.as_str(), r))
        .collect();
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Tagged(t) => t.value.as_str().map(|s| format!("!{s}")),
            _ => None,
        }
    };
    frontend
        .resources
        .iter()
        .filter(|r| r.kind == "AWS::ECS::Service")
        .filter(|r| greenlight || r.condition.as_deref() != Some("HasGreenlight"))
        .filter_map(|r| {
            let def = text(r.properties.get("TaskDefinition"))?;
            let task = by_id.get(def.trim_start_matches('!'))?;
            let cpu: f64 = text(task.properties.get("Cpu"))?.parse().ok()?;
            let mem: f64 = text(task.properties.get("Memory"))?.parse().ok()?;
            let count = match text(r.properties.get("DesiredCount")) {
                Some(c) if c.starts_with('!') => task_count,
                Some(c) => c.parse().unwrap_or(1.0),
                None => 1.0,
            };
            Some(Task {
                name: r.logical_id.trim_end_matches("Service").to_string(),
                vcpu: cpu / 1024.0,
                gib: mem / 1024.0,
                count,
            })
        })
        .collect()
}

/// How many resources of `kind` the nested stacks in effect declare, counting a resource
/// with a condition only when the condition is one of the mode's and holds.
fn count_resources(
    nested: &BTreeMap<String, TemplateInfo>,
    root: &TemplateInfo,
    params: &BTreeMap<String, String>,
    kind: &str,
    holds: impl Fn(&str) -> bool,
) -> Result<u32> {
    let mut n = 0;
    for stack in root.nested_in_effect(params) {
        if let Some(t) = nested.get(&stack.logical_id) {
            n += t
                .resources
                .iter()
                .filter(|r| r.kind == kind && r.condition.as_deref().is_none_or(&holds))
                .count() as u32;
        }
    }
    Ok(n)
}

/// Reads the deployment's shape from its parameters (root.yaml defaults fill the rest), the
/// number of servers running and the templates.
pub fn shape(
    bundle: &Bundle,
    params: &BTreeMap<String, String>,
    region: &str,
    servers: Option<f64>,
) -> Result<Shape> {
    let root = bundle.root_info()?;
    let mut p: BTreeMap<String, String> = root
        .parameters
        .iter()
        .filter_map(|(k, s)| Some((k.clone(), s.default.clone()?)))
        .collect();
    p.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let mode = get("BBBEnvironmentType");
    if mode != "scalable" && mode != "single" {
        bail!("BBBEnvironmentType {mode:?}: must be scalable or single");
    }
    let scalable = mode == "scalable";
    let azs = num(&p, "BBBNumberOfAZs", 2.0) as u32;
    let own_vpc = get("BBBExistingVPC").is_empty();
    let greenlight = get("BBBFrontendType") != "External";
    let nested = bundle.nested_templates()?;
    let frontend = nested.get("FrontendStack");
    let ecs_type = get("BBBECSInstanceType");
    let ecs_group = nested
        .get("EcsStack")
        .and_then(|t| {
            let g = t
                .resources
                .iter()
                .find(|r| r.kind == "AWS::AutoScaling::AutoScalingGroup")?;
            let n = |k: &str| g.properties.get(k)?.as_str()?.parse::<u32>().ok();
            Some((n("MinSize")?, n("MaxSize")?))
        })
        .unwrap_or((1, 1));
    let holds = |c: &str| match c {
        "IsScalable" => scalable,
        "IsSingle" => !scalable,
        "HasGreenlight" => greenlight,
        _ => true,
    };
    let secrets = count_resources(&nested, &root, &p, "AWS::SecretsManager::Secret", holds)?;
    let class = get("BBBDBInstanceClass");
    let data_gb = num(&p, "BBBServerDataVolumeSize", 100.0);
    let root_gb = nested
        .get("BbbServersStack")
        .and_then(|t| t.parameters.get("RootVolumeSize")?.default.clone())
        .and_then(|d| d.parse().ok())
        .unwrap_or(50.0);
    let engine = match get("BBBCacheEngine").as_str() {
        "valkey" => "Valkey".to_string(),
        _ => "Redis".to_string(),
    };
    let servers = if scalable {
        servers.unwrap_or_else(|| num(&p, "BBBServerCount", 1.0))
    } else {
        1.0
    };
    Ok(Shape {
        mode: mode.clone(),
        region: region.to_string(),
        azs,
        nat_gateways: match (scalable, own_vpc, get("BBBNATGatewayPerAZ") == "true") {
            (true, true, true) => azs,
            (true, true, false) => 1,
            _ => 0,
        },
        tasks: match (frontend, scalable) {
            (Some(f), true) => tasks(f, num(&p, "BBBFrontendTaskCount", 1.0), greenlight),
            _ => Vec::new(),
        },
        ecs_instance: (scalable && ecs_type != "fargate").then_some(ecs_type),
        ecs_group,
        db: scalable.then(|| {
            if class == "db.serverless" {
                Db::Serverless {
                    min_acu: num(&p, "BBBDBMinCapacity", 0.5),
                    max_acu: num(&p, "BBBDBMaxCapacity", 4.0),
                }
            } else {
                Db::Instance { class }
            }
        }),
        cache: scalable.then(|| {
            let nodes = if get("BBBCacheMultiAZ") == "true" {
                2
            } else {
                1
            };
            (engine, get("BBBCacheNodeType"), nodes)
        }),
        efs: scalable,
        alb: scalable,
        servers,
        server_type: get("BBBServerInstanceType"),
        server_volume_gb: root_gb + if scalable || !own_vpc { data_gb } else { 0.0 },
        kept_volume_gb: if !scalable && own_vpc { data_gb } else { 0.0 },
        warm: if scalable {
            num(&p, crate::settings::P_WARM_POOL, 0.0)
        } else {
            0.0
        },
        secrets,
        log_retention_days: num(&p, "BBBLogRetentionDays", 30.0),
    })
}

/// Every meter a shape needs a price for.
pub fn meters(shape: &Shape) -> Vec<Meter> {
    let mut m = vec![
        Meter::Ec2(shape.server_type.clone()),
        Meter::Gp3,
        Meter::PublicIpv4,
        Meter::Secret,
        Meter::HostedZone,
        Meter::LogsIngest,
        Meter::LogsStorage,
        Meter::TransferOut,
    ];
    if shape.nat_gateways > 0 {
        m.extend([Meter::NatHours, Meter::NatGb]);
    }
    if shape.alb {
        m.extend([Meter::AlbHours, Meter::AlbLcu]);
    }
    if !shape.tasks.is_empty() {
        match &shape.ecs_instance {
            None => m.extend([Meter::FargateVcpu, Meter::FargateGb]),
            Some(t) => m.push(Meter::Ec2(t.clone())),
        }
    }
    match &shape.db {
        Some(Db::Serverless { .. }) => m.push(Meter::AuroraAcu),
        Some(Db::Instance { class }) => m.push(Meter::AuroraInstance(class.clone())),
        None => {}
    }
    if shape.db.is_some() {
        m.extend([Meter::AuroraStorage, Meter::AuroraIo]);
    }
    if let Some((engine, node, _)) = &shape.cache {
        m.push(Meter::CacheNode(engine.clone(), node.clone()));
    }
    if shape.efs {
        m.push(Meter::Efs);
    }
    m.sort();
    m.dedup();
    m
}

/// Prices the shape. `average_servers`: the servers the timetable keeps running on average
/// (`None`: no schedules).
pub fn estimate(
    shape: &Shape,
    book: &PriceBook,
    a: &Assumptions,
    average_servers: Option<f64>,
) -> Estimate {
    let mut lines = Vec::new();
    let mut add = |item: String, meter: Meter, quantity: Band, depends_on: String| {
        let price = book.get(&meter);
        let unit_price = price.map(|p| p.usd);
        let monthly = quantity.times(unit_price.unwrap_or(0.0));
        lines.push(Line {
            item,
            meter: meter.key(),
            quantity,
            unit: meter.unit().to_string(),
            unit_price,
            currency: "USD",
            monthly: Band::new(cents(monthly.low), cents(monthly.high)),
            depends_on,
            source: price.map(|p| p.source.clone()),
            sku: price.and_then(|p| p.sku.clone()),
            price_date: price.map(|p| p.date.clone()),
            from_snapshot: price.is_some_and(|p| p.snapshot),
        });
    };
    let h = HOURS_PER_MONTH;

    // BBB servers and their volumes.
    let (server_hours, hours_from) = match (a.server_hours, average_servers) {
        (Some(sh), _) => (sh, "--server-hours".to_string()),
        (None, Some(avg)) => (
            avg * h,
            format!("the schedules: {avg:.2} server(s) on average"),
        ),
        (None, None) => (
            shape.servers * h,
            format!("{} server(s) around the clock", shape.servers),
        ),
    };
    add(
        format!("BBB servers ({})", shape.server_type),
        Meter::Ec2(shape.server_type.clone()),
        Band::fixed(server_hours),
        format!("BBBServerInstanceType; {hours_from}"),
    );
    add(
        "BBB server volumes (gp3)".into(),
        Meter::Gp3,
        Band::fixed(shape.server_volume_gb * server_hours / h),
        format!(
            "{} GB per server (root + BBBServerDataVolumeSize) while it runs",
            shape.server_volume_gb
        ),
    );
    // The warm pool: its instances are stopped (EC2 charges no instance hours and no public
    // IPv4 address for a stopped instance), their root and data volumes are charged as ever.
    if shape.warm > 0.0 {
        add(
            "BBB warm pool volumes (gp3)".into(),
            Meter::Gp3,
            Band::fixed(shape.warm * shape.server_volume_gb),
            format!(
                "BBBWarmPoolSize {} stopped server(s) × {} GB (root + BBBServerDataVolumeSize); no instance hours while stopped",
                shape.warm, shape.server_volume_gb
            ),
        );
    }
    if shape.kept_volume_gb > 0.0 {
        add(
            "BBB data volume, kept (gp3)".into(),
            Meter::Gp3,
            Band::fixed(shape.kept_volume_gb),
            "BBBServerDataVolumeSize; single mode keeps it across server replacements".into(),
        );
    }

    // Public IPv4: each server, each NAT gateway, the load balancer's node in each zone.
    let ipv4 = server_hours
        + f64::from(shape.nat_gateways) * h
        + if shape.alb {
            f64::from(shape.azs) * h
        } else {
            0.0
        };
    add(
        "Public IPv4 addresses".into(),
        Meter::PublicIpv4,
        Band::fixed(ipv4),
        format!(
            "one per server{}{}",
            if shape.nat_gateways > 0 {
                format!(", {} NAT gateway(s)", shape.nat_gateways)
            } else {
                String::new()
            },
            if shape.alb {
                format!(", one per zone of the load balancer ({})", shape.azs)
            } else {
                String::new()
            }
        ),
    );

    if shape.nat_gateways > 0 {
        let n = f64::from(shape.nat_gateways);
        add(
            "NAT gateways".into(),
            Meter::NatHours,
            Band::fixed(n * h),
            format!("{n} gateway(s): BBBNATGatewayPerAZ, BBBNumberOfAZs"),
        );
        add(
            "NAT data processed".into(),
            Meter::NatGb,
            a.nat_gb,
            "--nat-gb (image pulls, updates, AWS API calls of the front end)".into(),
        );
    }
    if shape.alb {
        add(
            "Load balancer".into(),
            Meter::AlbHours,
            Band::fixed(h),
            "scalable mode: one Application Load Balancer".into(),
        );
        add(
            "Load balancer capacity units".into(),
            Meter::AlbLcu,
            a.lcu.times(h),
            "--lcu (average LCUs; media goes to the BBB servers, not through it)".into(),
        );
    }

    // ECS tasks.
    if !shape.tasks.is_empty() {
        let vcpu: f64 = shape.tasks.iter().map(|t| t.vcpu * t.count).sum();
        let gib: f64 = shape.tasks.iter().map(|t| t.gib * t.count).sum();
        let names = shape
            .tasks
            .iter()
            .map(|t| format!("{} {}×{}vCPU/{}GiB", t.name, t.count, t.vcpu, t.gib))
            .collect::<Vec<_>>()
            .join(", ");
        match &shape.ecs_instance {
            None => {
                add(
                    "ECS tasks on Fargate (vCPU)".into(),
                    Meter::FargateVcpu,
                    Band::fixed(vcpu * h),
                    names.clone(),
                );
                add(
                    "ECS tasks on Fargate (memory)".into(),
                    Meter::FargateGb,
                    Band::fixed(gib * h),
                    format!("{gib} GiB in all (BBBFrontendTaskCount)"),
                );
            }
            Some(t) => {
                let meter = Meter::Ec2(t.clone());
                let (min, max) = shape.ecs_group;
                // As few instances as the tasks fit on (by the type's vCPUs and memory)
                // up to the group's maximum; without the type's size: the group's range.
                let fit = book.get(&meter).and_then(|p| {
                    let need = (vcpu / p.vcpu?).max(gib / p.memory_gib?).ceil();
                    Some(need.clamp(f64::from(min), f64::from(max)))
                });
                let n = fit.map_or(Band::new(f64::from(min), f64::from(max)), Band::fixed);
                add(
                    format!("ECS instances ({t})"),
                    meter,
                    n.times(h),
                    format!("BBBECSInstanceType; {vcpu} vCPU / {gib} GiB of tasks: {names}"),
                );
                add(
                    "ECS instance volumes (gp3)".into(),
                    Meter::Gp3,
                    n.times(30.0),
                    "30 GB root volume per ECS instance".into(),
                );
            }
        }
    }

    // Database.
    match &shape.db {
        Some(Db::Serverless { min_acu, max_acu }) => add(
            "Aurora Serverless v2".into(),
            Meter::AuroraAcu,
            Band::new(min_acu * h, max_acu * h),
            format!("BBBDBMinCapacity {min_acu} – BBBDBMaxCapacity {max_acu} ACU"),
        ),
        Some(Db::Instance { class }) => add(
            format!("Aurora instance ({class})"),
            Meter::AuroraInstance(class.clone()),
            Band::fixed(h),
            "BBBDBInstanceClass".into(),
        ),
        None => {}
    }
    if shape.db.is_some() {
        add(
            "Aurora storage".into(),
            Meter::AuroraStorage,
            Band::fixed(a.db_gb),
            "--db-gb (Greenlight and Scalelite data)".into(),
        );
        add(
            "Aurora I/O".into(),
            Meter::AuroraIo,
            a.db_io_millions,
            "--db-io (million requests)".into(),
        );
    }
    if let Some((engine, node, nodes)) = &shape.cache {
        add(
            format!("ElastiCache {engine} ({node})"),
            Meter::CacheNode(engine.clone(), node.clone()),
            Band::fixed(f64::from(*nodes) * h),
            format!("{nodes} node(s): BBBCacheNodeType, BBBCacheMultiAZ, BBBCacheEngine"),
        );
    }
    if shape.efs {
        add(
            "EFS recordings".into(),
            Meter::Efs,
            Band::fixed(a.recordings_gb),
            "--recordings-gb".into(),
        );
    }
    add(
        "Secrets Manager secrets".into(),
        Meter::Secret,
        Band::fixed(f64::from(shape.secrets)),
        "the secrets the templates of this mode create".into(),
    );
    add(
        "Route 53 hosted zone".into(),
        Meter::HostedZone,
        Band::fixed(1.0),
        "your hosted zone (BBBHostedZone), also billed without bbbctl".into(),
    );
    add(
        "CloudWatch Logs ingestion".into(),
        Meter::LogsIngest,
        a.log_gb,
        "--log-gb".into(),
    );
    add(
        "CloudWatch Logs storage".into(),
        Meter::LogsStorage,
        a.log_gb.times(shape.log_retention_days / 30.0),
        format!(
            "--log-gb kept BBBLogRetentionDays {}",
            shape.log_retention_days
        ),
    );
    add(
        "Data transfer out".into(),
        Meter::TransferOut,
        a.gb_per_participant_hour.times(a.participant_hours),
        format!(
            "--participant-hours {} × --gb-per-participant-hour {}–{}",
            a.participant_hours, a.gb_per_participant_hour.low, a.gb_per_participant_hour.high
        ),
    );

    // The sum of the lines as shown (each in cents), without float noise.
    let sum = lines.iter().fold(Band::fixed(0.0), |t, l| {
        Band::new(t.low + l.monthly.low, t.high + l.monthly.high)
    });
    let total = Band::new(cents(sum.low), cents(sum.high));
    let unpriced = lines
        .iter()
        .filter(|l| l.unit_price.is_none())
        .map(|l| l.meter.clone())
        .collect();
    Estimate {
        shape: shape.clone(),
        lines,
        total,
        assumptions: a.clone(),
        prices: book.describe(),
        unpriced,
    }
}

/// A USD amount, or a LOW – HIGH band of them.
pub fn money(b: Band) -> String {
    if b.is_fixed() {
        format!("{:.2}", b.low)
    } else {
        format!("{:.2} – {:.2}", b.low, b.high)
    }
}

fn amount(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The estimate as a table that fits [`WIDTH`] columns: a line per item with its numbers, what
/// it depends on under it; then the total, where the prices come from (each service's AWS
/// Price List file, named once) and what the estimate leaves out.
pub fn render(e: &Estimate, title: &str) -> String {
    let row = |item: &str, q: &str, unit: &str, price: &str, usd: &str| {
        format!("  {item:<36} {q:>12}  {unit:<16} {price:>8} {usd:>20}")
            .trim_end()
            .to_string()
    };
    let mut lines = vec![
        wrap(title, WIDTH, "", "  "),
        row("item", "quantity", "unit", "USD/unit", "USD a month"),
    ];
    for l in &e.lines {
        let q = if l.quantity.is_fixed() {
            amount(l.quantity.low)
        } else {
            format!("{}–{}", amount(l.quantity.low), amount(l.quantity.high))
        };
        let (price, usd) = match l.unit_price {
            Some(p) => (format!("{p}"), money(l.monthly)),
            None => ("none".into(), "-".into()),
        };
        if l.item.chars().count() > 36 {
            lines.push(format!("  {}", l.item));
            lines.push(row("", &q, &l.unit, &price, &usd));
        } else {
            lines.push(row(&l.item, &q, &l.unit, &price, &usd));
        }
        lines.push(wrap(&l.depends_on, WIDTH, "      ", "      "));
    }
    lines.push(row("Total", "", "", "", &money(e.total)));
    lines.push(wrap(&format!("Prices: {}.", e.prices), WIDTH, "", "  "));
    // Each Price List file once, with the items it prices.
    let mut sources: Vec<(&str, Vec<&str>)> = Vec::new();
    for l in &e.lines {
        let Some(src) = l.source.as_deref() else {
            continue;
        };
        match sources.iter_mut().find(|(s, _)| *s == src) {
            Some((_, items)) => items.push(&l.item),
            None => sources.push((src, vec![&l.item])),
        }
    }
    if !sources.is_empty() {
        lines.push(format!(
            "Sources: AWS Price List files under {}",
            prices::OFFERS
        ));
        for (src, items) in &sources {
            let file = src.strip_prefix(prices::OFFERS).unwrap_or(src);
            lines.push(wrap(
                &items.join(", "),
                WIDTH,
                &format!("  {file}: "),
                "      ",
            ));
        }
    }
    if !e.unpriced.is_empty() {
        lines.push(wrap(
            &format!(
                "Not in the total (no price found): {}.",
                e.unpriced.join(", ")
            ),
            WIDTH,
            "",
            "  ",
        ));
    }
    lines.push(wrap(
        "On-Demand list prices before tax, without free tiers, savings plans or reserved capacity; the ranges come from usage (flags of `bbbctl cost`).",
        WIDTH,
        "",
        "",
    ));
    lines.join("\n")
}

#[cfg(test)]
mod tests;
