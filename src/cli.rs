//! Command-line syntax (clap derive). Nothing here talks to AWS; `settings` turns these into
//! validated, plain structs. The dependency runs one way: `settings` reads these types, and
//! this module uses nothing of `settings`.
//!
//! `-h` is the hosted zone of `setup` (as in the shell tooling users know), so help is `--help` only.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Default ceiling of `scale --count` and `schedule add --count` (lifted with `--max`). Kept
/// here, not in `settings`: `settings` reads this module's types, never the other way round.
pub const DEFAULT_MAX_SERVERS: u32 = 100;

#[derive(Debug, Parser)]
#[command(
    name = "bbbctl",
    version,
    about = "Deploy, operate and tear down a scalable BigBlueButton platform on AWS",
    disable_help_flag = true,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; each can also come from an environment variable.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// AWS profile from ~/.aws/config and ~/.aws/credentials [env: AWS_PROFILE]; its
    /// credentials win over AWS_ACCESS_KEY_ID in the environment
    #[arg(short = 'p', long, global = true)]
    pub profile: Option<String>,

    /// AWS region (default: the profile's region)
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,

    /// Send every AWS request to this endpoint (for local emulators such as moto)
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// How much bbbctl logs to stderr
    #[arg(
        short = 'l',
        long,
        global = true,
        env = "BBBCTL_LOG_LEVEL",
        value_enum,
        ignore_case = true,
        default_value = "WARN"
    )]
    pub log_level: LogLevel,

    /// Result format on stdout
    #[arg(
        long,
        global = true,
        env = "BBBCTL_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    pub output: OutputFormat,

    /// Plain progress lines instead of live progress bars
    #[arg(long, global = true, env = "BBBCTL_NO_PROGRESS", value_parser = BoolishValueParser::new())]
    pub no_progress: bool,

    /// Answer yes to every confirmation
    #[arg(short = 'y', long, global = true, env = "BBBCTL_YES", value_parser = BoolishValueParser::new())]
    pub yes: bool,

    /// Print help
    #[arg(long, global = true, action = ArgAction::Help)]
    pub help: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Scalable,
    Single,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Scalable => "scalable",
            Mode::Single => "single",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update a deployment: sources bucket, templates, root stack with nested stacks
    Setup(SetupArgs),
    /// Set the number of BBB servers (min = max = desired capacity)
    Scale(ScaleArgs),
    /// Print the Greenlight administrator login
    AdminLogin(StackArgs),
    /// Show the state of a deployment: stacks, outputs, BBB servers
    Status(StackArgs),
    /// List bbbctl's deployments in the account and region: mode, status, domain, servers;
    /// `*` marks the one commands act on without -s
    List,
    /// List the BBB servers: instance, Auto Scaling state, Scalelite state and load, meetings
    Servers(ServersArgs),
    /// Take one BBB server out without cutting a meeting (with --replace: a new one first)
    Drain(DrainArgs),
    /// Capacity on a timetable: Auto Scaling scheduled actions of the BBB server group
    Schedule(ScheduleArgs),
    /// Replace the BBB servers that run an older launch template, new ones first, without
    /// cutting a meeting
    Roll(RollArgs),
    /// Build a server image with BigBlueButton installed (scalable mode): new servers start
    /// from it in minutes; with --roll the running ones move onto it
    Bake(BakeArgs),
    /// Check from the outside that a deployment works: DNS, certificates, Greenlight sign-in,
    /// Scalelite and every BBB server, mail, the managed services
    Check(CheckArgs),
    /// Estimate what a deployment costs a month, item by item, from its templates and
    /// parameters (an existing one: its current parameters, servers and schedules)
    Cost(CostArgs),
    /// Delete a deployment: bucket contents, root stack, sources stack
    Destroy(DestroyArgs),
    /// Copy the deployment's data now: an Aurora snapshot and an AWS Backup recovery point of
    /// the recordings (scalable), an EBS snapshot of the data volume (single)
    Backup(BackupArgs),
    /// List every copy of a deployment's data (also once its stacks are gone): created,
    /// size, how long it lives
    Backups(StackArgs),
    /// Restore the database (Aurora snapshot) or the recordings (AWS Backup recovery point)
    /// of a deployment from a copy `bbbctl backups` lists
    Restore(RestoreArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// How long AWS Backup keeps the recordings' recovery point, in days (the database and
    /// data volume snapshots stay until deleted)
    #[arg(long, value_name = "DAYS", default_value_t = 35)]
    pub keep_days: u32,

    /// Return once the copies are started, without waiting for them to complete
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for the copies, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 7200)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// The copy: an Aurora cluster snapshot (identifier or ARN), an AWS Backup recovery point
    /// ARN (recordings) or an EBS snapshot id (single mode: prints the steps)
    #[arg(long, value_name = "ID")]
    pub from: String,

    /// Accept a copy that is not this deployment's (e.g. the final snapshot of a destroyed one)
    #[arg(long)]
    pub force: bool,

    /// Recordings: return once the copy-back task runs, without waiting for it
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for each step (restore job, database, task), in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 7200)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// Single mode: keep the final snapshot CloudFormation takes of the server's data volume
    /// (Greenlight's users and rooms, recordings, the certificate); by default destroy
    /// deletes it once the stacks are gone
    #[arg(long)]
    pub keep_data_snapshot: bool,

    /// Keep the server images `bbbctl bake` made for the deployment (and their snapshots);
    /// by default destroy deregisters them and deletes their snapshots
    #[arg(long)]
    pub keep_images: bool,

    /// Destroy even while the servers still process recordings, or failed recordings the
    /// servers saved are in the sources bucket: they are lost
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CostArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup;
    /// none: the parameter file alone)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// Parameter file (default: ./bbb-on-aws-param.json, else the built-in defaults); with an
    /// existing deployment, what it sets replaces the deployment's values ("what if")
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,

    /// Deployment mode (BBBEnvironmentType) to estimate
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Prices from the snapshot inside bbbctl: no AWS call, no credentials needed
    #[arg(long)]
    pub offline: bool,

    /// Participant-hours a month, all meetings together (data transfer out)
    #[arg(long, value_name = "HOURS", default_value_t = 10_000.0)]
    pub participant_hours: f64,

    /// GB sent per participant-hour, N or LOW-HIGH (audio and slides ≈ 0.05, webcams ≈ 0.5)
    #[arg(long, value_name = "GB", default_value = "0.05-0.5")]
    pub gb_per_participant_hour: String,

    /// Recordings kept on EFS, GB (scalable mode)
    #[arg(long, value_name = "GB", default_value_t = 100.0)]
    pub recordings_gb: f64,

    /// BBB server-hours a month (default: servers × 730, or what the schedules give)
    #[arg(long, value_name = "HOURS")]
    pub server_hours: Option<f64>,

    /// Average load balancer capacity units, N or LOW-HIGH
    #[arg(long, value_name = "LCU", default_value = "0.5-2")]
    pub lcu: String,

    /// Log data sent to CloudWatch a month, GB, N or LOW-HIGH
    #[arg(long, value_name = "GB", default_value = "1-10")]
    pub log_gb: String,

    /// Data through the NAT gateways a month, GB, N or LOW-HIGH
    #[arg(long, value_name = "GB", default_value = "5-50")]
    pub nat_gb: String,

    /// Aurora I/O a month, million requests, N or LOW-HIGH
    #[arg(long, value_name = "MILLIONS", default_value = "1-20")]
    pub db_io: String,

    /// Aurora storage used, GB
    #[arg(long, value_name = "GB", default_value_t = 5.0)]
    pub db_gb: f64,
}

#[derive(Debug, Clone, Args)]
pub struct ServersArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK", global = true)]
    pub stack: Option<String>,

    /// Scalelite's address instead of https://scalelite.<domain> (through a tunnel; tests)
    #[arg(long, value_name = "URL", env = "BBBCTL_SCALELITE_URL", global = true)]
    pub scalelite_url: Option<String>,

    #[command(subcommand)]
    pub action: Option<ServersAction>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ServersAction {
    /// Let Scalelite place meetings on a server again (undoes a cordon)
    Enable {
        /// Instance id (i-…) or host name (bbb-….<domain>)
        server: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK", global = true)]
    pub stack: Option<String>,

    #[command(subcommand)]
    pub action: ScheduleAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ScheduleAction {
    /// Add (or change) a schedule: at every time the cron expression names, min = max =
    /// desired = COUNT
    Add {
        /// Name of the schedule (letters, digits, - and _)
        name: String,
        /// When, as a cron expression: minute hour day-of-month month day-of-week
        #[arg(long, value_name = "CRON")]
        cron: String,
        /// Number of BBB servers from then on
        #[arg(long, value_name = "N", allow_hyphen_values = true)]
        count: String,
        /// Time zone of the cron expression (IANA name, e.g. Europe/Berlin; default UTC)
        #[arg(long, value_name = "ZONE", default_value = "UTC")]
        time_zone: String,
        /// Highest count accepted without complaint (guards against typos such as 100 for 10)
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SERVERS)]
        max: u32,
    },
    /// List the schedules with their next run
    List,
    /// Remove a schedule
    Remove {
        /// Name of the schedule
        name: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RollArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// Servers replaced at a time: this many new ones come in before as many old ones go
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub batch: u32,

    /// Replace every server, not only those on an older launch template
    #[arg(long)]
    pub all: bool,

    /// How long to wait for each batch of new servers, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub timeout: u64,

    #[command(flatten)]
    pub drain: DrainOptions,
}

#[derive(Debug, Clone, Args)]
pub struct BakeArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// Then replace the running servers with servers from the new image, as `bbbctl roll`
    /// does (new ones first, old ones drained: no meeting is cut)
    #[arg(long)]
    pub roll: bool,

    /// When the bake fails, leave the builder instance stopped (to look at it) instead of
    /// terminating it
    #[arg(long)]
    pub keep_builder_on_failure: bool,

    /// How long the builder may take to install, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub timeout: u64,

    /// With --roll: how long to wait for each new server, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub roll_timeout: u64,

    #[command(flatten)]
    pub drain: DrainOptions,
}

#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// The server: instance id (i-…) or host name (bbb-….<domain>)
    pub server: String,

    /// Start a new server first and wait until it is in service and enabled in Scalelite,
    /// so that capacity never drops
    #[arg(long)]
    pub replace: bool,

    /// With --replace: how long to wait for the new server, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub timeout: u64,

    #[command(flatten)]
    pub drain: DrainOptions,
}

/// How servers are drained: by `scale` (in), `drain` and `roll`.
#[derive(Debug, Clone, Args)]
pub struct DrainOptions {
    /// How long a server taken out may take to empty, in seconds (default: the deployment's
    /// BBBServerDrainTimeout)
    #[arg(long, value_name = "SECONDS")]
    pub drain_timeout: Option<u64>,

    /// At the drain timeout, end the meetings still running there (Scalelite's panicServer),
    /// after a confirmation; for scale-in also when Scalelite cannot be reached
    #[arg(long)]
    pub force: bool,

    /// Scalelite's address instead of https://scalelite.<domain> (through a tunnel; tests)
    #[arg(long, value_name = "URL", env = "BBBCTL_SCALELITE_URL")]
    pub scalelite_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// Retry failing checks for up to this many seconds (e.g. right after setup)
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,

    /// Also check the public names and what runs when AWS is a custom endpoint (where they
    /// are otherwise not checked): an endpoint in front of real AWS, or stand-ins pinned with
    /// BBBCTL_RESOLVE
    #[arg(long)]
    pub public: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    /// Name of the root CloudFormation stack; the sources stack is STACK-sources (default: the
    /// one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// Operator e-mail: Greenlight administrator and certificate contact (BBBOperatorEMail)
    #[arg(short = 'e', long, value_name = "EMAIL")]
    pub email: Option<String>,

    /// Route53 public hosted zone id that serves DOMAIN (BBBHostedZone)
    #[arg(short = 'h', long = "hosted-zone", value_name = "HOSTED_ZONE_ID")]
    pub hosted_zone: Option<String>,

    /// Domain the platform is reachable under (BBBDomainName)
    #[arg(short = 'd', long, value_name = "DOMAIN")]
    pub domain: Option<String>,

    /// Parameter file (default: ./bbb-on-aws-param.json, else the built-in defaults)
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,

    /// Deployment mode (BBBEnvironmentType)
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Move the BBB servers to the image BBBServerAmi names now: new servers start from it,
    /// `bbbctl roll` replaces the running ones (single mode: the server is replaced); without
    /// it an existing deployment keeps the image its servers run
    #[arg(long)]
    pub new_server_image: bool,

    /// Scalable mode: once the deployment is set up, bake a server image (as `bbbctl bake`:
    /// a builder installs BigBlueButton once, 25-40 minutes more) and record it, so that new
    /// servers start from it in minutes
    #[arg(long)]
    pub bake: bool,

    /// Replace a single server (a new image, instance type, a mode switch) even while it
    /// still processes recordings, which are then lost; without it setup waits for them (at
    /// most BBBServerDrainTimeout) before anything changes
    #[arg(long)]
    pub force: bool,

    /// Show what setup would change (a change set with nested stacks), then delete the plan:
    /// the stacks stay as they are
    #[arg(long)]
    pub dry_run: bool,

    /// Do not check the platform from the outside at the end (see `bbbctl check`)
    #[arg(long)]
    pub no_check: bool,

    /// How long the final check retries what does not work yet, in seconds (servers register
    /// with Scalelite once bbb-install is done; certificates and DNS take a while)
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub check_wait: u64,

    /// Use templates from this folder instead of the built-in ones (files missing there fall
    /// back to the built-in ones)
    #[arg(long, value_name = "DIR", env = "BBBCTL_TEMPLATES_DIR")]
    pub templates_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// Name of the deployment's root CloudFormation stack (default: the one of the last setup)
    #[arg(short = 's', long, env = "BBBCTL_STACK")]
    pub stack: Option<String>,

    /// Number of BBB servers
    #[arg(
        short = 'c',
        long,
        value_name = "N",
        allow_hyphen_values = true,
        required_unless_present = "warm"
    )]
    pub count: Option<String>,

    /// Prepared servers kept stopped in the group's warm pool (disk cost only), so that a
    /// scale-out starts one instead of installing one; 0 removes the pool (scalable mode)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub warm: Option<String>,

    /// Highest count accepted without complaint (guards against typos such as 100 for 10)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SERVERS)]
    pub max: u32,

    /// Return as soon as the new capacity is set, without waiting for the servers
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for the servers to be in service, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub timeout: u64,

    #[command(flatten)]
    pub drain: DrainOptions,
}

/// Parses the command line. `setup --help` lists the parameter file's names from the built-in
/// root template. `-h` is the hosted zone of `setup`, not help: where it stands alone, the
/// error says so and points to `--help`.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    let command = Cli::command().mut_subcommand("setup", |c| c.after_help(setup_help()));
    let matches = command.clone().try_get_matches_from(&args);
    let err = match matches.and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    // `-h` where a command takes none, or `setup -h` without a zone id.
    let about_h = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg == "-h" || arg.starts_with("--hosted-zone"),
        _ => false,
    };
    if about_h && args.iter().any(|a| a == "-h") {
        let sub = args
            .iter()
            .skip(1)
            .filter_map(|a| a.to_str())
            .find(|a| !a.starts_with('-'))
            .filter(|a| command.find_subcommand(a).is_some());
        let help = match sub {
            Some(sub) => format!("bbbctl {sub} --help"),
            None => "bbbctl --help".to_string(),
        };
        let mut command = command;
        return Err(command.error(
            ErrorKind::ArgumentConflict,
            format!(
                "-h is the hosted zone of `bbbctl setup` (-h HOSTED_ZONE_ID, e.g. -h Z0123456789ABCDEFGHIJ), not help. For help run `{help}`"
            ),
        ));
    }
    Err(err)
}

/// The end of `bbbctl setup --help`: which inputs a new deployment needs, what an existing one
/// remembers, and every name the parameter file takes with its default.
fn setup_help() -> String {
    let mut text = String::from(
        "Inputs:\n  A new deployment needs -e EMAIL, -h HOSTED_ZONE_ID and -d DOMAIN (flags, or BBBOperatorEMail,\n  BBBHostedZone and BBBDomainName in the parameter file).\n  An existing deployment remembers its parameters: `bbbctl setup -s STACK` applies them again;\n  flags and a parameter file you name change only what they set, and setup shows the changes\n  and asks first (--yes answers for you).\n\nParameter file (--params FILE, else ./bbb-on-aws-param.json): {\"Parameters\": {\"Name\": value}}.\nNames (default):\n",
    );
    match crate::templates::Bundle::embedded().root_info() {
        Ok(root) => {
            for (name, spec) in root.parameters.iter().filter(|(_, s)| !s.is_internal()) {
                let default = match spec.default.as_deref() {
                    Some("") => " (empty)".to_string(),
                    Some(d) if d.len() <= 24 => format!(" ({d})"),
                    Some(_) => " (see README)".to_string(),
                    None => String::new(),
                };
                text.push_str(&format!("  {name}{default}\n"));
            }
            text.push_str("The README's parameter table says what each one means.");
        }
        Err(e) => text.push_str(&format!("  (the built-in root.yaml cannot be read: {e})")),
    }
    text
}
