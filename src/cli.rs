//! The `yungate` command line: argument definitions and dispatch to the subcommands.
//!
//! Exit codes are part of the interface scripts rely on: 0 success, 1 a
//! negative answer (`crypto verify` found the signature invalid, `store
//! init` found a marker already), 2 an error
//! (bad arguments, unreadable file, wrong password, no such alias).

mod crypto;
mod keys;
mod sandbox;
mod serve;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use keys::KeyArgs;

/// yungate: a gateway for the Allinpay Yun Account merchant API.
#[derive(Debug, Parser)]
#[command(name = "yungate", version, about)]
pub struct Cli {
    /// How log lines are written (to stderr; `RUST_LOG` filters them).
    #[arg(long, global = true, env = "YUNGATE_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: crate::telemetry::LogFormat,
    /// What computes the RSA operations: openssl (the default when built) or rust (the `rsa` crate).
    #[arg(long, global = true, env = "YUNGATE_CRYPTO_BACKEND", value_name = "BACKEND")]
    pub crypto_backend: Option<crate::provider::crypto::Backend>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign, verify, encrypt, decrypt and inspect keys exactly as the provider does (for debugging "签名验证失败").
    #[command(subcommand)]
    Crypto(crypto::CryptoCommand),
    /// Run the provider simulator: an HTTP server at /service/soa.
    Sandbox(sandbox::SandboxArgs),
    /// Run the gRPC gateway (on embedded defaults: the sandbox with a throw-away key pair).
    Serve(serve::ServeArgs),
    /// The Redis store's identity marker: init on a first deployment, acknowledge-loss after it lost its data.
    #[command(subcommand)]
    Store(store::StoreCommand),
}

/// An error of a subcommand: its message is printed and the process exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl From<crate::provider::crypto::KeyError> for CliError {
    fn from(e: crate::provider::crypto::KeyError) -> Self {
        CliError(e.to_string())
    }
}

impl From<crate::provider::crypto::CryptoError> for CliError {
    fn from(e: crate::provider::crypto::CryptoError) -> Self {
        CliError(e.to_string())
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    if let Some(backend) = cli.crypto_backend
        && let Err(e) = backend.select()
    {
        eprintln!("yungate: --crypto-backend: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Crypto(cmd) => crypto::run(cmd),
        Command::Sandbox(args) => sandbox::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Store(cmd) => store::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("yungate: {e}");
            ExitCode::from(2)
        }
    }
}
