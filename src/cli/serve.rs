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
    /// Load and validate the configuration, say what it sets up, and exit
    /// (0 valid, 2 not); key and certificate files are not read.
    #[arg(long)]
    check_config: bool,
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
    if args.check_config {
        config.validate().map_err(|e| CliError(e.to_string()))?;
        println!("{}", summary(&config));
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let stop = shutdown_signal();
        let running = crate::serve::start(config).await.map_err(|e| CliError(e.to_string()))?;
        stop.await;
        tracing::info!("shutting down: readiness NOT_SERVING, then in-flight calls drain");
        running.drain().await.map_err(CliError)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// What a valid configuration sets up, in one line with no secret in it.
fn summary(config: &Config) -> String {
    // validate() refuses a URL together with sandbox = true.
    let provider = match &config.provider.url {
        Some(url) => format!("provider {}", url_origin(url)),
        None => "the embedded sandbox".to_owned(),
    };
    let store = if config.store.redis_url.is_some() {
        "redis"
    } else {
        "memory"
    };
    let tls = match (&config.tls.cert, &config.tls.client_ca) {
        (Some(_), Some(_)) => "mTLS",
        (Some(_), None) => "TLS",
        _ => "plaintext",
    };
    let metrics = config
        .metrics
        .listen
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    format!(
        "configuration valid: {provider}; store {store}; gRPC {} ({tls}); notify {}; metrics {metrics}; {} access rules; crypto {}",
        config.listen,
        config.notify.listen,
        config.access.rules.len(),
        crate::provider::crypto::Backend::current()
    )
}

/// `scheme://host[:port]` of a URL: its path, query or user part could carry a token.
fn url_origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let authority = &url[after_scheme..end];
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{}{host}", &url[..after_scheme])
}
