//! bbbctl: deploy, operate and tear down a scalable BigBlueButton platform on AWS.
//!
//! Layers: `cli` (syntax) → `settings` (validated input) → `commands` (one module per
//! subcommand, thin) → the deploy engine in `cfn` (SDK calls, event stream, pure stack tree,
//! root cause) and `templates`/`upload`, the drain engine in `drain` (over the pure `fleet`),
//! and `deployment` (a deployment's stack, outputs, server group and secrets); `aws` builds
//! the clients; `ui` owns all output. Nothing below `commands` imports it.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod aws;
pub mod backup;
pub mod bake;
pub mod boot;
pub mod cfn;
pub mod check;
pub mod cli;
pub mod commands;
pub mod cost;
pub mod deployment;
pub mod drain;
pub mod error;
pub mod fleet;
pub mod greenlight;
pub mod http;
pub mod mail;
pub mod memory;
pub mod quotas;
pub mod recordings;
pub mod scalelite;
pub mod settings;
pub mod signed;
pub mod templates;
pub mod tls;
pub mod ui;
pub mod upload;

use std::process::ExitCode;

use cli::{Cli, LogLevel};
use settings::Global;
use ui::Printer;

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let global = match Global::from_args(&cli.global) {
        Ok(g) => g,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e}");
            }
            return ExitCode::from(error::exit_code(&e));
        }
    };
    init_logging(global.log_level);
    let printer = Printer::new(&global);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(commands::dispatch(cli.command, &global, &printer));
    tracing::info!(requests = aws::requests_sent(), "AWS requests sent");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            printer.error(&e);
            ExitCode::from(error::exit_code(&e))
        }
    }
}

/// Logs go to stderr. AWS SDK crates never log below WARN: their debug output can carry
/// request and response bodies, and with them secrets.
fn init_logging(level: LogLevel) {
    let ours = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let others = if level == LogLevel::Error {
        "error"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{others},aws_config=error,aws_smithy_runtime=error,bbbctl={ours}"
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
