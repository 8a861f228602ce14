//! Setup's quota pre-flight (src/quotas.rs) on the emulator, whose Service Quotas answer
//! per region what `MOTO_EXT_QUOTAS` sets (moto_ext patch 23; elsewhere an account with
//! raised quotas). Each test works in a region of its own, so that what another test runs
//! is not in its count.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::*;

const QUOTAS: &str = "us-east-2/ec2/L-1216C47A=8,\
                      us-west-2/ec2/L-1216C47A=4,\
                      eu-west-1/ec2/L-1216C47A=none,\
                      ap-southeast-2/vpc/L-F678F1CE=1,\
                      ap-southeast-2/ec2/L-0263D0A3=0,\
                      ca-central-1/vpc/L-FE5A380F=0,\
                      sa-east-1/ec2/L-1216C47A=denied,\
                      eu-west-3/ec2/L-0263D0A3=1";

/// This binary's emulator, with the quotas above (first call in every test).
fn server() {
    endpoint_with_env(&[("MOTO_EXT_QUOTAS", QUOTAS)]);
}

fn bbbctl_at(region: &str, dir: &Path, args: &[&str]) -> Output {
    bbbctl_command(dir, args)
        .env("AWS_REGION", region)
        .stdin(Stdio::null())
        .output()
        .expect("running bbbctl")
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// A new deployment with its own hosted zone; (zone, stack, domain).
async fn deployment(prefix: &str) -> (String, String, String) {
    let aws = account().await;
    let domain = format!("{}.example.org", unique(prefix));
    (hosted_zone(&aws, &domain).await, unique(prefix), domain)
}

/// Nothing of deployment `stack` exists in `region`: no stack, no sources bucket.
async fn nothing_created(region: &str, stack: &str) {
    let regional = aws_in(region).await;
    let stacks = live_stacks(&regional).await;
    assert!(!stacks.iter().any(|s| s.starts_with(stack)), "{stacks:?}");
    let buckets = bucket_names(&regional).await;
    let lower = stack.to_ascii_lowercase();
    assert!(
        !buckets.iter().any(|b| b.starts_with(&lower)),
        "{buckets:?}"
    );
}

/// Exactly enough vCPUs (8, one c5.2xlarge server, the front end on Fargate): setup
/// deploys. Re-run unchanged it needs nothing more and reads no quota. A bigger server type
/// needs the difference, which the 8 vCPUs in use leave no room for: refused, unchanged.
#[tokio::test]
async fn enough_quota_deploys_and_an_update_needs_only_its_increase() {
    server();
    let region = "us-east-2";
    let (zone, stack, domain) = deployment("qok").await;
    let dir = scratch_dir();
    let o = bbbctl_at(
        region,
        &dir,
        &setup_args(&zone, &stack, &domain, &["--no-check"]),
    );
    assert_code(&o, 0);
    assert_stdout_has(
        &o,
        "Service quotas in us-east-2 hold this deployment (needed of left): On-Demand Standard vCPUs 8 of 8, Elastic IPs 1 of 100, VPCs 1 of 99, NAT gateways in us-east-2a 1 of 100, Fargate vCPUs 2.25 of 4000",
    );
    let regional = aws_in(region).await;
    assert_eq!(root(&regional, &stack).await.0, "CREATE_COMPLETE");

    let o = bbbctl_at(
        region,
        &dir,
        &setup_args(&zone, &stack, &domain, &["--no-check"]),
    );
    assert_code(&o, 0);
    assert!(!both(&o).contains("Service quotas"), "{}", both(&o));

    let params = dir.join("bigger.json");
    std::fs::write(
        &params,
        r#"{"Parameters": {"BBBServerInstanceType": "c5.4xlarge"}}"#,
    )
    .unwrap();
    let file = params.display().to_string();
    let o = bbbctl_at(
        region,
        &dir,
        &setup_args(&zone, &stack, &domain, &["--params", &file, "--yes"]),
    );
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(
            "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (ec2 quota L-1216C47A): needs 8 more vCPUs (1 × c5.4xlarge of 16 vCPUs, instead of 8 now); the quota is 8, 8 in use, 0 left"
        ),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("--quota-code L-1216C47A --desired-value 16"),
        "{}",
        stderr(&o)
    );
    let st = described(&regional, &stack).await;
    assert_eq!(st.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    assert_eq!(
        bbbctl::cfn::ops::parameters(&st)["BBBServerInstanceType"],
        "c5.2xlarge"
    );

    let o = bbbctl_at(region, &dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
}

/// 4 vCPUs for a c5.2xlarge server: refused with exit 2 before anything is created, naming
/// the quota, its code, what is needed and left, and how to raise it.
#[tokio::test]
async fn a_low_vcpu_quota_is_refused_before_anything_is_created() {
    server();
    let region = "us-west-2";
    let (zone, stack, domain) = deployment("qlow").await;
    let o = bbbctl_at(
        region,
        &scratch_dir(),
        &setup_args(&zone, &stack, &domain, &[]),
    );
    assert_code(&o, 2);
    let err = stderr(&o);
    for says in [
        "not enough AWS service quota in region us-west-2 for this deployment; nothing was created",
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (ec2 quota L-1216C47A): needs 8 more vCPUs (1 × c5.2xlarge of 8 vCPUs); the quota is 4, 0 in use, 4 left",
        "https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas/L-1216C47A",
        "aws service-quotas request-service-quota-increase --region us-west-2 --service-code ec2 --quota-code L-1216C47A --desired-value 8",
    ] {
        assert!(err.contains(says), "{says:?} not in:\n{err}");
    }
    nothing_created(region, &stack).await;
}

/// A quota without an applied value (GetServiceQuota: NoSuchResourceException) counts with
/// AWS's default (GetAWSDefaultServiceQuota: 5 vCPUs).
#[tokio::test]
async fn without_an_applied_value_the_default_counts() {
    server();
    let (zone, stack, domain) = deployment("qdef").await;
    let o = bbbctl_at(
        "eu-west-1",
        &scratch_dir(),
        &setup_args(&zone, &stack, &domain, &["--dry-run"]),
    );
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(
            "needs 8 more vCPUs (1 × c5.2xlarge of 8 vCPUs); the quota is 5, 0 in use, 5 left"
        ),
        "{}",
        stderr(&o)
    );
}

/// The region's default VPC uses its only VPC, and no Elastic IP is allowed: both named in
/// one refusal.
#[tokio::test]
async fn every_short_quota_is_named_at_once() {
    server();
    let region = "ap-southeast-2";
    let (zone, stack, domain) = deployment("qvpc").await;
    let o = bbbctl_at(
        region,
        &scratch_dir(),
        &setup_args(&zone, &stack, &domain, &[]),
    );
    assert_code(&o, 2);
    let err = stderr(&o);
    for says in [
        "VPCs per Region (vpc quota L-F678F1CE): needs 1 more VPC (the deployment's own; BBBExistingVPC would use one of yours); the quota is 1, 1 in use, 0 left",
        "EC2-VPC Elastic IPs (ec2 quota L-0263D0A3): needs 1 more Elastic IP address",
        "the quota is 0, 0 in use, 0 left",
        "--service-code vpc --quota-code L-F678F1CE --desired-value 2",
    ] {
        assert!(err.contains(says), "{says:?} not in:\n{err}");
    }
    assert!(!err.contains("L-1216C47A"), "enough vCPUs: {err}");
    nothing_created(region, &stack).await;
}

/// NAT gateways count per Availability Zone: the one a deployment puts in the region's
/// first zone.
#[tokio::test]
async fn nat_gateways_count_per_availability_zone() {
    server();
    let (zone, stack, domain) = deployment("qnat").await;
    let o = bbbctl_at(
        "ca-central-1",
        &scratch_dir(),
        &setup_args(&zone, &stack, &domain, &["--dry-run"]),
    );
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(
            "NAT gateways per Availability Zone (vpc quota L-FE5A380F) in ca-central-1a: needs 1 more NAT gateway (the private subnets' way out); the quota is 0, 0 in use, 0 left"
        ),
        "{}",
        stderr(&o)
    );
}

/// Service Quotas denied to the operator: said in one line, and setup goes on.
#[tokio::test]
async fn a_quota_that_cannot_be_read_is_said_and_setup_goes_on() {
    server();
    let (zone, stack, domain) = deployment("qden").await;
    let o = bbbctl_at(
        "sa-east-1",
        &scratch_dir(),
        &setup_args(&zone, &stack, &domain, &["--dry-run"]),
    );
    assert_code(&o, 0);
    let text = both(&o);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Service quotas"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("Service quotas not checked: Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (ec2 L-1216C47A) cannot be read (AccessDeniedException: User: arn:aws:iam::123456789012:user/moto is not authorized to perform: servicequotas:GetServiceQuota")
            && lines[0].contains("iam/bbbctl-operator-1.json"),
        "{text}"
    );
    assert_stdout_has(&o, "Dry run");
}

/// An instance type EC2 does not offer (a typo the parameter's pattern lets through) is the
/// user's error, said before anything is created.
#[tokio::test]
async fn an_unknown_instance_type_is_refused() {
    server();
    let (zone, stack, domain) = deployment("qtyp").await;
    let dir = scratch_dir();
    let params = dir.join("typo.json");
    std::fs::write(
        &params,
        r#"{"Parameters": {"BBBServerInstanceType": "c5.2xlrge"}}"#,
    )
    .unwrap();
    let file = params.display().to_string();
    let o = bbbctl_at(
        "eu-central-1",
        &dir,
        &setup_args(&zone, &stack, &domain, &["--params", &file]),
    );
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(
            "BBBServerInstanceType c5.2xlrge is not an EC2 instance type offered in region eu-central-1"
        ),
        "{}",
        stderr(&o)
    );
    nothing_created("eu-central-1", &stack).await;
}

/// A mode switch holds both modes' addresses at its peak: the NAT gateway's Elastic IP is
/// created before the update's clean-up releases the single server's. With 1 Elastic IP
/// allowed, single mode deploys, and a switch to scalable (one NAT gateway: 1 more, not
/// "as many as before") is refused before anything changes.
#[tokio::test]
async fn a_mode_switch_needs_both_modes_addresses_at_once() {
    server();
    let region = "eu-west-3";
    let (zone, stack, domain) = deployment("qswitch").await;
    let dir = scratch_dir();
    let o = bbbctl_at(
        region,
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--mode", "single", "--yes", "--no-check"],
        ),
    );
    assert_code(&o, 0);
    let o = bbbctl_at(
        region,
        &dir,
        &[
            "setup",
            "-s",
            &stack,
            "--mode",
            "scalable",
            "--yes",
            "--no-check",
        ],
    );
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("EC2-VPC Elastic IPs (ec2 quota L-0263D0A3): needs 1 more Elastic IP address")
            && err.contains("the quota is 1, 1 in use, 0 left"),
        "{err}"
    );
    let o = bbbctl_at(region, &dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
}
