//! `yungate sandbox`: runs the provider simulator until SIGINT or SIGTERM.
//!
//! Keys: in v1 the provider signs with the very pair it issued to the
//! merchant, so the sandbox needs the merchant's private key. In v2 it has a
//! pair of its own (`--provider-key`, or a generated one whose public half is
//! written out) and needs only the merchant's public key. With no key at all
//! it generates a throw-away merchant pair and writes the merchant's copy to
//! `--write-keys`, so a client can be pointed at it at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::{CliError, KeyArgs};
use crate::provider::calls::Environment;
use crate::provider::crypto::{PartyKeys, PrivateKey, Protocol, PublicKey, load_private_key_pem};
use crate::sandbox::{self, SandboxConfig};

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to serve on; port 0 picks a free port (the log says which).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8090",
        env = "YUNGATE_SANDBOX_LISTEN"
    )]
    listen: SocketAddr,
    /// The merchant's sysid the sandbox accepts.
    #[arg(
        long,
        value_name = "S",
        default_value = "1902271423530001",
        env = "YUNGATE_SANDBOX_SYSID"
    )]
    sysid: String,
    /// The merchant's keys (v1: the private key; v2: any source of its public key).
    #[command(flatten)]
    keys: KeyArgs,
    /// Protocol profile.
    #[arg(long, default_value = "v1")]
    protocol: Protocol,
    /// v2 only: the provider's own PEM private key (default: a generated one).
    #[arg(long, value_name = "F.pem")]
    provider_key: Option<PathBuf>,
    /// Where generated keys are written for the merchant side.
    #[arg(long, value_name = "DIR")]
    write_keys: Option<PathBuf>,
    /// The merchant's custody account set number.
    #[arg(long, value_name = "N", default_value = "100000")]
    escrow_account_set: String,
    /// The URL clients reach the sandbox at, for links it hands out (default: http:// + the bound address).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Multiplies every delay (notification retries, audits): 0.001 runs a day's schedule in 90 s.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    time_scale: f64,
    /// Company audits end after this many (scaled) seconds and send verifyResult; default: at once, no notification.
    #[arg(long, value_name = "SECS")]
    company_audit_delay: Option<u64>,
    /// Seed for generated ids and fault draws (default: random).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Faults in force from the start: a JSON file as `PUT /sandbox/faults` takes.
    #[arg(long, value_name = "FILE.json")]
    faults: Option<PathBuf>,
    /// The SMS code every verification accepts.
    #[arg(long, value_name = "CODE", default_value = SandboxConfig::DEFAULT_VERIFICATION_CODE)]
    verification_code: String,
    /// The environment played: pages are served at its paths only (test: /pwd/..., production: /yungateway/...).
    #[arg(long, value_name = "ENV", default_value = "test")]
    environment: Environment,
    /// The platform withdraws to safe cards only (4.2.3 note 4): without one, withdrawals get 30029.
    #[arg(long)]
    require_safe_card: bool,
    /// The channel's fee on inbound payments, in basis points, as the reconciliation file reports it.
    #[arg(long, value_name = "BP", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    channel_fee_bp: u32,
}

/// Runs the sandbox in its own runtime.
pub fn run(args: SandboxArgs) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(args))
}

async fn serve(args: SandboxArgs) -> Result<ExitCode, CliError> {
    let stop = shutdown_signal();
    let keys = sandbox_keys(&args)?;
    let faults = match &args.faults {
        None => sandbox::Faults::default(),
        Some(path) => {
            let text = std::fs::read(path).map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
            let faults: sandbox::Faults = serde_json::from_slice(&text)
                .map_err(|e| CliError(format!("{}: not a faults file: {e}", path.display())))?;
            faults
                .validate()
                .map_err(|e| CliError(format!("{}: {e}", path.display())))?;
            faults
        }
    };
    if !(args.time_scale > 0.0 && args.time_scale <= SandboxConfig::MAX_TIME_SCALE) {
        return Err(CliError(format!(
            "--time-scale must be a positive number up to {}, got {}",
            SandboxConfig::MAX_TIME_SCALE,
            args.time_scale
        )));
    }
    let config = SandboxConfig {
        time_scale: args.time_scale,
        company_audit_delay: args.company_audit_delay.map(std::time::Duration::from_secs),
        seed: args.seed,
        faults,
        verification_code: args.verification_code.clone(),
        escrow_account_set: args.escrow_account_set.clone(),
        public_url: args.public_url.clone(),
        environment: args.environment,
        require_safe_card: args.require_safe_card,
        channel_fee_bp: args.channel_fee_bp,
        ..SandboxConfig::new(args.sysid.clone(), keys)
    };
    let running = sandbox::start(config, args.listen)
        .await
        .map_err(|e| CliError(format!("cannot listen on {}: {e}", args.listen)))?;
    tracing::info!(
        url = %running.soa_url(),
        sysid = %args.sysid,
        protocol = %args.protocol,
        "sandbox listening"
    );
    stop.await;
    tracing::info!("shutting down");
    running
        .stop()
        .await
        .map_err(|e| CliError(format!("sandbox server failed: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// Installs the SIGINT and SIGTERM handlers now, and returns what waits
/// for either (what a container stop sends). Called first thing: a signal
/// that comes while keys are generated or listeners start is then a stop
/// request, not the default action that kills the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, interrupt) {
                (Some(mut term), Some(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Some(mut one), None) | (None, Some(mut one)) => {
                    one.recv().await;
                }
                (None, None) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn sandbox_keys(args: &SandboxArgs) -> Result<PartyKeys, CliError> {
    let dir = || {
        args.write_keys
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("yungate-sandbox-{}", std::process::id())))
    };
    let merchant_public: PublicKey;
    let mut merchant_private: Option<PrivateKey> = None;
    if args.keys.is_empty() {
        tracing::info!("no merchant key given: generating a throw-away RSA-2048 pair");
        let key = PrivateKey::generate(2048)?;
        let path = write_key_file(&dir(), "merchant-key.pem", &key.to_pkcs8_pem()?)?;
        tracing::info!(path = %path.display(), "wrote the merchant's private key (PKCS#8 PEM) for clients of this sandbox");
        merchant_public = key.public_key();
        merchant_private = Some(key);
    } else if args.protocol == Protocol::V1 {
        let key = match (&args.keys.key, &args.keys.cert) {
            (Some(key_path), Some(_)) => {
                let key = load_private_key_pem(key_path)?;
                if *args.keys.certificate()?.public_key() != key.public_key() {
                    return Err(CliError("--cert does not belong to --key".into()));
                }
                key
            }
            _ => args
                .keys
                .private_key("for a v1 sandbox (the provider signs with the merchant's pair)")?,
        };
        merchant_public = key.public_key();
        merchant_private = Some(key);
    } else {
        merchant_public = args.keys.public_key(
            &["--keystore", "--key", "--cert", "--pubkey"],
            "as the merchant's public key",
        )?;
    }
    match args.protocol {
        Protocol::V1 => {
            let own =
                merchant_private.ok_or_else(|| CliError("a v1 sandbox needs the merchant's private key".into()))?;
            Ok(PartyKeys {
                protocol: Protocol::V1,
                own,
                peer: merchant_public,
            })
        }
        Protocol::V2 => {
            let own = match &args.provider_key {
                Some(path) => load_private_key_pem(path)?,
                None => {
                    let key = PrivateKey::generate(2048)?;
                    let path = write_key_file(&dir(), "provider-public.pem", &key.public_key().to_pem())?;
                    tracing::info!(path = %path.display(), "generated the provider's v2 key pair; wrote its public key for clients");
                    key
                }
            };
            Ok(PartyKeys {
                protocol: Protocol::V2,
                own,
                peer: merchant_public,
            })
        }
    }
}

fn write_key_file(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(name);
    write_private_file(&path, contents).map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// Writes a file readable by its owner only.
fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}
