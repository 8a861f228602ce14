//! The fleet certificate's resources deployed on the emulator: a scalable setup creates the
//! issuer (its function from the zip bbbctl uploads, its renewal rule), the two secrets (the
//! certificate's holding its names only: the emulator does not run the function, moto_ext
//! patch 34, so nothing is issued here; tests/certs.rs runs the issuer itself) and the custom
//! resource; destroy removes all of it and leaves nothing behind.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn a_scalable_setup_creates_the_issuer_and_destroy_removes_it() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("fc"));
    let zone = hosted_zone(&aws, &domain).await;
    let before = inventory::inventory();
    let stack = unique("fc");
    let dir = scratch_dir();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), 0, &[]);
    assert_code(&o, 0);

    let servers = stack_resource(&aws, &stack, "BbbServersStack").await;
    let seen: Value = serde_json::from_str(&boto3(
        "cloudformation",
        &format!(
            "kw = dict(region_name=client.meta.region_name, endpoint_url=client.meta.endpoint_url, aws_access_key_id='test', aws_secret_access_key='test')\n\
             lam, events, sm = (boto3.client(s, **kw) for s in ('lambda', 'events', 'secretsmanager'))\n\
             res = {{r['LogicalResourceId']: r for r in client.describe_stack_resources(StackName='{servers}')['StackResources']}}\n\
             evs = [e for e in client.describe_stack_events(StackName='{servers}')['StackEvents'] if e['LogicalResourceId'] == 'FleetCertificate' and e['ResourceStatus'] == 'CREATE_COMPLETE']\n\
             f = lam.get_function(FunctionName='{stack}-bbb-certs')['Configuration']\n\
             targets = [t['Arn'] for t in events.list_targets_by_rule(Rule='{stack}-bbb-certs-renewal')['Targets']]\n\
             rule = events.describe_rule(Name='{stack}-bbb-certs-renewal')\n\
             cert = sm.get_secret_value(SecretId=res['FleetCertificateSecret']['PhysicalResourceId'])['SecretString']\n\
             acct = sm.get_secret_value(SecretId=res['AcmeAccountSecret']['PhysicalResourceId'])['SecretString']\n\
             print(json.dumps({{'types': {{k: r['ResourceType'] for k, r in res.items()}}, 'reason': evs[0].get('ResourceStatusReason', '') if evs else '',\n\
               'handler': f['Handler'], 'timeout': f['Timeout'], 'env': f['Environment']['Variables'], 'arn': f['FunctionArn'],\n\
               'targets': targets, 'schedule': rule['ScheduleExpression'], 'cert': json.loads(cert), 'acct': json.loads(acct),\n\
               'cert_arn': res['FleetCertificateSecret']['PhysicalResourceId']}}))"
        ),
    ))
    .unwrap();
    assert_eq!(
        seen["types"]["FleetCertificate"],
        "Custom::FleetCertificate"
    );
    assert!(
        seen["reason"]
            .as_str()
            .unwrap()
            .contains("the function is not run here"),
        "{seen}"
    );
    assert_eq!(seen["handler"], "bbb_certs.handler");
    assert_eq!(seen["timeout"], 900);
    assert_eq!(seen["env"]["DOMAIN"], domain.as_str());
    assert_eq!(seen["env"]["HOSTED_ZONE"], zone.as_str());
    assert_eq!(
        seen["env"]["ACME_DIRECTORY"],
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(seen["env"]["CERT_SECRET_ARN"], seen["cert_arn"]);
    assert_eq!(seen["targets"], serde_json::json!([seen["arn"]]));
    assert!(seen["schedule"].as_str().unwrap().starts_with("cron("));
    assert_eq!(
        seen["cert"],
        serde_json::json!({"names": [format!("*.media.{domain}")]})
    );
    assert_eq!(seen["acct"], serde_json::json!({}));

    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes"]);
    assert_code(&o, 0);
    // The database's final snapshot is kept by design (DeletionPolicy Snapshot).
    assert_nothing_left(&aws, &stack, &before, &["rds:cluster_snapshots"]).await;
}
