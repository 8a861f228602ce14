//! Issue 27 (launch hook, warm pool, report events), on the templates as written: what the
//! emulator does not run (moto emulates no launch hook and no EventBridge delivery).
//! - The launch hook is declared with the group (LifecycleHookSpecificationList): a
//!   LifecycleHook resource is created after the group it names, so the instances the group
//!   launches at its creation would not pass through it (AWS::AutoScaling::AutoScalingGroup,
//!   "lifecycle hooks to add to the Auto Scaling group before instances are launched").
//! - Its timeout covers a bare install (up to 45 minutes) without a heartbeat, within AWS's
//!   limit (7200 s); its default result is CONTINUE (ABANDON would replace a failed boot
//!   with another, for ever).
//! - Only the registrar completes it: the servers' role has no Auto Scaling action.
//! - The warm pool follows WarmPoolSize (root BBBWarmPoolSize), stopped, never reused.
//! - A report written reaches the registrar through S3's EventBridge events.

use std::path::Path;

use serde_yaml_ng::Value;

fn template(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("templates")
        .join(name);
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A value with its YAML tags dropped, in the shape `!Tag value` reads as: `!Ref X` → "Ref:X".
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => format!(
            "{}:{}",
            t.tag.to_string().trim_start_matches('!'),
            text(&t.value)
        ),
        other => format!("{other:?}"),
    }
}

fn servers() -> Value {
    template("bbb-servers.yaml")
}

/// The statements of a role's inline policies.
fn statements(role: &Value) -> Vec<Value> {
    role["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_sequence()
                .unwrap()
                .clone()
        })
        .collect()
}

fn actions(st: &Value) -> Vec<String> {
    match &st["Action"] {
        Value::Sequence(s) => s.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

#[test]
fn the_launch_hook_is_declared_with_the_group_and_outlasts_a_bare_install() {
    let doc = servers();
    let group = &doc["Resources"]["ServerGroup"]["Properties"];
    // Scalable mode only: !If [IsScalable, [hook], !Ref AWS::NoValue].
    let Value::Tagged(spec) = &group["LifecycleHookSpecificationList"] else {
        panic!("LifecycleHookSpecificationList is an !If: {group:?}")
    };
    assert_eq!(spec.tag.to_string(), "!If");
    let parts = spec.value.as_sequence().unwrap();
    assert_eq!(text(&parts[0]), "IsScalable");
    assert_eq!(text(&parts[2]), "Ref:AWS::NoValue");
    let hooks = parts[1].as_sequence().unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(text(&hook["LifecycleHookName"]), "bbb-launch");
    assert_eq!(
        text(&hook["LifecycleTransition"]),
        "autoscaling:EC2_INSTANCE_LAUNCHING"
    );
    let timeout: u64 = text(&hook["HeartbeatTimeout"]).parse().unwrap();
    assert!(
        (45 * 60..=7200).contains(&timeout),
        "a bare install (45 min) fits without a heartbeat, within AWS's 30..7200 s: {timeout}"
    );
    assert_eq!(text(&hook["DefaultResult"]), "CONTINUE");

    // No launch hook as a resource of its own (it would miss the group's first instances);
    // the drain hook stays one (deleted before the group on destroy: no drain then).
    for (name, r) in doc["Resources"].as_mapping().unwrap() {
        if text(&r["Type"]) == "AWS::AutoScaling::LifecycleHook" {
            assert_eq!(
                text(&r["Properties"]["LifecycleTransition"]),
                "autoscaling:EC2_INSTANCE_TERMINATING",
                "{name:?}"
            );
        }
    }
}

#[test]
fn only_the_registrar_completes_lifecycle_actions_and_sees_the_warm_pool_and_dns_sync() {
    let doc = servers();
    let res = &doc["Resources"];
    for st in statements(&res["ServerRole"]) {
        for a in actions(&st) {
            assert!(
                !a.starts_with("autoscaling:"),
                "a server may not drive the group: {a}"
            );
        }
    }
    let registrar = statements(&res["RegistrarRole"]);
    let find = |action: &str| -> Value {
        registrar
            .iter()
            .find(|st| actions(st).iter().any(|a| a == action))
            .unwrap_or_else(|| panic!("the registrar may not {action}"))
            .clone()
    };
    // Completes and heartbeats both hooks, on its own group only.
    let drive = find("autoscaling:CompleteLifecycleAction");
    assert!(actions(&drive).contains(&"autoscaling:RecordLifecycleActionHeartbeat".into()));
    assert!(
        text(&drive["Resource"]).contains("autoScalingGroupName/${AWS::StackName}-ServerGroup-*"),
        "{:?}",
        drive["Resource"]
    );
    // Lists the warm pool's instances (DescribeWarmPool has no resource-level permission).
    assert_eq!(text(&find("autoscaling:DescribeWarmPool")["Resource"]), "*");
    // Sees its record changes INSYNC.
    assert_eq!(
        text(&find("route53:GetChange")["Resource"]),
        "Sub:arn:${AWS::Partition}:route53:::change/*"
    );
    // Writes the servers' names below the fleet domain only (contract 27 section 1).
    let names = format!(
        "{:?}",
        find("route53:ChangeResourceRecordSets")["Condition"]["ForAllValues:StringLike"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
    );
    assert!(names.contains("bbb-*.media.${DomainName}"), "{names}");
    assert!(!names.contains("\"bbb-*.${DomainName}\""), "{names}");
}

#[test]
fn the_warm_pool_follows_its_parameter_stopped_and_never_reused() {
    let doc = servers();
    let pool = &doc["Resources"]["ServerWarmPool"];
    assert_eq!(text(&pool["Type"]), "AWS::AutoScaling::WarmPool");
    assert_eq!(text(&pool["Condition"]), "HasWarmPool");
    let p = &pool["Properties"];
    assert_eq!(text(&p["AutoScalingGroupName"]), "Ref:ServerGroup");
    assert_eq!(text(&p["MinSize"]), "Ref:WarmPoolSize");
    assert_eq!(text(&p["PoolState"]), "Stopped");
    assert_eq!(text(&p["InstanceReusePolicy"]["ReuseOnScaleIn"]), "false");
    // MaxGroupPreparedCapacity = MinSize: an absolute size (unset, AWS keeps max - desired,
    // which grows while a scale-in drains: desired falls before max).
    assert_eq!(text(&p["MaxGroupPreparedCapacity"]), "Ref:WarmPoolSize");
    let condition = format!("{:?}", doc["Conditions"]["HasWarmPool"]);
    assert!(
        condition.contains("IsScalable") && condition.contains("WarmPoolSize"),
        "{condition}"
    );
    assert_eq!(text(&doc["Parameters"]["WarmPoolSize"]["Default"]), "0");

    // The root passes BBBWarmPoolSize (0 by default; 0 in single mode whatever it says).
    let root = template("root.yaml");
    assert_eq!(text(&root["Parameters"]["BBBWarmPoolSize"]["Default"]), "0");
    assert_eq!(
        text(&root["Parameters"]["BBBWarmPoolSize"]["MaxValue"]),
        "100"
    );
    let passed = format!(
        "{:?}",
        root["Resources"]["BbbServersStack"]["Properties"]["Parameters"]["WarmPoolSize"]
    );
    assert!(
        passed.contains("IsSingle")
            && passed.contains("\"0\"")
            && passed.contains("BBBWarmPoolSize"),
        "{passed}"
    );
}

#[test]
fn a_report_written_reaches_the_registrar_through_s3s_eventbridge_events() {
    let sources = template("sources.yaml");
    assert_eq!(
        text(
            &sources["Resources"]["SourcesBucket"]["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"]
                ["EventBridgeEnabled"]
        ),
        "true"
    );
    let doc = servers();
    let rule = &doc["Resources"]["RegistrarOnReports"];
    assert_eq!(text(&rule["Type"]), "AWS::Events::Rule");
    assert_eq!(text(&rule["Condition"]), "IsScalable");
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(
        pattern["source"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect::<Vec<_>>(),
        ["aws.s3"]
    );
    // S3's event (Amazon S3 User Guide, "EventBridge event message structure").
    assert_eq!(
        pattern["detail-type"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect::<Vec<_>>(),
        ["Object Created"]
    );
    assert_eq!(
        pattern["detail"]["bucket"]["name"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect::<Vec<_>>(),
        ["Ref:SourcesBucket"]
    );
    // The servers' reports only (their key: servers/<server role id>:<instance id>.json).
    let key = &pattern["detail"]["object"]["key"].as_sequence().unwrap()[0];
    assert_eq!(text(&key["prefix"]), "Sub:servers/${ServerRole.RoleId}:");
    let targets = rule["Properties"]["Targets"].as_sequence().unwrap();
    assert_eq!(text(&targets[0]["Arn"]), "GetAtt:Registrar.Arn");
    let permission = &doc["Resources"]["RegistrarOnReportsPermission"]["Properties"];
    assert_eq!(
        text(&permission["SourceArn"]),
        "GetAtt:RegistrarOnReports.Arn"
    );
    assert_eq!(text(&permission["Principal"]), "events.amazonaws.com");

    // The group's launch lifecycle action is an event the registrar is run on too.
    let group_events = format!(
        "{:?}",
        doc["Resources"]["RegistrarOnGroupEvents"]["Properties"]["EventPattern"]["detail-type"]
    );
    assert!(
        group_events.contains("EC2 Instance-launch Lifecycle Action"),
        "{group_events}"
    );
}
