//! The deployment bbbctl acts on when `-s` is not given. Each successful `setup` puts its
//! stack, region and profile first in `<config dir>/bbbctl/deployment.json` (e.g.
//! `~/.config/bbbctl/deployment.json`; `BBBCTL_CONFIG_DIR` overrides the folder); `destroy`
//! takes its own out, so the default falls back to the deployment set up before it.
//! The file of older versions (one deployment, not a list) is read too.

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

/// The file: the deployments, most recently set up first.
#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    deployments: Vec<Remembered>,
}

/// At most this many are remembered (the oldest go).
const KEEP: usize = 20;

pub fn path() -> Option<PathBuf> {
    match std::env::var_os("BBBCTL_CONFIG_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("deployment.json")),
        _ => dirs::config_dir().map(|d| d.join("bbbctl").join("deployment.json")),
    }
}

/// Every remembered deployment, most recent first; an unreadable file is ignored with a
/// warning.
pub fn all() -> Vec<Remembered> {
    let Some(path) = path() else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    if let Ok(f) = serde_json::from_str::<File>(&text) {
        return f.deployments;
    }
    match serde_json::from_str::<Remembered>(&text) {
        Ok(one) => vec![one],
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", path.display());
            Vec::new()
        }
    }
}

/// The most recently set up deployment.
pub fn load() -> Option<Remembered> {
    load_for(None, None)
}

/// The default deployment: the most recently set up one, in `region` and of `profile` when
/// those are given.
pub fn load_for(region: Option<&str>, profile: Option<&str>) -> Option<Remembered> {
    all().into_iter().find(|r| {
        region.is_none_or(|want| r.region.as_deref().is_none_or(|have| have == want))
            && profile.is_none_or(|want| r.profile.as_deref().is_none_or(|have| have == want))
    })
}

fn write(deployments: Vec<Remembered>) -> Result<()> {
    let path = path().context("no configuration folder (HOME is not set)")?;
    let dir = path.parent().expect("file in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&File { deployments })? + "\n",
    )
    .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Puts a deployment first (written to a temporary file, then renamed: never half-written).
pub fn save(r: &Remembered) -> Result<()> {
    let mut list = all();
    list.retain(|o| !(o.stack == r.stack && o.region == r.region));
    list.insert(0, r.clone());
    list.truncate(KEEP);
    write(list)
}

/// Forgets deployment `stack` of `region`; the next one becomes the default.
pub fn forget(stack: &str, region: &str) {
    let mut list = all();
    let before = list.len();
    list.retain(|o| !(o.stack == stack && o.region.as_deref().is_none_or(|r| r == region)));
    if list.len() != before
        && let Err(e) = write(list)
    {
        tracing::warn!("could not forget deployment {stack}: {e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(stack: &str, region: &str) -> Remembered {
        Remembered {
            stack: stack.into(),
            region: Some(region.into()),
            profile: None,
        }
    }

    /// One test for the file (the folder comes from the environment, shared by the tests).
    #[test]
    fn most_recent_first_and_destroy_falls_back() {
        let dir = std::env::temp_dir().join(format!("bbbctl-memory-{}", std::process::id()));
        // SAFETY: the only test of this binary that reads BBBCTL_CONFIG_DIR.
        unsafe { std::env::set_var("BBBCTL_CONFIG_DIR", &dir) };
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // An older version's file: one deployment.
        std::fs::write(
            dir.join("deployment.json"),
            r#"{"stack": "old", "region": "eu-west-1"}"#,
        )
        .unwrap();
        assert_eq!(load(), Some(r("old", "eu-west-1")));
        save(&r("bbb", "eu-west-1")).unwrap();
        save(&r("bbb2", "eu-west-1")).unwrap();
        save(&r("other", "us-east-1")).unwrap();
        assert_eq!(load().unwrap().stack, "other");
        assert_eq!(load_for(Some("eu-west-1"), None).unwrap().stack, "bbb2");
        forget("bbb2", "eu-west-1");
        assert_eq!(load_for(Some("eu-west-1"), None).unwrap().stack, "bbb");
        // A re-run moves it to the front without a second entry.
        save(&r("bbb", "eu-west-1")).unwrap();
        let names: Vec<String> = all().into_iter().map(|r| r.stack).collect();
        assert_eq!(names, ["bbb", "other", "old"]);
        forget("bbb", "eu-west-1");
        forget("other", "us-east-1");
        forget("old", "eu-west-1");
        assert_eq!(load(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
