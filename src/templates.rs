//! The CloudFormation templates and bootstrap scripts bbbctl deploys.
//!
//! They are embedded in the binary (so bbbctl runs from any folder); `--templates-dir` replaces
//! single files by relative path. Every file except the root and the sources template is an
//! *asset*: it is uploaded to the sources bucket under a content-addressed key
//! (`templates/network-<hash>.yaml`), and the root stack receives that key through a parameter
//! named after the file (`network.yaml` → `NetworkTemplateKey`, `scripts/bbb-bootstrap.sh` →
//! `BbbBootstrapScriptKey`, `scripts/bbb_registrar.py` → `BbbRegistrarCodeKey`). A changed file
//! therefore changes exactly one key, one root parameter and one nested stack, both on AWS and
//! on the emulator. A Python file is Lambda code: it is uploaded as a zip that holds it alone
//! (`scripts/bbb_registrar-<hash>.zip`), the form a function's `Code.S3Key` takes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use include_dir::{Dir, include_dir};
use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};

use crate::error::usage;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The root stack's template.
pub const ROOT: &str = "root.yaml";
/// The sources stack's template (bucket for everything else).
pub const SOURCES: &str = "sources.yaml";
/// Parameter of the root stack that receives the sources bucket's name.
pub const BUCKET_PARAM: &str = "TemplateBucket";
/// Parameters whose description starts with this are filled in by bbbctl, never by the user.
pub const INTERNAL_MARK: &str = "Set by bbbctl";

/// One file to upload to the sources bucket.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Path relative to the templates folder (`network.yaml`, `scripts/bbb-bootstrap.sh`).
    pub path: String,
    /// Content-addressed object key.
    pub key: String,
    /// Root parameter that receives `key` (`None` for the root template itself).
    pub param: Option<String>,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// The set of template files in effect (embedded, possibly overridden file by file).
#[derive(Debug, Clone)]
pub struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    pub fn embedded() -> Self {
        let mut files = BTreeMap::new();
        collect_embedded(&EMBEDDED, &mut files);
        Bundle { files }
    }

    /// Embedded files, with those found in `dir` (same relative path) taking their place.
    pub fn load(dir: Option<&Path>) -> Result<Self> {
        let mut bundle = Self::embedded();
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(usage(format!(
                    "--templates-dir {}: not a folder. Pass a folder that holds template files such as root.yaml",
                    dir.display()
                )));
            }
            let mut found = 0;
            collect_dir(dir, dir, &mut bundle.files, &mut found)?;
            if found == 0 {
                return Err(usage(format!(
                    "--templates-dir {}: no .yaml, .sh or .py files in it",
                    dir.display()
                )));
            }
        }
        Ok(bundle)
    }

    pub fn file(&self, path: &str) -> Result<&[u8]> {
        self.files
            .get(path)
            .map(Vec::as_slice)
            .with_context(|| format!("template file {path} is missing"))
    }

    /// Every file except the root and the sources template, with its key and parameter.
    pub fn assets(&self) -> Vec<Asset> {
        self.files
            .iter()
            .filter(|(path, _)| path.as_str() != ROOT && path.as_str() != SOURCES)
            .map(|(path, body)| asset(path, body, key_param(path)))
            .collect()
    }

    /// The root template as an uploadable asset (created from its URL, which allows 1 MB).
    pub fn root_asset(&self) -> Result<Asset> {
        Ok(asset(ROOT, self.file(ROOT)?, None))
    }

    /// The root template's parameters and nested stacks.
    pub fn root_info(&self) -> Result<TemplateInfo> {
        TemplateInfo::parse(self.file(ROOT)?).context("reading root.yaml")
    }

    /// The template of each nested stack of the root, by the nested stack's logical id.
    pub fn nested_templates(&self) -> Result<BTreeMap<String, TemplateInfo>> {
        let root = self.root_info()?;
        let by_param: BTreeMap<String, &str> = self
            .files
            .keys()
            .filter_map(|p| key_param(p).map(|k| (k, p.as_str())))
            .collect();
        let mut out = BTreeMap::new();
        for n in &root.nested {
            if let Some(path) = by_param.get(&n.key_param) {
                let info = TemplateInfo::parse(self.file(path)?)
                    .with_context(|| format!("reading {path}"))?;
                out.insert(n.logical_id.clone(), info);
            }
        }
        Ok(out)
    }

    /// For each nested stack of the root (by logical id), how many resources its template
    /// declares: the "total" of the progress display.
    pub fn nested_resource_counts(&self) -> Result<BTreeMap<String, usize>> {
        Ok(self
            .nested_templates()?
            .into_iter()
            .map(|(k, info)| (k, info.resource_count))
            .collect())
    }
}

fn collect_embedded(dir: &Dir<'_>, files: &mut BTreeMap<String, Vec<u8>>) {
    for f in dir.files() {
        let path = f.path().to_string_lossy().replace('\\', "/");
        if is_template_file(&path) {
            files.insert(path, f.contents().to_vec());
        }
    }
    for d in dir.dirs() {
        collect_embedded(d, files);
    }
}

fn collect_dir(
    base: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, Vec<u8>>,
    found: &mut usize,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        usage(format!(
            "--templates-dir: cannot read {}: {e}",
            dir.display()
        ))
    })?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            collect_dir(base, &path, files, found)?;
            continue;
        }
        let rel = path
            .strip_prefix(base)
            .expect("walked below base")
            .to_string_lossy()
            .replace('\\', "/");
        if is_template_file(&rel) {
            let body = std::fs::read(&path)
                .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
            files.insert(rel, body);
            *found += 1;
        }
    }
    Ok(())
}

fn is_template_file(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".sh") || path.ends_with(".py")
}

fn asset(path: &str, body: &[u8], param: Option<String>) -> Asset {
    if let Some(stem) = path.strip_suffix(".py") {
        let file = path.rsplit('/').next().unwrap_or(path);
        let zip = zip_one(file, body);
        let zip_path = format!("{stem}.zip");
        return Asset {
            path: path.to_string(),
            key: content_key(&zip_path, &zip),
            param,
            body: zip,
            content_type: "application/zip",
        };
    }
    Asset {
        path: path.to_string(),
        key: content_key(path, body),
        param,
        body: body.to_vec(),
        content_type: if path.ends_with(".sh") {
            "text/x-shellscript"
        } else {
            "application/x-yaml"
        },
    }
}

/// A zip archive (PKWARE APPNOTE 6.3.x, stored, no compression) holding one file `name`,
/// readable by all (Unix mode 0644, which Lambda needs), dated 1980-01-01 00:00 so that the same
/// content always gives the same bytes, and so the same content-addressed key.
pub fn zip_one(name: &str, body: &[u8]) -> Vec<u8> {
    const DOS_DATE_1980_01_01: u16 = (1 << 5) | 1;
    const VERSION: u16 = 20; // 2.0: stored files, the oldest version readers accept
    const MADE_BY_UNIX: u16 = (3 << 8) | VERSION;
    let crc = crc32fast::hash(body);
    let size = u32::try_from(body.len()).expect("a template file is far below 4 GiB");
    let name_len = u16::try_from(name.len()).expect("a short file name");
    let mut out = Vec::with_capacity(body.len() + 2 * name.len() + 100);
    let u16le = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_le_bytes());
    let u32le = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    // Local file header, then the data.
    u32le(&mut out, 0x0403_4b50);
    for v in [VERSION, 0, 0, 0, DOS_DATE_1980_01_01] {
        u16le(&mut out, v); // version needed, flags, method (stored), time, date
    }
    for v in [crc, size, size] {
        u32le(&mut out, v);
    }
    u16le(&mut out, name_len);
    u16le(&mut out, 0); // extra field length
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(body);
    // Central directory: one entry.
    let central = u32::try_from(out.len()).expect("below 4 GiB");
    u32le(&mut out, 0x0201_4b50);
    for v in [MADE_BY_UNIX, VERSION, 0, 0, 0, DOS_DATE_1980_01_01] {
        u16le(&mut out, v);
    }
    for v in [crc, size, size] {
        u32le(&mut out, v);
    }
    for v in [name_len, 0, 0, 0, 0] {
        u16le(&mut out, v); // name, extra, comment lengths, disk number, internal attributes
    }
    u32le(&mut out, 0o100_644 << 16); // external attributes: a regular file, rw-r--r--
    u32le(&mut out, 0); // offset of the local header
    out.extend_from_slice(name.as_bytes());
    let central_size = u32::try_from(out.len()).expect("below 4 GiB") - central;
    // End of central directory.
    u32le(&mut out, 0x0605_4b50);
    for v in [0, 0, 1, 1] {
        u16le(&mut out, v); // this disk, the directory's disk, entries here, entries in all
    }
    u32le(&mut out, central_size);
    u32le(&mut out, central);
    u16le(&mut out, 0); // comment length
    out
}

/// `network.yaml` → `templates/network-<sha256, 64 hex>.yaml`;
/// `scripts/bbb-bootstrap.sh` → `scripts/bbb-bootstrap-<sha256>.sh`. The whole digest: the
/// servers check each script they fetch against the one its key names before they run it as
/// root (bbb-servers.yaml, the user data's fetch), so the key must name the file, not just
/// tell it apart from the last one.
pub fn content_key(path: &str, body: &[u8]) -> String {
    let hash = hex::encode(Sha256::digest(body));
    let (dir, file) = match path.rsplit_once('/') {
        Some((dir, file)) => (dir.to_string(), file),
        None => ("templates".to_string(), path),
    };
    let (stem, ext) = file.rsplit_once('.').unwrap_or((file, ""));
    format!("{dir}/{stem}-{hash}.{ext}")
}

/// The root parameter that carries an asset's key: `bbb-servers.yaml` → `BbbServersTemplateKey`,
/// `scripts/bbb-bootstrap.sh` → `BbbBootstrapScriptKey`.
pub fn key_param(path: &str) -> Option<String> {
    if path == ROOT || path == SOURCES {
        return None;
    }
    let file = path.rsplit('/').next().unwrap_or(path);
    let (stem, suffix) = if let Some(stem) = file.strip_suffix(".yaml") {
        (stem, "TemplateKey")
    } else if let Some(stem) = file.strip_suffix(".sh") {
        (stem, "ScriptKey")
    } else if let Some(stem) = file.strip_suffix(".py") {
        (stem, "CodeKey")
    } else {
        return None;
    };
    let pascal: String = stem
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            let first = c.next().expect("non-empty").to_ascii_uppercase();
            std::iter::once(first).chain(c).collect::<String>()
        })
        .collect();
    Some(format!("{pascal}{suffix}"))
}

/// What bbbctl needs to know about a template: its parameter declarations (the source of truth
/// for validating the parameter file), its resource count, and its nested stacks.
#[derive(Debug, Clone, Default)]
pub struct TemplateInfo {
    pub parameters: BTreeMap<String, ParamSpec>,
    pub resource_count: usize,
    pub nested: Vec<NestedStack>,
    /// The `Conditions` section, by name.
    pub conditions: BTreeMap<String, Value>,
    /// Resources a stack deletion leaves behind on purpose: (logical id, type, DeletionPolicy
    /// `Retain`, `RetainExceptOnCreate` or `Snapshot`).
    pub kept_on_delete: Vec<(String, String, String)>,
    /// The `Rules` section: constraints across parameters that CloudFormation checks before
    /// it changes anything.
    pub rules: Vec<Rule>,
    /// Every resource: (logical id, type, `Condition`, `Properties`), in template order.
    pub resources: Vec<Resource>,
}

/// One resource of a template, as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub condition: Option<String>,
    pub properties: Value,
}

/// One entry of a template's `Rules` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// `RuleCondition`: the assertions apply only when it holds (no condition: always).
    pub condition: Option<Value>,
    /// (`Assert`, `AssertDescription`)
    pub assertions: Vec<(Value, String)>,
}

/// A rule the parameters break: its name, what it asserts, and the parameters it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRule {
    pub name: String,
    pub description: String,
    pub params: Vec<String>,
}

/// An `AWS::CloudFormation::Stack` resource of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedStack {
    pub logical_id: String,
    /// The key parameter its TemplateURL uses.
    pub key_param: String,
    /// Its `Condition`, if it has one.
    pub condition: Option<String>,
    /// What is lost when this layer is removed (`Metadata: {bbbctl: {removal: …}}`).
    pub removal_note: Option<String>,
}

/// One `Parameters` entry of a template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamSpec {
    pub kind: String,
    pub description: String,
    pub default: Option<String>,
    pub allowed_values: Vec<String>,
    pub allowed_pattern: Option<String>,
    pub constraint_description: Option<String>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
}

impl TemplateInfo {
    pub fn parse(body: &[u8]) -> Result<Self> {
        let doc: Value = serde_yaml_ng::from_slice(body).context("not valid YAML")?;
        let mut info = TemplateInfo::default();
        if let Some(Value::Mapping(params)) = doc.get("Parameters") {
            for (name, decl) in params {
                let Some(name) = name.as_str() else { continue };
                info.parameters
                    .insert(name.to_string(), ParamSpec::from_yaml(decl));
            }
        }
        if let Some(Value::Mapping(conditions)) = doc.get("Conditions") {
            for (name, cond) in conditions {
                if let Some(name) = name.as_str() {
                    info.conditions.insert(name.to_string(), cond.clone());
                }
            }
        }
        if let Some(Value::Mapping(rules)) = doc.get("Rules") {
            for (name, rule) in rules {
                let Some(name) = name.as_str() else { continue };
                let assertions = match rule.get("Assertions") {
                    Some(Value::Sequence(items)) => items
                        .iter()
                        .filter_map(|a| {
                            let description = a
                                .get("AssertDescription")
                                .and_then(Value::as_str)
                                .unwrap_or(name)
                                .to_string();
                            Some((a.get("Assert")?.clone(), description))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                info.rules.push(Rule {
                    name: name.to_string(),
                    condition: rule.get("RuleCondition").cloned(),
                    assertions,
                });
            }
        }
        let Some(Value::Mapping(resources)) = doc.get("Resources") else {
            bail!("template has no Resources");
        };
        info.resource_count = resources.len();
        for (logical, res) in resources {
            info.resources.push(Resource {
                logical_id: logical.as_str().unwrap_or_default().to_string(),
                kind: res
                    .get("Type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                condition: res
                    .get("Condition")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                properties: res.get("Properties").cloned().unwrap_or(Value::Null),
            });
        }
        for (logical, res) in resources {
            let policy = res.get("DeletionPolicy").and_then(Value::as_str);
            if let (Some(logical), Some(policy)) = (logical.as_str(), policy)
                && policy != "Delete"
            {
                let kind = res.get("Type").and_then(Value::as_str).unwrap_or_default();
                info.kept_on_delete.push((
                    logical.to_string(),
                    kind.to_string(),
                    policy.to_string(),
                ));
            }
        }
        for (logical, res) in resources {
            let (Some(logical), Some("AWS::CloudFormation::Stack")) =
                (logical.as_str(), res.get("Type").and_then(Value::as_str))
            else {
                continue;
            };
            let url = res
                .get("Properties")
                .and_then(|p| p.get("TemplateURL"))
                .map(|u| serde_yaml_ng::to_string(u).unwrap_or_default())
                .unwrap_or_default();
            if let Some(param) = info
                .parameters
                .keys()
                .find(|p| p.ends_with("Key") && url.contains(p.as_str()))
            {
                info.nested.push(NestedStack {
                    logical_id: logical.to_string(),
                    key_param: param.clone(),
                    condition: res
                        .get("Condition")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    removal_note: res
                        .get("Metadata")
                        .and_then(|m| m.get("bbbctl"))
                        .and_then(|m| m.get("removal"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
        }
        Ok(info)
    }
}

impl TemplateInfo {
    /// Whether condition `name` holds for these parameter values (template defaults fill in the
    /// rest). `None` when it depends on what bbbctl cannot know (pseudo parameters, other
    /// functions).
    pub fn condition(&self, name: &str, params: &BTreeMap<String, String>) -> Option<bool> {
        self.eval(self.conditions.get(name)?, params, 0)
    }

    /// The nested stacks that exist with these parameter values (unknown conditions count as
    /// true).
    pub fn nested_in_effect(&self, params: &BTreeMap<String, String>) -> Vec<&NestedStack> {
        self.nested
            .iter()
            .filter(|n| {
                n.condition
                    .as_deref()
                    .is_none_or(|c| self.condition(c, params).unwrap_or(true))
            })
            .collect()
    }

    /// The rules these parameter values break, as CloudFormation would evaluate them before
    /// creating or updating the stack (template defaults fill in what `params` lacks). An
    /// assertion bbbctl cannot evaluate is left to CloudFormation.
    pub fn broken_rules(&self, params: &BTreeMap<String, String>) -> Vec<BrokenRule> {
        let mut broken = Vec::new();
        for rule in &self.rules {
            let applies = match &rule.condition {
                Some(c) => self.eval(c, params, 0).unwrap_or(false),
                None => true,
            };
            if !applies {
                continue;
            }
            for (assert, description) in &rule.assertions {
                if self.eval(assert, params, 0) == Some(false) {
                    let mut names = Vec::new();
                    if let Some(c) = &rule.condition {
                        refs(c, &mut names);
                    }
                    refs(assert, &mut names);
                    broken.push(BrokenRule {
                        name: rule.name.clone(),
                        description: description.clone(),
                        params: names,
                    });
                }
            }
        }
        broken
    }

    fn eval(&self, v: &Value, params: &BTreeMap<String, String>, depth: usize) -> Option<bool> {
        if depth > 16 {
            return None;
        }
        let (func, arg) = function(v)?;
        let items = || match arg {
            Value::Sequence(items) => Some(items.as_slice()),
            _ => None,
        };
        match func.as_str() {
            "Fn::Equals" => match items()? {
                [a, b] => Some(self.operand(a, params)? == self.operand(b, params)?),
                _ => None,
            },
            "Fn::Not" => match items()? {
                [a] => self.eval(a, params, depth + 1).map(|b| !b),
                _ => None,
            },
            "Fn::And" => items()?
                .iter()
                .map(|a| self.eval(a, params, depth + 1))
                .collect::<Option<Vec<_>>>()
                .map(|all| all.into_iter().all(|b| b)),
            "Fn::Or" => items()?
                .iter()
                .map(|a| self.eval(a, params, depth + 1))
                .collect::<Option<Vec<_>>>()
                .map(|all| all.into_iter().any(|b| b)),
            "Condition" => self.eval(self.conditions.get(arg.as_str()?)?, params, depth + 1),
            // Rule functions: a value in a list of values.
            "Fn::Contains" => match items()? {
                [Value::Sequence(list), v] => {
                    let v = self.operand(v, params)?;
                    list.iter()
                        .map(|x| self.operand(x, params))
                        .collect::<Option<Vec<_>>>()
                        .map(|l| l.contains(&v))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn operand(&self, v: &Value, params: &BTreeMap<String, String>) -> Option<String> {
        if let Some(s) = scalar(v) {
            return Some(s);
        }
        match function(v)? {
            (f, Value::String(name)) if f == "Ref" => params
                .get(name)
                .cloned()
                .or_else(|| self.parameters.get(name)?.default.clone()),
            _ => None,
        }
    }
}

/// The parameter names an expression reads with `Ref`, in order, each once.
fn refs(v: &Value, out: &mut Vec<String>) {
    match function(v) {
        Some((f, Value::String(name))) if f == "Ref" => {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        Some((_, arg)) => refs(arg, out),
        None => {
            if let Value::Sequence(items) = v {
                for i in items {
                    refs(i, out);
                }
            }
        }
    }
}

/// `!Equals [..]` or `{"Fn::Equals": [..]}` → ("Fn::Equals", [..]); `!Ref x` → ("Ref", x).
fn function(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let name = match name {
                "Ref" | "Condition" => name.to_string(),
                other => format!("Fn::{other}"),
            };
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            Some((k.as_str()?.to_string(), v))
        }
        _ => None,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl ParamSpec {
    fn from_yaml(decl: &Value) -> Self {
        let get = |k: &str| decl.get(k).and_then(scalar);
        let num = |k: &str| get(k).and_then(|s| s.parse::<f64>().ok());
        let len = |k: &str| get(k).and_then(|s| s.parse::<usize>().ok());
        ParamSpec {
            kind: get("Type").unwrap_or_else(|| "String".into()),
            description: get("Description").unwrap_or_default(),
            default: get("Default"),
            allowed_values: match decl.get("AllowedValues") {
                Some(Value::Sequence(vs)) => vs.iter().filter_map(scalar).collect(),
                _ => Vec::new(),
            },
            allowed_pattern: get("AllowedPattern"),
            constraint_description: get("ConstraintDescription"),
            min_value: num("MinValue"),
            max_value: num("MaxValue"),
            min_length: len("MinLength"),
            max_length: len("MaxLength"),
        }
    }

    /// Filled in by bbbctl (bucket, object keys), not by the user.
    pub fn is_internal(&self) -> bool {
        self.description.starts_with(INTERNAL_MARK)
    }

    /// Checks a value the way CloudFormation would; the error says what is allowed.
    pub fn check(&self, value: &str) -> std::result::Result<(), String> {
        let hint = self
            .constraint_description
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        if !self.allowed_values.is_empty() && !self.allowed_values.iter().any(|v| v == value) {
            return Err(format!("must be one of {}", self.allowed_values.join(", ")));
        }
        if self.kind == "Number" {
            let n: f64 = value
                .parse()
                .map_err(|_| format!("must be a number{hint}"))?;
            if let Some(min) = self.min_value
                && n < min
            {
                return Err(format!("must be at least {min}{hint}"));
            }
            if let Some(max) = self.max_value
                && n > max
            {
                return Err(format!("must be at most {max}{hint}"));
            }
        }
        let chars = value.chars().count();
        if let Some(min) = self.min_length
            && chars < min
        {
            return Err(format!("must be at least {min} characters long{hint}"));
        }
        if let Some(max) = self.max_length
            && chars > max
        {
            return Err(format!("must be at most {max} characters long{hint}"));
        }
        if let Some(pattern) = &self.allowed_pattern {
            // CloudFormation matches the whole value against the pattern.
            match regex::Regex::new(&format!("^(?:{pattern})$")) {
                Ok(re) if !re.is_match(value) => {
                    return Err(format!("must match the pattern {pattern}{hint}"));
                }
                Ok(_) => {}
                Err(_) => tracing::warn!(pattern, "template pattern not understood; not checked"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_params_follow_file_names() {
        assert_eq!(key_param("network.yaml").unwrap(), "NetworkTemplateKey");
        assert_eq!(
            key_param("bbb-servers.yaml").unwrap(),
            "BbbServersTemplateKey"
        );
        assert_eq!(
            key_param("scripts/bbb-bootstrap.sh").unwrap(),
            "BbbBootstrapScriptKey"
        );
        assert_eq!(key_param("root.yaml"), None);
        assert_eq!(key_param("sources.yaml"), None);
    }

    #[test]
    fn content_keys_change_with_content_only() {
        let a = content_key("network.yaml", b"a");
        assert!(
            a.starts_with("templates/network-") && a.ends_with(".yaml"),
            "{a}"
        );
        assert_eq!(a, content_key("network.yaml", b"a"));
        assert_ne!(a, content_key("network.yaml", b"b"));
        // The key carries the whole sha256 of the file (`printf x | sha256sum`), which the
        // servers check each script against; and it fits the templates' key patterns.
        let s = content_key("scripts/bbb-bootstrap.sh", b"x");
        assert_eq!(
            s,
            "scripts/bbb-bootstrap-2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881.sh"
        );
        let pattern = regex::Regex::new(r"^scripts/[a-z0-9-]+-[0-9a-f]{64}\.sh$").unwrap();
        for asset in Bundle::embedded().assets() {
            if asset.path.ends_with(".sh") {
                assert!(pattern.is_match(&asset.key), "{}", asset.key);
                assert!(
                    asset
                        .key
                        .ends_with(&format!("-{}.sh", hex::encode(Sha256::digest(&asset.body))))
                );
            }
        }
    }

    /// Every script key parameter in the templates has the pattern of a content key: a
    /// key without the digest could not be checked on the server.
    #[test]
    fn script_key_parameters_require_the_digest() {
        let bundle = Bundle::embedded();
        let mut infos = vec![bundle.root_info().unwrap()];
        infos.extend(bundle.nested_templates().unwrap().into_values());
        let mut seen = 0;
        for info in infos {
            for (name, spec) in &info.parameters {
                if name.ends_with("ScriptKey") {
                    seen += 1;
                    let digest = "0".repeat(64);
                    assert!(
                        spec.check(&format!("scripts/bbb-x-{digest}.sh")).is_ok(),
                        "{name}"
                    );
                    assert!(spec.check("scripts/bbb-x-0123abcd.sh").is_err(), "{name}");
                    assert!(spec.check("scripts/../x.sh").is_err(), "{name}");
                }
            }
        }
        assert_eq!(seen, 8, "four in root.yaml, four in bbb-servers.yaml");
    }

    #[test]
    fn embedded_bundle_is_consistent() {
        let bundle = Bundle::embedded();
        let root = bundle.root_info().unwrap();
        assert!(root.parameters.contains_key(BUCKET_PARAM));
        // every asset has a parameter in the root template, and every key parameter an asset
        let assets = bundle.assets();
        assert!(!assets.is_empty());
        for a in &assets {
            let p = a.param.as_ref().unwrap();
            let spec = root
                .parameters
                .get(p)
                .unwrap_or_else(|| panic!("root.yaml lacks parameter {p} for {}", a.path));
            assert!(spec.is_internal(), "{p} must be marked '{INTERNAL_MARK}'");
        }
        for (name, spec) in &root.parameters {
            if name.ends_with("Key") && spec.is_internal() {
                assert!(
                    assets.iter().any(|a| a.param.as_deref() == Some(name)),
                    "no file for {name}"
                );
            }
        }
        // a layer that a mode or option can remove says what goes with it
        for n in &root.nested {
            if n.condition.is_some() {
                assert!(
                    n.removal_note.is_some(),
                    "{} lacks Metadata.bbbctl.removal",
                    n.logical_id
                );
            }
        }
        let nested = bundle.nested_templates().unwrap();
        assert!(
            nested["DatabaseStack"]
                .kept_on_delete
                .iter()
                .any(|(l, t, p)| l == "DBCluster" && t == "AWS::RDS::DBCluster" && p == "Snapshot"),
            "the database keeps a final snapshot"
        );
        let counts = bundle.nested_resource_counts().unwrap();
        assert_eq!(counts.len(), root.nested.len());
        assert!(counts.values().all(|&n| n > 0));
    }

    /// The README's parameter table names every parameter a user can set.
    #[test]
    fn readme_documents_every_user_parameter() {
        let readme = include_str!("../README.md");
        let root = Bundle::embedded().root_info().unwrap();
        for (name, spec) in &root.parameters {
            if !spec.is_internal() {
                assert!(
                    readme.contains(&format!("| `{name}` |")),
                    "README lacks a row for {name}"
                );
            }
        }
    }

    #[test]
    fn conditions_evaluate_like_cloudformation() {
        let doc = br#"
Parameters:
  Mode: {Type: String, Default: scalable}
  Count: {Type: Number, Default: 2}
  AKey: {Type: String}
  BKey: {Type: String}
Conditions:
  IsScalable: !Equals [!Ref Mode, scalable]
  IsSingle: {"Fn::Equals": [{"Ref": Mode}, single]}
  Many: !Not [!Equals [!Ref Count, 1]]
  Both: !And [!Condition IsScalable, {Condition: Many}]
  Either: !Or [!Condition IsSingle, !Condition Many]
  InUsEast: !Equals [!Ref "AWS::Region", us-east-1]
Resources:
  A: {Type: AWS::CloudFormation::Stack, Condition: IsScalable, Properties: {TemplateURL: !Sub "https://b/${AKey}"}}
  B: {Type: AWS::CloudFormation::Stack, Properties: {TemplateURL: !Sub "https://b/${BKey}"}}
"#;
        let info = TemplateInfo::parse(doc).unwrap();
        let none = BTreeMap::new();
        let single: BTreeMap<String, String> = [
            ("Mode".to_string(), "single".to_string()),
            ("Count".into(), "1".into()),
        ]
        .into();
        assert_eq!(info.condition("IsScalable", &none), Some(true));
        assert_eq!(info.condition("IsSingle", &single), Some(true));
        assert_eq!(info.condition("Both", &none), Some(true));
        assert_eq!(info.condition("Both", &single), Some(false));
        assert_eq!(info.condition("Either", &single), Some(true));
        assert_eq!(info.condition("InUsEast", &none), None);
        assert_eq!(info.condition("Nope", &none), None);
        let names = |p| -> Vec<String> {
            info.nested_in_effect(p)
                .iter()
                .map(|n| n.logical_id.clone())
                .collect()
        };
        assert_eq!(names(&none), ["A", "B"]);
        assert_eq!(names(&single), ["B"]);
    }

    #[test]
    fn rules_are_checked_like_cloudformation() {
        let root = Bundle::embedded().root_info().unwrap();
        let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // Defaults (scalable, 2 AZs) break nothing.
        assert_eq!(root.broken_rules(&BTreeMap::new()), Vec::new());
        let broken = root.broken_rules(&params(&[("BBBNumberOfAZs", "1")]));
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert_eq!(broken[0].name, "ScalableNeedsTwoAZs");
        assert_eq!(
            broken[0].params,
            ["BBBEnvironmentType", "BBBNumberOfAZs"],
            "the parameters it reads"
        );
        assert!(broken[0].description.contains("2 or 3"));
        // Single mode may use one AZ, unless the cache is Multi-AZ.
        let single = params(&[("BBBEnvironmentType", "single"), ("BBBNumberOfAZs", "1")]);
        assert_eq!(root.broken_rules(&single), Vec::new());
        let mut both = single.clone();
        both.insert("BBBCacheMultiAZ".into(), "true".into());
        both.insert("BBBEnvironmentType".into(), "scalable".into());
        let names: Vec<_> = root
            .broken_rules(&both)
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["CacheMultiAZNeedsTwoAZs", "ScalableNeedsTwoAZs"]);
        // Fn::Contains and rules without a condition.
        let doc = br#"
Parameters:
  Size: {Type: String, Default: small}
Rules:
  KnownSize:
    Assertions:
      - Assert: !Contains [[small, large], !Ref Size]
        AssertDescription: Size is small or large.
Resources:
  R: {Type: AWS::SNS::Topic}
"#;
        let t = TemplateInfo::parse(doc).unwrap();
        assert!(t.broken_rules(&BTreeMap::new()).is_empty());
        let b = t.broken_rules(&params(&[("Size", "huge")]));
        assert_eq!(b[0].description, "Size is small or large.");
        assert_eq!(b[0].params, ["Size"]);
    }

    #[test]
    fn param_spec_checks() {
        let doc = br#"
Parameters:
  N: {Type: Number, MinValue: 1, MaxValue: 3}
  M: {Type: String, AllowedValues: [a, b]}
  P: {Type: String, AllowedPattern: "[a-z]+", ConstraintDescription: lower case}
Resources:
  X: {Type: AWS::SNS::Topic}
"#;
        let info = TemplateInfo::parse(doc).unwrap();
        let n = &info.parameters["N"];
        assert!(n.check("2").is_ok());
        assert_eq!(n.check("4").unwrap_err(), "must be at most 3");
        assert_eq!(n.check("x").unwrap_err(), "must be a number");
        assert_eq!(
            info.parameters["M"].check("c").unwrap_err(),
            "must be one of a, b"
        );
        let p = &info.parameters["P"];
        assert!(p.check("abc").is_ok());
        assert_eq!(
            p.check("abc1").unwrap_err(),
            "must match the pattern [a-z]+ (lower case)"
        );
        assert_eq!(info.resource_count, 1);
    }
}
