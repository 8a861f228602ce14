//! Flags + environment + parameter file → plain, validated structs. All validation of user input
//! lives here and runs before the first AWS call, so bad input changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use crate::cli::{GlobalArgs, LogLevel, Mode, OutputFormat, SetupArgs};
use crate::error::usage;
use crate::memory;
use crate::templates::{Bundle, TemplateInfo};

/// Longest accepted stack name: room for `-sources` and for names derived from it (e.g. an
/// ElastiCache replication group id `<stack>-cache` must stay within 40 characters).
pub const MAX_STACK_NAME: usize = 32;
/// The parameter file read when `--params` is not given and it exists in the current folder.
pub const PARAM_FILE: &str = "bbb-on-aws-param.json";
/// The built-in parameter file, used when neither `--params` nor `./bbb-on-aws-param.json` exist.
pub const EMBEDDED_PARAMS: &str = include_str!("../bbb-on-aws-param.json");

pub const P_EMAIL: &str = "BBBOperatorEMail";
pub const P_DOMAIN: &str = "BBBDomainName";
pub const P_ZONE: &str = "BBBHostedZone";
pub const P_MODE: &str = "BBBEnvironmentType";
pub const P_SERVER_COUNT: &str = "BBBServerCount";
/// Prepared servers kept stopped in the group's warm pool (`bbbctl scale --warm`).
pub const P_WARM_POOL: &str = "BBBWarmPoolSize";
pub const P_SERVER_AMI: &str = "BBBServerAmi";
pub const P_SERVER_IMAGE: &str = "BBBServerImageId";
pub const P_DOCKER_HUB: &str = "BBBDockerHubCredentialsArn";
pub const P_FRONTEND: &str = "BBBFrontendType";
pub const P_CERT: &str = "BBBACMCertArn";
pub const P_SES_VALIDATED: &str = "BBBSESValidated";
pub const P_DRAIN_TIMEOUT: &str = "BBBServerDrainTimeout";

/// A deployment's drain timeout in seconds (`BBBServerDrainTimeout`; root.yaml's default).
pub fn drain_timeout(params: &BTreeMap<String, String>) -> u64 {
    params
        .get(P_DRAIN_TIMEOUT)
        .and_then(|t| t.parse().ok())
        .unwrap_or(43200)
}

/// ACM's limit for a certificate's first name (`DomainName`, its Common Name: RFC 5280's
/// ub-common-name); the other names (`SubjectAlternativeNames`) may have up to 253.
pub const ACM_FIRST_NAME_MAX: usize = 64;
/// Longest DNS name written out (RFC 1035: 255 octets on the wire).
pub const DNS_NAME_MAX: usize = 253;
/// What a scalable BBB server's name adds to the domain: `bbb-<17 hex digits>.media.`
/// (`fleet::host_of`; templates/scripts/bbb-bootstrap.sh HOST_NAME).
const SERVER_NAME_PREFIX: usize = "bbb-".len() + 17 + ".media.".len();

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Global {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub log_level: LogLevel,
    pub output: OutputFormat,
    pub no_progress: bool,
    pub yes: bool,
}

impl Global {
    pub fn from_args(a: &GlobalArgs) -> Result<Self> {
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let endpoint_url = non_empty(&a.endpoint_url);
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(usage(format!(
                "--endpoint-url {url}: not a URL. Use a full URL such as http://127.0.0.1:5000"
            )));
        }
        if let Some(region) = non_empty(&a.region) {
            validate_region(&region)?;
        }
        let profile = match non_empty(&a.profile) {
            Some(p) => Some(check_profile(&p, "-p")?),
            None => match std::env::var("AWS_PROFILE") {
                Ok(p) if !p.trim().is_empty() => Some(check_profile(&p, "AWS_PROFILE")?),
                _ => None,
            },
        };
        Ok(Global {
            profile,
            region: non_empty(&a.region),
            endpoint_url,
            log_level: a.log_level,
            output: a.output,
            no_progress: a.no_progress,
            yes: a.yes,
        })
    }
}

/// A profile must exist in the AWS config or credentials file: a typo would otherwise fall back
/// to other credentials, perhaps of another account. `from` says where the name came from.
pub fn check_profile(name: &str, from: &str) -> Result<String> {
    let name = name.trim();
    let (files, known) = known_profiles();
    if known.iter().any(|k| k == name) {
        return Ok(name.to_string());
    }
    let there = if known.is_empty() {
        "it has no profiles".to_string()
    } else {
        format!("its profiles are {}", known.join(", "))
    };
    Err(usage(format!(
        "AWS profile {name:?} (from {from}) does not exist: it is in neither {} ({there}). \
         Pass an existing profile with -p, or create it with `aws configure --profile {name}`",
        files.join(" nor ")
    )))
}

/// The files the AWS SDK reads profiles from (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`,
/// else `~/.aws/config` and `~/.aws/credentials`) and the profile names they define.
fn known_profiles() -> (Vec<String>, Vec<String>) {
    let home = dirs::home_dir().unwrap_or_default();
    let path = |var: &str, default: &str| -> PathBuf {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => match v.strip_prefix("~/") {
                Some(rest) => home.join(rest),
                None => PathBuf::from(v),
            },
            _ => home.join(".aws").join(default),
        }
    };
    let mut names = Vec::new();
    let mut files = Vec::new();
    for (file, is_config) in [
        (path("AWS_CONFIG_FILE", "config"), true),
        (path("AWS_SHARED_CREDENTIALS_FILE", "credentials"), false),
    ] {
        files.push(file.display().to_string());
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for name in profile_sections(&text, is_config) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    (files, names)
}

/// Profile names of a config file (`[default]`, `[profile NAME]`) or a credentials file
/// (`[NAME]`); other sections (`[sso-session …]`, `[services …]`) are not profiles.
fn profile_sections(text: &str, is_config: bool) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let inner = l.strip_prefix('[')?.split(']').next()?.trim();
            if !is_config || inner == "default" {
                return Some(inner.to_string());
            }
            let rest = inner.strip_prefix("profile")?;
            rest.starts_with([' ', '\t'])
                .then(|| rest.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .collect()
}

fn validate_region(region: &str) -> Result<()> {
    let ok = region.split('-').count() >= 3
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "--region {region}: not an AWS region name. Use a name such as eu-central-1 or us-east-1"
        )))
    }
}

/// What `setup` was given, checked before the first AWS call: the flags, the parameter file and
/// the templates. Whether the deployment exists decides the rest (`settle`).
#[derive(Debug, Clone)]
pub struct SetupInput {
    pub stack: String,
    pub bundle: Bundle,
    pub root: TemplateInfo,
    /// The parameter file's values and where they came from. `explicit` is false for the
    /// built-in defaults, which only a new deployment uses.
    file: BTreeMap<String, String>,
    file_origin: String,
    file_explicit: bool,
    /// `-e`, `-d`, `-h`, `--mode`, validated.
    flags: BTreeMap<String, String>,
    /// `--new-server-image`: resolve BBBServerAmi again instead of keeping the servers' image.
    new_server_image: bool,
}

/// An existing deployment as setup starts from it.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Its user-facing parameters.
    pub params: BTreeMap<String, String>,
    /// The AMI CloudFormation resolved from BBBServerAmi (DescribeStacks `ResolvedValue`).
    pub resolved_ami: Option<String>,
}

/// Everything `setup` needs, validated.
#[derive(Debug, Clone)]
pub struct SetupSettings {
    pub stack: String,
    pub sources_stack: String,
    pub domain: String,
    pub email: String,
    pub hosted_zone: String,
    pub mode: String,
    /// User-facing root parameters (current deployment, file, flags), validated against
    /// root.yaml.
    pub params: BTreeMap<String, String>,
    /// Where the parameters came from, for the user.
    pub params_origin: String,
    /// For an existing deployment: the parameters this setup changes, (name, now, then).
    pub changes: Vec<(String, String, String)>,
    /// The server image this setup keeps (pinned from the AMI the deployment resolved).
    pub pinned_image: Option<String>,
    /// For an existing deployment: a parameter file in the folder that was not named and
    /// differs from it, (file, [(name, deployed, in the file)]): not applied, only said.
    pub unapplied_file: Option<(String, Vec<ParamChange>)>,
    pub bundle: Bundle,
    pub root: TemplateInfo,
}

/// A parameter's (name, value now, value then).
pub type ParamChange = (String, String, String);

/// Problems with the user's input, collected so that one run reports all of them.
#[derive(Debug, Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, msg: impl Into<String>) {
        self.0.push(msg.into());
    }

    /// Keeps the value of a check, or records its usage error.
    fn check<T>(&mut self, r: Result<T>) -> Option<T> {
        r.map_err(|e| self.add(e.to_string())).ok()
    }

    fn into_result(self) -> Result<()> {
        match self.0.as_slice() {
            [] => Ok(()),
            [one] => Err(usage(one.clone())),
            many => Err(usage(format!(
                "{} problems with the input (nothing was changed):\n  - {}",
                many.len(),
                many.join("\n  - ")
            ))),
        }
    }
}

/// The user-facing parameters (declared in `root`, not set by bbbctl) of a stack.
pub fn user_params(
    root: &TemplateInfo,
    stack_params: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    stack_params
        .into_iter()
        .filter(|(k, _)| root.parameters.get(k).is_some_and(|s| !s.is_internal()))
        .collect()
}

impl SetupInput {
    /// Reads and checks the stack name (as given: `stack` is not validated yet), the flags and
    /// the parameter file; every problem is reported at once.
    pub fn read(args: &SetupArgs, stack: String) -> Result<Self> {
        let bundle = Bundle::load(args.templates_dir.as_deref())?;
        let root = bundle.root_info().map_err(|e| {
            usage(format!(
                "root.yaml cannot be read ({e:#}). Check the file in --templates-dir"
            ))
        })?;
        let mut problems = Problems::default();
        let stack = problems.check(validate_stack_name(&stack));
        let (text, file_origin, file_explicit) = read_param_file(args.params.as_deref())?;
        let mut file = read_params(&text, &file_origin, &root, &mut problems)?;

        // The flags' own checks first (a value that fails them is not checked again).
        for (name, value) in file.iter_mut() {
            if let Some((flag, example, check)) = flag_check(name) {
                match check(value) {
                    Ok(normalized) => *value = normalized,
                    Err(why) => problems.add(format!(
                        "parameter {name} in {file_origin}: {why} (the check of {flag}). Fix it in {file_origin}, e.g. \"{name}\": \"{example}\", or pass {flag}"
                    )),
                }
            }
        }
        for (name, value) in &file {
            if flag_check(name).is_some_and(|(_, _, check)| check(value).is_err()) {
                continue;
            }
            if let Err(why) = root.parameters[name].check(value) {
                problems.add(format!(
                    "parameter {name} = {value:?} {why}. Fix it in {file_origin}"
                ));
            }
        }
        let mut flags = BTreeMap::new();
        let mut flag = |name: &str, value: Option<Result<String>>| {
            if let Some(v) = value.and_then(|v| problems.check(v)) {
                flags.insert(name.to_string(), v);
            }
        };
        // An empty value counts as not given (then "missing" says what to pass).
        let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        flag(P_EMAIL, given(&args.email).as_deref().map(validate_email));
        flag(
            P_DOMAIN,
            given(&args.domain).as_deref().map(validate_domain),
        );
        flag(
            P_ZONE,
            given(&args.hosted_zone).as_deref().map(validate_zone_id),
        );
        flag(P_MODE, args.mode.map(|m| Ok(m.as_str().to_string())));
        // The template's own limits hold for flags as for the file (e.g. the domain's length).
        for (name, value) in &flags {
            if let Some(spec) = root.parameters.get(name)
                && let Err(why) = spec.check(value)
            {
                problems.add(format!("{name} {value:?} (from its flag) {why}"));
            }
        }
        problems.into_result()?;
        Ok(SetupInput {
            stack: stack.expect("checked"),
            bundle,
            root,
            file,
            file_origin,
            file_explicit,
            flags,
            new_server_image: args.new_server_image,
        })
    }

    /// The parameters to deploy. A new deployment (`current` is `None`) takes the parameter
    /// file and needs `-e`, `-h` and `-d`. An existing one starts from its current parameters,
    /// which only an explicit parameter file and flags override, so a re-run never quietly
    /// reverts what an earlier `setup --params` set. Every problem is reported at once, with
    /// the template's Rules checked as CloudFormation would.
    pub fn settle(self, deployment: Option<&Current>) -> Result<SetupSettings> {
        let current = deployment.map(|d| &d.params);
        let mut params = BTreeMap::new();
        let mut origin = Vec::new();
        if let Some(current) = current {
            params.extend(current.clone());
            origin.push("the deployment's current parameters".to_string());
        }
        if current.is_none() || self.file_explicit {
            params.extend(self.file.clone());
            origin.push(self.file_origin.clone());
        }
        if !self.flags.is_empty() {
            params.extend(self.flags.clone());
            origin.push("flags".to_string());
        }
        let params_origin = origin.join(" + ");
        // The servers keep their image: a new AMI behind BBBServerAmi (Canonical publishes one
        // every few weeks) would otherwise replace them, and their data, on the next setup.
        let mut pinned_image = None;
        if self.new_server_image {
            params.insert(P_SERVER_IMAGE.to_string(), String::new());
        } else if let Some(ami) = deployment.and_then(|d| d.resolved_ami.as_ref())
            && params.get(P_SERVER_IMAGE).is_none_or(|v| v.is_empty())
        {
            params.insert(P_SERVER_IMAGE.to_string(), ami.clone());
            pinned_image = Some(ami.clone());
        }

        let mut problems = Problems::default();
        let mut required = |name: &str, flag: &str| match params.get(name).filter(|v| !v.is_empty())
        {
            Some(v) => Some(v.clone()),
            None => {
                problems.add(format!(
                    "missing {name}: pass {flag} or set \"{name}\" in the parameter file"
                ));
                None
            }
        };
        let email = required(P_EMAIL, "-e EMAIL");
        let domain = required(P_DOMAIN, "-d DOMAIN");
        let hosted_zone = required(P_ZONE, "-h HOSTED_ZONE_ID");
        if let Some(current) = current {
            for (name, value) in current {
                if self.flags.contains_key(name)
                    || (self.file_explicit && self.file.contains_key(name))
                {
                    continue;
                }
                if let Err(why) = self.root.parameters[name].check(value) {
                    problems.add(format!(
                        "the deployment's current {name} = {value:?} {why} in this version of bbbctl: set a new value with --params"
                    ));
                }
            }
        }
        // The database's snapshot parameter is `restore`'s: a change here would replace the
        // database (emptied: with an empty one) without restore's checks and last steps.
        // In single mode there is no database: a switch to it forgets the snapshot, so a
        // later switch back creates an empty database, as a new deployment has.
        if let Some(current) = current {
            let was = |n: &str| current.get(n).cloned().unwrap_or_default();
            let now = |n: &str| params.get(n).cloned().unwrap_or_default();
            // ECS cannot drop the capacity provider the running Greenlight and Scalelite
            // tasks use (ResourceInUseException): the front end's stack would fail and the
            // update roll back.
            let scalable = |m: String| m.is_empty() || m == Mode::Scalable.as_str();
            if scalable(was(P_MODE))
                && scalable(now(P_MODE))
                && !was("BBBECSInstanceType").is_empty()
                && was("BBBECSInstanceType") != now("BBBECSInstanceType")
            {
                problems.add(format!(
                    "BBBECSInstanceType {} → {}: ECS cannot take the capacity provider away from the Greenlight and Scalelite tasks that run on it, and the update would roll back. Keep {:?} for deployment {}, or set up a new deployment with the other one",
                    was("BBBECSInstanceType"),
                    now("BBBECSInstanceType"),
                    was("BBBECSInstanceType"),
                    self.stack
                ));
            }
            // Greenlight stores each recording's playback address (Scalelite builds it from
            // the name it was asked under): a new domain leaves every existing recording
            // pointing at a name that no longer exists.
            if !was(P_DOMAIN).is_empty() && was(P_DOMAIN) != now(P_DOMAIN) {
                problems.add(format!(
                    "BBBDomainName {} → {}: a running deployment keeps its domain. Greenlight stores every recording's playback address under the old name (and the servers their names), so the change would break them all. Keep -d {}, or set up a new deployment on the new domain",
                    was(P_DOMAIN),
                    now(P_DOMAIN),
                    was(P_DOMAIN)
                ));
            }
        }
        // ElastiCache upgrades a cache from Redis OSS to Valkey in place, but never back (a
        // downgrade): CloudFormation would fail at the cache and roll the update back.
        if let Some(current) = current
            && current.get("BBBCacheEngine").map(String::as_str) == Some("valkey")
            && params.get("BBBCacheEngine").map(String::as_str) == Some("redis")
        {
            problems.add(format!(
                "BBBCacheEngine valkey → redis: ElastiCache moves a cache from Redis OSS to Valkey in place, never back, and the update would fail and roll back. Keep \"valkey\" for deployment {}, or set up a new deployment with \"redis\"",
                self.stack
            ));
        }
        let restored_from = current
            .and_then(|c| c.get(crate::backup::P_DB_SNAPSHOT))
            .cloned()
            .unwrap_or_default();
        let wanted = params.get(crate::backup::P_DB_SNAPSHOT).cloned();
        let single = params.get(P_MODE).map(String::as_str) == Some(Mode::Single.as_str());
        if single && wanted.as_deref().is_none_or(|w| w == restored_from) {
            if !restored_from.is_empty() {
                params.insert(crate::backup::P_DB_SNAPSHOT.to_string(), String::new());
            }
        } else if let Some(wanted) = wanted
            && wanted != restored_from
        {
            problems.add(format!(
                "{} is written by `bbbctl restore` (here {restored_from:?} → {wanted:?}): setup neither restores nor empties the database. \
                 Leave it out of the parameter file; restore with `bbbctl restore -s {} --from SNAPSHOT` (a new deployment: set it up, then restore into it with --force)",
                crate::backup::P_DB_SNAPSHOT,
                self.stack
            ));
        }
        if let Some(domain) = &domain {
            let value = |n: &str| {
                params
                    .get(n)
                    .cloned()
                    .or_else(|| self.root.parameters.get(n)?.default.clone())
                    .unwrap_or_default()
            };
            for why in domain_fits(domain, &value) {
                problems.add(why);
            }
        }
        for b in self.root.broken_rules(&params) {
            let values: Vec<String> = b
                .params
                .iter()
                .map(|n| {
                    let v = params
                        .get(n)
                        .cloned()
                        .or_else(|| self.root.parameters.get(n)?.default.clone())
                        .unwrap_or_default();
                    format!("{n} = {v}")
                })
                .collect();
            problems.add(format!(
                "{} ({}; rule {} of root.yaml). Change it in {params_origin}",
                b.description.trim_end_matches('.'),
                values.join(", "),
                b.name
            ));
        }
        problems.into_result()?;
        let (email, domain, hosted_zone) = (
            email.expect("checked"),
            domain.expect("checked"),
            hosted_zone.expect("checked"),
        );
        let mode = params
            .get(P_MODE)
            .cloned()
            .or_else(|| {
                self.root
                    .parameters
                    .get(P_MODE)
                    .and_then(|s| s.default.clone())
            })
            .unwrap_or_else(|| Mode::Scalable.as_str().to_string());
        let changes = match current {
            None => Vec::new(),
            Some(current) => {
                let default = |n: &str| self.root.parameters.get(n).and_then(|s| s.default.clone());
                params
                    .iter()
                    .filter(|(n, _)| *n != P_SERVER_COUNT)
                    .filter(|(n, _)| !(*n == P_SERVER_IMAGE && pinned_image.is_some()))
                    .filter_map(|(n, v)| {
                        let now = current.get(n).cloned().or_else(|| default(n))?;
                        (now != *v).then(|| (n.clone(), now, v.clone()))
                    })
                    .collect()
            }
        };
        let unapplied_file = match current {
            Some(current)
                if !self.file_explicit && !self.file_origin.starts_with("the built-in") =>
            {
                let differs: Vec<ParamChange> = self
                    .file
                    .iter()
                    .filter(|(name, _)| !self.flags.contains_key(*name))
                    .filter_map(|(name, value)| {
                        let now = current.get(name).cloned().unwrap_or_default();
                        (now != *value).then(|| (name.clone(), now, value.clone()))
                    })
                    .collect();
                (!differs.is_empty()).then(|| (self.file_origin.clone(), differs))
            }
            _ => None,
        };
        Ok(SetupSettings {
            sources_stack: sources_stack_name(&self.stack),
            stack: self.stack,
            domain,
            email,
            hosted_zone,
            mode,
            params,
            params_origin,
            changes,
            pinned_image,
            unapplied_file,
            bundle: self.bundle,
            root: self.root,
        })
    }
}

impl SetupSettings {
    /// The SSM parameter whose AMI the servers start from when `BBBServerImageId` is empty
    /// (`BBBServerAmi`: the parameter file's, else root.yaml's default); `None` when the
    /// image is already set.
    pub fn image_to_resolve(&self) -> Option<String> {
        if self
            .params
            .get(P_SERVER_IMAGE)
            .is_some_and(|v| !v.is_empty())
        {
            return None;
        }
        self.params
            .get(P_SERVER_AMI)
            .cloned()
            .or_else(|| self.root.parameters.get(P_SERVER_AMI)?.default.clone())
            .filter(|v| !v.is_empty())
    }

    /// Records `ami` as the servers' image (`BBBServerImageId`), as a re-run would: so a
    /// first create already holds what later setups keep. Err: the template refuses the value.
    pub fn pin_image(&mut self, ami: &str) -> std::result::Result<(), String> {
        if let Some(spec) = self.root.parameters.get(P_SERVER_IMAGE) {
            spec.check(ami)?;
        }
        self.params
            .insert(P_SERVER_IMAGE.to_string(), ami.to_string());
        self.pinned_image = Some(ami.to_string());
        Ok(())
    }
}

/// Which deployment a command acts on: `-s`/`BBBCTL_STACK`, else the most recently set up one
/// bbbctl remembers (in the region and of the profile given, if given; whose region and
/// profile then fill in what flags and environment leave open; a destroyed one is forgotten,
/// so the one set up before it is next). Returns the settings to use and the validated stack
/// name.
pub fn target(g: &Global, stack: Option<&str>) -> Result<(Global, String)> {
    let (g, stack) = target_as_given(g, stack)?;
    Ok((g, validate_stack_name(&stack)?))
}

/// [`target`] without checking a given name: for `setup`, which reports a bad name together
/// with every other problem of its input.
pub fn target_as_given(g: &Global, stack: Option<&str>) -> Result<(Global, String)> {
    let mut g = g.clone();
    if let Some(stack) = stack.filter(|s| !s.trim().is_empty()) {
        return Ok((g, stack.to_string()));
    }
    let Some(r) = memory::load_for(g.region.as_deref(), g.profile.as_deref()) else {
        return Err(usage(
            "no deployment given: pass -s STACK (bbbctl remembers the deployments of its successful `bbbctl setup`s on this machine; `bbbctl list` shows those in the account and region)",
        ));
    };
    if g.region.is_none() {
        g.region = r.region;
    }
    if g.profile.is_none()
        && let Some(p) = r.profile
    {
        g.profile = Some(check_profile(&p, "the remembered deployment")?);
    }
    Ok((g, r.stack))
}

/// The name of the stack that holds a deployment's source bucket.
pub fn sources_stack_name(stack: &str) -> String {
    format!("{stack}-sources")
}

/// The parameter file's text, its name, and whether the user named it (`--params`). Without
/// `--params` it is `./bbb-on-aws-param.json` when there is one, else bbbctl's built-in
/// defaults: a new deployment starts from it, but only a named file changes an existing one
/// (a file that happens to lie in the folder must never steer a running deployment).
pub fn read_param_file(path: Option<&Path>) -> Result<(String, String, bool)> {
    let chosen: Option<PathBuf> = match path {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(PARAM_FILE)).filter(|p| p.is_file()),
    };
    let named = path.is_some();
    match chosen {
        Some(p) => std::fs::read_to_string(&p)
            .map(|t| (t, p.display().to_string(), named))
            .map_err(|e| {
                usage(format!(
                    "cannot read parameter file {}: {e}. Pass an existing JSON file with --params",
                    p.display()
                ))
            }),
        None => Ok((
            EMBEDDED_PARAMS.to_string(),
            format!("the built-in {PARAM_FILE}"),
            false,
        )),
    }
}

/// Parses `{"Parameters": {"Name": value, …}}` and checks every name against the template;
/// every problem of the file is reported at once.
pub fn parse_param_file(
    text: &str,
    origin: &str,
    root: &TemplateInfo,
) -> Result<BTreeMap<String, String>> {
    let mut problems = Problems::default();
    let out = read_params(text, origin, root, &mut problems)?;
    problems.into_result()?;
    Ok(out)
}

/// The parameters of a parameter file; a file that is not `{"Parameters": {…}}` is an error
/// (nothing in it can be read), while each bad parameter is added to `problems` and skipped.
fn read_params(
    text: &str,
    origin: &str,
    root: &TemplateInfo,
    problems: &mut Problems,
) -> Result<BTreeMap<String, String>> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        usage(format!(
            "{origin} is not valid JSON: {e}. Expected {{\"Parameters\": {{\"Name\": value, ...}}}}"
        ))
    })?;
    let Some(obj) = doc.get("Parameters").and_then(Value::as_object) else {
        return Err(usage(format!(
            "{origin} has no \"Parameters\" object. Expected {{\"Parameters\": {{\"Name\": value, ...}}}}"
        )));
    };
    let mut out = BTreeMap::new();
    for (name, value) in obj {
        match root.parameters.get(name) {
            None => {
                let hint = closest(
                    name,
                    root.parameters
                        .iter()
                        .filter(|(_, s)| !s.is_internal())
                        .map(|(n, _)| n.as_str()),
                )
                .map(|c| format!(" Did you mean {c}?"))
                .unwrap_or_default();
                problems.add(format!(
                    "unknown parameter {name} in {origin}.{hint} Run `bbbctl setup --help` and see the README for the parameter list"
                ));
                continue;
            }
            Some(spec) if spec.is_internal() => {
                problems.add(format!(
                    "parameter {name} in {origin} is set by bbbctl itself: remove it from the file"
                ));
                continue;
            }
            Some(_) => {}
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) if items.iter().all(|i| i.is_string() || i.is_number()) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => {
                problems.add(format!(
                    "parameter {name} in {origin} must be a string, a number or a list of them"
                ));
                continue;
            }
        };
        out.insert(name.clone(), text);
    }
    Ok(out)
}

/// The known name closest to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    known
        .map(|k| (strsim::jaro_winkler(&lower, &k.to_ascii_lowercase()), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// CloudFormation's rules (a letter, then letters, digits and hyphens) and our length limit.
pub fn validate_stack_name(name: &str) -> Result<String> {
    let name = name.trim();
    let fix = "Use a letter followed by letters, digits or hyphens, e.g. -s bbb-prod";
    if name.is_empty() {
        return Err(usage(format!("the stack name is empty. {fix}")));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(usage(format!(
            "stack name {name:?} must start with a letter. {fix}"
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(usage(format!(
            "stack name {name:?} contains {bad:?}; only letters, digits and hyphens are allowed. {fix}"
        )));
    }
    if name.len() > MAX_STACK_NAME {
        return Err(usage(format!(
            "stack name {name:?} is {} characters long; at most {MAX_STACK_NAME} leave room for the names derived from it",
            name.len()
        )));
    }
    Ok(name.to_string())
}

/// The operator's address, lower-cased: it is the Greenlight administrator's login, and
/// Greenlight accepts a user's e-mail only of letters, digits and `_ . + -` before the `@`
/// and a domain ending in letters (release-3.8.2.4 app/models/user.rb), and looks it up
/// lower-cased at sign-in (api/v1/sessions_controller.rb) while storing it as given: an
/// address with capitals could never sign in, one with other characters is refused by
/// `rake admin:create`. (Such an address never holds a character a shell acts on.)
pub fn validate_email(email: &str) -> Result<String> {
    email_check(email).map_err(|why| {
        usage(format!(
            "{why}. Pass the operator's address with -e, e.g. -e ops@example.org"
        ))
    })
}

/// `validate_email` without the hint: the normalized address, or what is wrong with it.
fn email_check(email: &str) -> std::result::Result<String, String> {
    let email = email.trim().to_ascii_lowercase();
    let bad = |why: &str| format!("{email:?} is not a valid e-mail address{why}");
    let (local, domain) = email.split_once('@').ok_or_else(|| bad(""))?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if !local_ok {
        return Err(bad(
            " for Greenlight (its administrator login): before the @ only letters, digits and _ . + - are accepted",
        ));
    }
    let tld_ok = domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| !tld.is_empty() && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if email.len() > 254 || validate_hostname(domain).is_err() || !tld_ok {
        return Err(bad(""));
    }
    Ok(email)
}

pub fn validate_domain(domain: &str) -> Result<String> {
    domain_check(domain).map_err(|why| {
        usage(format!(
            "{why}. Pass the name the platform should live under with -d, e.g. -d bbb.example.org"
        ))
    })
}

/// `validate_domain` without the hint.
fn domain_check(domain: &str) -> std::result::Result<String, String> {
    let normalized = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    validate_hostname(&normalized).map_err(|why| format!("domain {domain:?} {why}"))?;
    Ok(normalized)
}

/// The names a deployment derives from its domain, checked against the limits of ACM and
/// DNS before anything is created (CloudFormation would fail deep inside a nested stack).
/// `value` gives a parameter's value in effect. Each label ≤ 63 and the whole ≤ 253 are
/// `validate_domain`'s and the template's (AllowedPattern, MaxLength). Single mode needs
/// nothing more: its server's Let's Encrypt certificate may hold a name of any DNS length
/// (since 2023 Let's Encrypt leaves out the Common Name when no name fits in 64).
pub fn domain_fits(domain: &str, value: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut problems = Vec::new();
    if value(P_MODE) != "scalable" {
        return problems;
    }
    let n = domain.chars().count();
    if value(P_CERT).is_empty() {
        // templates/frontend.yaml, Certificate: the domain first where Greenlight serves it.
        let fix = |names: &str| {
            format!(
                "or set {P_CERT} in the parameter file to an existing ACM certificate for {names}"
            )
        };
        if value(P_FRONTEND) == "External" {
            if n + "scalelite.".len() > ACM_FIRST_NAME_MAX {
                problems.push(format!(
                    "domain {domain} has {n} characters: with {P_FRONTEND} External the first name of the load balancer's ACM certificate is scalelite.{domain} ({} characters), and ACM allows at most {ACM_FIRST_NAME_MAX} there, so the domain may have at most {}. Use a shorter domain with -d, {}",
                    n + "scalelite.".len(),
                    ACM_FIRST_NAME_MAX - "scalelite.".len(),
                    fix(&format!("scalelite.{domain}"))
                ));
            }
        } else if n > ACM_FIRST_NAME_MAX {
            problems.push(format!(
                "domain {domain} has {n} characters: in scalable mode it is the first name of the load balancer's ACM certificate, and ACM allows at most {ACM_FIRST_NAME_MAX} there. Use a shorter domain with -d, {}",
                fix(&format!("{domain} and scalelite.{domain}"))
            ));
        }
    }
    if n + SERVER_NAME_PREFIX > DNS_NAME_MAX {
        problems.push(format!(
            "domain {domain} has {n} characters: the BBB servers' names bbb-<17 hex digits>.media.{domain} would have {}, and DNS allows at most {DNS_NAME_MAX}, so the domain may have at most {}. Use a shorter domain with -d",
            n + SERVER_NAME_PREFIX,
            DNS_NAME_MAX - SERVER_NAME_PREFIX
        ));
    }
    problems
}

fn validate_hostname(name: &str) -> std::result::Result<(), String> {
    if name.len() > 253 {
        return Err("is longer than 253 characters".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("needs at least two labels (name.tld)".into());
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err("has an empty label or one longer than 63 characters".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "has a label {label:?} that starts or ends with '-'"
            ));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "has a label {label:?} with characters other than letters, digits and '-'"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("ends in a numeric label (an IP address is not a domain)".into());
    }
    Ok(())
}

/// Accepts `Z123…` or `/hostedzone/Z123…` (as the console and CLI print it).
pub fn validate_zone_id(zone: &str) -> Result<String> {
    zone_check(zone).map_err(|why| {
        usage(format!(
            "{why}. Pass the id of the public zone with -h, e.g. -h Z0123456789ABCDEFGHIJ (aws route53 list-hosted-zones shows it)"
        ))
    })
}

/// `validate_zone_id` without the hint.
fn zone_check(zone: &str) -> std::result::Result<String, String> {
    let id = zone.trim().trim_start_matches("/hostedzone/");
    // AWS ids look like Z0123456789ABCDEFGHIJ; only the alphabet and length are guaranteed.
    let ok = !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(id.to_string())
    } else {
        Err(format!("{zone:?} is not a Route53 hosted zone id"))
    }
}

/// The parameters that have a flag, with the flag's own check: a value from the parameter
/// file (or `--params`) passes the same check as one from the flag, and is normalized alike.
/// (flag, an example entry of the file, the check).
type FlagCheck = fn(&str) -> std::result::Result<String, String>;
fn flag_check(name: &str) -> Option<(&'static str, &'static str, FlagCheck)> {
    match name {
        P_EMAIL => Some(("-e", "ops@example.org", email_check)),
        P_DOMAIN => Some(("-d", "bbb.example.org", domain_check)),
        P_ZONE => Some(("-h", "Z0123456789ABCDEFGHIJ", zone_check)),
        _ => None,
    }
}

/// `scale --count N`: a whole number from 0 to `max`.
pub fn validate_count(raw: &str, max: u32) -> Result<u32> {
    let n: u32 = raw.trim().parse().map_err(|_| {
        usage(format!(
            "--count {raw:?} is not a whole number ≥ 0. Pass the number of BBB servers, e.g. --count 3"
        ))
    })?;
    if n > max {
        return Err(usage(format!(
            "--count {n} is above the ceiling of {max} servers. Pass --max {n} if you really want that many"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code;

    fn msg(r: Result<impl std::fmt::Debug>) -> String {
        let e = r.unwrap_err();
        assert_eq!(exit_code(&e), 2, "usage errors exit 2: {e}");
        e.to_string()
    }

    #[test]
    fn stack_names() {
        assert_eq!(validate_stack_name(" bbb-prod ").unwrap(), "bbb-prod");
        assert!(msg(validate_stack_name("1bbb")).contains("must start with a letter"));
        assert!(msg(validate_stack_name("bbb_prod")).contains("contains '_'"));
        assert!(msg(validate_stack_name("")).contains("empty"));
        assert!(msg(validate_stack_name(&"a".repeat(33))).contains("at most 32"));
        assert!(validate_stack_name(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn emails() {
        assert!(validate_email("ops@example.org").is_ok());
        assert!(validate_email("first.last+bbb@uni.example.ac.uk").is_ok());
        // Greenlight looks the login up lower-cased: stored lower-cased too.
        assert_eq!(
            validate_email(" Ops@Example.ORG ").unwrap(),
            "ops@example.org"
        );
        // Greenlight refuses these characters; a shell would act on some of them.
        for bad in [
            "o!ps@example.org",
            "a$(id)@example.org",
            "ops`x`@example.org",
            "o'p@x.org",
        ] {
            assert!(
                msg(validate_email(bad)).contains("only letters, digits and _ . + -"),
                "{bad}"
            );
        }
        for bad in [
            "ops",
            "ops@",
            "@example.org",
            "ops@example",
            "o ps@example.org",
            "ops@-x.org",
        ] {
            assert!(
                msg(validate_email(bad)).contains("not a valid e-mail"),
                "{bad}"
            );
        }
    }

    #[test]
    fn domains() {
        assert_eq!(
            validate_domain("BBB.Example.org.").unwrap(),
            "bbb.example.org"
        );
        assert!(msg(validate_domain("localhost")).contains("two labels"));
        assert!(msg(validate_domain("bbb_x.example.org")).contains("characters other"));
        assert!(msg(validate_domain("-a.example.org")).contains("starts or ends"));
        assert!(msg(validate_domain("10.0.0.1")).contains("numeric"));
    }

    /// A domain of `n` characters: labels of at most 63, ending in `.example.org`.
    fn domain_of(n: usize) -> String {
        let tail = ".example.org";
        let mut head = String::new();
        while head.len() < n - tail.len() {
            if !head.is_empty() {
                head.push('.');
            }
            let room = (n - tail.len() - head.len()).min(63);
            head.push_str(&"a".repeat(room));
        }
        let d = format!("{head}{tail}");
        assert_eq!(d.len(), n);
        validate_domain(&d).unwrap()
    }

    #[test]
    fn derived_names_fit_acm_and_dns() {
        let with = |mode: &'static str, frontend: &'static str, cert: &'static str| {
            move |n: &str| match n {
                P_MODE => mode.to_string(),
                P_FRONTEND => frontend.to_string(),
                P_CERT => cert.to_string(),
                _ => String::new(),
            }
        };
        let greenlight = with("scalable", "Greenlight", "");
        let external = with("scalable", "External", "");
        // Greenlight: the domain is the certificate's first name, 64 at most.
        assert!(domain_fits(&domain_of(64), &greenlight).is_empty());
        let e = domain_fits(&domain_of(65), &greenlight).join("\n");
        assert!(
            e.contains("has 65 characters") && e.contains("ACM allows at most 64"),
            "{e}"
        );
        // External: scalelite.<domain> comes first, so the domain has 54 at most.
        assert!(domain_fits(&domain_of(54), &external).is_empty());
        let e = domain_fits(&domain_of(55), &external).join("\n");
        assert!(
            e.contains("has 55 characters")
                && e.contains("(65 characters)")
                && e.contains("at most 54"),
            "{e}"
        );
        // An existing certificate, or single mode (Let's Encrypt): the DNS limits only.
        let cert = "arn:aws:acm:us-east-1:123456789012:certificate/0-1";
        assert!(domain_fits(&domain_of(200), &with("scalable", "External", cert)).is_empty());
        assert!(domain_fits(&domain_of(240), &with("single", "Greenlight", "")).is_empty());
        // Scalable servers are bbb-<17 hex>.media.<domain>: 253 at most.
        assert!(domain_fits(&domain_of(225), &with("scalable", "Greenlight", cert)).is_empty());
        let e = domain_fits(&domain_of(226), &with("scalable", "Greenlight", cert)).join("\n");
        assert!(
            e.contains("would have 254") && e.contains("at most 225"),
            "{e}"
        );
    }

    #[test]
    fn flags_keep_the_templates_limits() {
        use clap::Parser;
        let long = domain_of(201);
        let argv = ["bbbctl", "setup", "-s", "bbb", "-d", &long];
        let crate::cli::Command::Setup(a) = crate::cli::Cli::try_parse_from(argv).unwrap().command
        else {
            unreachable!()
        };
        let e = msg(SetupInput::read(&a, "bbb".into()));
        assert!(
            e.contains("BBBDomainName") && e.contains("must be at most 200 characters"),
            "{e}"
        );
        // A label over 63 is refused by -d's own check.
        let e = msg(validate_domain(&format!("{}.example.org", "a".repeat(64))));
        assert!(e.contains("longer than 63"), "{e}");
    }

    #[test]
    fn zone_ids() {
        assert_eq!(validate_zone_id("/hostedzone/Z123ABC").unwrap(), "Z123ABC");
        assert!(msg(validate_zone_id("z123")).contains("not a Route53 hosted zone id"));
        assert!(msg(validate_zone_id("example.org")).contains("hosted zone"));
    }

    #[test]
    fn counts() {
        assert_eq!(validate_count("3", 100).unwrap(), 3);
        assert_eq!(validate_count("0", 100).unwrap(), 0);
        assert!(msg(validate_count("-1", 100)).contains("whole number"));
        assert!(msg(validate_count("2.5", 100)).contains("whole number"));
        assert!(msg(validate_count("101", 100)).contains("--max 101"));
    }

    fn root() -> TemplateInfo {
        Bundle::embedded().root_info().unwrap()
    }

    #[test]
    fn param_file_shape_and_names() {
        let r = root();
        let p = parse_param_file(
            r#"{"Parameters": {"BBBNumberOfAZs": 2, "BBBEnvironmentType": "single"}}"#,
            "f",
            &r,
        )
        .unwrap();
        assert_eq!(p["BBBNumberOfAZs"], "2");
        assert_eq!(p["BBBEnvironmentType"], "single");
        assert!(msg(parse_param_file("{", "f", &r)).contains("not valid JSON"));
        assert!(msg(parse_param_file("[]", "f", &r)).contains("no \"Parameters\" object"));
        let m = msg(parse_param_file(
            r#"{"Parameters": {"BBBNumberOfAz": 2}}"#,
            "f",
            &r,
        ));
        assert!(
            m.contains("unknown parameter BBBNumberOfAz")
                && m.contains("Did you mean BBBNumberOfAZs?"),
            "{m}"
        );
        let m = msg(parse_param_file(
            r#"{"Parameters": {"TemplateBucket": "x"}}"#,
            "f",
            &r,
        ));
        assert!(m.contains("set by bbbctl itself"), "{m}");
        let m = msg(parse_param_file(
            r#"{"Parameters": {"BBBNumberOfAZs": {"a": 1}}}"#,
            "f",
            &r,
        ));
        assert!(m.contains("must be a string"), "{m}");
    }

    /// bbb-on-aws-param.json and every preset in params/ fit the root template's declarations.
    #[test]
    fn shipped_param_files_are_valid() {
        let r = root();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![repo.join(PARAM_FILE)];
        for entry in std::fs::read_dir(repo.join("params")).unwrap() {
            files.push(entry.unwrap().path());
        }
        assert!(files.len() >= 3, "{files:?}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let origin = file.display().to_string();
            let p = parse_param_file(&text, &origin, &r).unwrap_or_else(|e| panic!("{e}"));
            for (name, value) in &p {
                if let Err(why) = r.parameters[name].check(value) {
                    panic!("{origin}: {name} = {value:?} {why}");
                }
            }
        }
    }

    /// `bbbctl setup -s bbb ARGS --params <a file that sets nothing>` (not the repository's
    /// ./bbb-on-aws-param.json, which the tests' working folder holds).
    fn setup_input(args: &[&str]) -> SetupInput {
        use clap::Parser;
        let empty = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(empty.path(), r#"{"Parameters": {}}"#).unwrap();
        let path = empty.path().to_str().unwrap().to_string();
        let mut argv = vec!["bbbctl", "setup", "-s", "bbb", "--params", &path];
        argv.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Setup(a) => SetupInput::read(&a, "bbb".into()).unwrap(),
            _ => unreachable!(),
        }
    }

    /// Single mode has no database: a snapshot to restore it from is refused, not dropped
    /// silently (a later switch to scalable would create the cluster from it, with the
    /// snapshot's password and no `restore` to reset it).
    #[test]
    fn single_mode_refuses_a_database_snapshot() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            r#"{"Parameters": {"BBBDatabaseSnapshot": "bbbctl-bbb-20261201-120000"}}"#,
        )
        .unwrap();
        let path = file.path().to_str().unwrap();
        let argv = [
            "bbbctl",
            "setup",
            "-s",
            "bbb",
            "--params",
            path,
            "--mode",
            "single",
            "-e",
            "ops@example.org",
            "-d",
            "bbb.example.org",
            "-h",
            "Z123",
        ];
        use clap::Parser;
        let input = match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Setup(a) => SetupInput::read(&a, "bbb".into()).unwrap(),
            _ => unreachable!(),
        };
        let e = input.settle(None).unwrap_err().to_string();
        assert!(
            e.contains("BBBDatabaseSnapshot is written by `bbbctl restore`"),
            "{e}"
        );
    }

    /// The parameter file's values pass the checks of `-e`, `-d` and `-h` (issue 25): a value
    /// a shell would act on is refused there, with the parameter, what is wrong and the fix.
    #[test]
    fn the_files_values_get_the_flags_checks() {
        use clap::Parser;
        let read = |params: &str| {
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), params).unwrap();
            let path = file.path().to_str().unwrap().to_string();
            let argv = ["bbbctl", "setup", "-s", "bbb", "--params", &path];
            match crate::cli::Cli::try_parse_from(argv).unwrap().command {
                crate::cli::Command::Setup(a) => SetupInput::read(&a, "bbb".into()),
                _ => unreachable!(),
            }
        };
        let hostile = [
            "a$(touch /tmp/x)@x.org",
            "a`touch /tmp/x`@x.org",
            "ops$team@x.org",
            "o'ps@x.org",
            "o\"ps@x.org",
            "ops@x.org\nb@y.org",
            "ops@x.org;reboot",
            "ops @x.org",
        ];
        for (name, flag) in [(P_EMAIL, "-e"), (P_DOMAIN, "-d"), (P_ZONE, "-h")] {
            for value in hostile {
                let json = serde_json::json!({ "Parameters": { name: value } }).to_string();
                let e = msg(read(&json));
                assert!(
                    e.contains(&format!("parameter {name} in "))
                        && e.contains(&format!("(the check of {flag})"))
                        && e.contains("Fix it in ")
                        && e.contains(&format!("or pass {flag}")),
                    "{name} = {value:?}: {e}"
                );
                assert!(!e.contains("problems with the input"), "one problem: {e}");
            }
        }
        // Normalized as the flags are.
        let input = read(
            r#"{"Parameters": {"BBBOperatorEMail": " Ops@Example.ORG ", "BBBDomainName": "BBB.example.org.", "BBBHostedZone": "/hostedzone/Z123"}}"#,
        )
        .unwrap();
        assert_eq!(input.file[P_EMAIL], "ops@example.org");
        assert_eq!(input.file[P_DOMAIN], "bbb.example.org");
        assert_eq!(input.file[P_ZONE], "Z123");
    }

    #[test]
    fn an_existing_deployment_keeps_its_parameters_unless_told_otherwise() {
        let current = Current {
            params: [
                (P_EMAIL, "ops@example.org"),
                (P_DOMAIN, "bbb.example.org"),
                (P_ZONE, "Z123"),
                ("BBBLogRetentionDays", "14"),
                (P_SERVER_IMAGE, ""),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            resolved_ami: Some("ami-0123456789abcdef0".into()),
        };
        // No flags, no file of the user's: nothing changes but the recorded image.
        let s = setup_input(&[]).settle(Some(&current)).unwrap();
        assert_eq!(
            s.params["BBBLogRetentionDays"], "14",
            "not reverted to the default"
        );
        assert_eq!(s.params[P_SERVER_IMAGE], "ami-0123456789abcdef0");
        assert_eq!(s.pinned_image.as_deref(), Some("ami-0123456789abcdef0"));
        assert_eq!(s.changes, Vec::new());
        // A flag changes what it names, and says so.
        let s = setup_input(&["-e", "new@example.org"])
            .settle(Some(&current))
            .unwrap();
        assert_eq!(
            s.changes,
            [(
                P_EMAIL.to_string(),
                "ops@example.org".to_string(),
                "new@example.org".to_string()
            )]
        );
        // A running deployment keeps its domain (Greenlight's stored playback addresses).
        let e = setup_input(&["-d", "new.example.org"])
            .settle(Some(&current))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a running deployment keeps its domain"), "{e}");
        // ECS cannot take the capacity provider away from running tasks.
        let mut fargate = current.clone();
        fargate
            .params
            .insert("BBBECSInstanceType".into(), "fargate".into());
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            r#"{"Parameters": {"BBBECSInstanceType": "t3.medium"}}"#,
        )
        .unwrap();
        use clap::Parser;
        let argv = [
            "bbbctl",
            "setup",
            "-s",
            "bbb",
            "--params",
            file.path().to_str().unwrap(),
        ];
        let input = match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Setup(a) => SetupInput::read(&a, "bbb".into()).unwrap(),
            _ => unreachable!(),
        };
        let e = input.settle(Some(&fargate)).unwrap_err().to_string();
        assert!(
            e.contains(
                "BBBECSInstanceType fargate → t3.medium: ECS cannot take the capacity provider away"
            ),
            "{e}"
        );
        // --new-server-image: the image comes from BBBServerAmi again.
        let mut pinned = current.clone();
        pinned
            .params
            .insert(P_SERVER_IMAGE.into(), "ami-0123456789abcdef0".into());
        let s = setup_input(&["--new-server-image"])
            .settle(Some(&pinned))
            .unwrap();
        assert_eq!(s.params[P_SERVER_IMAGE], "");
        assert_eq!(s.changes.len(), 1, "{:?}", s.changes);
        // A new deployment needs -e, -h and -d: all three named at once.
        let e = setup_input(&[]).settle(None).unwrap_err().to_string();
        assert!(e.starts_with("3 problems with the input"), "{e}");
        for flag in ["-e EMAIL", "-d DOMAIN", "-h HOSTED_ZONE_ID"] {
            assert!(e.contains(flag), "{e}");
        }
        // The template's Rules, with the values that break them.
        let e = setup_input(&["--mode", "scalable"])
            .settle(Some(&Current {
                params: [("BBBNumberOfAZs".to_string(), "1".to_string())]
                    .into_iter()
                    .chain(current.params.clone())
                    .collect(),
                resolved_ami: None,
            }))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "BBBEnvironmentType = scalable, BBBNumberOfAZs = 1; rule ScalableNeedsTwoAZs"
            ),
            "{e}"
        );
    }

    #[test]
    fn profile_file_sections() {
        let config = "[default]\nregion = eu-central-1\n[profile prod]\n[profile  uni-ops ] # c\n[sso-session corp]\n[services s3]\n[profiled]\n";
        assert_eq!(
            profile_sections(config, true),
            ["default", "prod", "uni-ops"]
        );
        assert_eq!(
            profile_sections("[default]\n[prod]\n; [x]\n", false),
            ["default", "prod"]
        );
    }

    #[test]
    fn closest_names() {
        let known = ["BBBNumberOfAZs", "BBBDomainName", "BBBServerCount"];
        assert_eq!(
            closest("bbbdomainname", known.into_iter()),
            Some("BBBDomainName")
        );
        assert_eq!(closest("Completely", known.into_iter()), None);
    }
}
