//! A request whose answer is lost (HTTP 500 after CloudFormation carried it out) is retried by
//! the SDK with the same ClientRequestToken, so CloudFormation treats it as the same request:
//! setup, an update and destroy go through, and nothing happens twice. The emulator loses the
//! first answer of each of these actions (`MOTO_EXT_LOSE_ANSWER`, patch 16 of moto_ext).

mod common;

use common::*;

#[tokio::test]
async fn lost_answers_are_retried_as_the_same_request() {
    endpoint_with_env(&[(
        "MOTO_EXT_LOSE_ANSWER",
        "CreateStack,UpdateStack,DeleteStack",
    )]);
    let aws = account().await;
    let domain = format!("{}.example.org", unique("la"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("la");
    let dir = scratch_dir();

    let o = bbbctl_in(&dir, &setup_args(&zone, &stack, &domain, &[]));
    assert_code(&o, 0);
    assert!(!stderr(&o).contains("AlreadyExists"), "{}", stderr(&o));
    let stacks = live_stacks(&aws).await;
    assert_eq!(
        stacks
            .iter()
            .filter(|s| **s == format!("{stack}-sources"))
            .count(),
        1,
        "{stacks:?}"
    );
    assert_eq!(root(&aws, &stack).await.0, "CREATE_COMPLETE");

    // An update (the root stack's first UpdateStack loses its answer).
    let o = bbbctl_in(&dir, &["setup", "-s", &stack, "--mode", "single", "--yes"]);
    assert_code(&o, 0);
    assert_eq!(root(&aws, &stack).await.0, "UPDATE_COMPLETE");

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    assert_eq!(status_of(&aws, &stack).await, None);
}
