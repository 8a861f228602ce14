//! For the tests that run our scripts: the programs they need from Debian's packages, and
//! one function of a shell script taken out of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
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
