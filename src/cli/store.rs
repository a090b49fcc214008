//! `yungate store init | acknowledge-loss | status [--config FILE]`: the Redis store's identity marker, written only on purpose.
//!
//! A store without its marker is new *or* lost its data; the gateway
//! refuses money calls until an operator says which (`store::Identity`).
//! Exit codes: 0 done (`init` also when the store has its marker already:
//! a hook may run it twice), 1 a negative answer (`acknowledge-loss` on a
//! store that has its marker: there is no loss to acknowledge; `status` on
//! one that has none), 2 an error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliError;
use crate::config::Config;
use crate::store::{Identity, Initialise, Initialised, RedisStore, Store};

/// The subcommands of `yungate store`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Give a new store its identity marker: a first deployment (the Helm
    /// chart's install hook runs it). Writes nothing when it has one (and
    /// exits 0: running it twice is harmless).
    Init(StoreArgs),
    /// After the store lost its data (a restart without persistence, a
    /// failover to an empty replica, a FLUSHALL), once what was in flight has
    /// been checked: a new marker that records the loss; money calls resume,
    /// and subscribers hear that events were lost. Exits 1, writing nothing,
    /// when the store has its marker.
    AcknowledgeLoss(StoreArgs),
    /// Print the store's marker; exit 1 when it has none.
    Status(StoreArgs),
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// A TOML configuration file (see yungate.example.toml); `YUNGATE__*` variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs a `store` subcommand.
pub fn run(command: StoreCommand) -> Result<ExitCode, CliError> {
    let (args, how) = match &command {
        StoreCommand::Init(args) => (args, Some(Initialise::FirstDeployment)),
        StoreCommand::AcknowledgeLoss(args) => (args, Some(Initialise::AcknowledgeLoss)),
        StoreCommand::Status(args) => (args, None),
    };
    let config = Config::read(args.config.as_deref()).map_err(|e| CliError(e.to_string()))?;
    let Some(url) = &config.store.redis_url else {
        return Err(CliError(
            "store.redis_url is not set: the in-memory store lives and dies with the gateway and has no marker".into(),
        ));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let store = RedisStore::open(url.expose(), Duration::from_millis(config.store.timeout_ms.max(2000)))
            .map_err(|e| CliError(format!("store.redis_url: {e}")))?;
        let Some(how) = how else {
            return match store.identity().await.map_err(|e| CliError(e.to_string()))? {
                Some(identity) => {
                    println!("{}", describe(&identity));
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    println!("no identity marker: the store is new, or it lost its data");
                    Ok(ExitCode::from(1))
                }
            };
        };
        match store.initialise(how).await.map_err(|e| CliError(e.to_string()))? {
            Initialised::Created(identity) => {
                println!("written: {}", describe(&identity));
                Ok(ExitCode::SUCCESS)
            }
            Initialised::Existing(identity) => {
                println!("nothing written, the store has its marker: {}", describe(&identity));
                Ok(if how == Initialise::FirstDeployment {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
        }
    })
}

/// One line about a marker.
fn describe(identity: &Identity) -> String {
    let at = |ms: u64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| ms.to_string())
    };
    let mut line = format!("store {} initialised {}", identity.id, at(identity.since_ms));
    if let Some(lost) = identity.lost_at_ms {
        line.push_str(&format!(", after a loss acknowledged {}", at(lost)));
    }
    line
}
