//! The fleet certificate's issuer (templates/scripts/bbb_certs.py), run for real from the zip
//! bbbctl uploads as its Lambda code (`bbb_certs.handler`), with boto3 against the emulator
//! (Route 53: the deployment's zone; Secrets Manager: FleetCertificate and AcmeAccount) and
//! an ACME CA stand-in written from RFC 8555 (tests/standins/acme.py: it checks every JWS,
//! nonce, account binding, the dns-01 record in the emulator's zone and the CSR, and issues
//! from a test CA). The issuer runs with `cryptography` made unimportable: the Lambda
//! runtime has only the standard library and boto3. Shows: a first issue stores a chain that
//! verifies against the test CA for a server's name and a key that matches it; a fresh
//! certificate orders nothing; less than a third of its lifetime left renews it (an already
//! valid authorization reused); changed names renew it; a failed challenge and a rate limit
//! are one clear line and leave no TXT record; badNonce is retried; CloudFormation's events
//! are answered at the ResponseURL (SUCCESS with data, FAILED with the reason, Delete
//! SUCCESS without a CA call); no key or certificate body reaches the log.

mod common;
mod standins;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{Value, json};
use standins::http::{Response, Server};

struct Rig {
    dir: tempfile::TempDir,
    zip: PathBuf,
    acme: Child,
    directory: String,
    domain: String,
    zone: String,
    cert_secret: String,
    account_secret: String,
}

fn python() -> PathBuf {
    repo().join(".venv/emulator/bin/python")
}

impl Rig {
    fn new() -> Self {
        let endpoint = endpoint();
        let dir = tempfile::tempdir().unwrap();
        let asset = bbbctl::templates::Bundle::embedded()
            .assets()
            .into_iter()
            .find(|a| a.path == "scripts/bbb_certs.py")
            .expect("the issuer is an asset");
        assert!(asset.key.ends_with(".zip"), "{}", asset.key);
        assert_eq!(asset.param.as_deref(), Some("BbbCertsCodeKey"));
        let zip = dir.path().join("certs.zip");
        std::fs::write(&zip, &asset.body).unwrap();

        let domain = format!("{}.example.org", unique("c"));
        let zone = boto3(
            "route53",
            &format!(
                "print(client.create_hosted_zone(Name='{domain}', CallerReference='{domain}')['HostedZone']['Id'].split('/')[-1])"
            ),
        );
        let secrets = boto3(
            "secretsmanager",
            &format!(
                "c = client.create_secret(Name='BBB-{domain}-fleet-certificate', SecretString=json.dumps({{'names': ['*.media.{domain}']}}))['ARN']\n\
                 a = client.create_secret(Name='BBB-{domain}-acme-account', SecretString='{{}}')['ARN']\n\
                 print(c, a)"
            ),
        );
        let (cert_secret, account_secret) = secrets.split_once(' ').unwrap();
        let mut acme = Command::new(python())
            .arg(repo().join("tests/standins/acme.py"))
            .args(["--dir", dir.path().to_str().unwrap(), "--route53", endpoint])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the ACME stand-in");
        let mut line = String::new();
        BufReader::new(acme.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let directory = line
            .trim()
            .strip_prefix("acme listening on ")
            .unwrap_or_else(|| panic!("ACME stand-in said {line:?}"))
            .to_string();
        Rig {
            dir,
            zip,
            acme,
            directory,
            domain,
            zone,
            cert_secret: cert_secret.to_string(),
            account_secret: account_secret.to_string(),
        }
    }

    fn control(&self, doc: Value) {
        std::fs::write(self.dir.path().join("control.json"), doc.to_string()).unwrap();
    }

    /// The stand-in's journal.
    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == event).count()
    }

    /// One run of the issuer with `event` (as Lambda would hand it), for `domain`.
    /// Returns (succeeded, log, result).
    fn run_for(&self, event: Value, domain: &str) -> (bool, String, Value) {
        let out = Command::new(python())
            .arg("-c")
            .arg(
                "import sys, json\n\
                 sys.modules['cryptography'] = None  # not in the Lambda runtime\n\
                 import bbb_certs\n\
                 print('RESULT ' + json.dumps(bbb_certs.handler(json.loads(sys.argv[1]), None)))",
            )
            .arg(event.to_string())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PYTHONPATH", &self.zip)
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", REGION)
            .env("DOMAIN", domain)
            .env("HOSTED_ZONE", &self.zone)
            .env("ACME_DIRECTORY", &self.directory)
            .env("CONTACT_EMAIL", "ops@example.org")
            .env("CERT_SECRET_ARN", &self.cert_secret)
            .env("ACCOUNT_SECRET_ARN", &self.account_secret)
            .env("ACME_CA_FILE", self.dir.path().join("tls-ca.pem"))
            .env("DNS_POLL_SECONDS", "0.2")
            .output()
            .expect("python");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let log = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let result = stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .map(|r| serde_json::from_str(r).unwrap())
            .unwrap_or(Value::Null);
        (out.status.success(), log, result)
    }

    fn run(&self, event: Value) -> (bool, String, Value) {
        self.run_for(event, &self.domain.clone())
    }

    /// A scheduled run that must succeed; its log.
    fn scheduled(&self) -> String {
        let (ok, log, _) =
            self.run(json!({"source": "aws.events", "detail-type": "Scheduled Event"}));
        assert!(ok, "the scheduled run failed:\n{log}");
        log
    }

    /// A scheduled run that must fail with exactly one FAILED line: (that line, the log).
    fn failed_run(&self) -> (String, String) {
        let (ok, log, _) = self.run(json!({"source": "aws.events"}));
        assert!(!ok, "{log}");
        let failed: Vec<&str> = log.lines().filter(|l| l.contains("FAILED")).collect();
        assert_eq!(failed.len(), 1, "{log}");
        (failed[0].to_string(), log)
    }

    fn secret(&self, arn: &str) -> Value {
        serde_json::from_str(&boto3(
            "secretsmanager",
            &format!("print(client.get_secret_value(SecretId='{arn}')['SecretString'])"),
        ))
        .unwrap()
    }

    fn certificate(&self) -> Value {
        self.secret(&self.cert_secret)
    }

    /// TXT records of the zone.
    fn txt_records(&self) -> Vec<String> {
        let out = boto3(
            "route53",
            &format!(
                "print(json.dumps([r['Name'] for r in client.list_resource_record_sets(HostedZoneId='{}')['ResourceRecordSets'] if r['Type'] == 'TXT']))",
                self.zone
            ),
        );
        serde_json::from_str(&out).unwrap()
    }

    /// Checks with `cryptography` that the stored chain verifies against the stand-in's root
    /// for a media server's name (and not for a name outside media.<domain>), and that the
    /// key is the certificate's. Returns the leaf's serial (hex).
    fn verify_stored(&self, domain: &str) -> String {
        let doc = self.certificate();
        let script = r#"
import sys, json, datetime
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
doc = json.loads(sys.stdin.read())
root = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
leaf = x509.load_pem_x509_certificate(doc["certificate"].encode())
chain = x509.load_pem_x509_certificates(doc["chain"].encode())
builder = PolicyBuilder().store(Store([root])).time(datetime.datetime.now(datetime.timezone.utc))
builder.build_server_verifier(x509.DNSName(sys.argv[2])).verify(leaf, chain)
try:
    builder.build_server_verifier(x509.DNSName(sys.argv[3])).verify(leaf, chain)
    outside = "verified"
except VerificationError:
    outside = "refused"
key = serialization.load_pem_private_key(doc["key"].encode(), None)
assert key.public_key().public_numbers() == leaf.public_key().public_numbers(), "key does not match"
print(json.dumps({"serial": format(leaf.serial_number, "x"), "outside": outside,
                  "not_after": leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "not_before": leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")}))
"#;
        let mut child = Command::new(python())
            .arg("-c")
            .arg(script)
            .arg(self.dir.path().join("root.pem"))
            .arg(format!("bbb-0abc1234.media.{domain}"))
            .arg(format!("scalelite.{domain}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(doc.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the stored certificate does not verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(seen["outside"], "refused", "valid outside media.<domain>");
        assert_eq!(doc["serial"], seen["serial"]);
        assert_eq!(doc["not_after"], seen["not_after"]);
        assert_eq!(doc["not_before"], seen["not_before"]);
        assert_eq!(doc["names"], json!([format!("*.media.{domain}")]));
        seen["serial"].as_str().unwrap().to_string()
    }

    /// No key, certificate body or account key in `log`.
    fn assert_nothing_secret(&self, log: &str) {
        let doc = self.certificate();
        let account = self.secret(&self.account_secret);
        let mut secrets: Vec<String> = Vec::new();
        for field in ["key", "certificate", "chain"] {
            if let Some(pem) = doc[field].as_str() {
                secrets.extend(
                    pem.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() > 16)
                        .map(str::to_string),
                );
            }
        }
        if let Some(d) = account["key"]["d"].as_str() {
            secrets.push(d.to_string());
        }
        assert!(
            !log.contains("PRIVATE KEY") && !log.contains("BEGIN CERTIFICATE"),
            "{log}"
        );
        for s in secrets {
            assert!(!log.contains(&s), "a secret reached the log:\n{log}");
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.acme.kill();
        let _ = self.acme.wait();
    }
}

#[test]
fn first_issue_stores_a_chain_that_verifies_and_its_key_and_a_fresh_one_orders_nothing() {
    let rig = Rig::new();
    assert_eq!(
        rig.certificate(),
        json!({"names": [format!("*.media.{}", rig.domain)]})
    );
    let log = rig.scheduled();
    let serial = rig.verify_stored(&rig.domain);
    assert!(log.contains(&format!("serial {serial}")), "{log}");
    for step in [
        "ACME newAccount",
        "ACME newOrder",
        "INSYNC",
        "ACME challenge dns-01",
        "ACME finalize",
        "ACME certificate",
    ] {
        assert!(log.contains(step), "no {step} in the log:\n{log}");
    }
    // The CA saw the record while it validated; it is gone afterwards.
    let validated: Vec<Value> = rig
        .events()
        .into_iter()
        .filter(|e| e["event"] == "validated")
        .collect();
    assert_eq!(validated.len(), 1);
    assert_eq!(validated[0]["ok"], true);
    assert_eq!(
        validated[0]["name"],
        format!("_acme-challenge.media.{}.", rig.domain)
    );
    assert!(rig.txt_records().is_empty(), "{:?}", rig.txt_records());
    // The account: the contact, the terms agreed (the stand-in refuses otherwise), kept.
    assert_eq!(
        rig.events()[0]["contact"],
        json!(["mailto:ops@example.org"])
    );
    let account = rig.secret(&rig.account_secret);
    assert_eq!(account["directory"], rig.directory.as_str());
    assert!(account["url"].as_str().unwrap().contains("/acct/"));
    rig.assert_nothing_secret(&log);

    // Fresh: nothing ordered, the same certificate.
    let log = rig.scheduled();
    assert!(log.contains("nothing to do"), "{log}");
    assert_eq!(rig.count("newOrder"), 1);
    assert_eq!(rig.count("newAccount"), 1);
    assert_eq!(rig.certificate()["serial"], serial.as_str());
}

#[test]
fn less_than_a_third_of_its_lifetime_left_renews_it_reusing_a_valid_authorization() {
    let rig = Rig::new();
    // 1100 s of 3000 left: more than a third, not due.
    rig.control(json!({"lifetime": 3000, "backdate": 1900, "reuse_authorizations": true}));
    rig.scheduled();
    let first = rig.verify_stored(&rig.domain);
    let log = rig.scheduled();
    assert!(log.contains("nothing to do"), "{log}");
    assert_eq!(rig.count("newOrder"), 1);

    // 900 s of 3000 left: less than a third, renewed; the account's valid authorization is
    // used as is (no second challenge).
    let rig2 = Rig::new();
    rig2.control(json!({"lifetime": 3000, "backdate": 2100, "reuse_authorizations": true}));
    rig2.scheduled();
    let old = rig2.verify_stored(&rig2.domain);
    let log = rig2.scheduled();
    assert!(log.contains("days left"), "{log}");
    assert!(log.contains("valid already, reused"), "{log}");
    let new = rig2.verify_stored(&rig2.domain);
    assert_ne!(old, new);
    assert_eq!(rig2.count("newOrder"), 2);
    assert_eq!(rig2.count("challenge"), 1);
    assert_eq!(
        rig2.count("newAccount"),
        1,
        "the stored account is used again"
    );
    assert_ne!(first, new);
    rig2.assert_nothing_secret(&log);
}

#[test]
fn other_names_renew_it() {
    let rig = Rig::new();
    rig.scheduled();
    let old = rig.verify_stored(&rig.domain);
    // The deployment's domain changed (same zone): the stored names differ.
    let other = format!("other.{}", rig.domain);
    let (ok, log, _) = rig.run_for(json!({"source": "aws.events"}), &other);
    assert!(ok, "{log}");
    assert!(log.contains("are not"), "{log}");
    let new = rig.verify_stored(&other);
    assert_ne!(old, new);
    assert_eq!(
        rig.certificate()["names"],
        json!([format!("*.media.{other}")])
    );
}

#[test]
fn another_directory_issues_again_with_an_account_of_that_directory() {
    // A deployment tested on Let's Encrypt's staging directory, then moved to production: the
    // stack update's Update event must replace the certificate at once, although it has most
    // of its life left (a staging certificate is trusted by no browser).
    let mut rig = Rig::new();
    rig.scheduled();
    let old = rig.verify_stored(&rig.domain);
    assert_eq!(rig.certificate()["directory"], rig.directory.as_str());
    assert!(rig.scheduled().contains("nothing to do"));
    let other = rig.directory.replace("/directory", "/other/directory");
    rig.directory = other.clone();
    let (ok, log, _) = rig.run(json!({"source": "aws.events"}));
    assert!(ok, "{log}");
    assert!(log.contains("not https://"), "{log}");
    let new = rig.verify_stored(&rig.domain);
    assert_ne!(old, new);
    assert_eq!(rig.certificate()["directory"], other.as_str());
    assert_eq!(rig.secret(&rig.account_secret)["directory"], other.as_str());
    assert_eq!(rig.count("newAccount"), 2, "one account per directory");
    assert!(rig.scheduled().contains("nothing to do"));
}

#[test]
fn an_aws_error_in_a_scheduled_run_is_a_failed_line_too() {
    // Not only the issuer's own failures: a refused AWS call (here a secret that is gone)
    // logs one FAILED line, so that searching the log group for FAILED finds every failure.
    let mut rig = Rig::new();
    rig.cert_secret = rig
        .cert_secret
        .replace("fleet-certificate", "no-such-secret");
    let (line, log) = rig.failed_run();
    assert!(line.contains("ResourceNotFoundException"), "{log}");
}

#[test]
fn a_failed_challenge_is_one_clear_line_and_leaves_no_record() {
    let rig = Rig::new();
    rig.control(json!({"fail_challenge": true}));
    let (line, log) = rig.failed_run();
    assert!(
        line.contains("incorrectResponse") && line.contains("No TXT record found"),
        "{line}"
    );
    assert!(rig.txt_records().is_empty(), "{:?}", rig.txt_records());
    assert_eq!(
        rig.certificate(),
        json!({"names": [format!("*.media.{}", rig.domain)]})
    );
    rig.assert_nothing_secret(&log);
}

#[test]
fn a_rate_limit_is_one_clear_line() {
    let rig = Rig::new();
    rig.control(json!({"rate_limited": true}));
    let (line, _) = rig.failed_run();
    assert!(
        line.contains("rateLimited")
            && line.contains("HTTP 429")
            && line.contains("too many new certificates"),
        "{line}"
    );
    assert!(rig.txt_records().is_empty());
    assert_eq!(rig.count("challenge"), 0);
}

#[test]
fn a_bad_nonce_is_retried() {
    let rig = Rig::new();
    rig.control(json!({"bad_nonce_once": true}));
    let log = rig.scheduled();
    assert!(log.contains("badNonce, retrying"), "{log}");
    assert_eq!(rig.count("badNonce"), 1);
    rig.verify_stored(&rig.domain);
}

/// What the ResponseURL received: (method and Content-Type, JSON body) of each request.
type Answers = Arc<Mutex<Vec<(String, Value)>>>;

/// A ResponseURL of our own: every PUT body CloudFormation would receive.
fn response_url() -> (Server, Answers) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let server = Server::start(move |req| {
        store.lock().unwrap().push((
            format!(
                "{} {}",
                req.method,
                req.header("content-type").unwrap_or("")
            ),
            serde_json::from_slice(&req.body).unwrap_or(Value::Null),
        ));
        Response::new(200, "text/plain", "")
    });
    (server, seen)
}

fn cfn_event(kind: &str, url: &str) -> Value {
    json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:bbb-bbb-certs",
        "ResponseURL": format!("{url}/cloudformation-response?X-Amz-Signature=abc"),
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/bbb-BbbServersStack-1/guid",
        "RequestId": "req-1",
        "LogicalResourceId": "FleetCertificate",
        "ResourceType": "Custom::FleetCertificate",
        "ResourceProperties": {"Names": ["*.media.x"], "Directory": "https://acme"},
    })
}

#[test]
fn custom_resource_events_are_answered_at_the_response_url() {
    let rig = Rig::new();
    let (server, seen) = response_url();
    let (ok, log, _) = rig.run(cfn_event("Create", &server.url()));
    assert!(ok, "{log}");
    let answers = seen.lock().unwrap().clone();
    assert_eq!(answers.len(), 1, "{answers:?}");
    let (how, body) = &answers[0];
    assert_eq!(
        how.trim_end(),
        "PUT",
        "a pre-signed S3 URL wants an empty Content-Type: {how:?}"
    );
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["RequestId"], "req-1");
    assert_eq!(body["LogicalResourceId"], "FleetCertificate");
    assert!(body["StackId"].as_str().unwrap().contains(":stack/"));
    let physical = body["PhysicalResourceId"].as_str().unwrap().to_string();
    assert_eq!(physical, format!("fleet-certificate-media.{}", rig.domain));
    let doc = rig.certificate();
    assert_eq!(body["Data"]["Serial"], doc["serial"]);
    assert_eq!(body["Data"]["NotAfter"], doc["not_after"]);
    rig.verify_stored(&rig.domain);

    // Update with a good certificate: SUCCESS, the same physical id, nothing ordered.
    let mut update = cfn_event("Update", &server.url());
    update["PhysicalResourceId"] = json!(physical);
    let (ok, log, _) = rig.run(update);
    assert!(ok, "{log}");
    let answers = seen.lock().unwrap().clone();
    assert_eq!(answers[1].1["Status"], "SUCCESS");
    assert_eq!(answers[1].1["PhysicalResourceId"], physical.as_str());
    assert_eq!(rig.count("newOrder"), 1);

    // Delete: SUCCESS, no call to the CA.
    let calls = rig.events().len();
    let mut delete = cfn_event("Delete", &server.url());
    delete["PhysicalResourceId"] = json!(physical);
    let (ok, log, _) = rig.run(delete);
    assert!(ok, "{log}");
    assert_eq!(seen.lock().unwrap()[2].1["Status"], "SUCCESS");
    assert_eq!(rig.events().len(), calls);
    rig.assert_nothing_secret(&log);
}

#[test]
fn a_failed_create_is_answered_failed_with_the_reason() {
    let rig = Rig::new();
    rig.control(json!({"rate_limited": true}));
    let (server, seen) = response_url();
    let (ok, log, result) = rig.run(cfn_event("Create", &server.url()));
    assert!(ok, "the handler answers instead of raising:\n{log}");
    let answers = seen.lock().unwrap().clone();
    assert_eq!(answers.len(), 1, "{answers:?}");
    let body = &answers[0].1;
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains("rateLimited") && reason.contains("too many new certificates"),
        "{reason}"
    );
    assert_eq!(result["error"].as_str(), Some(reason));
    assert!(!body["PhysicalResourceId"].as_str().unwrap().is_empty());
}
