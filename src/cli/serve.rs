//! `yungate serve [--config FILE] [--listen ADDR] [--notify-listen ADDR]`: loads the configuration and runs the gateway until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use super::sandbox::shutdown_signal;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see yungate.example.toml); `YUNGATE__*` variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The gRPC listen address (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The notification ingress's listen address (overrides `notify.listen`).
    #[arg(long, value_name = "ADDR")]
    notify_listen: Option<SocketAddr>,
}

/// Runs the gateway in its own runtime.
pub fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    let mut config = Config::load(args.config.as_deref()).map_err(|e| CliError(e.to_string()))?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.notify_listen {
        config.notify.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let running = crate::serve::start(config).await.map_err(|e| CliError(e.to_string()))?;
        shutdown_signal().await;
        tracing::info!("shutting down: readiness NOT_SERVING, then in-flight calls drain");
        running.drain().await.map_err(CliError)?;
        Ok(ExitCode::SUCCESS)
    })
}
