//! The `yungate` binary: parses the command line, installs the log subscriber and hands over to `yungate::cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = yungate::cli::Cli::parse();
    yungate::telemetry::init_logs(cli.log_format);
    yungate::cli::run(cli)
}
