//! Unit prices: the AWS Price List Query API (GetProducts, filtered by region and the
//! product's attributes), a cache of its answers on disk with their date, and a dated
//! snapshot that ships with the binary (for `--offline` and when the API cannot be reached).
//! Every price names its source as a user can open it: the AWS Price List file of its
//! service and region (the Price List Bulk API), where the same record is.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use aws_sdk_pricing::types::{Filter, FilterType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cron;

/// Something AWS charges for, with the price list attributes that pick its price.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Meter {
    /// An EC2 On-Demand Linux instance of this type (shared tenancy), per hour.
    Ec2(String),
    /// EBS gp3 storage, per GB-month.
    Gp3,
    NatHours,
    NatGb,
    AlbHours,
    AlbLcu,
    FargateVcpu,
    FargateGb,
    /// Aurora PostgreSQL Serverless v2, per ACU-hour.
    AuroraAcu,
    /// Aurora storage (Aurora Standard), per GB-month.
    AuroraStorage,
    /// Aurora I/O (Aurora Standard), per million requests.
    AuroraIo,
    /// An Aurora PostgreSQL instance of this class, per hour.
    AuroraInstance(String),
    /// An ElastiCache node: (engine as the price list names it, node type), per hour.
    CacheNode(String, String),
    /// EFS Standard storage, per GB-month.
    Efs,
    /// A public IPv4 address in use, per hour.
    PublicIpv4,
    /// A Secrets Manager secret, per month.
    Secret,
    /// A Route 53 hosted zone, per month.
    HostedZone,
    /// CloudWatch Logs ingestion (Standard), per GB.
    LogsIngest,
    /// CloudWatch Logs storage, per GB-month.
    LogsStorage,
    /// Data transfer out of EC2 to the internet (first paid tier), per GB.
    TransferOut,
}

/// Where AWS publishes the Price List Bulk API's files.
pub const OFFERS: &str = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/";

/// The AWS Price List file (Bulk API, JSON) with the current prices of `service` in `region`;
/// global services (Route 53) have one file for all regions.
pub fn offer_url(service: &str, region: &str) -> String {
    if service == "AmazonRoute53" {
        format!("{OFFERS}{service}/current/index.json")
    } else {
        format!("{OFFERS}{service}/current/{region}/index.json")
    }
}

/// What to ask the Price List API for a meter.
pub struct Query {
    pub service: &'static str,
    pub filters: Vec<(&'static str, String)>,
    /// The record whose `usagetype` ends with this (usage types carry a region prefix).
    pub usage_suffix: Option<&'static str>,
}

impl Meter {
    /// The meter's key in the snapshot, the cache and JSON output.
    pub fn key(&self) -> String {
        match self {
            Meter::Ec2(t) => format!("ec2:{t}"),
            Meter::Gp3 => "ebs:gp3".into(),
            Meter::NatHours => "nat:hours".into(),
            Meter::NatGb => "nat:gb".into(),
            Meter::AlbHours => "alb:hours".into(),
            Meter::AlbLcu => "alb:lcu".into(),
            Meter::FargateVcpu => "fargate:vcpu".into(),
            Meter::FargateGb => "fargate:gb".into(),
            Meter::AuroraAcu => "aurora:acu".into(),
            Meter::AuroraStorage => "aurora:storage".into(),
            Meter::AuroraIo => "aurora:io".into(),
            Meter::AuroraInstance(c) => format!("aurora:{c}"),
            Meter::CacheNode(e, n) => format!("cache:{}:{n}", e.to_lowercase()),
            Meter::Efs => "efs:standard".into(),
            Meter::PublicIpv4 => "ipv4:hours".into(),
            Meter::Secret => "secrets:secret".into(),
            Meter::HostedZone => "route53:zone".into(),
            Meter::LogsIngest => "logs:ingest".into(),
            Meter::LogsStorage => "logs:storage".into(),
            Meter::TransferOut => "transfer:out".into(),
        }
    }

    /// The unit the meter's price is per.
    pub fn unit(&self) -> &'static str {
        match self {
            Meter::Ec2(_) | Meter::AuroraInstance(_) | Meter::CacheNode(..) => "instance-hour",
            Meter::NatHours => "gateway-hour",
            Meter::AlbHours => "ALB-hour",
            Meter::AlbLcu => "LCU-hour",
            Meter::FargateVcpu => "vCPU-hour",
            Meter::FargateGb => "GB-hour",
            Meter::AuroraAcu => "ACU-hour",
            Meter::PublicIpv4 => "address-hour",
            Meter::Gp3 | Meter::AuroraStorage | Meter::Efs | Meter::LogsStorage => "GB-month",
            Meter::NatGb | Meter::LogsIngest | Meter::TransferOut => "GB",
            Meter::AuroraIo => "million requests",
            Meter::Secret => "secret-month",
            Meter::HostedZone => "zone-month",
        }
    }

    /// The AWS Price List file that holds this meter's price in `region`.
    pub fn source(&self, region: &str) -> String {
        offer_url(self.query(region).service, region)
    }

    /// The GetProducts filters (all TERM_MATCH) and the usage type that pick this meter's
    /// price in `region`.
    pub fn query(&self, region: &str) -> Query {
        let r = || ("regionCode", region.to_string());
        let q = |service, mut filters: Vec<(&'static str, String)>, suffix| {
            filters.insert(0, r());
            Query {
                service,
                filters,
                usage_suffix: suffix,
            }
        };
        match self {
            Meter::Ec2(t) => q(
                "AmazonEC2",
                vec![
                    ("instanceType", t.clone()),
                    ("operatingSystem", "Linux".into()),
                    ("tenancy", "Shared".into()),
                    ("preInstalledSw", "NA".into()),
                    ("capacitystatus", "Used".into()),
                    ("licenseModel", "No License required".into()),
                ],
                None,
            ),
            Meter::Gp3 => q(
                "AmazonEC2",
                vec![("volumeApiName", "gp3".into())],
                Some("EBS:VolumeUsage.gp3"),
            ),
            Meter::NatHours => q(
                "AmazonEC2",
                vec![("productFamily", "NAT Gateway".into())],
                Some("NatGateway-Hours"),
            ),
            Meter::NatGb => q(
                "AmazonEC2",
                vec![("productFamily", "NAT Gateway".into())],
                Some("NatGateway-Bytes"),
            ),
            Meter::AlbHours => q(
                "AWSELB",
                vec![("productFamily", "Load Balancer-Application".into())],
                Some("LoadBalancerUsage"),
            ),
            Meter::AlbLcu => q(
                "AWSELB",
                vec![("productFamily", "Load Balancer-Application".into())],
                Some("LCUUsage"),
            ),
            Meter::FargateVcpu => q("AmazonECS", vec![], Some("Fargate-vCPU-Hours:perCPU")),
            Meter::FargateGb => q("AmazonECS", vec![], Some("Fargate-GB-Hours")),
            Meter::AuroraAcu => q(
                "AmazonRDS",
                vec![("databaseEngine", "Aurora PostgreSQL".into())],
                Some("Aurora:ServerlessV2Usage"),
            ),
            Meter::AuroraStorage => q(
                "AmazonRDS",
                vec![("databaseEngine", "Aurora PostgreSQL".into())],
                Some("Aurora:StorageUsage"),
            ),
            Meter::AuroraIo => q(
                "AmazonRDS",
                vec![("databaseEngine", "Aurora PostgreSQL".into())],
                Some("Aurora:StorageIOUsage"),
            ),
            Meter::AuroraInstance(c) => q(
                "AmazonRDS",
                vec![
                    ("instanceType", c.clone()),
                    ("databaseEngine", "Aurora PostgreSQL".into()),
                ],
                None,
            ),
            Meter::CacheNode(engine, node) => q(
                "AmazonElastiCache",
                vec![
                    ("instanceType", node.clone()),
                    ("cacheEngine", engine.clone()),
                ],
                None,
            ),
            Meter::Efs => q(
                "AmazonEFS",
                vec![("storageClass", "General Purpose".into())],
                Some("TimedStorage-ByteHrs"),
            ),
            Meter::PublicIpv4 => q("AmazonVPC", vec![], Some("PublicIPv4:InUseAddress")),
            Meter::Secret => q(
                "AWSSecretsManager",
                vec![],
                Some("AWSSecretsManager-Secrets"),
            ),
            Meter::HostedZone => Query {
                service: "AmazonRoute53",
                filters: vec![],
                usage_suffix: Some("HostedZone"),
            },
            Meter::LogsIngest => q(
                "AmazonCloudWatch",
                vec![("productFamily", "Data Payload".into())],
                Some("DataProcessing-Bytes"),
            ),
            Meter::LogsStorage => q(
                "AmazonCloudWatch",
                vec![("productFamily", "Storage Snapshot".into())],
                Some("TimedStorage-ByteHrs"),
            ),
            Meter::TransferOut => Query {
                service: "AWSDataTransfer",
                filters: vec![
                    ("fromRegionCode", region.to_string()),
                    ("transferType", "AWS Outbound".into()),
                ],
                usage_suffix: Some("DataTransfer-Out-Bytes"),
            },
        }
    }
}

/// One unit price and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub usd: f64,
    /// The price list's own unit (Hrs, GB-Mo, GB, ...).
    pub unit: String,
    /// The AWS Price List file (service and region) that holds the price: open it to check.
    pub source: String,
    /// The price list record's SKU, when the price was read from the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The date of the price: the record's publicationDate, or the day the snapshot was taken.
    #[serde(default)]
    pub date: String,
    /// From bbbctl's snapshot (the API was not asked, could not be, or had no record).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub snapshot: bool,
    /// EC2 instance types: their vCPUs and memory (GiB), from the price list record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gib: Option<f64>,
}

/// Where a price book's prices come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// Asked the Price List API just now.
    Api,
    /// From the cache, fetched on this day number.
    Cache(i64),
    /// The snapshot that ships with bbbctl, dated.
    Snapshot(String),
}

/// The prices of one region.
#[derive(Clone, Debug)]
pub struct PriceBook {
    pub region: String,
    pub prices: BTreeMap<String, Price>,
    pub origin: Origin,
    /// What went wrong on the way (API unreachable, a meter without a price), for the printer.
    pub notes: Vec<String>,
}

impl PriceBook {
    pub fn get(&self, meter: &Meter) -> Option<&Price> {
        self.prices.get(&meter.key())
    }

    /// Where the prices come from and how old they are, in words.
    pub fn describe(&self) -> String {
        let snapped: Vec<&Price> = self.prices.values().filter(|p| p.snapshot).collect();
        let mixed = match snapped.first() {
            Some(p) if snapped.len() < self.prices.len() => format!(
                "; {} of {} from bbbctl's snapshot of {}, where the API had no record",
                snapped.len(),
                self.prices.len(),
                p.date
            ),
            _ => String::new(),
        };
        let ago = |day: i64| match cron::today() - day {
            0 => "today".to_string(),
            1 => "1 day ago".to_string(),
            n => format!("{n} days ago"),
        };
        match &self.origin {
            Origin::Api => format!(
                "AWS Price List API ({}), read {}{mixed}",
                self.region,
                cron::date(cron::today())
            ),
            Origin::Cache(day) => format!(
                "AWS Price List API ({}), read {} ({}, cached for {CACHE_DAYS} days){mixed}",
                self.region,
                cron::date(*day),
                ago(*day)
            ),
            Origin::Snapshot(date) => format!(
                "the price snapshot in bbbctl ({}), taken {date}{}; without --offline bbbctl asks the AWS Price List API",
                self.region,
                cron::day_number(date)
                    .map(|d| format!(" ({})", ago(d)))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The snapshot that ships with the binary: prices of the regions people use most, each
/// with the AWS Price List file it is in; all of the day it was taken.
#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub date: String,
    pub regions: BTreeMap<String, BTreeMap<String, Price>>,
}

impl Snapshot {
    /// A region's prices, dated and marked as the snapshot's.
    fn region(&self, region: &str) -> Option<BTreeMap<String, Price>> {
        let mut prices = self.regions.get(region)?.clone();
        for p in prices.values_mut() {
            p.date = self.date.clone();
            p.snapshot = true;
        }
        Some(prices)
    }
}

pub fn snapshot() -> Snapshot {
    serde_json::from_str(include_str!("snapshot.json")).expect("src/cost/snapshot.json is valid")
}

/// The snapshot's prices for a region; the error names the regions it has.
pub fn from_snapshot(region: &str) -> Result<PriceBook> {
    let snap = snapshot();
    let prices = snap.region(region).ok_or_else(|| {
        crate::error::usage(format!(
            "the price snapshot has no prices for {region} (it has {}); run without --offline to ask the AWS Price List API",
            snap.regions.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    Ok(PriceBook {
        region: region.to_string(),
        prices,
        origin: Origin::Snapshot(snap.date),
        notes: Vec::new(),
    })
}

/// The cache file of a region's prices.
fn cache_file(region: &str) -> Option<PathBuf> {
    Some(
        dirs::cache_dir()?
            .join("bbbctl")
            .join("prices")
            .join(format!("{region}.json")),
    )
}

#[derive(Serialize, Deserialize)]
struct Cached {
    /// CACHE_VERSION; a cache of another version is not read.
    #[serde(default)]
    version: u32,
    fetched: String,
    prices: BTreeMap<String, Price>,
}

/// The cache's format: 2 since prices cite their Price List file (`source`) and `sku`.
const CACHE_VERSION: u32 = 2;

/// Cached prices are used for this many days.
pub const CACHE_DAYS: i64 = 7;

fn read_cache(region: &str) -> Option<(i64, BTreeMap<String, Price>)> {
    let text = std::fs::read_to_string(cache_file(region)?).ok()?;
    let cached: Cached = serde_json::from_str(&text)
        .ok()
        .filter(|c: &Cached| c.version == CACHE_VERSION)?;
    let day = cron::day_number(&cached.fetched)?;
    (cron::today() - day < CACHE_DAYS).then_some((day, cached.prices))
}

fn write_cache(region: &str, day: i64, prices: &BTreeMap<String, Price>) -> Result<()> {
    let path = cache_file(region).context("no cache directory")?;
    std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
    let body = serde_json::to_string_pretty(&Cached {
        version: CACHE_VERSION,
        fetched: cron::date(day),
        prices: prices.clone(),
    })?;
    std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))
}

/// The prices of `meters` in `region`: from the cache when it is fresh and has them all,
/// else from the Price List API (then cached). When the API cannot be asked, the snapshot,
/// with a note saying why.
pub async fn load(
    client: Option<&aws_sdk_pricing::Client>,
    region: &str,
    meters: &[Meter],
) -> Result<PriceBook> {
    if let Some((day, prices)) = read_cache(region)
        && meters.iter().all(|m| prices.contains_key(&m.key()))
    {
        return Ok(PriceBook {
            region: region.to_string(),
            prices,
            origin: Origin::Cache(day),
            notes: Vec::new(),
        });
    }
    let Some(client) = client else {
        return from_snapshot(region);
    };
    let mut prices = BTreeMap::new();
    let mut notes = Vec::new();
    let snap = snapshot().region(region).unwrap_or_default();
    let (mut snapped, mut unpriced) = (Vec::new(), Vec::new());
    for m in meters {
        match fetch(client, region, m).await {
            Ok(Some(price)) => {
                prices.insert(m.key(), price);
            }
            // No record answers: the snapshot's price, if it has one (marked as such).
            Ok(None) => match snap.get(&m.key()) {
                Some(p) => {
                    prices.insert(m.key(), p.clone());
                    snapped.push(m.key());
                }
                None => unpriced.push(m.key()),
            },
            Err(e) => {
                let mut book = from_snapshot(region).map_err(|s| {
                    anyhow!("the AWS Price List API could not be asked ({e:#}), and {s:#}")
                })?;
                book.notes
                    .push(format!("the AWS Price List API could not be asked: {e:#}"));
                return Ok(book);
            }
        }
    }
    if !snapped.is_empty() {
        notes.push(format!(
            "the Price List API had no record for {}: priced from bbbctl's snapshot",
            snapped.join(", ")
        ));
    }
    if !unpriced.is_empty() {
        notes.push(format!(
            "no price in {region} for {}, neither from the Price List API nor in the snapshot",
            unpriced.join(", ")
        ));
    }
    if let Err(e) = write_cache(region, cron::today(), &prices) {
        notes.push(format!("prices not cached: {e:#}"));
    }
    Ok(PriceBook {
        region: region.to_string(),
        prices,
        origin: Origin::Api,
        notes,
    })
}

/// One meter's price from GetProducts (every page), `None` when no record matches.
async fn fetch(
    client: &aws_sdk_pricing::Client,
    region: &str,
    meter: &Meter,
) -> Result<Option<Price>> {
    let query = meter.query(region);
    let filters: Vec<Filter> = query
        .filters
        .iter()
        .map(|(field, value)| {
            Filter::builder()
                .r#type(FilterType::TermMatch)
                .field(*field)
                .value(value)
                .build()
                .map_err(|e| anyhow!("price filter {field}: {e}"))
        })
        .collect::<Result<_>>()?;
    let mut token = None;
    loop {
        let page = client
            .get_products()
            .service_code(query.service)
            .format_version("aws_v1")
            .set_filters(Some(filters.clone()))
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| anyhow!(crate::error::describe(&e)))
            .with_context(|| format!("GetProducts {} ({})", query.service, meter.key()))?;
        for record in page.price_list() {
            let record: Value = serde_json::from_str(record)
                .with_context(|| format!("a {} price list record is not JSON", query.service))?;
            if let Some(price) = price_of(&record, query.usage_suffix, &meter.source(region)) {
                return Ok(Some(price));
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// The On-Demand price of a price list record (its first paid tier), if its usage type
/// ends with `suffix`; `source`: the Price List file the record is in.
pub fn price_of(record: &Value, suffix: Option<&str>, source: &str) -> Option<Price> {
    let product = record.get("product")?;
    let attrs = product.get("attributes")?;
    let usage = attrs.get("usagetype").and_then(Value::as_str).unwrap_or("");
    if let Some(suffix) = suffix
        && !usage.ends_with(suffix)
    {
        return None;
    }
    let mut best: Option<(f64, f64, String)> = None; // (begin, usd, unit)
    for term in record.get("terms")?.get("OnDemand")?.as_object()?.values() {
        for dim in term.get("priceDimensions")?.as_object()?.values() {
            let usd: f64 = dim
                .get("pricePerUnit")?
                .get("USD")?
                .as_str()?
                .parse()
                .ok()?;
            let begin: f64 = dim
                .get("beginRange")
                .and_then(Value::as_str)
                .and_then(|b| b.parse().ok())
                .unwrap_or(0.0);
            let unit = dim
                .get("unit")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let better = match &best {
                None => true,
                // The first paid tier: free tiers (0 USD) give way to the lowest paid one.
                Some((b, u, _)) => usd > 0.0 && (*u == 0.0 || begin < *b),
            };
            if better {
                best = Some((begin, usd, unit));
            }
        }
    }
    let (_, usd, unit) = best?;
    let number = |k: &str| {
        attrs
            .get(k)
            .and_then(Value::as_str)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.replace(',', "").parse::<f64>().ok())
    };
    Some(Price {
        usd,
        unit,
        source: source.to_string(),
        sku: product
            .get("sku")
            .and_then(Value::as_str)
            .map(str::to_string),
        snapshot: false,
        date: record
            .get("publicationDate")
            .and_then(Value::as_str)
            .map(|d| d.chars().take(10).collect())
            .unwrap_or_default(),
        vcpu: number("vcpu"),
        memory_gib: number("memory"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(usage: &str, dims: Value) -> Value {
        serde_json::json!({
            "product": {"sku": "SKU1", "attributes": {"usagetype": usage, "vcpu": "8", "memory": "16 GiB"}},
            "serviceCode": "AmazonEC2",
            "terms": {"OnDemand": {"SKU1.T": {"priceDimensions": dims}}},
            "publicationDate": "2026-11-02T10:00:00Z",
        })
    }

    #[test]
    fn the_first_paid_tier_of_the_matching_usage_type() {
        let r = record(
            "EUC1-DataTransfer-Out-Bytes",
            serde_json::json!({
                "a": {"beginRange": "0", "endRange": "100", "unit": "GB", "pricePerUnit": {"USD": "0.0000000000"}},
                "b": {"beginRange": "10240", "endRange": "51200", "unit": "GB", "pricePerUnit": {"USD": "0.0850000000"}},
                "c": {"beginRange": "100", "endRange": "10240", "unit": "GB", "pricePerUnit": {"USD": "0.0900000000"}},
            }),
        );
        let source = Meter::TransferOut.source("eu-central-1");
        let p = price_of(&r, Some("DataTransfer-Out-Bytes"), &source).unwrap();
        assert_eq!(
            (p.usd, p.unit.as_str(), p.date.as_str()),
            (0.09, "GB", "2026-11-02")
        );
        assert_eq!(
            (p.source.as_str(), p.sku.as_deref()),
            (
                "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AWSDataTransfer/current/eu-central-1/index.json",
                Some("SKU1")
            )
        );
        assert_eq!((p.vcpu, p.memory_gib), (Some(8.0), Some(16.0)));
        assert!(price_of(&r, Some("NatGateway-Hours"), &source).is_none());
    }

    #[test]
    fn keys_are_stable() {
        assert_eq!(Meter::Ec2("c5.2xlarge".into()).key(), "ec2:c5.2xlarge");
        assert_eq!(
            Meter::CacheNode("Valkey".into(), "cache.t4g.micro".into()).key(),
            "cache:valkey:cache.t4g.micro"
        );
        let q = Meter::Ec2("c5.2xlarge".into()).query("eu-central-1");
        assert_eq!(q.filters[0], ("regionCode", "eu-central-1".to_string()));
    }

    #[test]
    fn sources_are_the_price_list_files_of_service_and_region() {
        assert_eq!(
            Meter::Ec2("c5.2xlarge".into()).source("eu-central-1"),
            "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/eu-central-1/index.json"
        );
        assert_eq!(
            Meter::PublicIpv4.source("us-east-1"),
            "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonVPC/current/us-east-1/index.json"
        );
        // Route 53 is global: one file for every region.
        assert_eq!(
            Meter::HostedZone.source("eu-central-1"),
            "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonRoute53/current/index.json"
        );
    }
}
