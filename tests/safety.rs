//! bbbctl acts only on what it created, in the account the user named, with the parameters
//! they chose: each case checks the message, the exit code, and that the account is unchanged.

mod common;

use std::path::Path;

use aws_config::{BehaviorVersion, Region};
use bbbctl::aws::Aws;
use common::*;

/// A stack bbbctl did not create: one SQS queue (whose deletion would lose its messages).
async fn foreign_stack(aws: &Aws, name: &str) -> String {
    let out = aws
        .cfn
        .create_stack()
        .stack_name(name)
        .template_body(
            r#"{"Description": "legacy app queue", "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}"#,
        )
        .send()
        .await
        .expect("create the foreign stack");
    out.stack_id().unwrap().to_string()
}

/// The foreign stack is as it was: same status, same single resource.
async fn assert_untouched(aws: &Aws, name: &str) {
    assert_eq!(
        status_of(aws, name).await.as_deref(),
        Some("CREATE_COMPLETE"),
        "{name}"
    );
    let resources = aws
        .cfn
        .list_stack_resources()
        .stack_name(name)
        .send()
        .await
        .unwrap();
    let types: Vec<_> = resources
        .stack_resource_summaries()
        .iter()
        .map(|r| r.resource_type().unwrap_or_default().to_string())
        .collect();
    assert_eq!(types, ["AWS::SQS::Queue"], "{name}");
}

fn assert_refused(o: &std::process::Output, stack: &str) {
    assert_code(o, 2);
    let err = stderr(o);
    assert!(
        err.contains(&format!(
            "stack {stack} in account 123456789012 (us-east-1) was not created by bbbctl"
        )) && err.contains("AWS::SQS::Queue")
            && err.contains("legacy app queue")
            && err.contains("choose another name with -s"),
        "{err}"
    );
}

#[tokio::test]
async fn foreign_stacks_are_never_touched() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("fs"));
    let zone = hosted_zone(&aws, &domain).await;

    // A root stack of the same name: setup (also with --yes, also --dry-run), scale, status,
    // admin-login and destroy all refuse, and the stack keeps its queue.
    let legacy = unique("legacy");
    foreign_stack(&aws, &legacy).await;
    for extra in [&[][..], &["--yes"], &["--dry-run"]] {
        let o = bbbctl(&setup_args(&zone, &legacy, &domain, extra));
        assert_refused(&o, &legacy);
    }
    for args in [
        vec!["scale", "-s", &legacy, "--count", "2"],
        vec!["status", "-s", &legacy],
        vec!["admin-login", "-s", &legacy],
        vec!["destroy", "-s", &legacy, "--yes"],
    ] {
        let o = bbbctl(&args);
        assert_refused(&o, &legacy);
    }
    assert_untouched(&aws, &legacy).await;
    assert_eq!(status_of(&aws, &format!("{legacy}-sources")).await, None);

    // A `-sources` stack that is not ours: setup refuses before creating anything.
    let fresh = unique("fresh");
    let sources = format!("{fresh}-sources");
    foreign_stack(&aws, &sources).await;
    let o = bbbctl(&setup_args(&zone, &fresh, &domain, &["--yes"]));
    assert_refused(&o, &sources);
    assert_untouched(&aws, &sources).await;
    assert_eq!(status_of(&aws, &fresh).await, None, "no root stack created");
    let o = bbbctl(&["destroy", "-s", &fresh, "--yes"]);
    assert_refused(&o, &sources);
    assert_untouched(&aws, &sources).await;
}

/// Credentials of another emulated account (moto keys assumed-role credentials to the role's
/// account).
async fn other_account(account: &str) -> (String, String, String) {
    let aws = aws().await;
    let creds = aws
        .sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/deployer"))
        .role_session_name("bbbctl-test")
        .send()
        .await
        .expect("assume role")
        .credentials
        .expect("credentials");
    (
        creds.access_key_id,
        creds.secret_access_key,
        creds.session_token,
    )
}

async fn clients_for(key: &(String, String, String)) -> Aws {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(bbbctl::aws::https_client())
        .region(Region::new(REGION))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
            &key.0,
            &key.1,
            Some(key.2.clone()),
            None,
            "tests",
        ))
        .load()
        .await;
    Aws::from_config(config, true)
}

fn write_profile(home: &Path, name: &str, key: &(String, String, String)) {
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        format!(
            "[{name}]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
            key.0, key.1, key.2
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn a_named_profile_wins_over_keys_in_the_environment() {
    let shell = account().await; // the environment's keys: account 123456789012
    let prod_key = other_account("222222222222").await;
    let prod = clients_for(&prod_key).await;
    let domain = format!("{}.example.org", unique("pr"));
    let zone = hosted_zone(&prod, &domain).await;
    let stack = unique("pr");
    let dir = scratch_dir();
    write_profile(&dir, "prod", &prod_key);

    let o = bbbctl_in(&dir, &{
        let mut a = vec!["-p", "prod"];
        // --yes: the other account lacks the ECS service-linked role.
        a.extend(setup_args(&zone, &stack, &domain, &["--yes"]));
        a
    });
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.lines().next().unwrap_or_default().contains(&format!(
            "Deployment {stack}: account 222222222222, region us-east-1, profile prod"
        )),
        "the first line names the account:\n{out}"
    );
    assert!(
        stderr(&o).contains("AWS_ACCESS_KEY_ID is set in the environment but not used"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        status_of(&prod, &stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(
        status_of(&shell, &stack).await,
        None,
        "the shell's account is unchanged"
    );

    // JSON results carry the account; AWS_PROFILE names a profile too.
    let o = bbbctl_command(&dir, &["--output", "json", "status", "-s", &stack])
        .env("AWS_PROFILE", "prod")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["account"], "222222222222");
    assert_eq!(json["profile"], "prod");

    // The remembered deployment keeps its profile: destroy without -p acts in account 2222.
    let o = bbbctl_in(&dir, &["destroy", "--yes"]);
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("account 222222222222"),
        "{}",
        stdout(&o)
    );
    assert_eq!(status_of(&prod, &stack).await, None);
}

#[tokio::test]
async fn a_missing_profile_is_a_usage_error() {
    let aws = account().await;
    let before = live_stacks(&aws).await;
    let dir = scratch_dir();
    let o = bbbctl_in(&dir, &["-p", "no-such-profile", "status", "-s", "bbb"]);
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("AWS profile \"no-such-profile\" (from -p) does not exist")
            && err.contains("aws configure --profile no-such-profile"),
        "{err}"
    );
    let o = bbbctl_command(&dir, &["status", "-s", "bbb"])
        .env("AWS_PROFILE", "gone")
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("\"gone\" (from AWS_PROFILE)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(live_stacks(&aws).await, before);
}

#[tokio::test]
async fn input_is_checked_whole_before_anything_changes() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("in"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("in");

    // Every missing input at once.
    let o = bbbctl(&["setup", "-s", &stack]);
    assert_code(&o, 2);
    let err = stderr(&o);
    for flag in ["-e EMAIL", "-h HOSTED_ZONE_ID", "-d DOMAIN"] {
        assert!(err.contains(flag), "{flag} not named:\n{err}");
    }
    assert!(err.contains("3 problems with the input"), "{err}");

    // The root template's Rules, before the sources stack exists.
    let single = repo().join("params/single.json");
    let o = bbbctl(&setup_args(
        &zone,
        &stack,
        &domain,
        &["--params", single.to_str().unwrap(), "--mode", "scalable"],
    ));
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("Scalable mode needs BBBNumberOfAZs 2 or 3")
            && err.contains("BBBEnvironmentType = scalable, BBBNumberOfAZs = 1")
            && err.contains("rule ScalableNeedsTwoAZs"),
        "{err}"
    );
    assert_eq!(status_of(&aws, &format!("{stack}-sources")).await, None);
    assert_eq!(status_of(&aws, &stack).await, None);
}

#[tokio::test]
async fn unreachable_endpoints_and_regions_read_as_one_line() {
    let dir = scratch_dir();
    // Nothing listens on port 9 of loopback.
    let o = bbbctl_command(&dir, &["status", "-s", "bbb"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("endpoint http://127.0.0.1:9")
            && err.contains("nothing listens at the endpoint")
            && !err.contains("DispatchFailure")
            && err.lines().count() == 1,
        "{err}"
    );
    // Something that answers, but not like AWS: the emulator's own dashboard path.
    let o = bbbctl_command(&dir, &["status", "-s", "bbb"])
        .env("AWS_ENDPOINT_URL", format!("{}/moto-api/", endpoint()))
        .output()
        .unwrap();
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("is not an AWS API answer")
            && !err.contains("ServiceError(")
            && err.lines().count() == 1,
        "{err}"
    );
}

/// The value of one parameter of a stack.
async fn param(aws: &Aws, stack: &str, key: &str) -> String {
    bbbctl::cfn::ops::parameters(&described(aws, stack).await)[key].clone()
}

/// The plan's summary counts exactly the changes it lists.
fn assert_plan_agrees(out: &str) {
    let count = |mark: &str| out.lines().filter(|l| l.starts_with(mark)).count();
    let (add, modify, remove) = (
        count("    + "),
        count("    ~ ") + count("    ! "),
        count("    - "),
    );
    let replaced = count("    ! ");
    let summary = out
        .lines()
        .find(|l| l.starts_with("Plan: "))
        .unwrap_or_else(|| panic!("no plan summary:\n{out}"));
    assert!(
        summary.starts_with(&format!(
            "Plan: {add} to add, {modify} to modify ({replaced} replaced"
        )) && summary.ends_with(&format!(", {remove} to remove.")),
        "summary {summary:?} disagrees with the list:\n{out}"
    );
}

#[tokio::test]
async fn a_rerun_keeps_the_parameters_and_asks_before_changing_them() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("rr"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("rr");
    let dir = scratch_dir();
    std::fs::write(
        dir.join("custom.json"),
        r#"{"Parameters": {"BBBLogRetentionDays": 14, "BBBServerDataVolumeSize": 50}}"#,
    )
    .unwrap();
    let o = bbbctl_in(
        &dir,
        &setup_args(&zone, &stack, &domain, &["--params", "custom.json"]),
    );
    assert_code(&o, 0);
    assert_eq!(param(&aws, &stack, "BBBLogRetentionDays").await, "14");

    // The first create recorded the servers' image (the AMI BBBServerAmi names), so that a
    // newer Ubuntu image never replaces them behind the user's back. No -e/-h/-d, no
    // parameter file: the deployment's own parameters, nothing reverted, nothing to change.
    let o = bbbctl_in(&dir, &["setup", "-s", &stack]);
    assert_code(&o, 0);
    let resolved = described(&aws, &stack)
        .await
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some("BBBServerAmi"))
        .and_then(|p| p.resolved_value())
        .expect("the AMI resolved from SSM")
        .to_string();
    assert!(resolved.starts_with("ami-"), "{resolved}");
    assert_eq!(param(&aws, &stack, "BBBServerImageId").await, resolved);
    assert!(
        stdout(&o).contains(&format!("Deployment {stack} is up to date")),
        "{}",
        stdout(&o)
    );
    assert_eq!(param(&aws, &stack, "BBBLogRetentionDays").await, "14");
    assert_eq!(param(&aws, &stack, "BBBServerDataVolumeSize").await, "50");

    // A parameter file that lies in the folder steers nothing that runs: it is not applied
    // to the existing deployment, only said to differ (what differs, and how to apply it).
    std::fs::write(
        dir.join("bbb-on-aws-param.json"),
        r#"{"Parameters": {"BBBLogRetentionDays": 30, "BBBServerDataVolumeSize": 50, "BBBServerDrainTimeout": 1800}}"#,
    )
    .unwrap();
    let o = bbbctl_in(&dir, &["setup", "-s", &stack]);
    assert_code(&o, 0);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        said.contains(&format!(
            "bbb-on-aws-param.json differs from deployment {stack}"
        )) && said.contains("BBBLogRetentionDays \"14\" → \"30\"")
            && said.contains("BBBServerDrainTimeout \"43200\" → \"1800\"")
            && said.contains(&format!(
                "To apply it: bbbctl setup -s {stack} --params bbb-on-aws-param.json"
            )),
        "{said}"
    );
    assert!(
        !said.contains("BBBServerDataVolumeSize \""),
        "unchanged ones are not listed:\n{said}"
    );
    assert!(
        stdout(&o).contains(&format!("Deployment {stack} is up to date")),
        "{}",
        stdout(&o)
    );
    assert_eq!(param(&aws, &stack, "BBBLogRetentionDays").await, "14");
    // Nor does it steer what cost prices: the deployment as it runs.
    let o = bbbctl_in(&dir, &["cost", "-s", &stack]);
    assert_code(&o, 0);
    assert!(
        format!("{}{}", stdout(&o), stderr(&o)).contains("differs from deployment"),
        "{}",
        stderr(&o)
    );
    assert_stdout_has(&o, &format!("deployment {stack}"));

    // Named with --params, it changes two of them: shown, and not applied without consent.
    let named = [
        "setup",
        "-s",
        stack.as_str(),
        "--params",
        "bbb-on-aws-param.json",
    ];
    let o = bbbctl_in(&dir, &named);
    assert_code(&o, 2);
    let out = stdout(&o);
    assert!(
        out.contains("BBBLogRetentionDays    14 → 30")
            && out.contains("BBBServerDrainTimeout  43200 → 1800"),
        "{out}"
    );
    assert!(
        !out.contains("BBBServerDataVolumeSize "),
        "unchanged ones are not listed:\n{out}"
    );
    assert!(stderr(&o).contains("pass --yes"), "{}", stderr(&o));
    assert_eq!(param(&aws, &stack, "BBBLogRetentionDays").await, "14");

    // The dry run shows the same changes and a plan whose summary agrees with its list.
    let o = bbbctl_in(&dir, &[&named[..], &["--dry-run"]].concat());
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("BBBLogRetentionDays    14 → 30"), "{out}");
    assert!(
        out.contains("~ BbbServersStack (AWS::CloudFormation::Stack)"),
        "{out}"
    );
    assert_plan_agrees(&out);
    assert_eq!(param(&aws, &stack, "BBBLogRetentionDays").await, "14");
    // So does its JSON: the parameter changes beside the resource changes.
    let o = bbbctl_in(
        &dir,
        &[&named[..], &["--dry-run", "--output", "json"]].concat(),
    );
    assert_code(&o, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let changes = plan["parameter_changes"]
        .as_array()
        .expect("parameter_changes");
    assert!(
        changes.contains(
            &serde_json::json!({"name": "BBBLogRetentionDays", "now": "14", "then": "30"})
        ) && changes.contains(
            &serde_json::json!({"name": "BBBServerDrainTimeout", "now": "43200", "then": "1800"})
        ) && changes.len() == 2,
        "{plan:#}"
    );
    assert!(
        plan["changes"].as_array().is_some_and(|c| !c.is_empty()),
        "{plan:#}"
    );
    // Without --params the file in the folder is reported as not applied, in JSON too.
    let o = bbbctl_in(
        &dir,
        &["setup", "-s", &stack, "--dry-run", "--output", "json"],
    );
    assert_code(&o, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["parameter_changes"], serde_json::json!([]), "{plan:#}");
    assert_eq!(
        plan["unapplied_file"]["file"], "bbb-on-aws-param.json",
        "{plan:#}"
    );
    assert_eq!(
        plan["unapplied_file"]["differs"].as_array().map(Vec::len),
        Some(2),
        "{plan:#}"
    );

    let o = bbbctl_in(&dir, &[&named[..], &["--yes"]].concat());
    assert_code(&o, 0);
    assert_eq!(param(&aws, &stack, "BBBLogRetentionDays").await, "30");
    assert_eq!(param(&aws, &stack, "BBBServerDrainTimeout").await, "1800");

    // --new-server-image: the servers are to move to the image BBBServerAmi names now; the
    // prompt says the running (scalable) servers keep theirs until `roll` replaces them.
    let o = bbbctl_in(
        &dir,
        &["setup", "-s", &stack, "--new-server-image", "--dry-run"],
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("BBBServerImageId  {resolved} → (empty)"))
            && out.contains("running servers keep theirs (no meeting is cut)")
            && out.contains(&format!("`bbbctl roll -s {stack}` replaces the old ones")),
        "{out}"
    );
    let o = bbbctl_in(
        &dir,
        &["setup", "-s", &stack, "--new-server-image", "--yes"],
    );
    assert_code(&o, 0);
    assert_eq!(param(&aws, &stack, "BBBServerImageId").await, "");

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
}
