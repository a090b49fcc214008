//! The `yungate` binary: parses the command line, installs logs and trace export, hands over to `yungate::cli`, flushes the last spans.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = yungate::cli::Cli::parse();
    let telemetry = match yungate::telemetry::init(cli.log_format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("yungate: {e}");
            return ExitCode::from(2);
        }
    };
    let code = yungate::cli::run(cli);
    telemetry.shutdown();
    code
}
