//! `bbbctl list` and the default deployment: the deployments of the account and region from
//! their tags, and a default that falls back to the one set up before when the last one is
//! destroyed (issue 19: after `destroy -s bbb2`, `status` answered "no deployment given"
//! while `bbb` still ran).

mod common;

use common::*;
use serde_json::Value;

fn list(dir: &std::path::Path) -> Value {
    let o = bbbctl_in(dir, &["list", "--output", "json"]);
    assert_code(&o, 0);
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

fn names(v: &Value) -> Vec<String> {
    v["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["stack"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn list_shows_every_deployment_and_destroy_falls_back_to_the_previous_default() {
    let aws = account().await;
    let zone_domain = format!("{}.example.org", unique("list"));
    let zone = hosted_zone(&aws, &zone_domain).await;
    let dir = scratch_dir();
    let (first, second) = (unique("lista"), unique("listb"));
    let (d1, d2) = (format!("a.{zone_domain}"), format!("b.{zone_domain}"));
    for (stack, domain, mode) in [(&first, &d1, "single"), (&second, &d2, "scalable")] {
        let o = bbbctl_in(
            &dir,
            &setup_args(
                &zone,
                stack,
                domain,
                &["--mode", mode, "--yes", "--no-check"],
            ),
        );
        assert_code(&o, 0);
    }

    let v = list(&dir);
    let mine: Vec<&Value> = v["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| [&first, &second].contains(&&d["stack"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(mine.len(), 2, "{v:#}");
    // Nested stacks and sources stacks carry the same tag; each deployment is listed once.
    assert_eq!(
        names(&v).iter().filter(|n| n.starts_with("list")).count(),
        2,
        "{v:#}"
    );
    let by = |name: &str| *mine.iter().find(|d| d["stack"] == name).unwrap();
    assert_eq!(by(&first)["mode"], "single");
    assert_eq!(by(&first)["domain"], d1.as_str());
    assert_eq!(by(&second)["mode"], "scalable");
    assert_eq!(by(&second)["status"], "CREATE_COMPLETE");
    assert_eq!(by(&second)["servers_desired"], 1);
    assert_eq!(by(&second)["servers_in_service"], 1);
    assert_eq!(v["default"], second.as_str());
    let o = bbbctl_in(&dir, &["list"]);
    assert_stdout_has(&o, &format!("{second} *"));
    assert_stdout_has(&o, "* the default: commands without -s act on it");

    // The second goes: the first is the default again, and only it is listed.
    let o = bbbctl_in(&dir, &["destroy", "-s", &second, "--yes"]);
    assert_code(&o, 0);
    let o = bbbctl_in(&dir, &["status"]);
    assert_code(&o, 0);
    assert_stdout_has(&o, &format!("Deployment {first}:"));
    let v = list(&dir);
    assert!(!names(&v).contains(&second), "{v:#}");
    assert_eq!(v["default"], first.as_str());

    // A half-made deployment (its sources stack only) is listed and explained.
    let third = unique("listc");
    aws.cfn
        .create_stack()
        .stack_name(format!("{third}-sources"))
        .template_body(
            "Resources:\n  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n",
        )
        .tags(
            aws_sdk_cloudformation::types::Tag::builder()
                .key("bbbctl:deployment")
                .value(&third)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v = list(&dir);
    let half = v["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["stack"] == third.as_str())
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(half["sources_only"], true);
    let o = bbbctl_in(&dir, &["list"]);
    assert_stdout_has(
        &o,
        &format!("{third}: only its sources stack exists (a setup stopped early)"),
    );
    let o = bbbctl_in(&dir, &["destroy", "-s", &third, "--yes"]);
    assert_code(&o, 0);

    // With none remembered, the message points at `list`.
    let o = bbbctl_in(&dir, &["destroy", "-s", &first, "--yes"]);
    assert_code(&o, 0);
    let o = bbbctl_in(&dir, &["status"]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("`bbbctl list` shows those"),
        "{}",
        stderr(&o)
    );
}
