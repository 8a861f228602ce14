//! The model on hand-checked cases. The unit prices here are round test numbers (1 cent an
//! hour for everything hourly, ...), chosen so that every amount can be checked by hand; they
//! are no one's real prices.

use std::collections::BTreeMap;

use super::cron;
use super::prices::{Meter, Origin, Price, PriceBook};
use super::*;

/// (meter, USD, its vCPUs and GiB)
type Extra = (Meter, f64, Option<(f64, f64)>);

fn book(extra: &[Extra]) -> PriceBook {
    let mut prices = BTreeMap::new();
    let mut put = |m: Meter, usd: f64, size: Option<(f64, f64)>| {
        prices.insert(
            m.key(),
            Price {
                usd,
                unit: m.unit().into(),
                source: m.source("us-east-1"),
                sku: None,
                date: "2026-11-01".into(),
                snapshot: true,
                vcpu: size.map(|s| s.0),
                memory_gib: size.map(|s| s.1),
            },
        );
    };
    // every meter of the default scalable deployment
    for m in meters(&shape_of(&[], None)) {
        put(m, 0.01, None);
    }
    for (m, usd, size) in extra {
        put(m.clone(), *usd, *size);
    }
    PriceBook {
        region: "us-east-1".into(),
        prices,
        origin: Origin::Snapshot("2026-11-30".into()),
        notes: Vec::new(),
    }
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn shape_of(pairs: &[(&str, &str)], servers: Option<f64>) -> Shape {
    super::shape(&Bundle::embedded(), &params(pairs), "us-east-1", servers).unwrap()
}

fn line<'a>(e: &'a Estimate, item: &str) -> &'a Line {
    e.lines
        .iter()
        .find(|l| l.item.starts_with(item))
        .unwrap_or_else(|| panic!("no line {item}: {:#?}", e.lines))
}

fn fixed(a: Assumptions) -> Assumptions {
    Assumptions {
        gb_per_participant_hour: Band::fixed(0.1),
        lcu: Band::fixed(1.0),
        log_gb: Band::fixed(3.0),
        nat_gb: Band::fixed(10.0),
        db_io_millions: Band::fixed(2.0),
        ..a
    }
}

#[test]
fn default_scalable_deployment_line_by_line() {
    let s = shape_of(&[], None);
    assert_eq!(s.mode, "scalable");
    // frontend.yaml: Greenlight 1024/2048, Scalelite API with its nginx 512/2048, poller
    // 256/512, importer 512/1024; one of each (BBBFrontendTaskCount 1).
    let vcpu: f64 = s.tasks.iter().map(|t| t.vcpu * t.count).sum();
    let gib: f64 = s.tasks.iter().map(|t| t.gib * t.count).sum();
    assert_eq!((s.tasks.len(), vcpu, gib), (4, 2.25, 5.5));
    assert_eq!(s.nat_gateways, 1);
    let e = estimate(&s, &book(&[]), &fixed(Assumptions::default()), None);
    let h = HOURS_PER_MONTH;
    assert_eq!(line(&e, "BBB servers").quantity, Band::fixed(h));
    // root 50 + data 100 GB, one server all month
    assert_eq!(line(&e, "BBB server volumes").quantity, Band::fixed(150.0));
    // one server, one NAT gateway, the load balancer in 2 zones
    assert_eq!(line(&e, "Public IPv4").quantity, Band::fixed(4.0 * h));
    assert_eq!(line(&e, "NAT gateways").quantity, Band::fixed(h));
    assert_eq!(
        line(&e, "ECS tasks on Fargate (vCPU)").quantity,
        Band::fixed(2.25 * h)
    );
    assert_eq!(
        line(&e, "ECS tasks on Fargate (memory)").quantity,
        Band::fixed(5.5 * h)
    );
    // Serverless v2 0.5 to 4 ACU: a band
    assert_eq!(
        line(&e, "Aurora Serverless").quantity,
        Band::new(0.5 * h, 4.0 * h)
    );
    assert_eq!(line(&e, "ElastiCache Valkey").quantity, Band::fixed(h));
    assert_eq!(line(&e, "EFS").quantity, Band::fixed(100.0));
    // 14 secrets: admin, SMTP, two key bases, load balancer (secrets.yaml), the database
    // master (database.yaml), the cache token (cache.yaml), five in frontend.yaml, the fleet
    // certificate and the ACME account (bbb-servers.yaml)
    assert_eq!(line(&e, "Secrets").quantity, Band::fixed(14.0));
    assert_eq!(line(&e, "Data transfer out").quantity, Band::fixed(1000.0));
    // 30 days of logs kept: what one month writes
    assert_eq!(
        line(&e, "CloudWatch Logs storage").quantity,
        Band::fixed(3.0)
    );
    // every amount is quantity × 0.01 in cents; the total is their sum
    for l in &e.lines {
        assert_eq!(l.monthly.low, cents(l.quantity.low * 0.01), "{l:?}");
    }
    let sum: f64 = e.lines.iter().map(|l| l.monthly.low).sum();
    assert!((e.total.low - sum).abs() < 1e-9 && e.total.high > e.total.low);
    assert!(e.unpriced.is_empty());
}

#[test]
fn multi_az_cache_and_a_nat_gateway_per_zone() {
    let s = shape_of(
        &[
            ("BBBNumberOfAZs", "3"),
            ("BBBNATGatewayPerAZ", "true"),
            ("BBBCacheMultiAZ", "true"),
        ],
        None,
    );
    assert_eq!(s.nat_gateways, 3);
    let e = estimate(&s, &book(&[]), &Assumptions::default(), None);
    let h = HOURS_PER_MONTH;
    assert_eq!(line(&e, "ElastiCache").quantity, Band::fixed(2.0 * h));
    assert_eq!(line(&e, "NAT gateways").quantity, Band::fixed(3.0 * h));
    // 1 server + 3 NAT gateways + 3 load balancer zones
    assert_eq!(line(&e, "Public IPv4").quantity, Band::fixed(7.0 * h));
}

#[test]
fn an_existing_vpc_has_no_nat_gateway_of_ours() {
    let s = shape_of(
        &[
            ("BBBExistingVPC", "vpc-1"),
            ("BBBExistingPublicSubnets", "subnet-1,subnet-2"),
            ("BBBExistingPrivateSubnets", "subnet-3,subnet-4"),
        ],
        None,
    );
    assert_eq!(s.nat_gateways, 0);
    let e = estimate(&s, &book(&[]), &Assumptions::default(), None);
    assert!(e.lines.iter().all(|l| !l.item.starts_with("NAT")));
}

#[test]
fn ec2_capacity_instead_of_fargate() {
    let s = shape_of(&[("BBBECSInstanceType", "t3.large")], None);
    assert_eq!(s.ecs_instance.as_deref(), Some("t3.large"));
    // 2.25 vCPU and 5.5 GiB of tasks on 2-vCPU / 8-GiB instances: 2 instances
    let sized = book(&[(Meter::Ec2("t3.large".into()), 0.1, Some((2.0, 8.0)))]);
    let e = estimate(&s, &sized, &Assumptions::default(), None);
    let l = line(&e, "ECS instances (t3.large)");
    assert_eq!(l.quantity, Band::fixed(2.0 * HOURS_PER_MONTH));
    assert_eq!(l.monthly, Band::fixed(0.1 * 2.0 * HOURS_PER_MONTH));
    assert!(e.lines.iter().all(|l| !l.item.contains("Fargate")));
    // without the type's size: the capacity provider's group range (ecs.yaml: 1 to 6)
    let unsized_book = book(&[(Meter::Ec2("t3.large".into()), 0.1, None)]);
    let e = estimate(&s, &unsized_book, &Assumptions::default(), None);
    assert_eq!(
        line(&e, "ECS instances").quantity,
        Band::new(HOURS_PER_MONTH, 6.0 * HOURS_PER_MONTH)
    );
}

#[test]
fn an_aurora_instance_class_instead_of_serverless() {
    let s = shape_of(&[("BBBDBInstanceClass", "db.r6g.large")], None);
    let b = book(&[(Meter::AuroraInstance("db.r6g.large".into()), 0.3, None)]);
    let e = estimate(&s, &b, &Assumptions::default(), None);
    assert_eq!(
        line(&e, "Aurora instance (db.r6g.large)").monthly,
        Band::fixed(0.3 * HOURS_PER_MONTH)
    );
}

#[test]
fn zero_and_a_hundred_servers() {
    for (n, ipv4) in [(0.0, 3.0), (100.0, 103.0)] {
        let s = shape_of(&[], Some(n));
        let e = estimate(&s, &book(&[]), &Assumptions::default(), None);
        assert_eq!(
            line(&e, "BBB servers").quantity,
            Band::fixed(n * HOURS_PER_MONTH)
        );
        assert_eq!(
            line(&e, "BBB server volumes").quantity,
            Band::fixed(n * 150.0)
        );
        assert_eq!(
            line(&e, "Public IPv4").quantity,
            Band::fixed(ipv4 * HOURS_PER_MONTH)
        );
    }
}

#[test]
fn single_mode_is_one_server_and_its_kept_volume() {
    let s = shape_of(
        &[("BBBEnvironmentType", "single"), ("BBBServerCount", "5")],
        None,
    );
    assert_eq!((s.servers, s.nat_gateways, s.tasks.len()), (1.0, 0, 0));
    assert!(s.db.is_none() && s.cache.is_none() && !s.efs && !s.alb);
    let e = estimate(&s, &book(&[]), &Assumptions::default(), None);
    let h = HOURS_PER_MONTH;
    // the root volume goes with the server; the data volume is kept (a stack resource)
    assert_eq!(line(&e, "BBB server volumes").quantity, Band::fixed(50.0));
    assert_eq!(
        line(&e, "BBB data volume, kept").quantity,
        Band::fixed(100.0)
    );
    assert_eq!(line(&e, "Public IPv4").quantity, Band::fixed(h));
    // admin and SMTP logins only
    assert_eq!(line(&e, "Secrets").quantity, Band::fixed(2.0));
    for gone in [
        "NAT",
        "Load balancer",
        "ECS",
        "Aurora",
        "ElastiCache",
        "EFS",
    ] {
        assert!(e.lines.iter().all(|l| !l.item.starts_with(gone)), "{gone}");
    }
}

#[test]
fn scalelite_only_front_end_has_no_greenlight() {
    let s = shape_of(&[("BBBFrontendType", "External")], None);
    assert!(
        s.tasks.iter().all(|t| t.name != "Greenlight"),
        "{:?}",
        s.tasks
    );
    assert_eq!(s.tasks.len(), 3); // Scalelite API (with its nginx), poller, importer
    // Greenlight's database login and URL secrets are not created
    assert_eq!(s.secrets, 12);
}

#[test]
fn task_count_multiplies_the_scaled_services_only() {
    let s = shape_of(&[("BBBFrontendTaskCount", "3")], None);
    let count = |n: &str| s.tasks.iter().find(|t| t.name == n).unwrap().count;
    assert_eq!((count("Greenlight"), count("ScalelitePoller")), (3.0, 1.0));
}

#[test]
fn schedules_and_server_hours_flag_decide_server_hours() {
    let s = shape_of(&[], Some(10.0));
    let e = estimate(&s, &book(&[]), &Assumptions::default(), Some(4.5));
    assert_eq!(
        line(&e, "BBB servers").quantity,
        Band::fixed(4.5 * HOURS_PER_MONTH)
    );
    let a = Assumptions {
        server_hours: Some(1234.0),
        ..Assumptions::default()
    };
    let e = estimate(&s, &book(&[]), &a, Some(4.5));
    assert_eq!(line(&e, "BBB servers").quantity, Band::fixed(1234.0));
}

#[test]
fn a_meter_without_a_price_is_named_and_left_out() {
    let s = shape_of(&[("BBBServerInstanceType", "m7i.2xlarge")], None);
    let e = estimate(&s, &book(&[]), &Assumptions::default(), None);
    assert_eq!(e.unpriced, ["ec2:m7i.2xlarge"]);
    let l = line(&e, "BBB servers");
    assert_eq!((l.unit_price, l.monthly), (None, Band::fixed(0.0)));
    assert!(render(&e, "t").contains("Not in the total (no price found): ec2:m7i.2xlarge"));
}

#[test]
fn bands_parse_and_refuse() {
    assert_eq!(Band::parse("2").unwrap(), Band::fixed(2.0));
    assert_eq!(Band::parse("0.5-2").unwrap(), Band::new(0.5, 2.0));
    assert!(Band::parse("3-1").is_err());
    assert!(Band::parse("x").is_err());
    assert!(Band::parse("-1").is_err());
}

#[test]
fn the_snapshot_prices_every_default_meter_and_cites_its_price_list_file() {
    let snap = prices::snapshot();
    assert!(cron::day_number(&snap.date).is_some(), "{}", snap.date);
    for (region, prices) in &snap.regions {
        for (key, p) in prices {
            assert!(p.usd > 0.0, "{region} {key}");
            // A file of AWS's Price List Bulk API, for that region (Route 53: global).
            let file = p.source.strip_prefix(prices::OFFERS).unwrap_or_default();
            assert!(
                file.ends_with(&format!("/current/{region}/index.json"))
                    || file == "AmazonRoute53/current/index.json",
                "{region} {key}: {}",
                p.source
            );
        }
    }
    let book = prices::from_snapshot("us-east-1").unwrap();
    let mut wanted = meters(&shape_of(&[], None));
    wanted.extend(meters(&shape_of(&[("BBBEnvironmentType", "single")], None)));
    for m in wanted {
        let p = book
            .get(&m)
            .unwrap_or_else(|| panic!("no snapshot price for {}", m.key()));
        // the very file the Price List API's record of that meter is in, dated the snapshot's day
        assert_eq!(p.source, m.source("us-east-1"), "{}", m.key());
        assert_eq!((p.date.as_str(), p.snapshot), (snap.date.as_str(), true));
    }
}

#[test]
fn amounts_are_cents_and_the_table_fits_a_hundred_columns() {
    // Unit prices with many decimals and usage ranges in the hundreds of thousands.
    let extra = [(Meter::Ec2("c5.2xlarge".into()), 0.3456789, None)];
    let s = shape_of(&[("BBBFrontendTaskCount", "3")], Some(100.0));
    let a = Assumptions {
        participant_hours: 1_000_000.0,
        ..Assumptions::default()
    };
    let e = estimate(&s, &book(&extra), &a, Some(37.3));
    let is_cents = |v: f64| {
        (v * 100.0 - (v * 100.0).round()).abs() < 1e-6 && {
            let text = serde_json::json!(v).to_string();
            text.split('.').nth(1).is_none_or(|d| d.len() <= 2)
        }
    };
    for l in &e.lines {
        assert!(is_cents(l.monthly.low) && is_cents(l.monthly.high), "{l:?}");
    }
    assert!(
        is_cents(e.total.low) && is_cents(e.total.high),
        "{:?}",
        e.total
    );
    let title = "Monthly cost of deployment a-stack-name-of-32-characters: scalable mode, ap-southeast-2, 100 BBB server(s) (c5.2xlarge)";
    let text = render(&e, title);
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= crate::ui::WIDTH, "{widest} columns:\n{text}");
    // Every line's numbers are in the table, its Price List file named once.
    assert!(text.contains("Sources: AWS Price List files under https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/"));
    assert_eq!(
        text.matches("AmazonEC2/current/us-east-1/index.json")
            .count(),
        1,
        "{text}"
    );
}

#[test]
fn a_warm_pool_costs_its_stopped_servers_volumes_only() {
    // No pool by default: no line.
    let s = shape_of(&[], None);
    let e = estimate(&s, &book(&[]), &fixed(Assumptions::default()), None);
    assert!(e.lines.iter().all(|l| !l.item.starts_with("BBB warm pool")));

    // Two prepared servers, stopped: root 50 + data 200 GB each, gp3, all month; no instance
    // hours and no public address for them.
    let s = shape_of(
        &[("BBBWarmPoolSize", "2"), ("BBBServerDataVolumeSize", "200")],
        None,
    );
    assert_eq!(s.warm, 2.0);
    let e = estimate(&s, &book(&[]), &fixed(Assumptions::default()), None);
    let h = HOURS_PER_MONTH;
    let pool = line(&e, "BBB warm pool volumes");
    assert_eq!(pool.quantity, Band::fixed(2.0 * 250.0));
    assert_eq!(pool.monthly.low, cents(500.0 * 0.01));
    assert_eq!(line(&e, "BBB servers").quantity, Band::fixed(h));
    assert_eq!(line(&e, "Public IPv4").quantity, Band::fixed(4.0 * h));

    // Single mode has no pool, whatever the parameter says.
    let s = shape_of(
        &[("BBBEnvironmentType", "single"), ("BBBWarmPoolSize", "2")],
        None,
    );
    assert_eq!(s.warm, 0.0);
}
