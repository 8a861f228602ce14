//! `bbbctl cost` end to end: offline from the snapshot (no AWS at all), and against the
//! emulator, whose Price List API (moto_ext patch 20) holds real price list records: a
//! deployment with two servers and a timetable is priced from its own parameters, its
//! servers and schedules, the Fargate lines from the API's records, the rest from the
//! snapshot, each line naming the AWS Price List file its price is in; `setup --dry-run`
//! prices the deployment as `cost` does (the same total), and a mode switch shows both
//! modes' costs side by side. Amounts are in cents, tables fit 100 columns.

mod common;

use common::*;
use serde_json::Value;

fn lines(v: &Value) -> &Vec<Value> {
    v["estimate"]["lines"].as_array().expect("lines")
}

/// The widest line of a text output, in characters.
fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// Every amount of the estimate (each line's and the total) is in cents as printed in JSON:
/// no `248.20000000000002`.
fn assert_cents(v: &Value) {
    let e = &v["estimate"];
    let mut amounts = vec![&e["total"]];
    amounts.extend(lines(v).iter().map(|l| &l["monthly"]));
    for band in amounts {
        for end in ["low", "high"] {
            let shown = band[end].to_string();
            let decimals = shown.split('.').nth(1).map_or(0, str::len);
            assert!(band[end].is_number() && decimals <= 2, "{shown} in {band}");
        }
    }
}

const OFFERS: &str = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/";

fn line<'a>(v: &'a Value, item: &str) -> &'a Value {
    lines(v)
        .iter()
        .find(|l| l["item"].as_str().unwrap().starts_with(item))
        .unwrap_or_else(|| panic!("no line {item} in {v:#}"))
}

#[test]
fn offline_prices_the_parameter_file_from_the_snapshot() {
    let dir = scratch_dir();
    // No endpoint, no credentials: --offline asks nothing of AWS.
    let o = bbbctl_command(&dir, &["--output", "json", "cost", "--offline"])
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["estimate"]["prices"]
            .as_str()
            .unwrap()
            .contains("snapshot"),
        "{v:#}"
    );
    assert_eq!(v["estimate"]["unpriced"], serde_json::json!([]));
    // Each line cites the AWS Price List file (service, region) its price is in, with the
    // day the snapshot was taken; nothing a user cannot open.
    for l in lines(&v) {
        assert!(l["unit_price"].as_f64().unwrap() > 0.0, "{l}");
        let source = l["source"].as_str().unwrap();
        assert!(
            source.starts_with(OFFERS)
                && (source.ends_with("/current/us-east-1/index.json")
                    || source == format!("{OFFERS}AmazonRoute53/current/index.json")),
            "{l}"
        );
        assert_eq!(l["price_date"], "2026-11-30", "{l}");
        assert_eq!(l["from_snapshot"], true, "{l}");
        assert_eq!(l["currency"], "USD");
    }
    assert_eq!(
        line(&v, "BBB servers")["source"],
        format!("{OFFERS}AmazonEC2/current/us-east-1/index.json")
    );
    assert_cents(&v);
    // c5.2xlarge all month: 730 hours at the snapshot's price
    let servers = line(&v, "BBB servers");
    assert_eq!(servers["quantity"]["low"], 730.0);
    let total = &v["estimate"]["total"];
    assert!(total["low"].as_f64().unwrap() < total["high"].as_f64().unwrap());
    // 730 hours at 0.34 USD: 248.20, not 248.20000000000002
    assert_eq!(
        line(&v, "BBB servers")["monthly"]["low"].to_string(),
        "248.2"
    );

    // The text table says the same in 100 columns, each Price List file named once.
    let o = bbbctl_in(&dir, &["cost", "--offline"]);
    assert_code(&o, 0);
    assert!(widest(&stdout(&o)) <= 100, "{}", stdout(&o));
    assert_stdout_has(&o, &format!("Sources: AWS Price List files under {OFFERS}"));
    assert_eq!(
        stdout(&o)
            .matches("AmazonEC2/current/us-east-1/index.json")
            .count(),
        1
    );
    let total = v["estimate"]["total"].clone();
    assert_stdout_has(
        &o,
        &format!(
            "{:.2} – {:.2}",
            total["low"].as_f64().unwrap(),
            total["high"].as_f64().unwrap()
        ),
    );
    // Single mode costs less.
    let o = bbbctl_in(&dir, &["cost", "--offline", "--mode", "single"]);
    assert_code(&o, 0);
    assert!(widest(&stdout(&o)) <= 100, "{}", stdout(&o));
    assert_stdout_has(&o, "single mode, us-east-1");
    assert_stdout_has(&o, "BBB data volume, kept");
    assert_stdout_has(&o, "the price snapshot in bbbctl (us-east-1)");

    // A region the snapshot lacks, offline: a clear error naming the ones it has.
    let o = bbbctl_in(&dir, &["cost", "--offline", "--region", "sa-east-1"]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("has no prices for sa-east-1 (it has us-east-1)"),
        "{}",
        stderr(&o)
    );
    // Bad assumptions: exit 2, the flag named, nothing asked.
    let o = bbbctl_in(&dir, &["cost", "--offline", "--lcu", "3-1"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--lcu"), "{}", stderr(&o));
}

#[tokio::test]
async fn a_deployment_with_a_timetable_priced_from_the_price_list_api() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("cost"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("cost");
    let dir = scratch_dir();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), 2, &["--no-check"]);
    assert_code(&o, 0);
    for (name, cron, count) in [("day", "0 8 * * 1-5", "6"), ("night", "0 18 * * 1-5", "2")] {
        let o = bbbctl_in(
            &dir,
            &[
                "schedule", "-s", &stack, "add", name, "--cron", cron, "--count", count,
            ],
        );
        assert_code(&o, 0);
    }
    let o = bbbctl_in(&dir, &["--output", "json", "cost", "-s", &stack]);
    assert_code(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["what"], format!("deployment {stack}"));
    // Server hours follow the timetable: between 2 and 6 servers on average.
    let hours = line(&v, "BBB servers")["quantity"]["low"].as_f64().unwrap();
    assert!(hours > 2.0 * 730.0 && hours < 6.0 * 730.0, "{hours}");
    assert!(
        line(&v, "BBB servers")["depends_on"]
            .as_str()
            .unwrap()
            .contains("the schedules"),
        "{v:#}"
    );
    // Fargate from the API's records (real SKUs, in the ECS Price List file), the rest from
    // the snapshot, said so.
    let ecs = format!("{OFFERS}AmazonECS/current/us-east-1/index.json");
    let vcpu = line(&v, "ECS tasks on Fargate (vCPU)");
    assert_eq!(vcpu["unit_price"], 0.04048);
    assert_eq!(
        (&vcpu["source"], &vcpu["sku"], &vcpu["from_snapshot"]),
        (
            &Value::from(ecs.clone()),
            &Value::from("8CESGAFWKAJ98PME"),
            &Value::from(false)
        ),
        "{vcpu}"
    );
    let gb = line(&v, "ECS tasks on Fargate (memory)");
    assert_eq!(
        (&gb["source"], &gb["sku"]),
        (&Value::from(ecs), &Value::from("PBZNQUSEXZUC34C9"))
    );
    let nat = line(&v, "NAT gateways");
    assert_eq!(nat["from_snapshot"], true, "{nat}");
    assert_eq!(
        nat["source"],
        format!("{OFFERS}AmazonEC2/current/us-east-1/index.json")
    );
    assert_cents(&v);
    let priced = v["estimate"]["total"].clone();
    assert!(
        stderr(&o).contains("the Price List API had no record for"),
        "{}",
        stderr(&o)
    );
    // The answer is cached with its date: a second run reads no price from the API.
    let cached = dir.join(".cache/bbbctl/prices/us-east-1.json");
    assert!(cached.is_file(), "no cache at {}", cached.display());
    let o = bbbctl_in(&dir, &["cost", "-s", &stack]);
    assert_code(&o, 0);
    assert_stdout_has(&o, "cached");
    assert!(widest(&stdout(&o)) <= 100, "{}", stdout(&o));
    // setup --dry-run prices the deployment as `cost -s` does, schedules included: the same
    // total now, and after a change that keeps the servers and their schedules.
    let o = bbbctl_in(
        &dir,
        &["--output", "json", "setup", "-s", &stack, "--dry-run"],
    );
    assert_code(&o, 0);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["cost"]["before"], priced, "{plan:#}");
    assert_eq!(plan["cost"]["after"], priced, "{plan:#}");
    // setup --dry-run ends with the estimate; a mode switch puts both modes side by side.
    let o = bbbctl_in(
        &dir,
        &["setup", "-s", &stack, "--mode", "single", "--dry-run"],
    );
    assert_code(&o, 0);
    for text in [
        "Cost a month",
        "scalable",
        "single",
        "NAT gateways",
        "This change: -",
    ] {
        assert_stdout_has(&o, text);
    }
    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    // A deployment named with -s that does not exist is an error, not another estimate.
    let o = bbbctl_in(&dir, &["cost", "-s", &stack]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(&format!("deployment {stack} does not exist in account")),
        "{}",
        stderr(&o)
    );
}
