//! Programs the script tests run for real (PostgreSQL, Ruby with pg), from Debian's
//! packages: installed on first use by scripts/debian-packages.sh, once per test binary.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

pub fn ensure(packages: &[&str]) {
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
