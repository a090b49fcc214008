//! `yungate crypto`: the provider's signing and field encryption by hand, for integrators debugging a rejected call.
//!
//! `sign` and `encrypt` print the result alone on stdout; `verify` prints
//! `valid` (exit 0) or `invalid` (exit 1, with the reason on stderr);
//! `inspect` describes keys and certificates without printing key material.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CliError, KeyArgs};
use crate::provider::crypto::{self, CryptoError, Protocol};
use crate::provider::wire;

/// The `crypto` subcommands.
#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Sign sysid + req + timestamp with the merchant's private key; prints the Base64 signature.
    Sign(SignArgs),
    /// Verify a signature; prints `valid` (exit 0) or `invalid` (exit 1).
    Verify(VerifyArgs),
    /// Encrypt a field value (v1: merchant private key, Base64; v2: provider certificate, hex).
    Encrypt(ValueArgs),
    /// Decrypt a field value (v1: public key; v2: merchant private key).
    Decrypt(ValueArgs),
    /// Show alias, key size, certificate subject, validity and fingerprints (never key material).
    Inspect(InspectArgs),
}

/// The signed string, given whole or as its three parts.
#[derive(Args)]
pub struct SigningInput {
    /// The sysid (application system number).
    #[arg(long, value_name = "S")]
    sysid: Option<String>,
    /// The timestamp exactly as sent (`yyyy-MM-dd HH:mm:ss`, UTC+8); taken verbatim.
    #[arg(long, value_name = "T")]
    timestamp: Option<String>,
    /// The `req` JSON exactly as sent (not re-serialised).
    #[arg(long, value_name = "JSON")]
    req: Option<String>,
}

crate::debug_shows!(SigningInput: sysid, timestamp);

impl SigningInput {
    fn concatenated(&self) -> Result<String, CliError> {
        match (&self.sysid, &self.req, &self.timestamp) {
            (Some(s), Some(r), Some(t)) => Ok(wire::request_signing_string(s, r, t)),
            _ => Err(CliError(
                "give --sysid, --timestamp and --req (or --data for verify)".into(),
            )),
        }
    }
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    keys: KeyArgs,
    /// Protocol profile: v1 (the spec) or v2 (MD5 pre-hash).
    #[arg(long, default_value = "v1")]
    protocol: Protocol,
    #[command(flatten)]
    input: SigningInput,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    keys: KeyArgs,
    #[arg(long, default_value = "v1")]
    protocol: Protocol,
    /// The Base64 signature to check.
    #[arg(long, value_name = "B64")]
    sign: String,
    /// The exact signed string (a response's signedValue, or sysid + rps + timestamp).
    #[arg(long, value_name = "STRING", conflicts_with_all = ["sysid", "timestamp", "req"])]
    data: Option<String>,
    #[command(flatten)]
    input: SigningInput,
}

crate::debug_shows!(VerifyArgs: keys, protocol, input);

#[derive(Args)]
pub struct ValueArgs {
    #[command(flatten)]
    keys: KeyArgs,
    #[arg(long, default_value = "v1")]
    protocol: Protocol,
    /// The clear value (encrypt) or the ciphertext (decrypt).
    #[arg(long, value_name = "V")]
    value: String,
}

crate::debug_shows!(ValueArgs: keys, protocol);

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    keys: KeyArgs,
}

/// Runs a `crypto` subcommand.
pub fn run(cmd: CryptoCommand) -> Result<ExitCode, CliError> {
    match cmd {
        CryptoCommand::Sign(a) => {
            let key = a.keys.private_key("to sign")?;
            println!("{}", crypto::sign(a.protocol, &key, &a.input.concatenated()?)?);
            Ok(ExitCode::SUCCESS)
        }
        CryptoCommand::Verify(a) => {
            let key = a.keys.public_key(&["--cert", "--keystore", "--pubkey"], "to verify")?;
            let data = match &a.data {
                Some(d) => d.clone(),
                None => a.input.concatenated()?,
            };
            match crypto::verify(a.protocol, &key, &data, &a.sign) {
                Ok(()) => {
                    println!("valid");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ (CryptoError::BadSignature | CryptoError::SignatureEncoding)) => {
                    println!("invalid");
                    eprintln!(
                        "{e} ({} bytes signed, protocol {}; check that the data is byte for byte what was signed, decoded from the form exactly once)",
                        data.len(),
                        a.protocol
                    );
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e.into()),
            }
        }
        CryptoCommand::Encrypt(a) => {
            let out = match a.protocol {
                Protocol::V1 => crypto::encrypt_v1(&a.keys.private_key("to encrypt in v1")?, &a.value)?,
                Protocol::V2 => crypto::encrypt_v2(
                    &a.keys.public_key(&["--cert", "--pubkey"], "to encrypt in v2")?,
                    &a.value,
                )?,
            };
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        CryptoCommand::Decrypt(a) => {
            let out = match a.protocol {
                Protocol::V1 => crypto::decrypt_v1(
                    &a.keys
                        .public_key(&["--cert", "--keystore", "--pubkey"], "to decrypt in v1")?,
                    &a.value,
                )?,
                Protocol::V2 => crypto::decrypt_v2(&a.keys.private_key("to decrypt in v2")?, &a.value)?,
            };
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        CryptoCommand::Inspect(a) => {
            inspect(&a.keys)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn inspect(keys: &KeyArgs) -> Result<(), CliError> {
    if let Some(path) = &keys.keystore {
        let store = keys.open_keystore()?;
        println!("keystore: {}", path.display());
        println!(
            "alias: {}",
            if store.alias.is_empty() { "(none)" } else { &store.alias }
        );
        println!("private key: RSA-{}", store.key.bits());
        match &store.certificate {
            Some(cert) => print_certificate(cert),
            None => println!("certificate: none in the keystore (the key's own public half will verify)"),
        }
        println!("public key sha256: {}", store.public_key().fingerprint());
    } else if keys.cert.is_some() {
        let cert = keys.certificate()?;
        print_certificate(&cert);
        println!("public key sha256: {}", cert.public_key().fingerprint());
    } else if keys.key.is_some() {
        let key = keys.private_key("to inspect")?;
        println!("private key: RSA-{}", key.bits());
        println!("public key sha256: {}", key.public_key().fingerprint());
    } else if keys.pubkey.is_some() {
        let key = keys.public_key(&["--pubkey"], "to inspect")?;
        println!("public key: RSA-{}", key.bits());
        println!("public key sha256: {}", key.fingerprint());
    } else {
        return Err(CliError(
            "inspect needs one of --keystore, --cert, --key, --pubkey".into(),
        ));
    }
    Ok(())
}

fn print_certificate(cert: &crypto::Certificate) {
    println!("certificate:");
    println!("  subject: {}", cert.subject);
    println!("  issuer: {}", cert.issuer);
    println!("  serial: {}", cert.serial_hex);
    println!("  not before: {}", cert.not_before);
    println!("  not after: {}", cert.not_after);
    println!("  key: RSA-{}", cert.public_key().bits());
    println!("  sha256 fingerprint: {}", cert.sha256_fingerprint());
    println!("  sha1 fingerprint: {}", cert.sha1_fingerprint());
}
