//! Bad input: a one-line message that says what is wrong and how to fix it, exit code 2 for
//! usage errors (nothing sent to AWS) and 1 for operations AWS could not carry out, and no
//! change in the account.

mod common;

use common::*;

struct Case {
    name: &'static str,
    args: Vec<String>,
    code: i32,
    message: &'static str,
}

fn case(name: &'static str, args: &[&str], code: i32, message: &'static str) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        message,
    }
}

#[tokio::test]
async fn bad_input_is_explained_and_changes_nothing() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("bad"));
    let zone = hosted_zone(&aws, &domain).await;
    let other_zone = hosted_zone(&aws, &format!("{}.example.net", unique("other"))).await;
    let stack = unique("bad");
    let dir = scratch_dir();
    std::fs::write(
        dir.join("broken.json"),
        "{\"Parameters\": {\"BBBNumberOfAZs\": 2,}",
    )
    .unwrap();
    std::fs::write(
        dir.join("typo.json"),
        r#"{"Parameters": {"BBBNumberOfAZ": 2}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("two-image-sources.json"),
        r#"{"Parameters": {"BBBContainerRegistry": "mirror.example.org/hub/",
            "BBBDockerHubCredentialsArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbCdEf"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("not-a-cache-secret.json"),
        r#"{"Parameters": {"BBBDockerHubCredentialsArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:docker-hub-AbCdEf"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("range.json"),
        r#"{"Parameters": {"BBBNumberOfAZs": 5}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("mode.json"),
        r#"{"Parameters": {"BBBEnvironmentType": "huge"}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("shape.json"), r#"{"BBBNumberOfAZs": 2}"#).unwrap();
    std::fs::write(
        dir.join("nested.json"),
        r#"{"Parameters": {"BBBServerCount": [{"n": 1}]}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("internal.json"),
        r#"{"Parameters": {"TemplateBucket": "mine"}}"#,
    )
    .unwrap();

    let ok = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = setup_args(&zone, &stack, &domain, &[])
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let with = |mut base: Vec<String>, flag: &str, value: &str| -> Vec<String> {
        let i = base.iter().position(|a| a == flag).unwrap();
        base[i + 1] = value.to_string();
        base
    };
    let s = |v: Vec<String>| v;
    let cases = vec![
        case(
            "no stack",
            &["setup", "-e", "a@b.org", "-h", "Z1", "-d", "b.org"],
            2,
            "no deployment given: pass -s STACK",
        ),
        case(
            "no email",
            &["setup", "-h", &zone, "-s", &stack, "-d", &domain],
            2,
            "missing BBBOperatorEMail: pass -e EMAIL",
        ),
        Case {
            name: "bad email",
            args: with(ok(&[]), "-e", "ops.example.org"),
            code: 2,
            message: "is not a valid e-mail address",
        },
        Case {
            name: "bad domain",
            args: with(ok(&[]), "-d", "bbb_example"),
            code: 2,
            message: "Pass the name the platform should live under with -d",
        },
        Case {
            name: "bad zone id",
            args: with(ok(&[]), "-h", "example.org"),
            code: 2,
            message: "is not a Route53 hosted zone id",
        },
        Case {
            name: "bad stack",
            args: with(ok(&[]), "-s", "1bbb"),
            code: 2,
            message: "must start with a letter",
        },
        Case {
            name: "long stack",
            args: with(ok(&[]), "-s", &"b".repeat(40)),
            code: 2,
            message: "at most 32",
        },
        Case {
            name: "missing params",
            args: s(ok(&["--params", "nope.json"])),
            code: 2,
            message: "cannot read parameter file nope.json",
        },
        Case {
            name: "broken json",
            args: s(ok(&["--params", "broken.json"])),
            code: 2,
            message: "broken.json is not valid JSON",
        },
        Case {
            name: "wrong shape",
            args: s(ok(&["--params", "shape.json"])),
            code: 2,
            message: "has no \"Parameters\" object",
        },
        Case {
            name: "typo",
            args: s(ok(&["--params", "typo.json"])),
            code: 2,
            message: "Did you mean BBBNumberOfAZs?",
        },
        Case {
            name: "range",
            args: s(ok(&["--params", "range.json"])),
            code: 2,
            message: "BBBNumberOfAZs = \"5\" must be at most 3",
        },
        Case {
            name: "two image sources",
            args: s(ok(&["--params", "two-image-sources.json"])),
            code: 2,
            message: "rule OneImageSource",
        },
        Case {
            name: "docker hub secret not for ECR",
            args: s(ok(&["--params", "not-a-cache-secret.json"])),
            code: 2,
            message: "whose name starts with ecr-pullthroughcache/",
        },
        Case {
            name: "allowed values",
            args: s(ok(&["--params", "mode.json"])),
            code: 2,
            message: "must be one of scalable, single",
        },
        Case {
            name: "internal param",
            args: s(ok(&["--params", "internal.json"])),
            code: 2,
            message: "is set by bbbctl itself",
        },
        Case {
            name: "bad mode flag",
            args: s(ok(&["--mode", "tiny"])),
            code: 2,
            message: "invalid value 'tiny'",
        },
        Case {
            name: "templates dir",
            args: s(ok(&["--templates-dir", "nowhere"])),
            code: 2,
            message: "--templates-dir nowhere: not a folder",
        },
        Case {
            name: "endpoint",
            args: {
                let mut v = vec!["--endpoint-url".to_string(), "localhost".into()];
                v.extend(ok(&[]));
                v
            },
            code: 2,
            message: "--endpoint-url localhost: not a URL",
        },
        Case {
            name: "region",
            args: {
                let mut v = vec!["--region".to_string(), "Europe".into()];
                v.extend(ok(&[]));
                v
            },
            code: 2,
            message: "not an AWS region name",
        },
        Case {
            name: "unknown zone",
            args: with(ok(&[]), "-h", "Z0000000000000NOPE"),
            code: 1,
            message: "hosted zone Z0000000000000NOPE (from -h) cannot be read",
        },
        Case {
            name: "domain not in zone",
            args: with(ok(&[]), "-h", &other_zone),
            code: 1,
            message: "is not in hosted zone",
        },
        case(
            "scale missing stack",
            &["scale", "-s", &stack, "--count", "2"],
            1,
            "does not exist. Check -s/--stack",
        ),
        case(
            "scale bad count",
            &["scale", "-s", &stack, "--count", "two"],
            2,
            "is not a whole number",
        ),
        case(
            "scale negative",
            &["scale", "-s", &stack, "--count", "-1"],
            2,
            "is not a whole number",
        ),
        case(
            "scale too many",
            &["scale", "-s", &stack, "--count", "500"],
            2,
            "Pass --max 500",
        ),
        case(
            "admin-login missing stack",
            &["admin-login", "-s", &stack],
            1,
            "does not exist",
        ),
        case(
            "status missing stack",
            &["status", "-s", &stack],
            1,
            "does not exist",
        ),
        case(
            "destroy missing stack",
            &["destroy", "-s", &stack, "--yes"],
            1,
            "neither stack",
        ),
        case(
            "log level",
            &["-l", "LOUD", "status", "-s", &stack],
            2,
            "invalid value 'LOUD'",
        ),
        case(
            "output format",
            &["--output", "yaml", "status", "-s", &stack],
            2,
            "invalid value 'yaml'",
        ),
        case(
            "count above --max",
            &["scale", "-s", &stack, "--count", "3", "--max", "2"],
            2,
            "above the ceiling of 2 servers",
        ),
        Case {
            name: "empty domain",
            args: with(ok(&[]), "-d", ""),
            code: 2,
            message: "missing BBBDomainName: pass -d DOMAIN",
        },
        Case {
            name: "params is a folder",
            args: s(ok(&["--params", "."])),
            code: 2,
            message: "cannot read parameter file .",
        },
        Case {
            name: "nested value",
            args: s(ok(&["--params", "nested.json"])),
            code: 2,
            message: "must be a string, a number or a list of them",
        },
    ];
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let o = bbbctl_in(&dir, &args);
        assert_eq!(
            o.status.code(),
            Some(c.code),
            "{}: exit code; stderr:\n{}",
            c.name,
            stderr(&o)
        );
        let err = stderr(&o);
        assert!(
            err.contains(c.message),
            "{}: expected {:?} in:\n{err}",
            c.name,
            c.message
        );
        assert!(err.starts_with("error:"), "{}: {err}", c.name);
    }
    // Every problem at once: a bad stack name, a bad address, and three bad parameters.
    std::fs::write(
        dir.join("several.json"),
        r#"{"Parameters": {"BBBNumberOfAZ": 2, "BBBServerCount": [{"n": 1}], "TemplateBucket": "x"}}"#,
    )
    .unwrap();
    let mut args = with(
        with(ok(&["--params", "several.json"]), "-s", "1bbb"),
        "-e",
        "ops.example.org",
    );
    args.retain(|a| !a.is_empty());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = bbbctl_in(&dir, &args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for expected in [
        "5 problems with the input",
        "stack name \"1bbb\" must start with a letter",
        "is not a valid e-mail address",
        "unknown parameter BBBNumberOfAZ in several.json. Did you mean BBBNumberOfAZs?",
        "parameter BBBServerCount in several.json must be a string",
        "parameter TemplateBucket in several.json is set by bbbctl itself",
    ] {
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }
    // Nothing was created by any of them.
    let left = live_stacks(&aws).await;
    assert!(!left.iter().any(|s| s.starts_with(&stack)), "{left:?}");
}

#[tokio::test]
async fn destroy_and_mode_switch_need_consent() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("yes"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("yes");
    let o = bbbctl(&setup_args(&zone, &stack, &domain, &[]));
    assert_code(&o, 0);
    let o = bbbctl(&["destroy", "-s", &stack]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("pass --yes"), "{}", stderr(&o));
    assert!(
        live_stacks(&aws).await.contains(&stack),
        "destroy without consent deleted something"
    );
    // A mode switch says what goes and needs consent; without it nothing changes.
    let switch = setup_args(&zone, &stack, &domain, &["--mode", "single"]);
    let o = bbbctl(&switch);
    assert_code(&o, 2);
    assert!(
        stdout(&o).contains(&format!(
            "Deployment {stack} switches from scalable to single mode."
        )),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("removed: DatabaseStack — the Aurora database of Greenlight and Scalelite is deleted; CloudFormation keeps a final snapshot"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("pass --yes"), "{}", stderr(&o));
    let (_, outputs) = root(&aws, &stack).await;
    assert_eq!(outputs["EnvironmentType"], "scalable");
    let mut with_yes = switch.to_vec();
    with_yes.push("--yes");
    // The switch drains the servers first: the registrar's part, on the emulator.
    let _registrar = common::registrar::Registrar::everywhere();
    let o = bbbctl(&with_yes);
    assert_code(&o, 0);
    let (status, outputs) = root(&aws, &stack).await;
    assert_eq!(status, "UPDATE_COMPLETE");
    assert_eq!(outputs["EnvironmentType"], "single");

    // single mode cannot scale
    let o = bbbctl(&["scale", "-s", &stack, "--count", "3"]);
    assert_code(&o, 1);
    assert!(stderr(&o).contains("single mode"), "{}", stderr(&o));
    let o = bbbctl(&["destroy", "-s", &stack, "-y"]);
    assert_code(&o, 0);
}

/// Values a shell would act on (issue 25), from the flags and from the parameter file: each
/// refused before anything is sent, with a message that names the parameter or flag and the
/// fix, exit code 2, and nothing of them run or created.
#[tokio::test]
async fn values_a_shell_would_act_on_are_refused_from_flags_and_file() {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("sh"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("sh");
    let dir = scratch_dir();
    let marker = dir.join("ran");
    let m = marker.display().to_string();
    let hostile = [
        format!("a$(touch {m})@x.org"),
        format!("a`touch {m}`@x.org"),
        "ops$team@x.org".to_string(),
        "o'ps@x.org".to_string(),
        "o\"ps@x.org".to_string(),
        "ops@x.org\nroot@x.org".to_string(),
        format!("ops@x.org;touch {m}"),
        "ops @x.org".to_string(),
    ];
    let base: Vec<String> = setup_args(&zone, &stack, &domain, &[])
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut runs = 0;
    for (param, flag) in [
        ("BBBOperatorEMail", "-e"),
        ("BBBDomainName", "-d"),
        ("BBBHostedZone", "-h"),
    ] {
        for (n, value) in hostile.iter().enumerate() {
            // From the flag.
            let mut args = base.clone();
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1] = value.clone();
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = bbbctl_in(&dir, &a);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{flag} {value:?}: {err}");
            assert!(
                err.starts_with("error:") && err.contains(&format!("with {flag}, e.g.")),
                "{flag} {value:?}: {err}"
            );
            // From the parameter file (the flag left out).
            let file = format!("hostile-{param}-{n}.json");
            std::fs::write(
                dir.join(&file),
                serde_json::json!({ "Parameters": { param: value } }).to_string(),
            )
            .unwrap();
            let mut args = base.clone();
            let i = args.iter().position(|a| a == flag).unwrap();
            args.drain(i..i + 2);
            args.extend(["--params".to_string(), file.clone()]);
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = bbbctl_in(&dir, &a);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{file}: {err}");
            assert!(
                err.starts_with("error:")
                    && err.contains(&format!("parameter {param} in {file}: "))
                    && err.contains(&format!("(the check of {flag}). Fix it in {file}")),
                "{file}: {err}"
            );
            runs += 2;
        }
    }
    assert_eq!(runs, 48);
    assert!(!marker.exists(), "a value was run as a command");
    let left = live_stacks(&aws).await;
    assert!(!left.iter().any(|s| s.starts_with(&stack)), "{left:?}");
}
