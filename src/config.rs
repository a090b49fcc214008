//! The gateway's one typed configuration: defaults < TOML file < `YUNGATE__*` environment, validated at start.
//!
//! Nested keys use `__` in the environment: `YUNGATE__PROVIDER__URL`,
//! `YUNGATE__PROVIDER__KEYSTORE_PASSWORD`. Secrets print masked. With no
//! `provider.url` the gateway runs on its embedded defaults: it starts the
//! sandbox on a local port with a throw-away key pair and points itself at it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::provider::calls::Environment;
use crate::provider::crypto::Protocol;
use crate::provider::sensitive::Sensitive;

/// Everything `yungate serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// The provider and the merchant's keys.
    pub provider: ProviderConfig,
    /// What the gateway fills in for callers.
    pub gateway: GatewayConfig,
}

/// Where the provider is and who we are to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// The SOA endpoint, e.g. `https://yun.allinpay.com/service/soa`. Unset:
    /// the embedded sandbox.
    pub url: Option<String>,
    /// The host of the provider's pages, e.g. `https://yun.allinpay.com`
    /// (default: the scheme and host of `url`).
    pub page_base_url: Option<String>,
    /// `production` or `test`: which page layout the provider serves (the
    /// paths differ, spec 3.7). Default: production when the host of
    /// `page_base_url` (else of `url`) is yun.allinpay.com, test otherwise
    /// and for the embedded sandbox, which then plays this environment.
    pub environment: Option<Environment>,
    /// The merchant's system number.
    pub sysid: String,
    /// Protocol profile: v1 (the spec) or v2.
    pub protocol: Protocol,
    /// The merchant's PKCS#12 keystore.
    pub keystore: Option<PathBuf>,
    /// Its password (prefer `YUNGATE__PROVIDER__KEYSTORE_PASSWORD` or a file).
    pub keystore_password: Option<Sensitive<String>>,
    /// A file holding the keystore password (a Kubernetes secret mount).
    pub keystore_password_file: Option<PathBuf>,
    /// The key's alias in the keystore (the provider uses the sysid).
    pub alias: Option<String>,
    /// Instead of a keystore: a PEM private key.
    pub key: Option<PathBuf>,
    /// The provider's certificate (v2; in v1 the keystore's own certificate is used).
    pub cert: Option<PathBuf>,
    /// Or the provider's PEM public key.
    pub pubkey: Option<PathBuf>,
    /// Time to connect, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time for a whole call, in milliseconds.
    pub request_timeout_ms: u64,
}

/// The fields the gateway fills in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The public URL of this gateway's notification endpoint, sent as `backUrl`.
    pub notify_url: String,
    /// `frontUrl` for orders that give none.
    pub default_front_url: Option<String>,
    /// `jumpUrl` for pages that give none.
    pub default_jump_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            provider: ProviderConfig::default(),
            gateway: GatewayConfig::default(),
        }
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            url: None,
            page_base_url: None,
            environment: None,
            sysid: "1902271423530001".into(),
            protocol: Protocol::V1,
            keystore: None,
            keystore_password: None,
            keystore_password_file: None,
            alias: None,
            key: None,
            cert: None,
            pubkey: None,
            connect_timeout_ms: 3_000,
            request_timeout_ms: 30_000,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            notify_url: "http://127.0.0.1:8081/notify".into(),
            default_front_url: None,
            default_jump_url: None,
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

fn http_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(key, format!("{url:?} is not an http(s) URL")));
    }
    Ok(())
}

impl Config {
    /// Defaults, then `file` (TOML) if given, then `YUNGATE__*` variables; validated.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Load(format!("{} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(Env::prefixed("YUNGATE__").split("__"))
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what can be checked before starting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.provider;
        if p.sysid.trim().is_empty() {
            return Err(invalid("provider.sysid", "must not be empty"));
        }
        if p.connect_timeout_ms == 0 || p.request_timeout_ms == 0 {
            return Err(invalid("provider.request_timeout_ms", "timeouts must be positive"));
        }
        http_url("gateway.notify_url", &self.gateway.notify_url)?;
        if self.gateway.notify_url.contains('#') {
            return Err(invalid(
                "gateway.notify_url",
                "must not contain '#' (the provider refuses it)",
            ));
        }
        for (key, url) in [
            ("gateway.default_front_url", &self.gateway.default_front_url),
            ("gateway.default_jump_url", &self.gateway.default_jump_url),
            ("provider.page_base_url", &p.page_base_url),
        ] {
            if let Some(u) = url {
                http_url(key, u)?;
            }
        }
        if let Some(url) = &p.url {
            http_url("provider.url", url)?;
            if p.keystore.is_none() && p.key.is_none() {
                return Err(invalid(
                    "provider.keystore",
                    "a keystore (or provider.key) is required with provider.url",
                ));
            }
            if p.keystore.is_some() && p.keystore_password.is_none() && p.keystore_password_file.is_none() {
                return Err(invalid(
                    "provider.keystore_password",
                    "required with provider.keystore (or keystore_password_file)",
                ));
            }
            if p.protocol == Protocol::V2 && p.cert.is_none() && p.pubkey.is_none() {
                return Err(invalid(
                    "provider.cert",
                    "v2 needs the provider's certificate or public key",
                ));
            }
        }
        Ok(())
    }

    /// The environment whose page layout links use (see `provider.environment`).
    pub fn environment(&self) -> Environment {
        let p = &self.provider;
        match (p.environment, p.page_base_url.as_ref().or(p.url.as_ref())) {
            (Some(e), _) => e,
            (None, Some(url)) => Environment::of_url(url),
            (None, None) => Environment::Test,
        }
    }

    /// The keystore password from the configuration or its file.
    pub fn keystore_password(&self) -> Result<Option<Sensitive<String>>, ConfigError> {
        if let Some(p) = &self.provider.keystore_password {
            return Ok(Some(p.clone()));
        }
        match &self.provider.keystore_password_file {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Some(Sensitive::new(s.trim_end_matches(['\n', '\r']).to_owned())))
                .map_err(|e| invalid("provider.keystore_password_file", format!("{}: {e}", path.display()))),
        }
    }
}

#[cfg(test)]
// figment's test jail returns its own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;

    #[test]
    fn defaults_file_then_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "yungate.toml",
                "listen = \"0.0.0.0:6000\"\n[provider]\nsysid = \"from-file\"\nrequest_timeout_ms = 5000\n",
            )?;
            jail.set_env("YUNGATE__PROVIDER__SYSID", "from-env");
            let config = Config::load(Some(Path::new("yungate.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.port(), 6000);
            assert_eq!(config.provider.request_timeout_ms, 5000);
            assert_eq!(config.provider.sysid, "from-env");
            assert_eq!(config.provider.connect_timeout_ms, 3000);
            Ok(())
        });
    }

    #[test]
    fn mistakes_are_named() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "bad.toml",
                "[provider]\nurl = \"https://yun.allinpay.com/service/soa\"\n",
            )?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("provider.keystore"), "{err}");
            jail.create_file("typo.toml", "[provider]\nsysdi = \"typo\"\n")?;
            let err = Config::load(Some(Path::new("typo.toml"))).unwrap_err().to_string();
            assert!(err.contains("sysdi"), "{err}");
            let missing = Config::load(Some(Path::new("none.toml"))).unwrap_err().to_string();
            assert!(missing.contains("does not exist"), "{missing}");
            jail.set_env("YUNGATE__GATEWAY__NOTIFY_URL", "ftp://x");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("gateway.notify_url"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_print_masked() {
        let mut config = Config::default();
        config.provider.keystore_password = Some(Sensitive::new("hunter2".into()));
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}

#[cfg(test)]
mod example_file {
    use std::path::Path;

    use super::Config;

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_example_file_loads_and_holds_the_defaults() {
        // In a jail: other tests set YUNGATE__* variables.
        figment::Jail::expect_with(|_| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("yungate.example.toml");
            let loaded = Config::load(Some(&path)).unwrap();
            let defaults = Config::default();
            assert_eq!(format!("{loaded:?}"), format!("{defaults:?}"));
            Ok(())
        });
    }
}
