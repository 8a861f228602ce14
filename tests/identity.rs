//! A scalable server's identity (templates/scripts/bbb-identity.sh) run for real over a
//! copy of tests/fixtures/bbb-tree (the files BigBlueButton 3.0 keeps its name, addresses
//! and secrets in, as bbb-install and the packages write them, with a baked image's
//! builder's identity), with the commands it calls faked and recorded: aws (the fleet
//! certificate secret), curl (IMDSv2), systemctl, ip, iptables/iptables-restore, nginx and
//! haproxy. openssl and python3 are the real ones; certificates come from a test CA.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{Fakes, TestCa};

const OLD_HOST: &str = "bbb-0b1d0e12.media.example.org";
const OLD_PUBLIC: &str = "198.51.100.7";
const OLD_PRIVATE: &str = "10.0.1.7";
const INSTANCE: &str = "i-0abc1234";
const HOST: &str = "bbb-0abc1234.media.example.org";
const PUBLIC: &str = "203.0.113.20";
const PRIVATE: &str = "10.0.2.20";
const BUILDER_SALT: &str = "builderSalt0123456789abcdefBuilderSalt0123";
const BUILDER_TURN: &str = "Zm9vYmFyYnVpbGRlcnR1cm5zZWNyZXQwMTIzNDU2Nzg=";
const SECRET_ARN: &str =
    "arn:aws:secretsmanager:eu-central-1:123456789012:secret:FleetCertificate-AbCdEf";

/// The units bbb-identity may restart or reload, in its order.
const UNITS: [&str; 7] = [
    "nginx",
    "haproxy",
    "coturn",
    "freeswitch",
    "bbb-webrtc-sfu",
    "bbb-apps-akka",
    "bbb-web",
];

/// The AWS CLI: secretsmanager get-secret-value answers secret.json; anything else fails.
const FAKE_AWS: &str = r#"
case "$1 $2" in
  "secretsmanager get-secret-value") cat "$FAKE_DIR/secret.json" ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 255 ;;
esac"#;

/// curl as IMDSv2 answers it: a token for the PUT, the metadata only with that token.
const FAKE_CURL: &str = r#"
case "$*" in
  *"-X PUT"*"/latest/api/token") echo token-1; exit 0 ;;
esac
case "$*" in *"X-aws-ec2-metadata-token: token-1"*) ;; *) echo "401" >&2; exit 22 ;; esac
case "$*" in
  */meta-data/instance-id) cat "$FAKE_DIR/instance-id" ;;
  */meta-data/public-ipv4) cat "$FAKE_DIR/public-ip" ;;
  */meta-data/local-ipv4) cat "$FAKE_DIR/private-ip" ;;
  *) exit 22 ;;
esac"#;

/// systemctl: is-active answers states/<unit> (active when missing); restart of a unit
/// runs hooks/<unit> when there is one (a package rewriting its file, say).
const FAKE_SYSTEMCTL: &str = r#"
unit=${2%.service}
case "$1" in
  is-active) cat "$FAKE_DIR/states/$unit" 2>/dev/null || echo active ;;
  restart | reload-or-restart) [ ! -x "$FAKE_DIR/hooks/$unit" ] || "$FAKE_DIR/hooks/$unit" ;;
esac
exit 0"#;

/// ip: the addresses of lo kept in lo.addrs (one CIDR a line).
const FAKE_IP: &str = r#"
touch "$FAKE_DIR/lo.addrs"
case "$*" in
  "-4 -o addr show dev lo")
    echo "1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever"
    while read -r a; do echo "1: lo    inet $a scope global lo\       valid_lft forever preferred_lft forever"; done <"$FAKE_DIR/lo.addrs" ;;
  "addr add "*" dev lo") echo "$3" >>"$FAKE_DIR/lo.addrs" ;;
  "addr del "*" dev lo") grep -vxF "$3" "$FAKE_DIR/lo.addrs" >"$FAKE_DIR/lo.new"; mv "$FAKE_DIR/lo.new" "$FAKE_DIR/lo.addrs" ;;
  *) echo "fake ip: unexpected call: $*" >&2; exit 2 ;;
esac"#;

/// iptables-restore -T nat FILE loads the file's nat table into nat.loaded; iptables -t
/// nat -C OUTPUT ARGS succeeds when that rule is loaded.
const FAKE_IPTABLES_RESTORE: &str = r#"
[ "$1 $2" = "-T nat" ] || { echo "fake iptables-restore: only -T nat: $*" >&2; exit 2; }
awk '/^\*/ { t = $0 } t == "*nat" && /^-A / { print }' "$3" >"$FAKE_DIR/nat.loaded""#;
const FAKE_IPTABLES: &str = r#"
[ "$1 $2 $3" = "-t nat -C" ] || { echo "fake iptables: unexpected call: $*" >&2; exit 2; }
shift 3
grep -qxF -- "-A $*" "$FAKE_DIR/nat.loaded" 2>/dev/null"#;

/// nginx -t and haproxy -c: refuse when <name>-refuses exists.
const FAKE_CHECKER: &str = r#"[ ! -e "$FAKE_DIR/$(basename "$0")-refuses" ]"#;

struct Rig {
    fakes: Fakes,
    root: tempfile::TempDir,
    ca: TestCa,
}

impl Rig {
    fn new() -> Self {
        let fakes = Fakes::new();
        fakes.fake("aws", FAKE_AWS);
        fakes.fake("curl", FAKE_CURL);
        fakes.fake("systemctl", FAKE_SYSTEMCTL);
        fakes.fake("ip", FAKE_IP);
        fakes.fake("iptables-restore", FAKE_IPTABLES_RESTORE);
        fakes.fake("iptables", FAKE_IPTABLES);
        fakes.fake("nginx", FAKE_CHECKER);
        fakes.fake("haproxy", FAKE_CHECKER);
        fs::create_dir_all(fakes.path("states")).unwrap();
        fs::create_dir_all(fakes.path("hooks")).unwrap();
        let root = tempfile::tempdir().unwrap();
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bbb-tree"),
            root.path(),
        );
        fs::remove_file(root.path().join("README.md")).unwrap();
        fs::create_dir_all(root.path().join("etc/bbbctl")).unwrap();
        fs::write(
            root.path().join("etc/bbbctl/server.env"),
            format!(
                "MODE=scalable\nREGION=eu-central-1\nSTACK_NAME=bbb-servers\nDOMAIN=example.org\n\
                 FLEET_DOMAIN=media.example.org\nHOST_NAME={HOST}\nCERT_SECRET={SECRET_ARN}\n\
                 REPORT_BUCKET=bbb-sources-0123\nLOG_GROUP=bbb-boot\n"
            ),
        )
        .unwrap();
        // The builder's public address is still on lo (dummy-nic at the image's boot).
        fs::write(fakes.path("lo.addrs"), format!("{OLD_PUBLIC}/32\n")).unwrap();
        fs::write(fakes.path("instance-id"), INSTANCE).unwrap();
        let rig = Rig {
            fakes,
            root,
            ca: TestCa::new(),
        };
        rig.addresses(PUBLIC, PRIVATE);
        rig.issue();
        rig
    }

    fn addresses(&self, public: &str, private: &str) {
        fs::write(self.fakes.path("public-ip"), public).unwrap();
        fs::write(self.fakes.path("private-ip"), private).unwrap();
    }

    /// A new certificate for *.media.example.org in the secret (contract section 2);
    /// returns (certificate, chain, key) PEM.
    fn issue(&self) -> (String, String, String) {
        let (cert, key) = self.ca.issue(&["*.media.example.org"], 60);
        let cert = fs::read_to_string(cert).unwrap();
        let key = fs::read_to_string(key).unwrap();
        let chain = fs::read_to_string(&self.ca.ca).unwrap();
        let secret = serde_json::json!({
            "names": ["*.media.example.org"], "certificate": cert, "chain": chain, "key": key,
            "not_before": "2026-12-01T00:00:00Z", "not_after": "2027-01-30T00:00:00Z", "serial": "01",
        });
        fs::write(self.fakes.path("secret.json"), secret.to_string()).unwrap();
        (cert, chain, key)
    }

    fn file(&self, path: &str) -> PathBuf {
        self.root.path().join(path)
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.file(path)).unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/scripts/bbb-identity.sh");
        let path = format!(
            "{}:{}",
            self.fakes.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(script)
            .args(args)
            .env("PATH", path)
            .env("FAKE_DIR", self.fakes.dir.path())
            .env("BBB_IDENTITY_ROOT", self.root.path())
            .env_remove("JOURNAL_STREAM");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("bash runs")
    }

    /// Runs it and asserts success.
    fn ok(&self, args: &[&str]) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "bbb-identity {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn log(&self) -> String {
        fs::read_to_string(self.file("var/log/bbb-bootstrap.log")).unwrap_or_default()
    }

    /// Every file (content and mode) and link (target) below the root, but the log.
    fn tree(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out.remove("var/log/bbb-bootstrap.log");
        out
    }

    /// The calls of `name` recorded since the last `forget`.
    fn calls(&self, name: &str) -> Vec<String> {
        self.fakes.calls(name)
    }

    fn forget(&self) {
        for f in fs::read_dir(self.fakes.dir.path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "log") {
                fs::remove_file(p).unwrap();
            }
        }
    }

    /// The units restarted or reloaded: (verb, unit).
    fn actions(&self) -> Vec<(String, String)> {
        self.calls("systemctl")
            .iter()
            .filter_map(|c| {
                let mut w = c.split_whitespace();
                let verb = w.next()?.to_string();
                let unit = w
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(".service")
                    .to_string();
                (verb == "restart" || verb == "reload-or-restart").then_some((verb, unit))
            })
            .collect()
    }

    fn secret_values(&self) -> (Vec<String>, Vec<String>) {
        let props = self.read("etc/bigbluebutton/bbb-web.properties");
        let akka = self.read("etc/bigbluebutton/bbb-apps-akka.conf");
        let salts = props
            .lines()
            .filter_map(|l| l.strip_prefix("securitySalt="))
            .chain(akka.lines().filter_map(|l| {
                l.trim()
                    .strip_prefix("sharedSecret=\"")
                    .map(|v| v.trim_end_matches('"'))
            }))
            .map(str::to_string)
            .collect();
        let turn = self
            .read("etc/turnserver.conf")
            .lines()
            .filter_map(|l| l.strip_prefix("static-auth-secret="))
            .map(str::to_string)
            .chain(
                self.read("etc/bigbluebutton/turn-stun-servers.xml")
                    .lines()
                    .filter_map(|l| {
                        l.trim()
                            .strip_prefix("<constructor-arg index=\"0\" value=\"")
                    })
                    .map(|v| v.trim_end_matches("\"/>").to_string()),
            )
            .collect();
        (salts, turn)
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = path.strip_prefix(base).unwrap().display().to_string();
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            out.insert(
                name,
                format!("-> {}", fs::read_link(&path).unwrap().display()),
            );
        } else if kind.is_dir() {
            walk(base, &path, out);
        } else {
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            out.insert(
                name,
                format!("{mode:o}\n{}", fs::read_to_string(&path).unwrap()),
            );
        }
    }
}

/// The fixture's text with the builder's identity replaced by this server's.
fn renamed(text: &str) -> String {
    text.replace(OLD_HOST, HOST)
        .replace(OLD_PUBLIC, PUBLIC)
        .replace(&format!("{OLD_PRIVATE}/"), &format!("{PRIVATE}/"))
        .replace(&format!("{OLD_PRIVATE}:"), &format!("{PRIVATE}:"))
        .replace(&format!("={OLD_PRIVATE}\n"), &format!("={PRIVATE}\n"))
        .replace(&format!("=\"{OLD_PRIVATE}\""), &format!("=\"{PRIVATE}\""))
        .replace(
            &format!("local_ip_v4={OLD_PRIVATE}\""),
            &format!("local_ip_v4={PRIVATE}\""),
        )
        .replace(
            &format!("destination {OLD_PRIVATE}\n"),
            &format!("destination {PRIVATE}\n"),
        )
}

/// The files the address change must rewrite, and nothing else of the fixture.
const REWRITTEN: [&str; 14] = [
    "opt/freeswitch/etc/freeswitch/vars.xml",
    "opt/freeswitch/etc/freeswitch/sip_profiles/external.xml",
    "usr/share/bigbluebutton/nginx/sip.nginx",
    "lib/systemd/system/dummy-nic.service",
    "etc/bigbluebutton/bbb-webrtc-sfu/production.yml",
    "etc/turnserver.conf",
    "etc/haproxy/haproxy.cfg",
    "etc/iptables/rules.v4",
    "etc/bigbluebutton/bbb-web.properties",
    "etc/bigbluebutton/bbb-apps-akka.conf",
    "etc/bigbluebutton/turn-stun-servers.xml",
    "usr/local/bigbluebutton/core/scripts/bigbluebutton.yml",
    "etc/nginx/sites-available/bigbluebutton",
    "usr/share/bigbluebutton/html5-client/private/config/settings.yml",
];

#[test]
fn an_address_change_is_rewritten_everywhere_and_nothing_else_is_touched() {
    let rig = Rig::new();
    let before = rig.tree();
    rig.ok(&[]);
    let after = rig.tree();

    for (name, old) in &before {
        let new = after.get(name).unwrap_or_else(|| panic!("{name} is gone"));
        if name == "etc/haproxy/certbundle.pem" {
            continue;
        }
        if REWRITTEN.contains(&name.as_str()) {
            assert_ne!(old, new, "{name} should have been rewritten");
        }
        // Every file is the fixture with the builder's identity replaced, line for line,
        // mode kept: nothing else of it changed.
        assert_eq!(&renamed(old), new, "{name}");
    }
    // Nothing of the builder's identity is left anywhere.
    for (name, text) in &after {
        for old in [
            OLD_HOST,
            OLD_PUBLIC,
            &format!("{OLD_PRIVATE}:"),
            &format!("={OLD_PRIVATE}"),
        ] {
            assert!(!text.contains(old), "{name} still holds {old}:\n{text}");
        }
    }
    // What it added: the certificate, its links, the boot state.
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(
        added,
        [
            &format!("etc/letsencrypt/live/{HOST}/fullchain.pem"),
            &format!("etc/letsencrypt/live/{HOST}/privkey.pem"),
            &"local/certs/fullchain.pem".to_string(),
            &"local/certs/privkey.pem".to_string(),
            &"run/bbbctl/boot".to_string(),
        ]
    );
    // The secrets are not an address change's business.
    let (salts, turn) = rig.secret_values();
    assert!(salts.iter().all(|s| s == BUILDER_SALT), "{salts:?}");
    assert!(turn.iter().all(|s| s == BUILDER_TURN), "{turn:?}");

    // Faked calls: IMDSv2 (a token for each look), lo, the nat table, the checks, the reloads.
    let curls = rig.calls("curl");
    assert!(
        curls
            .iter()
            .any(|c| c.contains("-X PUT") && c.ends_with("/latest/api/token"))
    );
    assert!(curls.iter().any(|c| c.ends_with("/meta-data/public-ipv4")));
    assert_eq!(
        rig.calls("ip"),
        [
            "-4 -o addr show dev lo".to_string(),
            format!("addr del {OLD_PUBLIC}/32 dev lo"),
            format!("addr add {PUBLIC}/32 dev lo"),
            "-4 -o addr show dev lo".to_string(),
        ]
    );
    let restore = rig.calls("iptables-restore");
    assert_eq!(restore.len(), 1);
    assert!(restore[0].starts_with("-T nat ") && restore[0].ends_with("/etc/iptables/rules.v4"));
    assert_eq!(
        fs::read_to_string(rig.fakes.path("nat.loaded")).unwrap(),
        format!(
            "-A OUTPUT -s {PRIVATE}/32 -d {PUBLIC}/32 -p udp -j DNAT --to-destination {PRIVATE}\n"
        )
    );
    assert!(rig.calls("nginx").contains(&"-t -q".to_string()));
    assert_eq!(rig.calls("haproxy"), ["-c -q -f /etc/haproxy/haproxy.cfg"]);
    let expected: Vec<(String, String)> = UNITS
        .iter()
        .map(|u| {
            let verb = if *u == "nginx" || *u == "haproxy" {
                "reload-or-restart"
            } else {
                "restart"
            };
            (verb.to_string(), u.to_string())
        })
        .collect();
    assert_eq!(rig.actions(), expected);
    assert!(
        rig.calls("systemctl")
            .contains(&"daemon-reload".to_string())
    );
    assert_eq!(rig.calls("aws").len(), 1);

    // The log: the STEP lines and the BOOT line of contract section 4, the boot state.
    let log = rig.log();
    let step = regex::Regex::new(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ bbb-identity: STEP [a-z0-9-]+ \d+\.\ds$",
    )
    .unwrap();
    let steps: Vec<&str> = log.lines().filter(|l| l.contains(": STEP ")).collect();
    assert_eq!(steps.len(), 6, "{log}");
    assert!(steps.iter().all(|l| step.is_match(l)), "{steps:?}");
    let boot =
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ bbb-identity: BOOT restart \d+\.\ds$")
            .unwrap();
    assert!(log.lines().any(|l| boot.is_match(l)), "{log}");
    let state = rig.read("run/bbbctl/boot");
    let fields: Vec<&str> = state.split_whitespace().collect();
    assert_eq!((fields[0], fields[2]), ("ready", "restart"), "{state}");
    assert!(fields[1].parse::<u64>().unwrap() > 1_600_000_000);
    assert!(log.contains("self-check passed"), "{log}");
}

#[test]
fn a_second_run_changes_nothing_and_reloads_nothing() {
    let rig = Rig::new();
    rig.ok(&[]);
    let once = rig.tree();
    rig.forget();
    rig.ok(&[]);
    assert_eq!(once, rig.tree());
    assert!(rig.actions().is_empty(), "{:?}", rig.actions());
    assert!(rig.calls("iptables-restore").is_empty());
    assert!(rig.calls("haproxy").is_empty());
    assert!(
        !rig.calls("systemctl")
            .contains(&"daemon-reload".to_string())
    );
    assert_eq!(
        rig.calls("ip"),
        ["-4 -o addr show dev lo", "-4 -o addr show dev lo"]
    );
    assert!(rig.log().contains("fleet certificate unchanged"));
}

#[test]
fn a_new_public_address_reloads_only_what_holds_it() {
    let rig = Rig::new();
    rig.ok(&[]);
    let once = rig.tree();
    // Stopped and started: a new public address, the same private one and name.
    rig.addresses("203.0.113.99", PRIVATE);
    rig.forget();
    rig.ok(&[]);
    let after = rig.tree();
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| once.get(*k) != after.get(*k))
        .collect();
    assert_eq!(
        changed,
        [
            "etc/bigbluebutton/bbb-webrtc-sfu/production.yml",
            "etc/iptables/rules.v4",
            "etc/turnserver.conf",
            "lib/systemd/system/dummy-nic.service",
            "opt/freeswitch/etc/freeswitch/sip_profiles/external.xml",
            "opt/freeswitch/etc/freeswitch/vars.xml",
            "usr/share/bigbluebutton/nginx/sip.nginx",
        ]
    );
    assert_eq!(
        rig.actions(),
        [
            ("reload-or-restart".to_string(), "nginx".to_string()),
            ("restart".to_string(), "coturn".to_string()),
            ("restart".to_string(), "freeswitch".to_string()),
            ("restart".to_string(), "bbb-webrtc-sfu".to_string()),
        ]
    );
    assert_eq!(rig.calls("iptables-restore").len(), 1);
    let turn = rig.read("etc/turnserver.conf");
    assert!(
        turn.contains("allowed-peer-ip=203.0.113.99\nallowed-peer-ip=10.0.2.20\n"),
        "{turn}"
    );
    let rules = rig.read("etc/iptables/rules.v4");
    assert_eq!(
        rules.matches("-j DNAT").count(),
        1,
        "replaced, never appended:\n{rules}"
    );
    assert_eq!(
        fs::read_to_string(rig.fakes.path("lo.addrs")).unwrap(),
        "203.0.113.99/32\n"
    );
}

#[test]
fn a_service_not_started_yet_is_left_to_start_and_a_failed_one_is_started_again() {
    let rig = Rig::new();
    // At boot, before the services (bbb-identity.service is ordered before them).
    for unit in UNITS {
        fs::write(rig.fakes.path(&format!("states/{unit}")), "inactive\n").unwrap();
    }
    fs::write(rig.fakes.path("states/haproxy"), "failed\n").unwrap();
    fs::write(
        rig.fakes.path("hooks/haproxy"),
        format!(
            "#!/bin/sh\necho active >\"{}\"\n",
            rig.fakes.path("states/haproxy").display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        rig.fakes.path("hooks/haproxy"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    rig.ok(&[]);
    assert_eq!(
        rig.actions(),
        [("restart".to_string(), "haproxy".to_string())]
    );
    assert!(
        rig.log()
            .contains("freeswitch is inactive: it starts with its new configuration")
    );
}

#[test]
fn the_first_boot_of_a_baked_image_makes_its_own_secrets_everywhere_they_are_read() {
    let rig = Rig::new();
    fs::write(
        rig.file("etc/bbbctl/baked.json"),
        r#"{"bbb_install_commit": "26ce2d16c2a82ef962d685525b0c20bb89d4d151", "bbb_version": "jammy-300"}"#,
    )
    .unwrap();
    let out = rig.run(&["--first-boot"]);
    assert!(out.status.success(), "{}", rig.log());
    let (salts, turn) = rig.secret_values();
    assert_eq!(salts.len(), 2, "bbb-web and bbb-apps-akka: {salts:?}");
    assert_eq!(
        turn.len(),
        3,
        "coturn and bbb-web's two TURN servers: {turn:?}"
    );
    assert!(
        salts.iter().all(|s| s == &salts[0] && s != BUILDER_SALT),
        "{salts:?}"
    );
    assert!(
        turn.iter().all(|s| s == &turn[0] && s != BUILDER_TURN),
        "{turn:?}"
    );
    assert_ne!(salts[0], turn[0]);
    assert!(salts[0].len() >= 64);
    // No secret in the log or the output.
    let log = rig.log();
    let all = format!(
        "{log}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for s in [&salts[0], &turn[0]] {
        assert!(!all.contains(s.as_str()), "a secret reached the log");
    }
    assert!(!all.contains("PRIVATE KEY"), "the key reached the log");
    assert!(log.contains("per-server secrets made new"), "{log}");
    assert!(!log.contains("WARNING"), "{log}");
    // The bootstrap writes the boot's state and BOOT line on the first boot, not this.
    assert!(!rig.file("run/bbbctl/boot").exists());
    assert!(!log.contains(" BOOT "), "{log}");

    // Called again for the same instance (a retried bootstrap): the secrets stay.
    let tree = rig.tree();
    rig.forget();
    rig.ok(&["--first-boot"]);
    assert_eq!(tree, rig.tree());
    assert!(rig.actions().is_empty());
    // A later boot keeps them too.
    rig.ok(&[]);
    assert_eq!(rig.secret_values(), (salts, turn));
}

#[test]
fn a_settings_file_still_naming_the_builder_is_named_on_a_baked_first_boot() {
    // A place this script does not know (a BigBlueButton release writing the name somewhere
    // new): the boot goes on, and its log names the file for the operator.
    let rig = Rig::new();
    fs::write(rig.file("etc/bbbctl/baked.json"), "{}").unwrap();
    fs::write(
        rig.file("etc/bigbluebutton/new-place.yml"),
        "publicUrl: https://bbb-baked.invalid/somewhere\n",
    )
    .unwrap();
    let out = rig.run(&["--first-boot"]);
    assert!(out.status.success(), "{}", rig.log());
    assert!(
        rig.log().contains(
            "WARNING the builder's name bbb-baked.invalid is still in: /etc/bigbluebutton/new-place.yml"
        ),
        "{}",
        rig.log()
    );
    // A later boot (the name long replaced) does not look.
    rig.forget();
    fs::write(rig.file("var/log/bbb-bootstrap.log"), "").unwrap();
    rig.ok(&[]);
    assert!(!rig.log().contains("WARNING"), "{}", rig.log());
}

#[test]
fn a_release_without_the_sip_websocket_proxy_file_still_boots() {
    // Later BigBlueButton packages stop shipping sip.nginx (bbb-html5's after-install removes
    // it): nothing to rewrite there, everything else as before.
    let rig = Rig::new();
    fs::remove_file(rig.file("usr/share/bigbluebutton/nginx/sip.nginx")).unwrap();
    rig.ok(&[]);
    assert!(!rig.log().contains("FAILED"), "{}", rig.log());
    assert!(rig.log().contains("self-check passed"), "{}", rig.log());
}

#[test]
fn the_first_boot_of_a_bare_install_keeps_bbb_installs_fresh_secrets() {
    let rig = Rig::new();
    rig.ok(&["--first-boot"]);
    let (salts, turn) = rig.secret_values();
    assert!(salts.iter().all(|s| s == BUILDER_SALT));
    assert!(turn.iter().all(|s| s == BUILDER_TURN));
}

#[test]
fn the_certificate_goes_where_haproxy_and_the_provided_certificate_layout_read_it() {
    let rig = Rig::new();
    let (cert, chain, key) = rig.issue();
    rig.ok(&[]);
    let fullchain = format!("{}\n{}\n", cert.trim(), chain.trim());
    assert_eq!(rig.read("local/certs/fullchain.pem"), fullchain);
    assert_eq!(
        rig.read("local/certs/privkey.pem"),
        format!("{}\n", key.trim())
    );
    // haproxy's bundle as bbb-install's deploy hook builds it: fullchain, empty line, key.
    assert_eq!(
        rig.read("etc/haproxy/certbundle.pem"),
        format!("{fullchain}\n{}\n", key.trim())
    );
    let mode = |p: &str| fs::metadata(rig.file(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("local/certs/privkey.pem"), 0o600);
    assert_eq!(mode("etc/haproxy/certbundle.pem"), 0o600);
    assert_eq!(mode("local/certs/fullchain.pem"), 0o644);
    for name in ["fullchain", "privkey"] {
        assert_eq!(
            fs::read_link(rig.file(&format!("etc/letsencrypt/live/{HOST}/{name}.pem"))).unwrap(),
            PathBuf::from(format!("/local/certs/{name}.pem"))
        );
    }
}

#[test]
fn refresh_cert_on_a_builder_does_nothing() {
    // The hourly timer can fire on a builder whose bake takes more than 30 minutes: its
    // settings name the placeholder host, which has no certificate to refresh.
    let rig = Rig::new();
    let config = rig.file("etc/bbbctl/server.env");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace(&format!("HOST_NAME={HOST}"), "HOST_NAME=bbb-baked.invalid"),
    )
    .unwrap();
    let before = rig.tree();
    let out = rig.run(&["refresh-cert"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("FAILED"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(before, rig.tree());
    assert!(rig.actions().is_empty());
}

#[test]
fn refresh_cert_installs_a_renewed_certificate_and_reloads_haproxy_only() {
    let rig = Rig::new();
    rig.ok(&[]);
    let before = rig.tree();
    rig.forget();
    // Nothing new: nothing written, nothing reloaded.
    rig.ok(&["refresh-cert"]);
    assert_eq!(before, rig.tree());
    assert!(rig.actions().is_empty());
    // Renewed by the issuer: installed, haproxy (the only reader) reloaded.
    let (cert, _, key) = rig.issue();
    rig.forget();
    rig.ok(&["refresh-cert"]);
    let after = rig.tree();
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert_eq!(
        changed,
        [
            "etc/haproxy/certbundle.pem",
            "local/certs/fullchain.pem",
            "local/certs/privkey.pem"
        ]
    );
    assert!(
        rig.read("etc/haproxy/certbundle.pem")
            .starts_with(cert.trim())
    );
    assert!(
        rig.read("etc/haproxy/certbundle.pem")
            .ends_with(&format!("{}\n", key.trim()))
    );
    assert_eq!(rig.calls("haproxy"), ["-c -q -f /etc/haproxy/haproxy.cfg"]);
    assert_eq!(
        rig.actions(),
        [("reload-or-restart".to_string(), "haproxy".to_string())]
    );
    // It reads the secret and nothing else: no IMDS, no addresses.
    assert!(rig.calls("curl").is_empty() && rig.calls("ip").is_empty());
}

#[test]
fn a_secret_without_a_certificate_is_waited_for_then_fails_clearly() {
    let rig = Rig::new();
    fs::write(
        rig.fakes.path("secret.json"),
        r#"{"names": ["*.media.example.org"]}"#,
    )
    .unwrap();
    let out = rig.run_with(
        &[],
        &[
            ("BBB_IDENTITY_CERT_WAIT", "60"),
            ("BBB_IDENTITY_CERT_POLL", "15"),
        ],
    );
    assert!(!out.status.success());
    assert_eq!(
        rig.calls("aws").len(),
        5,
        "looked at 0, 15, 30, 45 and 60 s"
    );
    assert_eq!(rig.calls("sleep"), ["15", "15", "15", "15"]);
    let log = rig.log();
    let last = log.lines().last().unwrap();
    assert!(
        last.ends_with("bbb-identity: FAILED no certificate in the fleet certificate secret after 60 s (the issuer writes it; its log says why not)"),
        "{last}"
    );
    assert!(rig.read("run/bbbctl/boot").starts_with("failed "));
    assert!(!rig.file("local/certs/privkey.pem").exists());
    // refresh-cert does not wait (its timer comes back).
    rig.forget();
    assert!(!rig.run(&["refresh-cert"]).status.success());
    assert!(rig.calls("sleep").is_empty());

    // A certificate for other names is refused outright.
    let (cert, key) = rig.ca.issue(&["*.other.example.org"], 60);
    let secret = serde_json::json!({"names": ["*.other.example.org"],
        "certificate": fs::read_to_string(cert).unwrap(), "chain": "", "key": fs::read_to_string(key).unwrap()});
    fs::write(rig.fakes.path("secret.json"), secret.to_string()).unwrap();
    assert!(!rig.run(&[]).status.success());
    assert!(
        rig.log()
            .lines()
            .last()
            .unwrap()
            .contains("FAILED the fleet certificate secret is not usable")
    );
}

#[test]
fn the_self_check_catches_a_value_put_back_and_a_service_that_did_not_come_back() {
    let rig = Rig::new();
    // bbb-webrtc-sfu's restart puts the builder's address back into its file.
    let sfu = rig.file("etc/bigbluebutton/bbb-webrtc-sfu/production.yml");
    fs::write(
        rig.fakes.path("hooks/bbb-webrtc-sfu"),
        format!(
            "#!/bin/sh\nsed -i 's/  sip_ip: .*/  sip_ip: {OLD_PUBLIC}/' \"{}\"\n",
            sfu.display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        rig.fakes.path("hooks/bbb-webrtc-sfu"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    // coturn fails after its restart.
    fs::write(
        rig.fakes.path("hooks/coturn"),
        format!(
            "#!/bin/sh\necho failed >\"{}\"\n",
            rig.fakes.path("states/coturn").display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        rig.fakes.path("hooks/coturn"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = rig.run(&[]);
    assert!(!out.status.success());
    let log = rig.log();
    assert!(
        log.contains(&format!(
            "check: /etc/bigbluebutton/bbb-webrtc-sfu/production.yml: {OLD_PUBLIC} where {PUBLIC} belongs"
        )),
        "{log}"
    );
    assert!(
        log.contains("check: coturn is failed after its restart"),
        "{log}"
    );
    assert!(
        log.lines().last().unwrap().contains("FAILED self-check: "),
        "{log}"
    );
    assert!(rig.read("run/bbbctl/boot").starts_with("failed "));
}

#[test]
fn nginx_refusing_its_configuration_stops_the_run_before_any_reload() {
    let rig = Rig::new();
    fs::write(rig.fakes.path("nginx-refuses"), "").unwrap();
    assert!(!rig.run(&[]).status.success());
    assert!(rig.actions().is_empty());
    assert!(
        rig.log()
            .lines()
            .last()
            .unwrap()
            .contains("FAILED nginx refuses its configuration")
    );
}

#[test]
fn a_place_bbb_install_did_not_write_is_a_failure_not_a_guess() {
    let rig = Rig::new();
    let vars = rig.read("opt/freeswitch/etc/freeswitch/vars.xml");
    fs::write(
        rig.file("opt/freeswitch/etc/freeswitch/vars.xml"),
        vars.replace(
            "  <X-PRE-PROCESS cmd=\"set\" data=\"external_sip_ip=198.51.100.7\"/>\n",
            "",
        ),
    )
    .unwrap();
    assert!(!rig.run(&[]).status.success());
    assert!(
        rig.log()
            .lines()
            .last()
            .unwrap()
            .ends_with("FAILED /opt/freeswitch/etc/freeswitch/vars.xml: no external_sip_ip to set")
    );
}

#[test]
fn install_writes_the_boot_unit_before_the_services_and_the_hourly_certificate_timer() {
    let rig = Rig::new();
    rig.ok(&["install"]);
    let unit = rig.read("etc/systemd/system/bbb-identity.service");
    for want in [
        "Type=oneshot",
        "ExecStart=/usr/local/sbin/bbb-identity\n",
        "ConditionPathExists=/etc/bbbctl/server.env",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.contains(want), "{want}:\n{unit}");
    }
    let before = unit.lines().find(|l| l.starts_with("Before=")).unwrap();
    for service in [
        "dummy-nic",
        "freeswitch",
        "nginx",
        "haproxy",
        "coturn",
        "bbb-webrtc-sfu",
        "bbb-web",
        "bbb-apps-akka",
    ] {
        assert!(
            before
                .split(['=', ' '])
                .any(|w| w == format!("{service}.service")),
            "{before}"
        );
    }
    // dummy-nic, after this unit put the address on lo, exits 2 ("File exists"): success.
    let drop_in = rig.read("etc/systemd/system/dummy-nic.service.d/bbbctl.conf");
    assert!(
        drop_in.contains("[Service]\nSuccessExitStatus=2\n"),
        "{drop_in}"
    );
    let timer = rig.read("etc/systemd/system/bbb-cert-refresh.timer");
    assert!(
        timer.contains("OnUnitActiveSec=1h") && timer.contains("RandomizedDelaySec="),
        "{timer}"
    );
    let service = rig.read("etc/systemd/system/bbb-cert-refresh.service");
    assert!(
        service.contains("ExecStart=/usr/local/sbin/bbb-identity refresh-cert"),
        "{service}"
    );
    assert!(rig.file("usr/local/sbin/bbb-identity").exists());
    assert_eq!(
        rig.calls("systemctl"),
        [
            "daemon-reload",
            "enable bbb-identity.service",
            "enable --now bbb-cert-refresh.timer"
        ]
    );
}

#[test]
fn single_mode_is_left_as_bbb_install_made_it() {
    let rig = Rig::new();
    fs::write(
        rig.file("etc/bbbctl/server.env"),
        "MODE=single\nREGION=eu-central-1\n",
    )
    .unwrap();
    let before = rig.tree();
    rig.ok(&[]);
    assert_eq!(before, rig.tree());
    assert!(rig.calls("aws").is_empty() && rig.calls("curl").is_empty());
}
