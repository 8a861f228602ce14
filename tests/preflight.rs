//! Setup's pre-flight on the local emulator: what would fail deep inside a nested stack is
//! refused before anything is created (exit 2, what is wrong and how to fix it), and what
//! bbbctl itself created is never taken for a conflict.

mod common;

use common::*;

/// A domain of exactly `n` characters under a unique subdomain of example.org.
fn domain_of(n: usize) -> String {
    let tail = format!(".{}.example.org", unique("ln"));
    let head = "a".repeat(n - tail.len());
    assert!(head.len() <= 63);
    format!("{head}{tail}")
}

/// Long domains: ACM allows 64 characters for a certificate's first name. With Greenlight
/// the domain itself comes first (scalelite.<domain> second), so a 60-character domain
/// deploys; a re-run of that deployment (its own SES identity included) changes nothing.
#[tokio::test]
async fn domain_lengths_fit_the_certificate() {
    let aws = account().await;
    let domain = domain_of(60);
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("ln");
    let dir = scratch_dir();
    let o = bbbctl_in(&dir, &setup_args(&zone, &stack, &domain, &["--no-check"]));
    assert_code(&o, 0);
    assert_eq!(root(&aws, &stack).await.0, "CREATE_COMPLETE");

    // The re-run: its own e-mail identity is no conflict, and nothing changes.
    let o = bbbctl_in(&dir, &setup_args(&zone, &stack, &domain, &["--no-check"]));
    assert_code(&o, 0);
    assert_stdout_has(&o, &format!("Deployment {stack} is up to date"));

    // Over the limits: refused before anything is created, with the limit and the count.
    for (n, extra, says) in [
        (
            65,
            None,
            "has 65 characters: in scalable mode it is the first name of the load balancer's ACM certificate, and ACM allows at most 64",
        ),
        (
            55,
            Some("External"),
            "has 55 characters: with BBBFrontendType External the first name of the load balancer's ACM certificate is scalelite.",
        ),
    ] {
        let long = domain_of(n);
        let zone = hosted_zone(&aws, &long).await;
        let other = unique("ln");
        let mut args = setup_args(&zone, &other, &long, &[]);
        let file = dir.join(format!("{other}.json"));
        let path = file.display().to_string();
        if let Some(frontend) = extra {
            std::fs::write(
                &file,
                format!(r#"{{"Parameters": {{"BBBFrontendType": "{frontend}"}}}}"#),
            )
            .unwrap();
            args.extend(["--params", path.as_str()]);
        }
        let o = bbbctl_in(&dir, &args);
        assert_code(&o, 2);
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
        let left = live_stacks(&aws).await;
        assert!(!left.iter().any(|s| s.starts_with(&other)), "{left:?}");
    }

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
}

/// An SES identity for the domain that the deployment did not create would make its e-mail
/// layer fail (AlreadyExists) and the root stack roll back: refused, nothing created, with
/// both ways out. BBBSESValidated=true uses the identity as it is.
#[tokio::test]
async fn an_existing_ses_identity_is_refused_unless_validated() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("ses"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("ses");
    let dir = scratch_dir();
    aws.ses
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("create the identity");

    let o = bbbctl_in(&dir, &setup_args(&zone, &stack, &domain, &[]));
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "domain {domain} is already an Amazon SES identity"
        )) && err.contains(&format!("deployment {stack} did not create it"))
            && err.contains("\"BBBSESValidated\": \"true\"")
            && err.contains(&format!(
                "aws sesv2 delete-email-identity --email-identity {domain}"
            )),
        "{err}"
    );
    let left = live_stacks(&aws).await;
    assert!(!left.iter().any(|s| s.starts_with(&stack)), "{left:?}");

    // The identity used as it is: pre-flight passes (a dry run creates nothing).
    std::fs::write(
        dir.join("validated.json"),
        r#"{"Parameters": {"BBBSESValidated": "true"}}"#,
    )
    .unwrap();
    let o = bbbctl_in(
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--params", "validated.json", "--dry-run"],
        ),
    );
    assert_code(&o, 0);
    assert_stdout_has(
        &o,
        &format!("Dry run: deployment {stack} does not exist yet"),
    );
    aws.ses
        .delete_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
}

/// A switch of mode writes a name the deployment did not hold (single → scalable:
/// `scalelite.<domain>`): taken by someone else, the switch is refused before it starts
/// (CloudFormation would fail at the record and roll the switch back).
#[tokio::test]
async fn a_switch_that_would_write_a_taken_name_is_refused() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("swn"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("swn");
    let dir = scratch_dir();
    let o = bbbctl_in(
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--mode", "single", "--yes", "--no-check"],
        ),
    );
    assert_code(&o, 0);
    // A re-run of the same mode is no conflict with its own `<domain>`.
    let o = bbbctl_in(&dir, &["setup", "-s", &stack, "--dry-run"]);
    assert_code(&o, 0);
    let taken = format!("scalelite.{domain}");
    upsert_a_record(&aws, &zone, &taken, "198.51.100.7").await;
    let o = bbbctl_in(
        &dir,
        &["setup", "-s", &stack, "--mode", "scalable", "--dry-run"],
    );
    assert_code(&o, 2);
    assert!(stderr(&o).contains(&format!("{taken} A")), "{}", stderr(&o));
    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
}

/// Two deployments on one domain: the second is refused before anything is created (its
/// records would collide with the first's, and its destroy would take the first's names).
#[tokio::test]
async fn a_domain_another_deployment_holds_is_refused() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("dup"));
    let zone = hosted_zone(&aws, &domain).await;
    let first = unique("dup");
    let dir = scratch_dir();
    let o = bbbctl_in(&dir, &setup_args(&zone, &first, &domain, &["--no-check"]));
    assert_code(&o, 0);

    let second = unique("dup");
    let o = bbbctl_in(&dir, &setup_args(&zone, &second, &domain, &["--no-check"]));
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "domain {domain} already has records in hosted zone {zone}"
        )) && err.contains(&format!("scalelite.{domain} A"))
            && err.contains(&format!("they belong to bbbctl deployment {first}"))
            && err.contains("Nothing was changed"),
        "{err}"
    );
    assert!(status_of(&aws, &second).await.is_none());
    assert!(
        status_of(&aws, &format!("{second}-sources"))
            .await
            .is_none()
    );

    // The first deployment's own re-run is no conflict.
    let o = bbbctl_in(&dir, &setup_args(&zone, &first, &domain, &["--no-check"]));
    assert_code(&o, 0);

    // With an External front end bbbctl writes no record of `<domain>` (only
    // `scalelite.<domain>`): the operator's own site there is no conflict.
    let site = format!("www.{domain}");
    upsert_a_record(&aws, &zone, &site, "198.51.100.7").await;
    std::fs::write(
        dir.join("external.json"),
        r#"{"Parameters": {"BBBFrontendType": "External"}}"#,
    )
    .unwrap();
    let third = unique("dup");
    let o = bbbctl_in(
        &dir,
        &setup_args(
            &zone,
            &third,
            &site,
            &["--params", "external.json", "--dry-run"],
        ),
    );
    assert_code(&o, 0);
    // With Greenlight, the same name is refused.
    let o = bbbctl_in(&dir, &setup_args(&zone, &third, &site, &["--dry-run"]));
    assert_code(&o, 2);
    assert!(stderr(&o).contains(&format!("{site} A")), "{}", stderr(&o));
    let o = bbbctl_in(&dir, &["destroy", "-s", &first, "--yes"]);
    assert_code(&o, 0);
}
