//! For the tests that run our scripts: the programs they need from Debian's packages, and
//! one function of a shell script taken out of it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Installs the Debian packages not there yet (PostgreSQL, Ruby with pg, …) with
/// scripts/debian-packages.sh, once per test binary.
pub fn ensure_packages(packages: &[&str]) {
    static DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !done.iter().any(|d| d == p))
        .collect();
    if missing.is_empty() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/debian-packages.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(&missing)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "installing {missing:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    done.extend(missing.iter().map(|p| p.to_string()));
}

/// The text of shell function `name` in `script` (a path in the repository), from
/// `name() {` to its closing `}`, to run on its own with stubs around it.
pub fn shell_function(script: &str, name: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(script)).unwrap();
    let start = text
        .find(&format!("\n{name}() {{\n"))
        .unwrap_or_else(|| panic!("no function {name} in {script}"));
    let end = start + text[start..].find("\n}\n").unwrap() + 3;
    text[start..end].to_string()
}

/// A certificate authority of the test's own (openssl), whose file clients are given as
/// `BBBCTL_CA_FILE`: stand-ins serve certificates it issued, verified as real ones are.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca: std::path::PathBuf,
    issued: std::cell::Cell<u32>,
}

impl TestCa {
    pub fn new() -> Self {
        ensure_packages(&["openssl"]);
        let dir = tempfile::TempDir::new().unwrap();
        let ca = dir.path().join("ca.crt");
        new_key_request(&[
            "-x509",
            "-keyout",
            &dir.path().join("ca.key").display().to_string(),
            "-out",
            &ca.display().to_string(),
            "-days",
            "3",
            "-subj",
            "/CN=bbbctl test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        TestCa {
            dir,
            ca,
            issued: std::cell::Cell::new(0),
        }
    }

    /// A server certificate for `names`, valid for `days`: (certificate, key) PEM files.
    pub fn issue(&self, names: &[&str], days: u32) -> (std::path::PathBuf, std::path::PathBuf) {
        let n = self.issued.get() + 1;
        self.issued.set(n);
        let p = |f: &str| self.dir.path().join(format!("{n}-{f}"));
        let san = names
            .iter()
            .map(|h| format!("DNS:{h}"))
            .collect::<Vec<_>>()
            .join(",");
        std::fs::write(
            p("ext"),
            format!("subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"),
        )
        .unwrap();
        let s = |f: &str| p(f).display().to_string();
        new_key_request(&[
            "-keyout",
            &s("key.pem"),
            "-out",
            &s("csr.pem"),
            "-subj",
            &format!("/CN={}", names[0]),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &s("csr.pem"),
            "-CA",
            &self.ca.display().to_string(),
            "-CAkey",
            &self.dir.path().join("ca.key").display().to_string(),
            "-CAcreateserial",
            "-out",
            &s("cert.pem"),
            "-days",
            &days.to_string(),
            "-extfile",
            &s("ext"),
        ]);
        (p("cert.pem"), p("key.pem"))
    }
}

/// `openssl req -new` with a new P-256 key (unencrypted) and `args`.
fn new_key_request(args: &[&str]) {
    let mut all = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    all.extend_from_slice(args);
    openssl(&all);
}

fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that a script or program succeeded, showing its stderr when it did not; returns
/// its stdout.
pub fn assert_success(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A directory of fakes on PATH; each records its arguments in `<name>.log`.
pub struct Fakes {
    pub dir: tempfile::TempDir,
}

impl Fakes {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("bin")).unwrap();
        let fakes = Fakes { dir };
        fakes.fake("sleep", "");
        fakes
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fake NAME: records `NAME ARGS` in calls.log and NAME.log, then runs BODY.
    pub fn fake(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path("bin").join(name);
        fs::write(
            &path,
            format!(
                "#!/usr/bin/env bash\nprintf '%s\\n' \"$*\" >>\"$FAKE_DIR/{name}.log\"\nprintf '%s\\n' \"{name} $*\" >>\"$FAKE_DIR/calls.log\"\n{body}\n"
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn calls(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.path(&format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Runs `prelude`, the named functions of `script` (a path in the repository), then
    /// `main`, with the fakes first on PATH and FAKE_DIR set.
    pub fn run_script(
        &self,
        script: &str,
        prelude: &str,
        functions: &[&str],
        main: &str,
    ) -> Output {
        let mut text = format!("set -euo pipefail\n{prelude}\n");
        for f in functions {
            text += &shell_function(script, f);
        }
        text += main;
        Command::new("bash")
            .args(["-c", &text])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.path("bin").display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("FAKE_DIR", self.dir.path())
            .output()
            .unwrap()
    }
}
