//! Key options shared by `crypto` and `sandbox`: where the keys come from, and how each command picks one.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::provider::crypto::{
    Certificate, Keystore, PrivateKey, PublicKey, load_certificate_file, load_private_key_pem, load_public_key_pem,
};
use crate::provider::sensitive::Sensitive;

/// Where keys come from. Which of them a command accepts is in its help.
#[derive(Clone, Default, Args)]
pub struct KeyArgs {
    /// The merchant's PKCS#12 keystore (.pfx/.p12), as the provider issues it.
    #[arg(long, value_name = "F.pfx")]
    pub keystore: Option<PathBuf>,
    /// The keystore password (or set YUNGATE_KEYSTORE_PASSWORD, which keeps it out of `ps`).
    #[arg(long, value_name = "PW", env = "YUNGATE_KEYSTORE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// The keystore alias of the key (the provider uses the sysid); default: the first key.
    #[arg(long, value_name = "A", requires = "keystore")]
    pub alias: Option<String>,
    /// A PEM private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
    #[arg(long, value_name = "F.pem")]
    pub key: Option<PathBuf>,
    /// A certificate (.cer/.crt, PEM or DER); its public key is used.
    #[arg(long, value_name = "F")]
    pub cert: Option<PathBuf>,
    /// A PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    #[arg(long, value_name = "F.pem")]
    pub pubkey: Option<PathBuf>,
}

// The password never prints.
crate::debug_shows!(KeyArgs: keystore, alias, key, cert, pubkey);

impl KeyArgs {
    fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if self.keystore.is_some() {
            given.push("--keystore");
        }
        if self.key.is_some() {
            given.push("--key");
        }
        if self.cert.is_some() {
            given.push("--cert");
        }
        if self.pubkey.is_some() {
            given.push("--pubkey");
        }
        given
    }

    /// Refuses anything but exactly one of `allowed`.
    fn one_of(&self, allowed: &[&str], purpose: &str) -> Result<(), CliError> {
        let given = self.given();
        let usable: Vec<_> = given.iter().copied().filter(|g| allowed.contains(g)).collect();
        let extra: Vec<_> = given.iter().copied().filter(|g| !allowed.contains(g)).collect();
        if !extra.is_empty() {
            return Err(CliError(format!(
                "{} cannot be used {purpose}; use one of {}",
                extra.join(", "),
                allowed.join(", ")
            )));
        }
        match usable.as_slice() {
            [_] => Ok(()),
            [] => Err(CliError(format!("{purpose} needs one of {}", allowed.join(", ")))),
            _ => Err(CliError(format!("give only one of {} {purpose}", usable.join(", ")))),
        }
    }

    /// Opens the keystore named by `--keystore`.
    pub fn open_keystore(&self) -> Result<Keystore, CliError> {
        let path = self
            .keystore
            .as_ref()
            .ok_or_else(|| CliError("--keystore is required".into()))?;
        let password = self
            .password
            .clone()
            .ok_or_else(|| CliError("--password (or YUNGATE_KEYSTORE_PASSWORD) is required with --keystore".into()))?;
        Ok(Keystore::open(path, &Sensitive::new(password), self.alias.as_deref())?)
    }

    /// A private key from `--keystore` or `--key`.
    pub fn private_key(&self, purpose: &str) -> Result<PrivateKey, CliError> {
        self.one_of(&["--keystore", "--key"], purpose)?;
        match &self.key {
            Some(path) => Ok(load_private_key_pem(path)?),
            None => Ok(self.open_keystore()?.key),
        }
    }

    /// A public key from the options in `allowed` (any of `--cert`,
    /// `--pubkey`, `--keystore` (its certificate), `--key` (its public half)).
    pub fn public_key(&self, allowed: &[&str], purpose: &str) -> Result<PublicKey, CliError> {
        self.one_of(allowed, purpose)?;
        if let Some(path) = &self.pubkey {
            Ok(load_public_key_pem(path)?)
        } else if self.cert.is_some() {
            Ok(self.certificate()?.public_key().clone())
        } else if self.keystore.is_some() {
            Ok(self.open_keystore()?.public_key())
        } else {
            Ok(self.private_key(purpose)?.public_key())
        }
    }

    /// The certificate named by `--cert`.
    pub fn certificate(&self) -> Result<Certificate, CliError> {
        let path = self
            .cert
            .as_ref()
            .ok_or_else(|| CliError("--cert is required".into()))?;
        Ok(load_certificate_file(path)?)
    }

    /// Whether any key option was given.
    pub fn is_empty(&self) -> bool {
        self.given().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::KeyArgs;

    #[test]
    fn the_keystore_password_never_prints() {
        let args = KeyArgs {
            keystore: Some("m.pfx".into()),
            password: Some("hunter2".into()),
            ..KeyArgs::default()
        };
        let printed = format!("{args:?}");
        assert!(printed.contains("m.pfx") && !printed.contains("hunter2"), "{printed}");
    }
}
