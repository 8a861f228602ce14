//! The servers' user data (templates/bbb-servers.yaml, ServerLaunchTemplate), rendered as
//! CloudFormation renders it (Fn::Sub with the parameters substituted, Fn::Base64 and Fn::If
//! where the template applies them) and run with bash, every command it calls faked on PATH:
//! values an operator chose reach the bootstrap byte for byte as data, whatever they hold,
//! and nothing of them runs (issue 25: no parameter value is ever evaluated by a shell); a
//! script whose content does not match the sha256 in its key is never run, and the stack is
//! told (FAILURE).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_yaml_ng::Value;
use sha2::Digest;

mod support;

use support::Fakes;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The launch template's `UserData` as written: `Fn::Base64` of `!Sub [text, variables]`.
fn user_data_source() -> (String, serde_yaml_ng::Mapping) {
    let doc: Value = serde_yaml_ng::from_str(
        &fs::read_to_string(repo().join("templates/bbb-servers.yaml")).unwrap(),
    )
    .unwrap();
    let user_data = &doc["Resources"]["ServerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
        ["Fn::Base64"];
    let Value::Tagged(sub) = user_data else {
        panic!("UserData is Fn::Base64 of !Sub: {user_data:?}")
    };
    assert_eq!(tag(&sub.tag), "Sub");
    let parts = sub.value.as_sequence().expect("!Sub [text, variables]");
    (
        parts[0].as_str().unwrap().to_string(),
        parts[1].as_mapping().unwrap().clone(),
    )
}

fn tag(t: &serde_yaml_ng::value::Tag) -> String {
    t.to_string().trim_start_matches('!').to_string()
}

/// RFC 4648 base64, as Fn::Base64 gives it (one line, padded).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(ABC[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct Stack {
    params: BTreeMap<&'static str, String>,
    conditions: BTreeMap<&'static str, bool>,
}

impl Stack {
    /// `Ref`: a parameter, a pseudo parameter or (a stand-in for) a resource of the stack.
    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::Region" => "eu-central-1".into(),
            "AWS::StackName" => "bbb-BbbServersStack-1A2B3C".into(),
            "BootstrapLogGroup" => "bbb-BbbServersStack-1A2B3C-BootstrapLogGroup-4D5E".into(),
            "DataVolume" => "vol-0123abcd".into(),
            "FleetCertificateSecret" => {
                "arn:aws:secretsmanager:eu-central-1:123456789012:secret:BBB-bbb-FleetCertificate-AbCdEf".into()
            }
            _ => self
                .params
                .get(name)
                .unwrap_or_else(|| {
                    panic!("the user data refers to {name}, which the test does not set")
                })
                .clone(),
        }
    }

    /// A value of the `!Sub` variable map, evaluated.
    fn eval(&self, v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Tagged(t) => match tag(&t.tag).as_str() {
                "Ref" => self.reference(t.value.as_str().unwrap()),
                "Base64" => base64(self.eval(&t.value).as_bytes()),
                "If" => {
                    let s = t.value.as_sequence().unwrap();
                    let cond = self.conditions[s[0].as_str().unwrap()];
                    self.eval(&s[if cond { 1 } else { 2 }])
                }
                other => panic!("!{other} in the user data's variables: teach the test"),
            },
            Value::Mapping(m) if m.len() == 1 => {
                let (k, inner) = m.iter().next().unwrap();
                match k.as_str().unwrap() {
                    "Ref" => self.reference(inner.as_str().unwrap()),
                    "Fn::Base64" => base64(self.eval(inner).as_bytes()),
                    other => panic!("{other} in the user data's variables: teach the test"),
                }
            }
            other => panic!("unexpected value {other:?}"),
        }
    }

    /// The user data as the instance gets it.
    fn render(&self) -> String {
        let (text, vars) = user_data_source();
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_string(), self.eval(v)))
            .collect();
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            if let Some(literal) = after.strip_prefix('!') {
                out.push_str("${");
                rest = literal;
                continue;
            }
            let end = after.find('}').unwrap();
            let name = &after[..end];
            out.push_str(
                &vars
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| self.reference(name)),
            );
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// Values that passed no pattern: everything a shell could act on.
fn hostile(marker: &Path) -> [String; 3] {
    let m = marker.display();
    [
        format!("x$(touch {m}).`touch {m}`;'\"\n y z $HOME ${{PATH}}.org"),
        format!("Z1'; touch {m}; echo '\"$(touch {m})\"\n"),
        format!("ops$team@x.org\"; touch {m}; `touch {m}` '$(touch {m})'\n@"),
    ]
}

const BOOTSTRAP_FAKE: &str = "#!/bin/bash\n# stands in for bbb-bootstrap.sh: records its arguments, NUL-separated\nprintf '%s\\0' \"$@\" >\"$FAKE_DIR/bootstrap.argv\"\n";

/// A rig: the scripts in a fake bucket under their content keys (unless `tamper`), the user
/// data of `stack` rendered with them, its absolute paths moved into the rig.
fn run(stack: &mut Stack, tamper: bool) -> (Output, Fakes) {
    let fakes = Fakes::new();
    let dir = fakes.dir.path().to_path_buf();
    fs::create_dir_all(dir.join("bucket/scripts")).unwrap();
    fs::create_dir_all(dir.join("sbin")).unwrap();
    fs::create_dir_all(dir.join("log")).unwrap();
    for (param, name, body) in [
        ("BootstrapScriptKey", "bbb-bootstrap", BOOTSTRAP_FAKE),
        ("AgentScriptKey", "bbb-agent", "#!/bin/bash\n"),
        ("LogShipperScriptKey", "bbb-logship", "#!/bin/bash\n"),
        ("IdentityScriptKey", "bbb-identity", "#!/bin/bash\n"),
    ] {
        let key = format!(
            "scripts/{name}-{}.sh",
            hex::encode(sha2::Sha256::digest(body.as_bytes()))
        );
        let stored = if tamper && name == "bbb-bootstrap" {
            format!("{body}touch {}\n", dir.join("tampered-ran").display())
        } else {
            body.to_string()
        };
        fs::write(dir.join("bucket").join(&key), stored).unwrap();
        stack.params.insert(param, key);
    }
    // aws: `s3 cp s3://BUCKET/KEY FILE` copies from the fake bucket; anything else is recorded.
    fakes.fake(
        "aws",
        r#"if [ "$1 $2" = "s3 cp" ]; then
  for a in "$@"; do case "$a" in s3://*) src=${a#s3://*/} ;; esac; done
  dest=${!#}
  cp "$FAKE_DIR/bucket/$src" "$dest"
fi"#,
    );
    fakes.fake(
        "curl",
        r#"case "$*" in *api/token*) echo token ;; *instance-id*) echo i-0abc1234 ;; esac"#,
    );
    for name in ["apt-get", "snap"] {
        fakes.fake(name, "");
    }
    let text = stack
        .render()
        .replace("/usr/local/sbin/", &format!("{}/sbin/", dir.display()))
        .replace("/var/log/", &format!("{}/log/", dir.display()));
    fs::write(dir.join("user-data"), &text).unwrap();
    let out = Command::new("bash")
        .arg(dir.join("user-data"))
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", dir.join("bin").display()),
        )
        .env("FAKE_DIR", &dir)
        .env("HOME", &dir)
        .output()
        .expect("bash runs");
    (out, fakes)
}

fn stack(mode: &str, domain: &str, zone: &str, email: &str) -> Stack {
    let single = mode == "single";
    let mut params = BTreeMap::new();
    for (k, v) in [
        ("EnvironmentType", mode),
        ("DomainName", domain),
        ("HostedZoneId", zone),
        ("OperatorEMail", email),
        ("SourcesBucket", "bbb-sources-bucket-1a2b"),
        (
            "AdminSecretArn",
            "arn:aws:secretsmanager:eu-central-1:123456789012:secret:bbb/admin-AbCdEf",
        ),
        (
            "SmtpSecretArn",
            "arn:aws:secretsmanager:eu-central-1:123456789012:secret:bbb/smtp-AbCdEf",
        ),
        ("FileSystemId", if single { "" } else { "fs-0123abcd" }),
        (
            "SpoolAccessPointId",
            if single { "" } else { "fsap-0123abcd" },
        ),
        (
            "LoadBalancerSecretArn",
            if single {
                ""
            } else {
                "arn:aws:secretsmanager:eu-central-1:123456789012:secret:bbb/lb-AbCdEf"
            },
        ),
        (
            "AddressAllocationId",
            if single { "eipalloc-0123abcd" } else { "" },
        ),
    ] {
        params.insert(k, v.to_string());
    }
    Stack {
        params,
        conditions: [
            ("IsSingle", single),
            ("IsScalable", !single),
            ("KeepData", single),
        ]
        .into_iter()
        .collect(),
    }
}

/// The bootstrap's arguments, as it received them.
fn argv(fakes: &Fakes) -> Vec<String> {
    let raw = fs::read(fakes.path("bootstrap.argv")).expect("the bootstrap ran");
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect()
}

fn decode(b64: &str) -> Vec<u8> {
    let out = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b64.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn the_operators_values_reach_the_bootstrap_as_data_and_nothing_of_them_runs() {
    // The template never puts these values into the script text itself.
    let (text, _) = user_data_source();
    for name in ["DomainName", "HostedZoneId", "OperatorEMail"] {
        assert!(
            !text.contains(&format!("${{{name}}}")),
            "${{{name}}} in the user data"
        );
    }
    for mode in ["scalable", "single"] {
        let marker_dir = tempfile::tempdir().unwrap();
        let marker = marker_dir.path().join("x");
        let [domain, zone, email] = hostile(&marker);
        let mut s = stack(mode, &domain, &zone, &email);
        let (out, fakes) = run(&mut s, false);
        let log = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {log}");
        assert!(!marker.exists(), "{mode}: a value was run as a command");
        let args = argv(&fakes);
        let value = |flag: &str| {
            let i = args
                .iter()
                .position(|a| a == flag)
                .unwrap_or_else(|| panic!("{flag} in {args:?}"));
            args[i + 1].clone()
        };
        for (flag, want) in [
            ("--domain-b64", &domain),
            ("--hosted-zone-b64", &zone),
            ("--email-b64", &email),
        ] {
            let got = value(flag);
            assert!(
                got.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)),
                "{flag} {got:?}"
            );
            assert_eq!(
                decode(&got),
                want.as_bytes(),
                "{mode} {flag}: byte for byte"
            );
        }
        assert!(
            !args
                .iter()
                .any(|a| a == "--domain" || a == "--email" || a == "--hosted-zone")
        );
        assert_eq!(value("--mode"), mode);
        assert_eq!(value("--stack-name"), "bbb-BbbServersStack-1A2B3C");
        // Issue 26: both modes run bbb-agent, which reports to the sources bucket.
        assert_eq!(
            value("--report-bucket"),
            "bbb-sources-bucket-1a2b",
            "{mode}"
        );
        // The scripts were fetched from their content keys and nothing was signalled.
        assert_eq!(fakes.calls("aws").len(), 4, "{:?}", fakes.calls("aws"));
        assert!(fakes.calls("aws").iter().all(|c| {
            c.starts_with("s3 cp --region eu-central-1 s3://bbb-sources-bucket-1a2b/scripts/")
        }));
    }
}

/// The bootstrap's own decoding gives back the very bytes, and its checks refuse them.
#[test]
fn the_bootstrap_decodes_byte_for_byte_and_refuses_what_is_no_domain() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("x");
    let from_base64 = support::shell_function("templates/scripts/bbb-bootstrap.sh", "from_base64");
    for value in hostile(&marker) {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -euo pipefail\nNOT_BASE64=\"\"\n{from_base64}\nfrom_base64 V \"$1\"\n[[ -z \"$NOT_BASE64\" ]]\nprintf '%s' \"$V\""
            ))
            .arg("bash")
            .arg(base64(value.as_bytes()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, value.as_bytes());
    }
    assert!(!marker.exists());
    // Not base64: refused, named.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "NOT_BASE64=\"\"\n{from_base64}\nfrom_base64 DOMAIN '$(touch {})'\necho \"[$NOT_BASE64] [$DOMAIN]\"",
            marker.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[ DOMAIN] []\n");
    assert!(!marker.exists());
    // check_arguments refuses the decoded values with a FAILED-line reason.
    let check = support::shell_function("templates/scripts/bbb-bootstrap.sh", "check_arguments");
    let [domain, zone, email] = hostile(&marker);
    for (name, bad, reason) in [
        ("DOMAIN", domain.as_str(), "die: invalid domain: "),
        ("HOSTED_ZONE", zone.as_str(), "die: invalid hosted zone: "),
        ("EMAIL", email.as_str(), "die: invalid e-mail address: "),
    ] {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "die() {{ echo \"die: $*\"; exit 1; }}\nusage() {{ exit 2; }}\n{check}\n\
                 NOT_BASE64='' REGION=r STACK_NAME=s RESOURCE=g MODE=single DOMAIN=bbb.example.org \
                 HOSTED_ZONE=Z1 EMAIL=ops@example.org ADMIN_SECRET=a SMTP_SECRET=b \
                 ALLOCATION_ID=eipalloc-0123 DATA_VOLUME='' REPORT_BUCKET=bbb-sources-1a2b\n\
                 {name}=$1\ncheck_arguments\necho passed"
            ))
            .arg("bash")
            .arg(bad)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {text}");
        assert!(
            text.starts_with(reason) && !text.contains("passed"),
            "{name}: {text}"
        );
    }
    assert!(!marker.exists());

    // Issue 26: the report bucket is needed in both modes (bbb-agent runs in both), and a
    // name that is no bucket name is refused there too.
    let run = |mode_args: &str, bucket: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "die() {{ echo \"die: $*\"; exit 1; }}\nusage() {{ exit 2; }}\n{check}\n\
                 NOT_BASE64='' REGION=r STACK_NAME=s RESOURCE=g DOMAIN=bbb.example.org \
                 HOSTED_ZONE=Z1 EMAIL=ops@example.org DATA_VOLUME='' {mode_args}\n\
                 REPORT_BUCKET=$1\ncheck_arguments\necho passed"
            ))
            .arg("bash")
            .arg(bucket)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let single = "MODE=single ADMIN_SECRET=a SMTP_SECRET=b ALLOCATION_ID=eipalloc-0123";
    let scalable = "MODE=scalable EFS_ID=fs-0123abcd SPOOL_AP=fsap-0123abcd \
                    CERT_SECRET=arn:aws:secretsmanager:eu-central-1:123456789012:secret:bbb-FleetCertificate-AbCdEf";
    for mode in [single, scalable] {
        assert_eq!(
            run(mode, "bbb-sources-1a2b"),
            (Some(0), "passed\n".into()),
            "{mode}"
        );
        let (code, text) = run(mode, "");
        assert_eq!(code, Some(1), "{mode}: {text}");
        assert!(
            text.starts_with("die: --report-bucket is missing"),
            "{mode}: {text}"
        );
        let (code, text) = run(mode, "Bad_Bucket;x");
        assert_eq!(code, Some(1), "{mode}: {text}");
        assert!(
            text.starts_with("die: invalid bucket name: "),
            "{mode}: {text}"
        );
    }
}

#[test]
fn a_script_that_is_not_the_one_its_key_names_never_runs() {
    let mut s = stack("scalable", "bbb.example.org", "Z123", "ops@example.org");
    let (out, fakes) = run(&mut s, true);
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("arrived with sha256") && log.contains("not running it"),
        "{log}"
    );
    assert!(!fakes.path("tampered-ran").exists());
    assert!(!fakes.path("bootstrap.argv").exists());
    assert!(!fakes.path("sbin/bbb-bootstrap.sh").exists());
    let aws = fakes.calls("aws");
    assert!(
        aws.iter()
            .any(|c| c.starts_with("cloudformation signal-resource")
                && c.contains(
                    "--logical-resource-id ServerGroup --unique-id i-0abc1234 --status FAILURE"
                )),
        "{aws:?}"
    );
}
