//! Single mode's Greenlight runs under docker-compose (bbb-install -g). bbb-install's own
//! docker-compose 1.24 is refused by Docker 29 (bbb-install issue #807), so the bootstrap
//! puts a docker-compose in its place first (install_compose_shim in
//! templates/scripts/bbb-bootstrap.sh) that hands every call to the Compose plugin,
//! installing the plugin when it is missing. Run with `docker` and `apt-get` faked.

use std::fs;
use std::process::Command;

mod support;

fn fake(dir: &std::path::Path, name: &str, body: &str) {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
}

/// Installs the shim, runs it once with `args`; the calls the fakes saw.
fn run_shim(plugin_installed: bool, args: &[&str]) -> (i32, Vec<String>) {
    let dir = tempfile::TempDir::new().unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let log = dir.path().join("calls.log");
    if plugin_installed {
        fs::write(dir.path().join("plugin"), "").unwrap();
    }
    // docker: `compose version` fails until the plugin is there; everything is recorded.
    fake(
        &bin,
        "docker",
        r#"echo "docker $*" >>"$FAKE_DIR/calls.log"
if [ "$1 $2" = "compose version" ] && [ ! -f "$FAKE_DIR/plugin" ]; then exit 1; fi
exit 0"#,
    );
    fake(
        &bin,
        "apt-get",
        r#"echo "apt-get $*" >>"$FAKE_DIR/calls.log"; touch "$FAKE_DIR/plugin""#,
    );
    let shim = bin.join("docker-compose");
    let install = format!(
        "set -euo pipefail\n{}\ninstall_compose_shim \"$1\"",
        support::shell_function("templates/scripts/bbb-bootstrap.sh", "install_compose_shim")
    );
    let status = Command::new("bash")
        .args(["-c", &install, "bash"])
        .arg(&shim)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(&shim)
        .args(args)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("FAKE_DIR", dir.path())
        .output()
        .unwrap();
    let calls = fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    (out.status.code().unwrap_or(-1), calls)
}

#[test]
fn docker_compose_calls_go_to_the_compose_plugin() {
    let (code, calls) = run_shim(
        true,
        &["-f", "/root/greenlight-v3/docker-compose.yml", "up", "-d"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        calls,
        [
            "docker compose version",
            "docker compose -f /root/greenlight-v3/docker-compose.yml up -d"
        ]
    );
}

#[test]
fn a_missing_plugin_is_installed_first() {
    let (code, calls) = run_shim(false, &["-f", "x.yml", "exec", "-T", "postgres", "psql"]);
    assert_eq!(code, 0);
    assert_eq!(
        calls,
        [
            "docker compose version",
            "apt-get install -yq docker-compose-plugin",
            "docker compose -f x.yml exec -T postgres psql"
        ]
    );
}
