//! `bbbctl check` end to end: a deployment on the emulator, and in front of it stand-ins for
//! what runs on AWS — Greenlight behind the load balancer, Scalelite, one BBB server per
//! in-service instance — over HTTPS with a test CA's certificates (`BBBCTL_CA_FILE`), the
//! deployment's names pinned to them (`BBBCTL_RESOLVE`). The check finds everything in the
//! deployment (names, secrets, instances) and reports each piece. Against the emulator, a
//! custom endpoint, `check` checks what AWS holds and says once why the rest is not checked;
//! `--public` checks the rest too, here against the stand-ins: the only failures are then the
//! BBB servers' names (DNS and TLS), which point at the stand-ins, not at the instances'
//! public addresses (the emulator's, unreachable), and the ECS services, whose tasks the
//! emulator never starts. Without pins, nothing public answers: every public check fails,
//! clearly and at once, with the DNS hint where the name does not resolve.
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
    // Setup ends with the checks; against the emulator the public ones are not made, and
    // the report says why once.
    let custom = "AWS is a custom endpoint here";
    assert_eq!(stdout(&o).matches(custom).count(), 1, "{}", stdout(&o));
    assert_stdout_has(&o, "Not checked (");

    // So does `check`: what AWS holds is checked (the stacks, the managed services, SES) and
    // passes; nothing fails, exit 0; each check says its state and reason.
    let o = bbbctl_in(&dir, &["--output", "json", "check", "-s", &stack]);
    assert_code(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let all = v["checks"].as_array().unwrap();
    let made = all.iter().filter(|c| c["state"] != "skipped").count();
    assert!(made >= 3, "{v:#}"); // last stack operation, SES identity, SES sending
    assert_eq!(
        (
            v["ok"].as_bool(),
            v["checked"].as_u64(),
            v["failed"].as_u64()
        ),
        (Some(true), Some(made as u64), Some(0)),
        "{v:#}"
    );
    assert_eq!(v["not_checked"].as_u64(), Some((all.len() - made) as u64));
    for c in all {
        let reason = c["reason"].as_str().unwrap_or_default();
        match c["group"].as_str().unwrap() {
            "DNS" | "TLS" | "Greenlight" | "Scalelite" | "BBB servers" => {
                assert_eq!(c["state"], "skipped", "{c}");
                assert!(reason.starts_with(custom), "{c}");
            }
            _ => assert_ne!(c["state"], "failed", "{c}"),
        }
    }
    let o = bbbctl_in(&dir, &["check", "-s", &stack]);
    assert_code(&o, 0);
    let text = stdout(&o);
    assert_eq!(text.matches(custom).count(), 1, "{text}");
    assert!(!text.contains('✖'), "{text}");
    // the emulated account is in the SES sandbox: one warning
    assert_eq!(
        text.lines().last().unwrap_or_default(),
        format!(
            "{made} checked: {made} passed (1 with a warning), 0 failed; {} not checked",
            all.len() - made
        ),
        "{text}"
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
        .map(|i| format!("bbb-{}.media.{domain}", i.trim_start_matches("i-")))
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
    let o = bbbctl_command(
        &dir,
        &["--output", "json", "check", "-s", &stack, "--public"],
    )
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
        let (group, name, state) = (
            c["group"].as_str().unwrap(),
            c["name"].as_str().unwrap(),
            c["state"].as_str().unwrap(),
        );
        // bbb-* names are pinned to stand-ins, not to the instances' public addresses (so
        // their certificates are not looked at either); the emulator starts no ECS task (0 of
        // 1 running, as ECS would say).
        let expected = if ((group == "DNS" || group == "TLS") && name.starts_with("bbb-"))
            || (group == "AWS" && name == "ECS services")
        {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(state, expected, "{c}");
        // the emulated account is in the SES sandbox
        let warned = group == "Mail" && name == "SES sending";
        assert_eq!(c["warning"].as_bool().unwrap_or(false), warned, "{c}");
    }
    let find = |group: &str, name: &str| {
        all.iter()
            .find(|c| c["group"] == group && c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        find("Scalelite", "servers API")["reason"],
        format!("{servers} of {servers} in-service servers enabled and online")
    );
    assert_eq!(
        find("Greenlight", "administrator signs in")["reason"],
        format!(
            "{} signs in (Administrator)",
            login["username"].as_str().unwrap()
        )
    );
    assert!(
        find("BBB servers", &hosts[0])["reason"]
            .as_str()
            .unwrap()
            .starts_with("BigBlueButton 3.0.4")
    );
    assert!(
        find("DNS", &hosts[0])["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("not to {}'s public address", instances[0]))
    );
    let tls = find("TLS", &hosts[0]);
    assert!(
        tls["reason"]
            .as_str()
            .unwrap()
            .ends_with("no certificate checked")
            && tls["hint"]
                .as_str()
                .unwrap()
                .contains(&format!("`dig +short NS {domain}` must list")),
        "{tls}"
    );
    assert!(
        find("AWS", "ECS services")["reason"]
            .as_str()
            .unwrap()
            .contains("GreenlightService 0/1")
    );
    assert_eq!(
        find("BBB servers", &format!("bootstrap {}", instances[0]))["reason"],
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
    let o = bbbctl_command(
        &dir,
        &["--output", "json", "check", "-s", &stack, "--public"],
    )
    .env("BBBCTL_RESOLVE", pins.join(","))
    .env("BBBCTL_CA_FILE", &ca.ca)
    .output()
    .unwrap();
    let failed = checks(&o)
        .into_iter()
        .find(|c| c["name"] == format!("bootstrap {}", instances[0]))
        .unwrap();
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(
        failed["reason"],
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
    let o = bbbctl_in(&dir, &["check", "-s", &stack, "--public"]);
    eprintln!(
        "check of unreachable names took {} ms",
        started.elapsed().as_millis()
    );
    assert_code(&o, 1);
    let out = stdout(&o);
    assert!(out.contains(&format!("✖ {domain}")), "{out}");
    // The error names the failures itself (under JSON there is nothing "above").
    let error = stderr(&o);
    assert!(
        error.contains("checks failed (AWS ECS services, DNS ")
            && error.contains(" more); `bbbctl check -s"),
        "{error}"
    );
    let o = bbbctl_in(
        &dir,
        &["--output", "json", "check", "-s", &stack, "--public"],
    );
    assert_code(&o, 1);
    let error = stderr(&o);
    assert!(
        error.contains("checks failed (AWS ECS services, DNS ") && !error.contains("above"),
        "{error}"
    );
    let failed: Vec<Value> = checks(&o)
        .into_iter()
        .filter(|c| c["state"] == "failed")
        .collect();
    assert!(failed.len() > 4, "{failed:#?}");
    for c in &failed {
        assert!(
            !c["reason"].as_str().unwrap_or_default().is_empty() && c["hint"].is_string(),
            "{c}"
        );
    }
    // The name does not resolve: the TLS check says so, with the record and the zone's
    // delegation to look at, not the certificate.
    let tls = failed
        .iter()
        .find(|c| c["group"] == "TLS" && c["name"] == domain.as_str())
        .unwrap();
    let hint = tls["hint"].as_str().unwrap();
    assert!(
        hint.contains(&format!(
            "{domain} is an A record in hosted zone {domain} ({zone})"
        )) && hint.contains(&format!("`dig +short NS {domain}` must list"))
            && !hint.contains("certificate"),
        "{tls}"
    );

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
}
