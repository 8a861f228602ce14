//! Boot steps on the emulator: a deployment with three BBB servers whose boot logs the test
//! writes into the stack's CloudWatch Logs group, stream = instance id, as the servers'
//! bbb-logship would (contract 4 of issue 27: `STEP`, `BOOT`, `READY` lines among the
//! scripts' other output): one booted from a baked image and ready, one started from the
//! warm pool (its warm-up boot earlier, then a `restart` boot), one on the bare path still
//! installing. `servers` shows each one's boot path, launch to ready and slowest step;
//! `--output json` carries the steps and the earlier boots; `status` sums them up per path.

mod common;
mod standins;

use common::*;
use standins::scalelite::Scalelite;

/// RFC 3339 (UTC, whole seconds) of an epoch time.
fn rfc3339(epoch: i64) -> String {
    aws_smithy_types::DateTime::from_secs(epoch)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

/// `(seconds after launch, "program: text")` as log lines of an instance launched at `launched`.
fn lines(launched: i64, at: &[(i64, &str)]) -> Vec<String> {
    at.iter()
        .map(|(offset, text)| {
            if text.starts_with("bbb-") {
                format!("{} {text}", rfc3339(launched + offset))
            } else {
                text.to_string() // bbb-install's own output: no time, no program
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_and_status_show_each_boot_from_its_step_lines() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("boots"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("boots");
    let dir = scratch_dir();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), 3, &["--no-check"]);
    assert_code(&o, 0);
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let log_group = outputs["BBBServerLogGroupName"].clone();
    let instances = group_instances(&aws, &group).await;
    assert_eq!(instances.len(), 3);
    let scalelite = Scalelite::start(&load_balancer_secret(&aws, &stack).await);
    let described = bbbctl::signed::instances(&aws, &instances).await.unwrap();
    let launched: Vec<i64> = instances
        .iter()
        .map(|i| {
            let t = described[i].launched.clone().expect("EC2 gives launchTime");
            bbbctl::boot::epoch(&t).expect("an RFC 3339 launchTime") as i64
        })
        .collect();
    let host = |i: usize| {
        format!(
            "https://bbb-{}.media.{domain}",
            instances[i].trim_start_matches("i-")
        )
    };

    // 0: a baked image's first boot, ready 95 s after launch; its slowest step: services.
    let ready0 = format!("bbb-bootstrap: READY {}", host(0));
    let baked = lines(
        launched[0],
        &[
            (30, "bbb-bootstrap: starting (scalable mode, baked image)"),
            (32, "bbb-bootstrap: STEP volume 1.5s"),
            (40, "bbb-identity: STEP addresses 3.2s"),
            (45, "bbb-identity: STEP certificate 4.8s"),
            (87, "bbb-identity: STEP services 41.6s"),
            (94, "bbb-bootstrap: STEP verify 6.9s"),
            (95, "bbb-bootstrap: BOOT baked 65.0s"),
            (95, &ready0),
        ],
    );
    // 1: warm: its warm-up boot an hour before this start, then a restart boot, ready
    // (BOOT line, no READY: only bbb-identity ran) 38 s after the start.
    let ready1 = format!("bbb-bootstrap: READY {}", host(1));
    let warm = lines(
        launched[1],
        &[
            (-3600, "bbb-bootstrap: STEP volume 1.2s"),
            (-3540, "bbb-identity: STEP services 50.3s"),
            (-3530, "bbb-bootstrap: BOOT baked 80.0s"),
            (-3530, &ready1),
            (25, "bbb-identity: STEP addresses 2.9s"),
            (37, "bbb-identity: STEP services 11.4s"),
            (38, "bbb-identity: BOOT restart 15.0s"),
        ],
    );
    // 2: bare, still installing: two steps, bbb-install's output and lines that only look
    // like steps, no BOOT line.
    let bare = lines(
        launched[2],
        &[
            (30, "bbb-bootstrap: STEP volume 2.5s"),
            (95, "bbb-bootstrap: STEP apt-wait 63.0s"),
            (96, "Setting up bbb-web (1:3.0.4-1) ..."),
            (97, "STEP install 1.0s"),
            (98, "bbb-bootstrap: STEP install soon"),
            (99, "bbb-bootstrap: running bbb-install"),
        ],
    );
    for (i, l) in [baked, warm, bare].iter().enumerate() {
        let l: Vec<&str> = l.iter().map(String::as_str).collect();
        put_log_lines(&log_group, &instances[i], &l);
    }

    let url = scalelite.url();
    let o = bbbctl_in(&dir, &["servers", "-s", &stack, "--scalelite-url", &url]);
    assert_code(&o, 0);
    let text = stdout(&o);
    let row = |i: usize| -> String {
        text.lines()
            .find(|l| l.starts_with(&instances[i]))
            .unwrap_or_else(|| panic!("no row for {}: {text}", instances[i]))
            .to_string()
    };
    assert!(
        text.lines()
            .any(|l| l.starts_with("instance") && l.contains(" boot ") && l.contains("ready in")),
        "{text}"
    );
    let r0 = row(0);
    assert!(r0.contains(" baked "), "{r0}");
    assert!(r0.contains(" 1m35s "), "{r0}");
    assert!(r0.contains(" services 42s "), "{r0}");
    let r1 = row(1);
    assert!(r1.contains(" restart "), "{r1}");
    assert!(r1.contains(" 38s "), "{r1}");
    assert!(r1.contains(" services 11s "), "{r1}");
    let r2 = row(2);
    assert!(r2.contains(" booting "), "{r2}");
    assert!(r2.contains(" apt-wait 1m03s "), "{r2}");

    let o = bbbctl_in(
        &dir,
        &[
            "--output",
            "json",
            "servers",
            "-s",
            &stack,
            "--scalelite-url",
            &url,
        ],
    );
    assert_code(&o, 0);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let boot = |i: usize| -> serde_json::Value {
        listed["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["instance"] == instances[i])
            .unwrap()["boot"]
            .clone()
    };
    let b0 = boot(0);
    assert_eq!(b0["current"]["path"], "baked", "{b0}");
    assert_eq!(b0["current"]["state"], "ready", "{b0}");
    assert_eq!(b0["current"]["url"], host(0).as_str(), "{b0}");
    assert_eq!(b0["current"]["total"], 65.0);
    assert_eq!(b0["launch_to_ready"], 95.0);
    let steps: Vec<(String, String, f64)> = b0["current"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["program"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
                s["seconds"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("bbb-bootstrap".into(), "volume".into(), 1.5),
            ("bbb-identity".into(), "addresses".into(), 3.2),
            ("bbb-identity".into(), "certificate".into(), 4.8),
            ("bbb-identity".into(), "services".into(), 41.6),
            ("bbb-bootstrap".into(), "verify".into(), 6.9),
        ]
    );
    assert_eq!(b0["slowest_step"]["name"], "services");
    assert_eq!(b0["earlier"], serde_json::json!([]));
    let b1 = boot(1);
    assert_eq!(b1["current"]["path"], "restart", "{b1}");
    assert_eq!(b1["current"]["state"], "booted", "{b1}");
    assert_eq!(b1["launch_to_ready"], 38.0);
    assert_eq!(b1["earlier"].as_array().unwrap().len(), 1, "{b1}");
    assert_eq!(b1["earlier"][0]["path"], "baked");
    assert_eq!(b1["earlier"][0]["state"], "ready");
    let b2 = boot(2);
    assert_eq!(b2["current"]["state"], "booting", "{b2}");
    assert_eq!(b2["current"]["path"], serde_json::Value::Null);
    assert_eq!(b2["current"]["steps"].as_array().unwrap().len(), 2, "{b2}");
    assert_eq!(b2["launch_to_ready"], serde_json::Value::Null);

    let o = bbbctl_in(&dir, &["status", "-s", &stack]);
    assert_code(&o, 0);
    let text = stdout(&o);
    assert!(text.contains("Boots (running servers"), "{text}");
    let line = |path: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{path} ")))
            .unwrap_or_else(|| panic!("no {path} line: {text}"))
            .to_string()
    };
    assert!(
        line("baked").contains(&format!(
            "1 server(s), 1 ready, 0 failed, 0 booting; median 1m35s, slowest 1m35s ({})",
            instances[0]
        )),
        "{text}"
    );
    assert!(line("restart").contains("median 38s"), "{text}");
    assert!(
        line("unknown").contains("1 server(s), 0 ready, 0 failed, 1 booting; median -"),
        "{text}"
    );
    let o = bbbctl_in(&dir, &["--output", "json", "status", "-s", &stack]);
    assert_code(&o, 0);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let boots = status["boots"].as_array().unwrap();
    let paths: Vec<&str> = boots.iter().map(|b| b["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["baked", "restart", "unknown"]);
    assert_eq!(boots[0]["median"], 95.0);
    assert_eq!(boots[0]["slowest_step"][1]["name"], "services");
    assert_eq!(boots[1]["count"], 1);

    assert_code(
        &bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes", "--force"]),
        0,
    );
}

#[test]
fn the_tests_own_time_format_round_trips() {
    for t in [0, 951_782_400, 1_796_637_609, 4_102_444_800] {
        assert_eq!(
            bbbctl::boot::epoch(&rfc3339(t)),
            Some(t as f64),
            "{}",
            rfc3339(t)
        );
    }
    assert_eq!(rfc3339(1_796_637_609), "2026-12-07T10:00:09Z");
}
