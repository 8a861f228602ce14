//! `bbbctl` binary: parse → logging → run → exit code. Everything else lives in the library.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bbbctl::cli::Cli::parse();
    bbbctl::run(cli)
}
