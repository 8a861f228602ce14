//! The fleet certificate's resources in templates/bbb-servers.yaml and root.yaml (issue 27,
//! contract section 2), read from the templates: the issuer may write only the TXT record
//! `_acme-challenge.media.<domain>` (UPSERT/DELETE) of the zone, wait for its change, and
//! read and write its two secrets; the servers read FleetCertificate only (never the ACME
//! account); the first issue comes before the group (custom resource) and renewal twice a
//! day (schedule); the bootstrap gets the secret's ARN; the ACME directory is an https URL.

use serde_yaml_ng::Value;

fn servers() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/bbb-servers.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap()
}

/// Every statement of a role's inline policies, the branches of `!If` included (the
/// `AWS::NoValue` ones left out).
fn statements(role: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for policy in role["Properties"]["Policies"].as_sequence().unwrap() {
        for s in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            match s {
                Value::Tagged(t) => {
                    for branch in t.value.as_sequence().unwrap().iter().skip(1) {
                        if branch.as_mapping().is_some() {
                            out.push(branch.clone());
                        }
                    }
                }
                other => out.push(other.clone()),
            }
        }
    }
    out
}

fn by_sid<'a>(all: &'a [Value], sid: &str) -> &'a Value {
    all.iter()
        .find(|s| s["Sid"].as_str() == Some(sid))
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

fn actions(s: &Value) -> Vec<String> {
    match &s["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Sequence(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_issuer_may_write_only_its_txt_record_and_its_two_secrets() {
    let t = servers();
    let role = &t["Resources"]["CertificateIssuerRole"];
    assert_eq!(role["Condition"].as_str(), Some("IsScalable"));
    let all = statements(role);
    let sids: Vec<&str> = all.iter().map(|s| s["Sid"].as_str().unwrap()).collect();
    assert_eq!(
        sids,
        [
            "WriteTheChallengeRecord",
            "WaitForTheChallengeRecord",
            "KeepTheCertificateAndAccount",
            "WriteItsLog"
        ]
    );
    for s in &all {
        assert_eq!(s["Effect"].as_str(), Some("Allow"));
        assert!(actions(s).iter().all(|a| !a.contains('*')), "{s:?}");
    }
    let write = by_sid(&all, "WriteTheChallengeRecord");
    assert_eq!(actions(write), ["route53:ChangeResourceRecordSets"]);
    assert!(yaml(&write["Resource"]).contains("hostedzone/${HostedZoneId}"));
    let cond = &write["Condition"]["ForAllValues:StringEquals"];
    // The condition's normalised form: lower case (DomainName's pattern), no trailing dot.
    assert_eq!(
        yaml(&cond["route53:ChangeResourceRecordSetsNormalizedRecordNames"]).trim(),
        "- !Sub _acme-challenge.media.${DomainName}"
    );
    assert_eq!(
        yaml(&cond["route53:ChangeResourceRecordSetsRecordTypes"]).trim(),
        "- TXT"
    );
    assert_eq!(
        yaml(&cond["route53:ChangeResourceRecordSetsActions"]).trim(),
        "- UPSERT\n- DELETE"
    );
    assert_eq!(
        write["Condition"].as_mapping().unwrap().len(),
        1,
        "no other condition operator"
    );
    let wait = by_sid(&all, "WaitForTheChallengeRecord");
    assert_eq!(actions(wait), ["route53:GetChange"]);
    assert!(yaml(&wait["Resource"]).contains(":route53:::change/*"));
    let keep = by_sid(&all, "KeepTheCertificateAndAccount");
    assert_eq!(
        actions(keep),
        [
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue"
        ]
    );
    assert_eq!(
        yaml(&keep["Resource"]).trim(),
        "- !Ref FleetCertificateSecret\n- !Ref AcmeAccountSecret"
    );
    let logs = by_sid(&all, "WriteItsLog");
    assert!(yaml(&logs["Resource"]).contains("CertificateIssuerLogGroup.Arn"));
}

#[test]
fn servers_read_the_fleet_certificate_only_and_get_its_arn() {
    let t = servers();
    let all = statements(&t["Resources"]["ServerRole"]);
    let read = by_sid(&all, "ReadFleetCertificate");
    assert_eq!(actions(read), ["secretsmanager:GetSecretValue"]);
    assert_eq!(
        yaml(&read["Resource"]).trim(),
        "!Ref FleetCertificateSecret"
    );
    let role = yaml(&t["Resources"]["ServerRole"]);
    assert!(
        !role.contains("AcmeAccountSecret"),
        "a server must not read the ACME account"
    );
    assert_eq!(role.matches("FleetCertificateSecret").count(), 1);
    // In scalable mode only (the statement sits in Fn::If IsScalable).
    let statements = yaml(&t["Resources"]["ServerRole"]["Properties"]["Policies"]);
    let at = statements.find("ReadFleetCertificate").unwrap();
    assert!(
        statements[..at]
            .rfind("IsScalable")
            .is_some_and(|i| at - i < 120)
    );

    let user_data = yaml(
        &t["Resources"]["ServerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"],
    );
    assert!(
        user_data.contains("--cert-secret \"${CertSecret}\""),
        "{user_data}"
    );
    assert!(user_data.contains("CertSecret: !If\n"), "{user_data}");
    assert!(user_data.contains("IsScalable") && user_data.contains("!Ref FleetCertificateSecret"));
    // Before the first issue the secret says only which names it will hold.
    let secret = &t["Resources"]["FleetCertificateSecret"]["Properties"];
    assert_eq!(
        yaml(&secret["SecretString"]).trim(),
        "!Sub '{\"names\": [\"*.media.${DomainName}\"]}'"
    );
    assert!(yaml(&secret["Name"]).contains("BBB-${RootStackName}-fleet-certificate"));
}

#[test]
fn the_first_issue_comes_before_the_group_and_renewal_twice_a_day() {
    let t = servers();
    let r = &t["Resources"];
    let custom = &r["FleetCertificate"];
    assert_eq!(custom["Type"].as_str(), Some("Custom::FleetCertificate"));
    assert_eq!(
        yaml(&custom["Properties"]["ServiceToken"]).trim(),
        "!GetAtt CertificateIssuer.Arn"
    );
    let function = &r["CertificateIssuer"]["Properties"];
    let timeout = function["Timeout"].as_u64().unwrap();
    assert_eq!(timeout, 900);
    let service_timeout = custom["Properties"]["ServiceTimeout"].as_u64().unwrap();
    assert!(
        (timeout..=3600).contains(&service_timeout),
        "{service_timeout}"
    );
    assert_eq!(function["Runtime"].as_str(), Some("python3.12"));
    assert_eq!(function["Handler"].as_str(), Some("bbb_certs.handler"));
    assert_eq!(
        yaml(&function["Code"]["S3Key"]).trim(),
        "!Ref CertificateIssuerCodeKey"
    );
    assert_eq!(
        yaml(&function["LoggingConfig"]["LogGroup"]).trim(),
        "!Ref CertificateIssuerLogGroup"
    );
    assert_eq!(
        yaml(&r["CertificateIssuerLogGroup"]["Properties"]["RetentionInDays"]).trim(),
        "!Ref LogRetentionDays"
    );
    // The group references the custom resource (in scalable mode): CloudFormation creates
    // it, i.e. waits for the issuer's answer, before the group.
    let group_tags = yaml(&r["ServerGroup"]["Properties"]["Tags"]);
    assert!(
        group_tags.contains("!Ref FleetCertificate\n"),
        "{group_tags}"
    );
    // Twice a day, the issuer as target, allowed to invoke it from that rule only.
    let rule = &r["CertificateIssuerTwiceADay"]["Properties"];
    let cron = rule["ScheduleExpression"].as_str().unwrap();
    let hours = cron.split_whitespace().nth(1).unwrap();
    assert_eq!(hours.split(',').count(), 2, "{cron}");
    assert!(yaml(&rule["Targets"]).contains("!GetAtt CertificateIssuer.Arn"));
    let permission = &r["CertificateIssuerTwiceADayPermission"]["Properties"];
    assert_eq!(
        permission["Principal"].as_str(),
        Some("events.amazonaws.com")
    );
    assert_eq!(
        yaml(&permission["SourceArn"]).trim(),
        "!GetAtt CertificateIssuerTwiceADay.Arn"
    );
    for name in [
        "AcmeAccountSecret",
        "FleetCertificateSecret",
        "CertificateIssuerRole",
        "CertificateIssuerLogGroup",
        "CertificateIssuer",
        "CertificateIssuerRetries",
        "FleetCertificate",
        "CertificateIssuerTwiceADay",
        "CertificateIssuerTwiceADayPermission",
    ] {
        assert_eq!(r[name]["Condition"].as_str(), Some("IsScalable"), "{name}");
    }
}

#[test]
fn the_acme_directory_is_an_https_url_passed_from_the_root() {
    let bundle = bbbctl::templates::Bundle::embedded();
    let root = bundle.root_info().unwrap();
    let spec = &root.parameters["BBBAcmeDirectoryUrl"];
    assert_eq!(
        spec.default.as_deref(),
        Some("https://acme-v02.api.letsencrypt.org/directory")
    );
    assert!(
        spec.check("https://acme-staging-v02.api.letsencrypt.org/directory")
            .is_ok()
    );
    assert!(
        spec.check("http://acme-v02.api.letsencrypt.org/directory")
            .is_err()
    );
    assert!(spec.check("https://x/dir\"; rm -rf /").is_err());
    assert!(root.parameters["BbbCertsCodeKey"].is_internal());
    let text = String::from_utf8(bundle.file("root.yaml").unwrap().to_vec()).unwrap();
    assert!(text.contains("CertificateIssuerCodeKey: !Ref BbbCertsCodeKey"));
    assert!(text.contains("AcmeDirectoryUrl: !Ref BBBAcmeDirectoryUrl"));
}
