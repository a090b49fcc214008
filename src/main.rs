//! The `yungate` binary: parses the command line and hands over to `yungate::cli`.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        // A closed stderr must not bring the server down: by default the
        // subscriber reports a failed write with eprintln!, which panics then.
        .log_internal_errors(false)
        .init();
    yungate::cli::run(yungate::cli::Cli::parse())
}
