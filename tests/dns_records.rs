//! DNS records in a hosted zone that several deployments (and the operator) share: `destroy`
//! deletes what its own deployment created, its stacks' records and the `bbb-<id>` records
//! its own servers left, and nothing else (issue 19).

mod common;

use std::collections::BTreeMap;

use aws_sdk_route53::types::RrType;
use bbbctl::aws::Aws;
use common::*;

/// Every record of the zone but its NS and SOA: (name without the final dot, type) → values.
async fn records(aws: &Aws, zone: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut found = BTreeMap::new();
    let mut next: Option<(String, RrType)> = None;
    loop {
        let mut req = aws.route53.list_resource_record_sets().hosted_zone_id(zone);
        if let Some((n, t)) = next.take() {
            req = req.start_record_name(n).start_record_type(t);
        }
        let page = req.send().await.expect("list records");
        for r in page.resource_record_sets() {
            if matches!(r.r#type(), RrType::Ns | RrType::Soa) {
                continue;
            }
            let mut values: Vec<String> = r
                .resource_records()
                .iter()
                .map(|v| v.value().to_string())
                .collect();
            if let Some(alias) = r.alias_target() {
                values.push(format!("alias {}", alias.dns_name()));
            }
            found.insert(
                (
                    r.name().trim_end_matches('.').to_lowercase(),
                    r.r#type().as_str().to_string(),
                ),
                values,
            );
        }
        match (page.next_record_name(), page.next_record_type()) {
            (Some(n), Some(t)) if page.is_truncated() => next = Some((n.to_string(), t.clone())),
            _ => return found,
        }
    }
}

/// The instance ids of a deployment's BBB servers.
async fn servers(aws: &Aws, stack: &str) -> Vec<String> {
    let outputs = root(aws, stack).await.1;
    let ids = group_instances(aws, &outputs["BBBServerGroupName"]).await;
    assert!(!ids.is_empty(), "deployment {stack} has no server");
    ids
}

/// The record name the registrar writes for a server: `bbb-<instance id without i->.media.<domain>`.
fn server_name(instance: &str, domain: &str) -> String {
    format!("bbb-{}.media.{domain}", instance.trim_start_matches("i-"))
}

/// Two deployments in one hosted zone, A on `a.<zone>` and B on `b.<zone>`, each server with
/// its own `bbb-<id>` record (as a server that crashed would leave it), and under B's domain
/// records of that shape that are not B's servers': one of A's servers (written there by
/// hand, say) and one whose instance EC2 does not know. `destroy -s B` deletes B's stack
/// records and its own server's record; A's records, the two that only look like B's, and
/// an unrelated `bbb-notes` record stay, and destroy names the two with a hint.
#[tokio::test]
async fn destroy_deletes_its_own_records_and_no_one_elses() {
    let aws = account().await;
    let zone_name = format!("{}.example.org", unique("dz"));
    let zone = hosted_zone(&aws, &zone_name).await;
    let (a, b) = (unique("da"), unique("db"));
    let (domain_a, domain_b) = (format!("a.{zone_name}"), format!("b.{zone_name}"));
    let o = bbbctl(&setup_args(&zone, &a, &domain_a, &[]));
    assert_code(&o, 0);
    let o = bbbctl(&setup_args(&zone, &b, &domain_b, &[]));
    assert_code(&o, 0);

    let server_a = servers(&aws, &a).await[0].clone();
    let server_b = servers(&aws, &b).await[0].clone();
    let own = server_name(&server_b, &domain_b);
    let others = server_name(&server_a, &domain_b);
    let unknown = format!("bbb-0123456789abcdef0.media.{domain_b}");
    let notes = format!("bbb-notes.{domain_b}");
    upsert_a_record(
        &aws,
        &zone,
        &server_name(&server_a, &domain_a),
        "192.0.2.10",
    )
    .await;
    upsert_a_record(&aws, &zone, &own, "192.0.2.11").await;
    upsert_a_record(&aws, &zone, &others, "192.0.2.12").await;
    upsert_a_record(&aws, &zone, &unknown, "192.0.2.13").await;
    upsert_a_record(&aws, &zone, &notes, "192.0.2.14").await;
    let before = records(&aws, &zone).await;
    let of_b = |name: &str| name == domain_b || name.ends_with(&format!(".{domain_b}"));
    assert!(
        before.contains_key(&(domain_b.clone(), "A".to_string()))
            && before.contains_key(&(format!("scalelite.{domain_b}"), "A".to_string())),
        "B's stack records: {before:#?}"
    );

    let o = bbbctl(&["destroy", "-s", &b, "--yes"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "servers which did not shut down cleanly left behind: {own}"
        )),
        "{out}"
    );
    for (name, why) in [
        (
            &others,
            format!("instance {server_a} is a server of deployment {a}"),
        ),
        (
            &unknown,
            "EC2 knows no instance i-0123456789abcdef0 in this region".to_string(),
        ),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("Not deleted: DNS record {name} ")))
            .unwrap_or_else(|| panic!("{name} not named:\n{out}"));
        assert!(line.contains(&why), "{line}");
        assert!(
            line.contains(&format!(
                "aws route53 change-resource-record-sets --hosted-zone-id {zone} --change-batch"
            )) && line.contains(r#""Action":"DELETE""#),
            "{line}"
        );
    }

    let after = records(&aws, &zone).await;
    let kept = [others.as_str(), unknown.as_str(), notes.as_str()];
    let expected: BTreeMap<_, _> = before
        .iter()
        .filter(|((name, _), _)| !of_b(name) || kept.contains(&name.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(after, expected, "before destroy: {before:#?}");
    assert!(
        after.keys().any(|(name, _)| name == &domain_a)
            && after.contains_key(&(format!("scalelite.{domain_a}"), "A".to_string())),
        "A's records: {after:#?}"
    );

    let o = bbbctl(&["destroy", "-s", &a, "--yes"]);
    assert_code(&o, 0);
}
