//! Command-line syntax (clap derive). Nothing here talks to AWS; `settings` turns these into
//! validated, plain structs.
//!
//! `-h` is the hosted zone of `setup` (as in the shell tooling users know), so help is `--help` only.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

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
    /// AWS profile from ~/.aws/config and ~/.aws/credentials
    #[arg(short = 'p', long, global = true, env = "AWS_PROFILE")]
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
    /// Delete a deployment: bucket contents, root stack, sources stack
    Destroy(StackArgs),
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

    /// Show what setup would change (a change set with nested stacks), then delete the plan:
    /// the stacks stay as they are
    #[arg(long)]
    pub dry_run: bool,

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
    #[arg(short = 'c', long, value_name = "N", allow_hyphen_values = true)]
    pub count: String,

    /// Highest count accepted without complaint (guards against typos such as 100 for 10)
    #[arg(long, value_name = "N", default_value_t = crate::settings::DEFAULT_MAX_SERVERS)]
    pub max: u32,

    /// Return as soon as the new capacity is set, without waiting for the servers
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for the servers to be in service, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub timeout: u64,
}
