//! `bbbctl check` end to end: a deployment on the emulator, and in front of it stand-ins for
//! what runs on AWS — Greenlight behind the load balancer, Scalelite, one BBB server per
//! in-service instance — over HTTPS with a test CA's certificates (`BBBCTL_CA_FILE`), the
//! deployment's names pinned to them (`BBBCTL_RESOLVE`). The check finds everything in the
//! deployment (names, secrets, instances) and reports each piece; the only failures are the
//! BBB servers' DNS names, which point at the stand-ins, not at the instances' public
//! addresses (the emulator's, unreachable), and the ECS services, whose tasks the emulator
//! never starts. Without pins, nothing public answers: every
//! public check fails, clearly and at once.
//!
//! `BBBCTL_CHECK_SERVERS=10` runs it with ten servers; the run prints how long the check took
//! (scripts/bench.sh reports it).

mod common;
mod standins;
mod support;

use std::time::Instant;

use common::*;
use serde_json::Value;
use standins::bbb::Bbb;
use standins::greenlight::{Greenlight, User};
use standins::scalelite::Scalelite;
use support::TestCa;

fn checks(o: &std::process::Output) -> Vec<Value> {
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("JSON: {e}\n{}", stdout(o)));
    v["checks"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn check_reports_every_piece_of_a_deployment() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let servers: usize = std::env::var("BBBCTL_CHECK_SERVERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let domain = format!("{}.example.org", unique("chk"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("chk");
    let dir = scratch_dir();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), servers, &[]);
    assert_code(&o, 0);
    // Setup ends with the checks; against the emulator the public ones are skipped.
    assert_stdout_has(
        &o,
        "public names are not checked against a custom AWS endpoint",
    );

    // What the deployment holds: the login, the load balancer, the secret, the instances.
    let login: Value = serde_json::from_slice(
        &bbbctl_in(&dir, &["--output", "json", "admin-login", "-s", &stack]).stdout,
    )
    .unwrap();
    let frontend = described(&aws, &stack_resource(&aws, &stack, "FrontendStack").await).await;
    let output = |k: &str| bbbctl::cfn::ops::outputs(&frontend).remove(k).unwrap();
    let lb = output("LoadBalancerDNSName");
    let lb_secret = load_balancer_secret(&aws, &stack).await;
    let (_, outputs) = root(&aws, &stack).await;
    let instances = group_instances(&aws, &outputs["BBBServerGroupName"]).await;
    assert_eq!(instances.len(), servers);
    let hosts: Vec<String> = instances
        .iter()
        .map(|i| format!("bbb-{}.{domain}", i.trim_start_matches("i-")))
        .collect();

    // The platform, as stand-ins.
    let ca = TestCa::new();
    let scalelite_host = format!("scalelite.{domain}");
    let mut names: Vec<&str> = vec![&domain, &scalelite_host];
    names.extend(hosts.iter().map(String::as_str));
    let (cert, key) = ca.issue(&names, 90);
    let admin = User {
        email: login["username"].as_str().unwrap().to_string(),
        password: login["password"].as_str().unwrap().to_string(),
        name: "Administrator".into(),
        role: "Administrator".into(),
        verified: true,
    };
    let greenlight = Greenlight::start_tls(vec![admin], &cert, &key);
    let scalelite = Scalelite::start_tls(&lb_secret, &cert, &key);
    let bbb: Vec<Bbb> = (0..servers)
        .map(|i| Bbb::start_tls(&cert, &key, &format!("secret-{i}"), "3.0.4", vec![i % 3]))
        .collect();
    let mut pins = vec![
        format!("{domain}=127.0.0.1:{}", greenlight.server.port()),
        format!("{scalelite_host}=127.0.0.1:{}", scalelite.http_port()),
        format!("{lb}=127.0.0.1"),
    ];
    for (i, host) in hosts.iter().enumerate() {
        scalelite.add_enabled(
            &format!("https://{host}/bigbluebutton/api/"),
            &format!("secret-{i}"),
        );
        pins.push(format!("{host}=127.0.0.1:{}", bbb[i].server.port()));
    }

    // Each server's bootstrap log ends with READY (bbb-bootstrap.sh's last line).
    let log_group = &outputs["BBBServerLogGroupName"];
    for (id, host) in instances.iter().zip(&hosts) {
        put_log_lines(
            log_group,
            id,
            &[
                "2026-12-07T10:00:00Z bbb-bootstrap: running bbb-install",
                &format!("2026-12-07T10:15:00Z bbb-bootstrap: READY https://{host}"),
            ],
        );
    }

    let started = Instant::now();
    let o = bbbctl_command(&dir, &["--output", "json", "check", "-s", &stack])
        .env("BBBCTL_RESOLVE", pins.join(","))
        .env("BBBCTL_CA_FILE", &ca.ca)
        .output()
        .unwrap();
    let took = started.elapsed();
    eprintln!(
        "check with {servers} BBB server(s) against the stand-ins took {} ms",
        took.as_millis()
    );
    let all = checks(&o);
    for c in &all {
        let (group, name, status) = (
            c["group"].as_str().unwrap(),
            c["name"].as_str().unwrap(),
            c["status"].as_str().unwrap(),
        );
        // bbb-* names are pinned to stand-ins, not to the instances' public addresses; the
        // emulator starts no ECS task (0 of 1 running, as ECS would say).
        let expected = if (group == "DNS" && name.starts_with("bbb-"))
            || (group == "AWS" && name == "ECS services")
        {
            "fail"
        } else if group == "Mail" && name == "SES sending" {
            "warn" // the emulated account is in the SES sandbox
        } else {
            "pass"
        };
        assert_eq!(status, expected, "{c}");
    }
    let find = |group: &str, name: &str| {
        all.iter()
            .find(|c| c["group"] == group && c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        find("Scalelite", "servers API")["detail"],
        format!("{servers} of {servers} in-service servers enabled and online")
    );
    assert_eq!(
        find("Greenlight", "administrator signs in")["detail"],
        format!(
            "{} signs in (Administrator)",
            login["username"].as_str().unwrap()
        )
    );
    assert!(
        find("BBB servers", &hosts[0])["detail"]
            .as_str()
            .unwrap()
            .starts_with("BigBlueButton 3.0.4")
    );
    assert!(
        find("DNS", &hosts[0])["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("not to {}'s public address", instances[0]))
    );
    assert!(
        find("AWS", "ECS services")["detail"]
            .as_str()
            .unwrap()
            .contains("GreenlightService 0/1")
    );
    assert_eq!(
        find("BBB servers", &format!("bootstrap {}", instances[0]))["detail"],
        "BigBlueButton installed and verified"
    );
    assert_eq!(
        all.len(),
        4 + 2 + 2 * (2 + servers) + servers + 1 + 2 + servers,
        "{all:#?}"
    );
    assert_code(&o, 1);
    // No secret in the report.
    for s in [&lb_secret, login["password"].as_str().unwrap(), "secret-0"] {
        assert!(!stdout(&o).contains(s) && !stderr(&o).contains(s));
    }

    // A server whose bootstrap failed is named, with the reason and where its log is; so
    // does `servers` (the platform completed without it).
    put_log_lines(
        log_group,
        &instances[0],
        &[
            "2026-12-07T10:20:00Z bbb-bootstrap: FAILED bbb-install exited with 100 (apt-get update)",
        ],
    );
    let o = bbbctl_command(&dir, &["--output", "json", "check", "-s", &stack])
        .env("BBBCTL_RESOLVE", pins.join(","))
        .env("BBBCTL_CA_FILE", &ca.ca)
        .output()
        .unwrap();
    let failed = checks(&o)
        .into_iter()
        .find(|c| c["name"] == format!("bootstrap {}", instances[0]))
        .unwrap();
    assert_eq!(failed["status"], "fail", "{failed}");
    assert_eq!(
        failed["detail"],
        "FAILED: bbb-install exited with 100 (apt-get update)"
    );
    let hint = failed["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains(log_group.as_str()) && hint.contains(&instances[0]),
        "{failed}"
    );
    assert!(hint.contains("--replace"), "{failed}");
    let o = bbbctl_in(&dir, &["--output", "json", "servers", "-s", &stack]);
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = listed["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == instances[0].as_str())
        .unwrap()
        .clone();
    assert_eq!(row["bootstrap"], "failed", "{row}");
    let o = bbbctl_in(&dir, &["servers", "-s", &stack]);
    assert!(
        stdout(&o).contains(&format!(
            "{}: bootstrap FAILED: bbb-install exited with 100 (apt-get update) (log: CloudWatch Logs group {log_group}, stream {})",
            instances[0], instances[0]
        )),
        "{}",
        stdout(&o)
    );

    // Without pins nothing public answers: clear failures, exit 1, fast.
    let started = Instant::now();
    let o = bbbctl_in(&dir, &["check", "-s", &stack]);
    eprintln!(
        "check of unreachable names took {} ms",
        started.elapsed().as_millis()
    );
    assert_code(&o, 1);
    let out = stdout(&o);
    assert!(out.contains(&format!("✖ {domain}")), "{out}");
    assert!(stderr(&o).contains("checks failed"), "{}", stderr(&o));

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
}
