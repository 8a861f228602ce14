//! templates/scripts/bbb-bootstrap.sh's boot paths (issue 27, contract §3 and §4), function
//! by function and as the script strings them together, with the commands it calls faked
//! (recorded): which path a first boot takes (a builder by its instance tag, a baked image
//! by its baked.json against the pins, else bare); what each path runs, in order, each step
//! timed; server.env; the placeholder certificate bbb-install -d takes; bbb-identity's exit
//! status; and a builder's end: what it cleans, what it writes (baked.json), its last lines
//! (BAKED shipped) and its power-off, without a CloudFormation signal.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

mod support;

use support::Fakes;

const SCRIPT: &str = "templates/scripts/bbb-bootstrap.sh";

fn script() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT)).unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A constant of the script (`readonly NAME="value"`).
fn constant(name: &str) -> String {
    let text = script();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("readonly {name}=")))
        .unwrap_or_else(|| panic!("no constant {name}"));
    line.split_once('=')
        .unwrap()
        .1
        .trim_matches('"')
        .to_string()
}

/// The script's own log().
fn log_function() -> String {
    script()
        .lines()
        .find(|l| l.starts_with("log() {"))
        .unwrap()
        .to_string()
}

/// The pins as the script declares them.
fn pins() -> String {
    let mut text = String::new();
    for name in [
        "BBB_VERSION",
        "BBB_INSTALL_COMMIT",
        "SCALELITE_COMMIT",
        "EFS_UTILS_COMMIT",
    ] {
        text += &format!("{name}={}\n", constant(name));
    }
    text
}

const DIE: &str = "FAILURE_REASON=\"\"\ndie() { FAILURE_REASON=$*; echo \"die: $*\"; exit 1; }\n";

// ---- which path ----------------------------------------------------------------------

/// choose_path with the metadata service answering the instance tag from $FAKE_DIR/role (no
/// file: 404) and ETC_DIR in $FAKE_DIR/etc.
fn choose(fakes: &Fakes, mode: &str) -> (Output, String) {
    let prelude = format!(
        "{log}\n{DIE}{pins}MODE={mode}\nETC_DIR=$FAKE_DIR/etc\nBUILDER_TAG=bbbctl:role\nBUILDER_ROLE=bbb-builder\n\
         imds() {{ echo \"imds $1\" >>\"$FAKE_DIR/calls.log\"; [ \"$1\" = tags/instance/bbbctl:role ] && cat \"$FAKE_DIR/role\" 2>/dev/null || return 22; }}\n",
        log = log_function(),
        pins = pins()
    );
    let out = fakes.run_script(
        SCRIPT,
        &prelude,
        &["pins_json", "baked_mismatch", "choose_path"],
        "choose_path\necho \"PATH=${BOOT_PATH}\"\n",
    );
    let path = text(&out)
        .lines()
        .find_map(|l| l.strip_prefix("PATH="))
        .unwrap_or("")
        .to_string();
    (out, path)
}

fn baked_json(fakes: &Fakes, bbb_version: &str) {
    fs::create_dir_all(fakes.path("etc")).unwrap();
    fs::write(
        fakes.path("etc/baked.json"),
        format!(
            r#"{{"bbb_install_commit": "{}", "bbb_version": "{bbb_version}", "scalelite_commit": "{}", "efs_utils_commit": "{}", "baked_at": "2026-12-08T00:00:00Z"}}"#,
            constant("BBB_INSTALL_COMMIT"),
            constant("SCALELITE_COMMIT"),
            constant("EFS_UTILS_COMMIT")
        ),
    )
    .unwrap();
}

#[test]
fn a_first_boot_takes_the_bake_baked_or_bare_path() {
    // A bare Ubuntu image, no tag: bare.
    let fakes = Fakes::new();
    let (out, path) = choose(&fakes, "scalable");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(path, "bare");

    // The builder's tag in its metadata: bake.
    let fakes = Fakes::new();
    fs::write(fakes.path("role"), "bbb-builder").unwrap();
    let (out, path) = choose(&fakes, "scalable");
    assert_eq!(path, "bake", "{}", text(&out));
    assert!(text(&out).contains("this is a builder"));

    // A server's tag (the group's) is no builder's.
    let fakes = Fakes::new();
    fs::write(fakes.path("role"), "bbb-server").unwrap();
    assert_eq!(choose(&fakes, "scalable").1, "bare");

    // A baked image of these pins: baked.
    let fakes = Fakes::new();
    baked_json(&fakes, &constant("BBB_VERSION"));
    let (out, path) = choose(&fakes, "scalable");
    assert_eq!(path, "baked", "{}", text(&out));

    // A baked image of other pins: bare over it, and the log says why.
    let fakes = Fakes::new();
    baked_json(&fakes, "jammy-299");
    let (out, path) = choose(&fakes, "scalable");
    assert_eq!(path, "bare");
    assert!(
        text(&out).contains(&format!(
            "does not match the pins (bbb_version jammy-299, pinned {})",
            constant("BBB_VERSION")
        )),
        "{}",
        text(&out)
    );
    // An unreadable one likewise.
    let fakes = Fakes::new();
    fs::create_dir_all(fakes.path("etc")).unwrap();
    fs::write(fakes.path("etc/baked.json"), "{not json").unwrap();
    let (out, path) = choose(&fakes, "scalable");
    assert_eq!(path, "bare");
    assert!(text(&out).contains("unreadable"), "{}", text(&out));

    // A builder started from a baked image: refused.
    let fakes = Fakes::new();
    fs::write(fakes.path("role"), "bbb-builder").unwrap();
    baked_json(&fakes, &constant("BBB_VERSION"));
    let (out, _) = choose(&fakes, "scalable");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("a builder starts from the bare Ubuntu image"));

    // Single mode: always bare, no metadata asked.
    let fakes = Fakes::new();
    fs::write(fakes.path("role"), "bbb-builder").unwrap();
    baked_json(&fakes, &constant("BBB_VERSION"));
    assert_eq!(choose(&fakes, "single").1, "bare");
    assert!(
        !fs::read_to_string(fakes.path("calls.log"))
            .unwrap_or_default()
            .contains("imds")
    );
}

/// Scalable mode needs the fleet certificate's secret, an ARN of Secrets Manager's.
#[test]
fn scalable_mode_needs_the_certificate_secrets_arn() {
    let check = support::shell_function(SCRIPT, "check_arguments");
    for (secret, want) in [
        (
            "arn:aws:secretsmanager:eu-central-1:123456789012:secret:bbb-FleetCertificate-AbCdEf",
            "passed",
        ),
        ("", "die: scalable mode needs --cert-secret"),
        ("arn:aws:s3:::bucket", "die: invalid certificate secret ARN"),
        (
            "arn:aws:secretsmanager:eu-central-1:123456789012:secret:x;reboot",
            "die: invalid certificate secret ARN",
        ),
    ] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "die() {{ echo \"die: $*\"; exit 1; }}\nusage() {{ exit 2; }}\n{check}\n\
                 NOT_BASE64='' REGION=r STACK_NAME=s RESOURCE=g MODE=scalable DOMAIN=bbb.example.org \
                 HOSTED_ZONE=Z1 EMAIL=ops@example.org DATA_VOLUME='' REPORT_BUCKET=bbb-sources-1a2b \
                 EFS_ID=fs-0123abcd SPOOL_AP=fsap-0123abcd\nCERT_SECRET=$1\ncheck_arguments\necho passed"
            ))
            .arg("bash")
            .arg(secret)
            .output()
            .unwrap();
        assert!(text(&out).starts_with(want), "{secret}: {}", text(&out));
    }
}

// ---- what each path runs -----------------------------------------------------------------

/// The script's "paths" section, run with every step function a recording fake: the steps
/// in order and the log (STEP lines).
fn paths(mode: &str, path: &str) -> (Output, Vec<String>, String) {
    let fakes = Fakes::new();
    let text_all = script();
    let start = text_all.find("# ---- the paths").unwrap();
    let end = start + text_all[start..].find("\nready\n").unwrap();
    let section = &text_all[start..end];
    let mut prelude = format!(
        "exec >>\"$FAKE_DIR/out.log\" 2>&1\n{log}\nMODE={mode}\nBOOT_PATH={path}\nSTATE_DIR=$FAKE_DIR\nCERT_DIR=/local/certs\nVERIFY_CA=\"\"\n",
        log = log_function()
    );
    for f in [
        "data_volume",
        "host_record",
        "quiet_apt",
        "install_bigbluebutton",
        "verify_bigbluebutton",
        "restore_apt_timers",
        "install_agent_service",
        "greenlight",
        "identity_first_boot",
        "mount_spool",
        "placeholder_certificate",
        "install_post_publish_hook",
        "identity_unit",
        "bake_clean",
    ] {
        prelude += &format!(
            "{f}() {{ echo \"{f}${{VERIFY_CA:+ ca=$VERIFY_CA}}\" >>\"$FAKE_DIR/steps\"; }}\n"
        );
    }
    prelude += "bake_finish() { echo bake_finish >>\"$FAKE_DIR/steps\"; exit 0; }\n";
    let out = fakes.run_script(SCRIPT, &prelude, &["tenths", "step"], section);
    let steps = fs::read_to_string(fakes.path("steps"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let log = fs::read_to_string(fakes.path("out.log")).unwrap_or_default();
    (out, steps, log)
}

#[test]
fn each_path_runs_its_own_steps_in_order_each_timed() {
    let (out, steps, log) = paths("scalable", "baked");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        steps,
        [
            "data_volume",
            "identity_first_boot",
            "verify_bigbluebutton",
            "mount_spool",
            "install_agent_service"
        ],
        "a baked image installs nothing"
    );
    for name in ["data-volume", "identity", "verify", "spool", "agent"] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("bbb-bootstrap: STEP {name} ")))
            .unwrap_or_else(|| panic!("no STEP {name}: {log}"));
        // <UTC RFC 3339> bbb-bootstrap: STEP <name> <seconds, one decimal>s
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.len() == 20, "{line}");
        let seconds = rest.rsplit(' ').next().unwrap();
        let number = seconds.strip_suffix('s').unwrap();
        assert!(
            number
                .split_once('.')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.len() == 1),
            "{line}"
        );
    }

    let (out, steps, _) = paths("scalable", "bare");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        steps,
        [
            "data_volume",
            "quiet_apt",
            "placeholder_certificate",
            "install_bigbluebutton",
            "restore_apt_timers",
            "mount_spool",
            "install_post_publish_hook",
            "identity_unit",
            "identity_first_boot",
            "verify_bigbluebutton",
            "install_agent_service",
        ],
        "bare: no Route 53 wait, the fleet certificate (bbb-identity) before the check over HTTPS"
    );

    let (out, steps, _) = paths("scalable", "bake");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        steps,
        [
            "data_volume",
            "quiet_apt",
            "placeholder_certificate",
            "install_bigbluebutton",
            "restore_apt_timers",
            "mount_spool",
            "install_post_publish_hook",
            "identity_unit",
            "verify_bigbluebutton ca=/local/certs/fullchain.pem",
            "install_agent_service ca=/local/certs/fullchain.pem",
            "bake_clean ca=/local/certs/fullchain.pem",
            "bake_finish",
        ],
        "bake: nothing of an identity; checked against its own placeholder"
    );

    let (out, steps, _) = paths("single", "bare");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        steps,
        [
            "data_volume",
            "host_record",
            "quiet_apt",
            "install_bigbluebutton",
            "verify_bigbluebutton",
            "restore_apt_timers",
            "install_agent_service",
            "greenlight",
        ],
        "single mode as before"
    );
}

// ---- server.env, the boot state ------------------------------------------------------------

#[test]
fn server_env_holds_the_servers_settings_as_data_readable_by_root_only() {
    for (mode, fleet) in [("scalable", "media.bbb.example.org"), ("single", "")] {
        let fakes = Fakes::new();
        let prelude = format!(
            "MODE={mode}\nREGION=eu-central-1\nSTACK_NAME=bbb-BbbServersStack-1A2B\nDOMAIN=bbb.example.org\n\
             HOST_NAME='bbb-0abc.media.bbb.example.org'\nCERT_SECRET=arn:aws:secretsmanager:eu-central-1:123456789012:secret:bbb-FleetCertificate-AbCdEf\n\
             REPORT_BUCKET=bbb-sources-sourcesbucket-0123\nLOG_GROUP=bbb-BootstrapLogGroup\nETC_DIR=$FAKE_DIR/etc/bbbctl\n"
        );
        let out = fakes.run_script(
            SCRIPT,
            &prelude,
            &["write_server_env"],
            "write_server_env\n",
        );
        assert!(out.status.success(), "{}", text(&out));
        let file = fakes.path("etc/bbbctl/server.env");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            format!(
                "MODE={mode}\nREGION=eu-central-1\nSTACK_NAME=bbb-BbbServersStack-1A2B\nDOMAIN=bbb.example.org\n\
                 FLEET_DOMAIN={fleet}\nHOST_NAME=bbb-0abc.media.bbb.example.org\n\
                 CERT_SECRET=arn:aws:secretsmanager:eu-central-1:123456789012:secret:bbb-FleetCertificate-AbCdEf\n\
                 REPORT_BUCKET=bbb-sources-sourcesbucket-0123\nLOG_GROUP=bbb-BootstrapLogGroup\n"
            )
        );
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!fakes.path("etc/bbbctl/server.env.new").exists());
    }
}

#[test]
fn the_boot_state_and_the_boot_line_follow_the_contract() {
    let fakes = Fakes::new();
    fs::write(fakes.path("uptime"), "83.46 120.00\n").unwrap();
    let prelude = format!(
        "{log}\nBOOT_PATH=baked\nBOOT_STATE=$FAKE_DIR/run/bbbctl/boot\nUPTIME_FILE=$FAKE_DIR/uptime\nBOOT_STARTED=0\n",
        log = log_function()
    );
    let out = fakes.run_script(
        SCRIPT,
        &prelude,
        &["uptime_seconds", "boot_started", "boot_state", "boot_total"],
        "boot_started\nboot_state booting\ncat \"$BOOT_STATE\"\nboot_state ready\ncat \"$BOOT_STATE\"\nboot_total\ndate +%s\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    let lines: Vec<&str> = t.lines().collect();
    let now: i64 = lines[3].parse().unwrap();
    let booting: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(booting[0], "booting");
    let started: i64 = booting[1].parse().unwrap();
    assert!((now - 83 - started).abs() <= 1, "{t}");
    assert_eq!(booting[2], "baked");
    assert_eq!(lines[1], format!("ready {started} baked"));
    assert!(
        lines[2].ends_with(" bbb-bootstrap: BOOT baked 83.4s"),
        "{t}"
    );
}

// ---- certificate and identity --------------------------------------------------------------

#[test]
fn the_placeholder_certificate_names_the_host_and_only_root_reads_its_key() {
    support::ensure_packages(&["openssl"]);
    let fakes = Fakes::new();
    let prelude = format!(
        "{log}\n{DIE}HOST_NAME=bbb-baked.invalid\nCERT_DIR=$FAKE_DIR/local/certs\n",
        log = log_function()
    );
    let out = fakes.run_script(
        SCRIPT,
        &prelude,
        &["placeholder_certificate"],
        "placeholder_certificate\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let key = fakes.path("local/certs/privkey.pem");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cert = std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-in",
        ])
        .arg(fakes.path("local/certs/fullchain.pem"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&cert.stdout);
    assert!(
        shown.contains("CN = bbb-baked.invalid") || shown.contains("CN=bbb-baked.invalid"),
        "{shown}"
    );
    assert!(shown.contains("DNS:bbb-baked.invalid"), "{shown}");
    // bbb-install -d links exactly these two names (bbb-install.sh at the pinned commit).
    assert!(script().contains("options+=(-d)"));
}

#[test]
fn bbb_identitys_exit_status_is_the_truth() {
    for (rc, ok) in [(0, true), (3, false)] {
        let fakes = Fakes::new();
        fakes.fake("bbb-identity", &format!("exit {rc}"));
        let prelude = format!(
            "{log}\n{DIE}IDENTITY=$FAKE_DIR/bin/bbb-identity\nLOG_FILE=/var/log/bbb-bootstrap.log\n",
            log = log_function()
        );
        let out = fakes.run_script(
            SCRIPT,
            &prelude,
            &["identity_unit", "identity_first_boot"],
            "identity_first_boot\n",
        );
        assert_eq!(out.status.success(), ok, "{}", text(&out));
        assert_eq!(fakes.calls("bbb-identity"), ["--first-boot"]);
        if !ok {
            assert!(
                text(&out).contains("bbb-identity --first-boot failed with status 3"),
                "{}",
                text(&out)
            );
        }
    }
    let fakes = Fakes::new();
    fakes.fake("bbb-identity", "");
    let prelude = format!("{DIE}IDENTITY=$FAKE_DIR/bin/bbb-identity\n");
    let out = fakes.run_script(SCRIPT, &prelude, &["identity_unit"], "identity_unit\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fakes.calls("bbb-identity"), ["install"]);
    // Missing (the user data did not fetch it): a clear FAILED reason.
    let fakes = Fakes::new();
    let prelude = format!("{DIE}IDENTITY=$FAKE_DIR/bin/bbb-identity\n");
    let out = fakes.run_script(SCRIPT, &prelude, &["identity_unit"], "identity_unit\n");
    assert!(
        text(&out).contains("bbb-identity is missing"),
        "{}",
        text(&out)
    );
}

/// install_bigbluebutton's options: scalable servers take a provided certificate (-d, no
/// Let's Encrypt, no e-mail), single mode keeps its own (-e, -g).
#[test]
fn scalable_servers_install_without_lets_encrypt() {
    for (mode, want) in [
        (
            "scalable",
            "-v jammy-300 -s bbb-0abc.media.bbb.example.org -d",
        ),
        (
            "single",
            "-v jammy-300 -s bbb-0abc.media.bbb.example.org -e ops@example.org -g",
        ),
    ] {
        let fakes = Fakes::new();
        let installer = "echo \"$*\" >\"$FAKE_DIR/installer.args\"\n";
        let sum = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(installer.as_bytes()))
        };
        fs::write(fakes.path("installer.sh"), installer).unwrap();
        fakes.fake(
            "curl",
            r#"while [ $# -gt 0 ]; do [ "$1" = -o ] && cp "$FAKE_DIR/installer.sh" "$2"; shift; done"#,
        );
        let prelude = format!(
            "{log}\n{DIE}MODE={mode}\nSTATE_DIR=$FAKE_DIR\nBBB_VERSION=jammy-300\nHOST_NAME=bbb-0abc.media.bbb.example.org\n\
             EMAIL=ops@example.org\nBBB_INSTALL_SHA256={sum}\nBBB_INSTALL_URL=https://example.org/i.sh\nBBB_INSTALL_COMMIT=c\n\
             PUBLIC_IP=203.0.113.7\nLOCAL_IP=10.0.0.7\n\
             install_compose_shim() {{ :; }}\npin_greenlight() {{ :; }}\n",
            log = log_function()
        );
        let out = fakes.run_script(
            SCRIPT,
            &prelude,
            &["apt_errors", "install_bigbluebutton"],
            "install_bigbluebutton\n",
        );
        assert!(out.status.success(), "{mode}: {}", text(&out));
        assert_eq!(
            fs::read_to_string(fakes.path("installer.args"))
                .unwrap()
                .trim(),
            want
        );
    }
}

// ---- the builder's end ----------------------------------------------------------------------

/// A builder's tree after its install, below $FAKE_DIR/root.
fn builder_tree(fakes: &Fakes) {
    let root = fakes.path("root");
    let files: &[(&str, &str)] = &[
        ("etc/ssh/ssh_host_ed25519_key", "KEY"),
        ("etc/ssh/ssh_host_ed25519_key.pub", "PUB"),
        ("etc/ssh/sshd_config", "Port 22\n"),
        ("etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
        (
            "var/lib/dbus/machine-id",
            "0123456789abcdef0123456789abcdef\n",
        ),
        ("root/.ssh/authorized_keys", "ssh-ed25519 AAAA op\n"),
        ("home/ubuntu/.ssh/authorized_keys", "ssh-ed25519 AAAA op\n"),
        (
            "etc/bigbluebutton/bbb-web.properties",
            "securitySalt=builderssecret0123\nbigbluebutton.web.serverURL=https://bbb-baked.invalid\n",
        ),
        (
            "etc/turnserver.conf",
            "listening-port=3478\nstatic-auth-secret=buildersturn\nrealm=bbb-baked.invalid\n",
        ),
        (
            "etc/bigbluebutton/turn-stun-servers.xml",
            "<bean><constructor-arg index=\"0\" value=\"buildersturn\"/></bean>\n",
        ),
        ("etc/default/bbb-agent", "REPORT_BUCKET=b\n"),
        ("etc/default/bbb-logship", "LOG_STREAM=i-0builder\n"),
        ("etc/bbbctl/server.env", "HOST_NAME=bbb-baked.invalid\n"),
        ("var/lib/bbb-bootstrap/reported.sha256", "abc"),
        ("var/lib/bbb-bootstrap/logship-offset", "4096"),
        ("var/lib/bbb-bootstrap/logship-stream", ""),
        ("var/lib/bbb-bootstrap/bbb-install.out", "secret lines"),
        ("var/lib/bbb-bootstrap/efs-utils/build/x.deb", "deb"),
        ("var/lib/apt/lists/archive.ubuntu.com_Packages", "pkgs"),
        ("var/log/bbb-bootstrap.log", "lines of the builder\n"),
        ("var/log/syslog", "syslog\n"),
        ("var/log/syslog.1", "old\n"),
        ("var/log/nginx/access.log.2.gz", "gz"),
        ("var/bigbluebutton/.bbbctl/agent-saved/x", "saved"),
        ("var/bigbluebutton/published/.keep", ""),
        ("usr/local/sbin/bbb-identity", "#!/bin/sh\n"),
        ("local/certs/privkey.pem", "placeholder key"),
    ];
    for (path, content) in files {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
}

fn read(fakes: &Fakes, path: &str) -> String {
    fs::read_to_string(fakes.path("root").join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn a_builder_cleans_what_is_its_own_writes_baked_json_ships_baked_and_powers_off() {
    support::ensure_packages(&["openssl"]);
    let fakes = Fakes::new();
    builder_tree(&fakes);
    for cmd in [
        "systemctl",
        "apt-get",
        "umount",
        "cloud-init",
        "journalctl",
        "sync",
        "aws",
    ] {
        fakes.fake(cmd, "");
    }
    fakes.fake(
        "bbb-logship",
        r#"cp "$FAKE_DIR/out.log" "$FAKE_DIR/flushed.log""#,
    );
    fs::write(fakes.path("uptime"), "1234.56 1.0\n").unwrap();
    let prelude = format!(
        "exec >>\"$FAKE_DIR/out.log\" 2>&1\n{log}\n{DIE}{pins}ROOT=$FAKE_DIR/root\nETC_DIR=/etc/bbbctl\n\
         STATE_DIR=/var/lib/bbb-bootstrap\nDATA_DIR=/var/bigbluebutton\nSPOOL_DIR=/mnt/scalelite-recordings/var/bigbluebutton/spool\n\
         BOOT_PATH=bake\nBOOT_STATE=$FAKE_DIR/run/boot\nBOOT_STARTED=1767225600\nUPTIME_FILE=$FAKE_DIR/uptime\n\
         SHIPPING=true\nLOG_SHIPPER=bbb-logship\nFINISHED=false\nWATCHDOG=\"\"\nMODE=scalable\n",
        log = log_function(),
        pins = pins()
    );
    let out = fakes.run_script(
        SCRIPT,
        &prelude,
        &[
            "pins_json",
            "rotate_secret",
            "bake_clean",
            "write_baked",
            "uptime_seconds",
            "boot_total",
            "flush_log",
            "stop_watchdog",
            "bake_finish",
        ],
        "bake_clean\nbake_finish\necho NOT-REACHED\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let log = fs::read_to_string(fakes.path("out.log")).unwrap();
    assert!(!log.contains("NOT-REACHED"), "bake_finish ends the run");

    // Cleaned: per-instance identity, state and secrets.
    let root = fakes.path("root");
    for gone in [
        "etc/ssh/ssh_host_ed25519_key",
        "etc/ssh/ssh_host_ed25519_key.pub",
        "var/lib/dbus/machine-id",
        "root/.ssh/authorized_keys",
        "home/ubuntu/.ssh/authorized_keys",
        "etc/default/bbb-agent",
        "etc/default/bbb-logship",
        "etc/bbbctl/server.env",
        "var/lib/bbb-bootstrap/reported.sha256",
        "var/lib/bbb-bootstrap/logship-offset",
        "var/lib/bbb-bootstrap/logship-stream",
        "var/lib/bbb-bootstrap/bbb-install.out",
        "var/lib/bbb-bootstrap/efs-utils",
        "var/lib/apt/lists/archive.ubuntu.com_Packages",
        "var/log/syslog.1",
        "var/log/nginx/access.log.2.gz",
        "var/bigbluebutton/.bbbctl/agent-saved",
    ] {
        assert!(!root.join(gone).exists(), "{gone} is still there");
    }
    assert_eq!(
        read(&fakes, "etc/machine-id"),
        "",
        "empty: systemd makes a new one at boot"
    );
    assert_eq!(read(&fakes, "var/log/bbb-bootstrap.log"), "");
    assert_eq!(read(&fakes, "var/log/syslog"), "");
    // Kept: what the image is for.
    assert_eq!(read(&fakes, "etc/ssh/sshd_config"), "Port 22\n");
    assert!(root.join("var/bigbluebutton/published/.keep").exists());
    assert!(root.join("usr/local/sbin/bbb-identity").exists());
    assert!(root.join("local/certs/privkey.pem").exists());

    // Secrets: new random values, never empty, never the builder's; TURN's two copies agree.
    let web = read(&fakes, "etc/bigbluebutton/bbb-web.properties");
    let salt = web
        .lines()
        .find_map(|l| l.strip_prefix("securitySalt="))
        .unwrap();
    assert_eq!(salt.len(), 64);
    assert!(salt.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        web.contains("serverURL=https://bbb-baked.invalid"),
        "other lines kept"
    );
    let turn = read(&fakes, "etc/turnserver.conf");
    let secret = turn
        .lines()
        .find_map(|l| l.strip_prefix("static-auth-secret="))
        .unwrap();
    assert!(secret != "buildersturn" && secret.len() == 64, "{turn}");
    assert!(turn.contains("realm=bbb-baked.invalid"));
    assert_eq!(
        read(&fakes, "etc/bigbluebutton/turn-stun-servers.xml"),
        format!("<bean><constructor-arg index=\"0\" value=\"{secret}\"/></bean>\n")
    );
    assert!(
        !log.contains(secret) && !log.contains(salt),
        "no secret reaches the log"
    );

    // baked.json: the pins and when.
    let baked: serde_json::Value =
        serde_json::from_str(&read(&fakes, "etc/bbbctl/baked.json")).unwrap();
    assert_eq!(baked["bbb_version"], constant("BBB_VERSION").as_str());
    assert_eq!(
        baked["bbb_install_commit"],
        constant("BBB_INSTALL_COMMIT").as_str()
    );
    assert_eq!(
        baked["scalelite_commit"],
        constant("SCALELITE_COMMIT").as_str()
    );
    assert_eq!(
        baked["efs_utils_commit"],
        constant("EFS_UTILS_COMMIT").as_str()
    );
    assert!(baked["baked_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(baked.as_object().unwrap().len(), 5);

    // The last lines, shipped: BOOT, baked.json (bbbctl tags the image from it), BAKED.
    let flushed = fs::read_to_string(fakes.path("flushed.log")).unwrap();
    let last: Vec<&str> = flushed.lines().rev().take(3).collect();
    assert!(last[0].ends_with(" bbb-bootstrap: BAKED"), "{flushed}");
    assert!(
        last[1].contains(" bbb-bootstrap: baked.json: {"),
        "{flushed}"
    );
    assert!(
        last[2].ends_with(" bbb-bootstrap: BOOT bake 1234.5s"),
        "{flushed}"
    );

    // What it called: the agent disabled, caches, the spool let go, after the flush the log
    // shipper stopped, cloud-init's state cleaned (user data runs on every instance of the
    // image), the power-off last; no CloudFormation signal (a builder is no group member).
    let calls = fs::read_to_string(fakes.path("calls.log")).unwrap();
    let at = |what: &str| {
        calls
            .find(what)
            .unwrap_or_else(|| panic!("no {what}: {calls}"))
    };
    for what in [
        "systemctl disable bbb-agent.service",
        "apt-get clean",
        "umount /mnt/scalelite-recordings/var/bigbluebutton/spool",
    ] {
        assert!(
            at(what) < at("bbb-logship flush"),
            "{what} before the BAKED line"
        );
    }
    assert!(at("bbb-logship flush") < at("systemctl disable --now bbb-logship.service"));
    assert!(at("bbb-logship flush") < at("cloud-init clean --logs"));
    assert!(calls.trim_end().ends_with("systemctl poweroff"), "{calls}");
    assert!(fakes.calls("aws").is_empty(), "a builder never signals");
}
