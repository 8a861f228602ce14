//! The warm pool on the emulator (moto_ext patch 35: a pool holds stopped instances):
//! `scale --warm 2` creates the group's pool (the root parameter BBBWarmPoolSize, the servers
//! stack's AWS::AutoScaling::WarmPool) with two prepared servers stopped in Warmed:Stopped,
//! apart from the group's own; `servers` and `status` show them apart; `cost` prices their
//! volumes (EBS only: they are stopped); a later `setup` keeps the pool; `scale --warm 0`
//! removes it (its instances terminated); `destroy` removes a pool with the deployment.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// (pool size, {instance: lifecycle state}) of the group's warm pool; None: no pool.
async fn pool(aws: &bbbctl::aws::Aws, group: &str) -> Option<(i32, BTreeMap<String, String>)> {
    let got = aws
        .autoscaling
        .describe_warm_pool()
        .auto_scaling_group_name(group)
        .send()
        .await
        .expect("DescribeWarmPool");
    let config = got.warm_pool_configuration()?;
    Some((
        config.min_size().unwrap_or(-1),
        got.instances()
            .iter()
            .map(|i| {
                (
                    i.instance_id().unwrap().to_string(),
                    i.lifecycle_state().unwrap().as_str().to_string(),
                )
            })
            .collect(),
    ))
}

/// EC2's state of the instance (running, stopped, terminated), as EC2 describes it.
async fn ec2_state(_aws: &bbbctl::aws::Aws, instance: &str) -> String {
    boto3(
        "ec2",
        &format!(
            "print(client.describe_instances(InstanceIds=[{instance:?}])['Reservations'][0]['Instances'][0]['State']['Name'])"
        ),
    )
}

async fn warm_parameter(aws: &bbbctl::aws::Aws, stack: &str) -> Option<String> {
    bbbctl::cfn::ops::parameters(&described(aws, stack).await).remove("BBBWarmPoolSize")
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_warm_keeps_prepared_servers_stopped_until_it_is_set_to_zero() {
    let aws = account().await;
    let _one = exclusive().await;
    let domain = format!("{}.example.org", unique("warm"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("warm");
    let dir = scratch_dir();
    assert_code(
        &setup_with_servers(&dir, (&zone, &stack, &domain), 1, &["--no-check"]),
        0,
    );
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let members = group_instances(&aws, &group).await;
    assert_eq!(members.len(), 1);
    assert_eq!(pool(&aws, &group).await, None, "no pool by default");
    assert_eq!(warm_parameter(&aws, &stack).await.as_deref(), Some("0"));

    // Two prepared servers, stopped, apart from the group's one server.
    let o = bbbctl_in(&dir, &["scale", "-s", &stack, "--warm", "2"]);
    assert_code(&o, 0);
    assert_stdout_has(&o, "Warm pool: 2 prepared server(s), kept stopped.");
    assert_eq!(warm_parameter(&aws, &stack).await.as_deref(), Some("2"));
    let (size, warm) = pool(&aws, &group).await.expect("a warm pool");
    assert_eq!(size, 2);
    assert_eq!(
        warm.values().cloned().collect::<Vec<_>>(),
        vec!["Warmed:Stopped"; 2],
        "{warm:?}"
    );
    for id in warm.keys() {
        assert_eq!(ec2_state(&aws, id).await, "stopped", "{id}");
        assert!(!members.contains(id));
    }
    assert_eq!(
        group_instances(&aws, &group).await,
        members,
        "the group untouched"
    );

    // servers and status show them apart from the servers.
    let o = bbbctl_in(&dir, &["--output", "json", "servers", "-s", &stack]);
    assert_code(&o, 0);
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed["servers"].as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed["warm_pool"]["min_size"], 2, "{listed:#}");
    let mut shown: Vec<&str> = listed["warm_pool"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[0].as_str().unwrap())
        .collect();
    shown.sort_unstable(); // in the pool's order, which is no order
    assert_eq!(shown, warm.keys().map(String::as_str).collect::<Vec<_>>());
    let o = bbbctl_in(&dir, &["servers", "-s", &stack]);
    assert_code(&o, 0);
    assert_stdout_has(&o, "Warm pool: 2 prepared server(s) kept stopped");
    for id in warm.keys() {
        assert_stdout_has(&o, &format!("{id:<20} "));
    }
    let o = bbbctl_in(&dir, &["status", "-s", &stack]);
    assert_code(&o, 0);
    assert_stdout_has(&o, "Warm pool: 2 prepared server(s)");

    // cost: the pool's volumes (root 50 + data 100 GB each), nothing else of them.
    let o = bbbctl_in(&dir, &["--output", "json", "cost", "-s", &stack]);
    assert_code(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let line = v["estimate"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["item"] == "BBB warm pool volumes (gp3)")
        .unwrap_or_else(|| panic!("no warm pool line in {v:#}"))
        .clone();
    assert_eq!(line["quantity"]["low"], 300.0, "{line:#}");
    assert_eq!(line["quantity"]["high"], 300.0, "{line:#}");
    let servers = v["estimate"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["item"].as_str().unwrap().starts_with("BBB servers ("))
        .unwrap()
        .clone();
    assert_eq!(
        servers["quantity"]["low"], 730.0,
        "one server's hours: {servers:#}"
    );

    // A later setup (same parameter file, which says nothing of a pool) keeps it; a launch
    // hook missing from the group (an update that did not apply the template's
    // LifecycleHookSpecificationList) is put back, with the template's settings.
    let hooks = || {
        boto3(
            "autoscaling",
            &format!(
                "print(json.dumps([(h['LifecycleHookName'], h['LifecycleTransition'], h['HeartbeatTimeout'], h['DefaultResult']) \
                 for h in client.describe_lifecycle_hooks(AutoScalingGroupName={group:?})['LifecycleHooks'] if h['LifecycleHookName'] == 'bbb-launch']))"
            ),
        )
    };
    let declared = hooks();
    assert_eq!(
        declared,
        r#"[["bbb-launch", "autoscaling:EC2_INSTANCE_LAUNCHING", 3600, "CONTINUE"]]"#
    );
    boto3(
        "autoscaling",
        &format!(
            "client.delete_lifecycle_hook(AutoScalingGroupName={group:?}, LifecycleHookName='bbb-launch')"
        ),
    );
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), 1, &["--no-check"]);
    assert_code(&o, 0);
    let said = stdout(&o) + &stderr(&o);
    assert!(said.contains("Added the launch hook bbb-launch"), "{said}");
    assert_eq!(hooks(), declared);
    // The pool's servers were prepared without the hook (their user data cut off on AWS):
    // replaced, whatever their template version.
    assert!(
        said.contains("were prepared without the launch hook"),
        "{said}"
    );
    let (size, rehooked) = pool(&aws, &group).await.expect("the pool kept");
    assert_eq!(size, 2);
    for id in warm.keys() {
        assert!(!rehooked.contains_key(id), "{id} was kept");
    }
    // A setup that changes nothing keeps the pool as it is.
    assert_code(
        &setup_with_servers(&dir, (&zone, &stack, &domain), 1, &["--no-check"]),
        0,
    );
    let (_, kept) = pool(&aws, &group).await.expect("the pool kept");
    assert_eq!(
        kept.keys().collect::<Vec<_>>(),
        rehooked.keys().collect::<Vec<_>>()
    );
    let warm = rehooked;
    assert_eq!(warm_parameter(&aws, &stack).await.as_deref(), Some("2"));
    let (size, kept) = pool(&aws, &group).await.expect("the pool kept");
    assert_eq!(size, 2);
    assert_eq!(
        kept.keys().collect::<Vec<_>>(),
        warm.keys().collect::<Vec<_>>()
    );

    // A setup that changes the servers' launch template (another instance type): the running
    // server keeps its template (bbbctl roll replaces it), the pool's prepared servers, which
    // a scale-out would start as they are, are replaced by ones of the new version.
    let params = dir.join("other-type.json");
    std::fs::write(
        &params,
        r#"{"Parameters": {"BBBServerCount": 1, "BBBServerInstanceType": "c5.xlarge"}}"#,
    )
    .unwrap();
    let o = bbbctl_in(
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--params", params.to_str().unwrap(), "--no-check", "--yes"],
        ),
    );
    assert_code(&o, 0);
    assert!(
        (stdout(&o) + &stderr(&o)).contains("of an older launch template than the group's"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let (size, renewed) = pool(&aws, &group).await.expect("the pool kept");
    assert_eq!(size, 2);
    assert_eq!(renewed.len(), 2, "{renewed:?}");
    for id in warm.keys() {
        assert!(!renewed.contains_key(id), "{id} was kept");
        assert_eq!(ec2_state(&aws, id).await, "terminated", "{id}");
    }
    assert_eq!(
        group_instances(&aws, &group).await,
        members,
        "the server kept"
    );

    // --warm 0: no pool; its instances terminated, the server untouched.
    let o = bbbctl_in(&dir, &["scale", "-s", &stack, "--warm", "0"]);
    assert_code(&o, 0);
    assert_stdout_has(&o, "No warm pool.");
    assert_eq!(pool(&aws, &group).await, None);
    for id in renewed.keys() {
        assert_eq!(ec2_state(&aws, id).await, "terminated", "{id}");
    }
    assert_eq!(group_instances(&aws, &group).await, members);
    let o = bbbctl_in(&dir, &["servers", "-s", &stack]);
    assert!(!stdout(&o).contains("Warm pool"), "{}", stdout(&o));

    // Refused: not a number, above the guard.
    let o = bbbctl_in(&dir, &["scale", "-s", &stack, "--warm", "two"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("--warm \"two\" is not a whole number"),
        "{}",
        stderr(&o)
    );

    // destroy takes a pool with the deployment.
    assert_code(&bbbctl_in(&dir, &["scale", "-s", &stack, "--warm", "1"]), 0);
    let (_, last) = pool(&aws, &group).await.expect("a pool again");
    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert!(
        (stdout(&o) + &stderr(&o)).contains("Deleted the warm pool of"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    for id in last.keys() {
        assert_eq!(ec2_state(&aws, id).await, "terminated", "{id}");
    }
    // Destroy keeps the database's final snapshot on purpose (tests/destroy*.rs).
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
}
