//! End to end on the local emulator: the built binary deploys, re-runs, reads the admin login,
//! scales and destroys; the AWS state is checked through the SDK after each step.

mod common;

use common::*;

#[tokio::test]
async fn setup_rerun_admin_login_scale_status_destroy() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("lc"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("lc");
    let email = "ops@example.org";
    // Files uploaded to the bucket: every asset and the root template.
    let files = bbbctl::templates::Bundle::embedded().assets().len() + 1;
    // One folder (and HOME) for the whole life cycle: later commands find the deployment that
    // setup remembered there.
    let dir = scratch_dir();
    let bbbctl = |args: &[&str]| bbbctl_in(&dir, args);

    // Dry run of a new deployment: the plan, and nothing created.
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &["--dry-run"]));
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("Dry run: deployment {stack} does not exist yet")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("+ NetworkStack ("), "{}", stdout(&o));
    let left = live_stacks(&aws).await;
    assert!(!left.iter().any(|s| s.starts_with(&stack)), "{left:?}");

    // First setup: everything is created, progress is shown for every stack.
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &[]));
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("Deployment {stack} is ready")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Greenlight:    https://{domain}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Templates: {files} uploaded, 0 unchanged")),
        "{out}"
    );

    // The emulated account is new, in the SES sandbox: the platform check at the end says so
    // and names the step out, once in the whole run (not again in the pre-flight).
    let all = format!("{out}{}", stderr(&o));
    assert_eq!(
        all.matches("this account is in the Amazon SES sandbox in")
            .count(),
        1,
        "{all}"
    );
    assert_eq!(
        all.matches("aws sesv2 put-account-details").count(),
        1,
        "{all}"
    );

    let (status, outputs) = root(&aws, &stack).await;
    assert_eq!(status, "CREATE_COMPLETE");
    assert_eq!(outputs["EnvironmentType"], "scalable");

    // The registrar: its code from the zip bbbctl uploaded, its settings, and the schedule
    // and group events that start it (tests/registrar.rs runs the code itself).
    let registrar: serde_json::Value = serde_json::from_str(&boto3(
        "lambda",
        &format!(
            "f = client.get_function(FunctionName='{stack}-bbb-registrar')['Configuration']\n\
             events = boto3.client('events', region_name=client.meta.region_name, endpoint_url=client.meta.endpoint_url, aws_access_key_id='test', aws_secret_access_key='test')\n\
             rules = [r['Name'] for r in events.list_rules(NamePrefix='{stack}-bbb-registrar')['Rules']]\n\
             targets = [t['Arn'] for n in rules for t in events.list_targets_by_rule(Rule=n)['Targets']]\n\
             print(json.dumps({{'handler': f['Handler'], 'runtime': f['Runtime'], 'env': f['Environment']['Variables'], 'rules': sorted(rules), 'targets': targets, 'arn': f['FunctionArn']}}))"
        ),
    ))
    .unwrap();
    assert_eq!(registrar["handler"], "bbb_registrar.handler");
    assert_eq!(registrar["env"]["DOMAIN"], domain.as_str());
    assert_eq!(registrar["env"]["ROOT_STACK"], stack.as_str());
    assert_eq!(
        registrar["env"]["SCALELITE_URL"],
        format!("https://scalelite.{domain}")
    );
    assert_eq!(
        registrar["rules"],
        serde_json::json!([
            format!("{stack}-bbb-registrar-group-events"),
            format!("{stack}-bbb-registrar-minutely"),
            format!("{stack}-bbb-registrar-reports")
        ])
    );
    assert!(
        registrar["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| *t == registrar["arn"])
            && registrar["targets"].as_array().unwrap().len() == 3,
        "{registrar}"
    );
    let nested = nested_stacks(&aws, &stack).await;
    assert!(nested.len() >= 3, "{nested:?}");
    for label in nested.keys() {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!(" {label} ")) && l.contains("CREATE_COMPLETE")),
            "no progress line for nested stack {label}:\n{out}"
        );
    }

    // The sources bucket: versioned, holds the uploaded objects.
    let sources = aws
        .cfn
        .describe_stacks()
        .stack_name(format!("{stack}-sources"))
        .send()
        .await
        .unwrap();
    let bucket = bbbctl::cfn::ops::outputs(&sources.stacks()[0])["BucketName"].clone();
    let versioning = aws
        .s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let versions = aws
        .s3
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), files);
    assert!(
        versions
            .versions()
            .iter()
            .all(|v| v.version_id().is_some_and(|id| id != "null")),
        "{versions:?}"
    );

    // The first create already recorded the servers' image (the AMI BBBServerAmi names).
    let image =
        bbbctl::cfn::ops::parameters(&described(&aws, &stack).await)["BBBServerImageId"].clone();
    assert!(image.starts_with("ami-"), "{image:?}");
    assert!(
        out.contains(&format!("BBB servers start from image {image}")),
        "{out}"
    );

    // Re-run with nothing changed: nothing uploaded, nothing updated, not even a nested stack.
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &[]));
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("Templates: 0 uploaded, {files} unchanged")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Deployment {stack} is up to date: nothing to change."
        )),
        "{out}"
    );
    assert_eq!(root(&aws, &stack).await.0, "CREATE_COMPLETE");
    let after = nested_stacks(&aws, &stack).await;
    assert!(
        after.values().all(|s| s == "CREATE_COMPLETE"),
        "a nested stack changed: {after:?}"
    );

    // Dry run of an unchanged deployment: a change set says so and is deleted again.
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &["--dry-run"]));
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("Dry run: deployment {stack} is up to date")),
        "{}",
        stdout(&o)
    );
    let sets = aws
        .cfn
        .list_change_sets()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    assert!(sets.summaries().is_empty(), "{sets:?}");

    // admin-login: the generated secret, as JSON.
    let o = bbbctl(&["--output", "json", "admin-login", "-s", &stack]);
    assert_code(&o, 0);
    let login: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(login["username"], email);
    assert_eq!(login["url"], format!("https://{domain}"));
    let secret = aws
        .secrets
        .get_secret_value()
        .secret_id(&outputs["AdminSecretArn"])
        .send()
        .await
        .unwrap();
    let secret: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    assert_eq!(login["password"], secret["password"]);
    assert!(login["password"].as_str().unwrap().len() >= 16);

    // ElastiCache never moves a cache from Valkey back to Redis OSS: refused before anything
    // changes (CloudFormation would fail at the cache and roll back).
    std::fs::write(
        dir.join("cache.json"),
        r#"{"Parameters": {"BBBCacheEngine": "redis"}}"#,
    )
    .unwrap();
    let o = bbbctl(&["setup", "-s", &stack, "--params", "cache.json", "--dry-run"]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("BBBCacheEngine valkey → redis: ElastiCache moves a cache from Redis OSS to Valkey in place, never back"),
        "{}",
        stderr(&o)
    );

    // scale (on the remembered deployment): min = max = desired = 2, and bbbctl waits until
    // both are in service.
    let o = bbbctl(&["scale", "--count", "2"]);
    assert_code(&o, 0);
    assert!(
        stdout(&o).starts_with(&format!(
            "Deployment {stack}: account 123456789012, region us-east-1"
        )),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("2 BBB server(s) in service."),
        "{}",
        stdout(&o)
    );
    // A scale-out takes nothing out, and says so plainly: what it cannot check here, no
    // warning about servers "taken out".
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !said.contains("taken out") && !said.contains("warning"),
        "{said}"
    );
    assert!(
        said.contains(
            "Whether Scalelite enabled the new servers is not checked behind a custom AWS endpoint"
        ),
        "{said}"
    );
    let group = &outputs["BBBServerGroupName"];
    let asg = &auto_scaling_group(&aws, group).await;
    assert_eq!(
        (asg.min_size(), asg.max_size(), asg.desired_capacity()),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(asg.instances().len(), 2);

    // No drift: a later setup keeps the 2 servers instead of the parameter file's 1.
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &[]));
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("Keeping 2 BBB server(s) as they are now"),
        "{}",
        stdout(&o)
    );
    let (_, outputs) = root(&aws, &stack).await;
    let group = &outputs["BBBServerGroupName"];
    let asg = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap();
    assert_eq!(asg.auto_scaling_groups()[0].desired_capacity(), Some(2));

    // status: JSON for scripts.
    let o = bbbctl(&["--output", "json", "status", "-s", &stack]);
    assert_code(&o, 0);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(status["status"], "UPDATE_COMPLETE");
    assert_eq!(status["servers"]["desired"], 2);
    assert_eq!(status["nested"].as_array().unwrap().len(), nested.len());
    assert_eq!(status["mail"]["production_access"], false);
    assert_eq!(status["mail"]["smtp_endpoint"], true);

    // Greenlight's uploads (two versions of one file) are in their bucket when destroy starts.
    let frontend = stack_resource(&aws, &stack, "FrontendStack").await;
    let uploads = stack_resource(&aws, &frontend, "GreenlightStorageBucket").await;
    for body in ["v1", "v2"] {
        aws.s3
            .put_object()
            .bucket(&uploads)
            .key("avatars/admin.png")
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }

    // destroy: no stack, no bucket, no secret left.
    let o = bbbctl(&["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert_stdout_has(
        &o,
        &format!("Bucket {uploads}: 2 object version(s) deleted"),
    );
    assert!(
        stdout(&o).contains(&format!("Deployment {stack} is deleted")),
        "{}",
        stdout(&o)
    );
    // Where the recordings' backups are, by the deleted file system's ARN (the automatic
    // ones cannot be found by the deployment's name once the file system is gone).
    assert_stdout_has(&o, "Left on purpose: the recordings of EFS file system fs-");
    assert_stdout_has(
        &o,
        "aws backup list-recovery-points-by-backup-vault --backup-vault-name aws/efs/automatic-backup-vault --by-resource-arn arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-",
    );
    // The final snapshot that stays is named, and it exists.
    let out = stdout(&o);
    let snapshot = out
        .lines()
        .find_map(|l| l.strip_prefix("Left on purpose: final snapshot "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no final snapshot named:\n{out}"));
    let snapshots = inventory::inventory()
        .remove("rds:cluster_snapshots")
        .unwrap_or_default();
    assert!(
        snapshots.iter().any(|s| s.ends_with(snapshot)),
        "{snapshot} not in {snapshots:?}"
    );
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
    assert!(
        aws.secrets
            .get_secret_value()
            .secret_id(&outputs["AdminSecretArn"])
            .send()
            .await
            .is_err()
    );

    // A second destroy finds nothing.
    let o = bbbctl(&["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains(&format!("no deployment {stack}")),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn failing_nested_stack_prints_its_root_cause() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("fail"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("fail");
    let fixture = repo().join("tests/fixtures/failing-network");
    let o = bbbctl(&setup_args(
        &zone,
        &stack,
        &domain,
        &["--templates-dir", fixture.to_str().unwrap()],
    ));
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "the create of stack {stack} failed (ROLLBACK_COMPLETE)"
        )),
        "{err}"
    );
    let cause = err
        .lines()
        .find(|l| l.starts_with("Root cause:"))
        .unwrap_or_else(|| panic!("no root cause:\n{err}"));
    assert!(
        cause.contains("PublicSubnetA (AWS::EC2::Subnet)"),
        "{cause}"
    );
    assert!(
        cause.contains(&format!("{stack} › NetworkStack")),
        "{cause}"
    );
    assert!(cause.contains("CREATE_FAILED"), "{cause}");
    assert!(!cause.contains("Embedded stack"), "{cause}");
    // The failure was also shown while it happened.
    assert!(stdout(&o).contains("✖ PublicSubnetA"), "{}", stdout(&o));

    // admin-login explains the failed stack instead of failing obscurely.
    let o = bbbctl(&["admin-login", "-s", &stack]);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("is in ROLLBACK_COMPLETE: its last operation failed"),
        "{}",
        stderr(&o)
    );

    // status names the last failure too.
    let o = bbbctl(&["--output", "json", "status", "-s", &stack]);
    assert_code(&o, 0);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(status["status"], "ROLLBACK_COMPLETE");
    assert_eq!(status["last_failure"]["logical_id"], "PublicSubnetA");
    assert_eq!(status["last_failure"]["stack_path"][1], "NetworkStack");

    // Without --yes a re-run explains (with the cause); with --yes (and the good templates) it recovers.
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &[]));
    assert_code(&o, 1);
    assert!(stderr(&o).contains("Re-run with --yes"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Its root cause: PublicSubnetA (AWS::EC2::Subnet)"),
        "{}",
        stderr(&o)
    );
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &["--yes"]));
    assert_code(&o, 0);
    let o = bbbctl(&["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
}

#[tokio::test]
async fn docker_hub_images_come_through_ecr_and_go_with_destroy() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("ptc"));
    let zone = hosted_zone(&aws, &domain).await;
    // The user's own things, made before the deployment: they must outlive its destroy.
    let secret = aws
        .secrets
        .create_secret()
        .name(format!("ecr-pullthroughcache/{}", unique("hub")))
        .secret_string(r#"{"username":"someone","accessToken":"dckr_pat_example"}"#)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let foreign = unique("team").to_lowercase() + "/tools";
    aws.ecr
        .create_repository()
        .repository_name(&foreign)
        .send()
        .await
        .unwrap();
    let before = inventory::inventory();
    let stack = unique("ptc");
    let dir = scratch_dir();
    let bbbctl = |args: &[&str]| bbbctl_in(&dir, args);
    let params = |arn: &str| {
        let file = dir.join(format!("params-{}.json", arn.len()));
        let body = serde_json::json!({"Parameters": {
            "BBBEnvironmentType": "scalable", "BBBDockerHubCredentialsArn": arn }});
        std::fs::write(&file, body.to_string()).unwrap();
        file.display().to_string()
    };

    // A secret that does not exist is found before anything is created.
    let missing = secret.replace("ecr-pullthroughcache/", "ecr-pullthroughcache/gone-");
    let file = params(&missing);
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &["--params", &file]));
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("does not exist in account"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("aws secretsmanager create-secret"),
        "{}",
        stderr(&o)
    );
    assert!(status_of(&aws, &stack).await.is_none());
    assert!(status_of(&aws, &format!("{stack}-sources")).await.is_none());

    // With the secret: the front end's images come from this deployment's cache.
    let file = params(&secret);
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &["--params", &file]));
    assert_code(&o, 0);
    let (_, outputs) = root(&aws, &stack).await;
    let prefix = outputs["ImageCachePrefix"].clone();
    assert!(prefix.starts_with("bbb-") && prefix.len() == 12, "{prefix}");
    let frontend = stack_resource(&aws, &stack, "FrontendStack").await;
    let front = described(&aws, &frontend).await;
    let param = |k: &str| {
        front
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(k))
            .and_then(|p| p.parameter_value())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        param("ContainerRegistry"),
        format!(
            "{}.dkr.ecr.{}.amazonaws.com/{prefix}/",
            secret.split(':').nth(4).unwrap(), // the account
            aws.region()
        )
    );
    assert_eq!(param("ImageCachePrefix"), prefix);

    // What the first pulls would have created in ECR.
    let cached = format!("{prefix}/bigbluebutton/greenlight");
    aws.ecr
        .create_repository()
        .repository_name(&cached)
        .send()
        .await
        .unwrap();

    let o = bbbctl(&["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert_stdout_has(
        &o,
        &format!("Deleted the cached Docker Hub images: {cached}"),
    );
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
    // The user's secret and repository are untouched.
    aws.secrets
        .describe_secret()
        .secret_id(&secret)
        .send()
        .await
        .unwrap();
    aws.ecr
        .delete_repository()
        .repository_name(&foreign)
        .send()
        .await
        .expect("the user's repository is still there");
    aws.secrets
        .delete_secret()
        .secret_id(&secret)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
}
