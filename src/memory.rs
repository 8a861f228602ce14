//! The deployment bbbctl acts on when `-s` is not given: after a successful `setup`, its stack,
//! region and profile are kept in `<config dir>/bbbctl/deployment.json` (e.g.
//! `~/.config/bbbctl/deployment.json`; `BBBCTL_CONFIG_DIR` overrides the folder).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub stack: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

pub fn path() -> Option<PathBuf> {
    match std::env::var_os("BBBCTL_CONFIG_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("deployment.json")),
        _ => dirs::config_dir().map(|d| d.join("bbbctl").join("deployment.json")),
    }
}

/// The remembered deployment; an unreadable file is ignored with a warning.
pub fn load() -> Option<Remembered> {
    let path = path()?;
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str(&text) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", path.display());
            None
        }
    }
}

/// Remembers a deployment (written to a temporary file, then renamed: never half-written).
pub fn save(r: &Remembered) -> Result<()> {
    let path = path().context("no configuration folder (HOME is not set)")?;
    let dir = path.parent().expect("file in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(r)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Forgets the remembered deployment if it is `stack`.
pub fn forget(stack: &str) {
    if let (Some(path), Some(r)) = (path(), load())
        && r.stack == stack
    {
        let _ = std::fs::remove_file(path);
    }
}
