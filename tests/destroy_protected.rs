//! `destroy` of a scalable deployment whose BBB server holds scale-in protection (a meeting
//! runs on it: the registrar holds it). On AWS CloudFormation deletes the group by setting
//! it to 0 and never terminates a protected instance, so the delete hangs, then fails
//! (aws-cdk issue 18179); the emulator fails it the same way (moto_ext patch 21). destroy
//! stops the registrar (the group's `bbbctl:protection=off` tag, which the registrar's role denies
//! SetInstanceProtection on), lifts the protection, says so, and leaves nothing. It also
//! deletes the log groups RDS and ECS created for the deployment's clusters (Aurora's
//! exported log, Container Insights), and only those.

mod common;

use common::*;
use serde_json::Value;

/// boto3 against the emulator with a CloudWatch Logs client named `logs` (bbbctl has no
/// SDK crate of it).
fn logs_py(code: &str) -> String {
    boto3("logs", &format!("logs = client\n{code}"))
}

fn create_log_group(name: &str) {
    logs_py(&format!("logs.create_log_group(logGroupName={name:?})"));
}

/// The log groups whose names start with `prefix`.
fn log_groups(prefix: &str) -> Vec<String> {
    let out = logs_py(&format!(
        "print(json.dumps([g['logGroupName'] for g in logs.describe_log_groups(logGroupNamePrefix={prefix:?})['logGroups']]))"
    ));
    serde_json::from_str(&out).unwrap()
}

/// An IAM policy document as IAM returns it: URL-encoded JSON in AWS; moto 5.2.5 keeps the
/// inline policy of a role its CloudFormation created as Python's text of the dict (single
/// quotes), read here as JSON (the policy holds no quote or apostrophe of its own).
fn policy_json(document: &str) -> Value {
    let decoded = if document.starts_with("{'") {
        document.replace('\'', "\"")
    } else if document.trim_start().starts_with('%') {
        let bytes = document.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&document[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    } else {
        document.to_string()
    };
    serde_json::from_str(&decoded).unwrap()
}

/// The Deny that stops the registrar protecting servers once destroy has tagged the group.
fn is_protection_deny(statement: &Value) -> bool {
    let actions = match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    statement["Effect"] == "Deny"
        && actions
            .iter()
            .any(|a| a == "autoscaling:SetInstanceProtection")
        && statement["Condition"]["StringEquals"]["autoscaling:ResourceTag/bbbctl:protection"]
            == "off"
}

#[test]
fn the_registrars_role_denies_protection_once_destroy_tags_the_group() {
    let path = repo().join("templates/bbb-servers.yaml");
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let statements = &doc["Resources"]["RegistrarRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ["Statement"];
    // The statement as JSON (short-form tags are not used inside it).
    let found = statements
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .any(|s| is_protection_deny(&s));
    assert!(
        found,
        "no Deny of SetInstanceProtection on bbbctl:protection=off"
    );
}

#[tokio::test]
async fn destroy_lifts_scale_in_protection_and_deletes_the_services_log_groups() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("prot"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("prot");
    let dir = scratch_dir();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), 2, &["--no-check"]);
    assert_code(&o, 0);
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let instances = group_instances(&aws, &group).await;
    assert_eq!(instances.len(), 2, "{instances:?}");
    // bbbctl chooses which server goes: Auto Scaling's rebalancing would undo that.
    let asg = auto_scaling_group(&aws, &group).await;
    assert!(
        asg.suspended_processes()
            .iter()
            .any(|p| p.process_name() == Some("AZRebalance")),
        "{:?}",
        asg.suspended_processes()
    );

    // The Deny reached IAM with the deployed role.
    let servers = stack_resource(&aws, &stack, "BbbServersStack").await;
    let role = stack_resource(&aws, &servers, "RegistrarRole").await;
    let role = role.rsplit('/').next().unwrap().to_string();
    let document = aws
        .iam
        .get_role_policy()
        .role_name(&role)
        .policy_name("bbb-registrar")
        .send()
        .await
        .unwrap()
        .policy_document()
        .to_string();
    let policy = policy_json(&document);
    assert!(
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(is_protection_deny),
        "{policy:#}"
    );

    // A meeting runs on one server: the registrar has set its scale-in protection.
    aws.autoscaling
        .set_instance_protection()
        .auto_scaling_group_name(&group)
        .instance_ids(&instances[0])
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();

    // A destroy that stopped after tagging leaves the registrar unable to protect servers;
    // a setup that keeps the deployment after all takes the tag away again.
    let tag = aws_sdk_autoscaling::types::Tag::builder()
        .resource_id(&group)
        .resource_type("auto-scaling-group")
        .key("bbbctl:protection")
        .value("off")
        .propagate_at_launch(false)
        .build();
    aws.autoscaling
        .create_or_update_tags()
        .tags(tag)
        .send()
        .await
        .unwrap();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), 2, &["--no-check"]);
    assert_code(&o, 0);
    assert_stdout_has(&o, "the registrar from naming them; both resume");
    let asg = auto_scaling_group(&aws, &group).await;
    assert!(
        asg.tags()
            .iter()
            .all(|t| t.key() != Some("bbbctl:protection")),
        "{:?}",
        asg.tags()
    );

    // What RDS and ECS create for the deployment's clusters, and the same names of others.
    let database = stack_resource(&aws, &stack, "DatabaseStack").await;
    let cluster_id = stack_resource(&aws, &database, "DBCluster").await;
    let ecs_cluster = format!("{stack}-frontend");
    let ours = [
        format!("/aws/rds/cluster/{cluster_id}/postgresql"),
        format!("/aws/ecs/containerinsights/{ecs_cluster}/performance"),
    ];
    let others = [
        format!("/aws/rds/cluster/{cluster_id}-other/postgresql"),
        format!("/aws/ecs/containerinsights/{ecs_cluster}-other/performance"),
    ];
    for name in ours.iter().chain(&others) {
        create_log_group(name);
    }

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert_stdout_has(
        &o,
        "Lifted scale-in protection from 1 server(s) (meetings on them end with the deployment).",
    );
    for name in &ours {
        assert_stdout_has(&o, name);
        assert!(log_groups(name).is_empty(), "{name} is left");
    }
    for name in &others {
        assert_eq!(
            log_groups(name),
            vec![name.clone()],
            "another cluster's group"
        );
        assert!(!stdout(&o).contains(name.as_str()), "{}", stdout(&o));
        logs_py(&format!("logs.delete_log_group(logGroupName={name:?})"));
    }
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
}

/// `signed::log_tail` (for a server's failed bootstrap) and `signed::delete_log_group` speak
/// CloudWatch Logs' JSON protocol as the emulator does: the last lines in order; a missing
/// stream or group is empty / already deleted.
#[tokio::test]
async fn log_tail_and_delete_log_group_against_the_emulator() {
    let _one_at_a_time = exclusive().await; // the other test compares whole inventories
    let aws = aws().await;
    let group = format!("/bbbctl/test/{}", unique("tail"));
    let lines: Vec<String> = (0..30).map(|n| format!("line {n}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    put_log_lines(&group, "i-0abc", &lines);
    let tail = bbbctl::signed::log_tail(&aws, &group, "i-0abc", 3)
        .await
        .unwrap();
    assert_eq!(tail, vec!["line 27", "line 28", "line 29"]);
    assert!(
        bbbctl::signed::log_tail(&aws, &group, "i-missing", 3)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        bbbctl::signed::delete_log_group(&aws, &group)
            .await
            .unwrap()
    );
    assert!(
        !bbbctl::signed::delete_log_group(&aws, &group)
            .await
            .unwrap()
    );
    assert!(log_groups(&group).is_empty());
}
