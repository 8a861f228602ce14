//! Account prerequisites, on a bare emulator account (this test binary starts its own
//! emulator and never creates the ECS service-linked role up front).

mod common;

use common::*;

#[tokio::test]
async fn missing_ecs_service_role_is_explained_then_created_with_consent() {
    let aws = aws().await;
    let domain = format!("{}.example.org", unique("pre"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("pre");
    let dir = scratch_dir();
    let args = setup_args(&zone, &stack, &domain, &[]);

    let o = bbbctl_in(&dir, &args);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("the account has no ECS service-linked role (AWSServiceRoleForECS)"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("Re-run with --yes"), "{}", stderr(&o));
    let left = live_stacks(&aws).await;
    assert!(
        !left.iter().any(|s| s.starts_with(&stack)),
        "nothing may change: {left:?}"
    );
    assert!(
        aws.iam
            .get_role()
            .role_name("AWSServiceRoleForECS")
            .send()
            .await
            .is_err()
    );

    // The plan says what setup would do about it, and changes nothing either.
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let o = bbbctl_in(&dir, &dry);
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("would first create the ECS service-linked role"),
        "{}",
        stdout(&o)
    );

    let mut yes = args.to_vec();
    yes.push("--yes");
    let o = bbbctl_in(&dir, &yes);
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("Created the ECS service-linked role"),
        "{}",
        stdout(&o)
    );
    let role = aws
        .iam
        .get_role()
        .role_name("AWSServiceRoleForECS")
        .send()
        .await
        .unwrap();
    assert_eq!(
        role.role().unwrap().path(),
        "/aws-service-role/ecs.amazonaws.com/"
    );

    // single mode does not need it: nothing asked of a single-mode setup
    let o = bbbctl_in(&dir, &["destroy", "--yes"]);
    assert_code(&o, 0);
}
