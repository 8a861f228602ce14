//! `bbbctl` binary: parse → logging → run → exit code. Everything else lives in the library.
use std::process::ExitCode;

fn main() -> ExitCode {
    match bbbctl::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => bbbctl::run(cli),
        Err(e) => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
    }
}
