//! The gateway's one typed configuration: defaults < TOML file < `YUNGATE__*` environment, validated at start.
//!
//! Nested keys use `__` in the environment: `YUNGATE__PROVIDER__URL`,
//! `YUNGATE__PROVIDER__KEYSTORE_PASSWORD`. Secrets print masked. With no
//! `provider.url` the gateway runs on its embedded defaults: it starts the
//! sandbox on a local port with a throw-away key pair and points itself at it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::provider::calls::{Environment, RateClass};
use crate::provider::crypto::Protocol;
use crate::provider::sensitive::Sensitive;
use crate::store::Limit;

/// How long a provider call waits for a free slot in its replica before it
/// is refused unsent; a gRPC request waits as long for admission.
pub const PROVIDER_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// Where idempotency records and rate-limit buckets live.
    pub store: StoreConfig,
    /// How retries are made safe.
    pub idempotency: IdempotencyConfig,
    /// The provider quota and the per-caller limits.
    pub rate_limit: RateLimitConfig,
    /// The notification ingress and the fan-out to subscribers.
    pub notify: NotifyConfig,
}

/// The provider's notifications: where they are received, how long they
/// are kept, how they are delivered to subscribers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// The HTTP listen address of the ingress (path `/notify`).
    pub listen: SocketAddr,
    /// How long notifications are kept for replay, in hours (and how long
    /// a provider retry is recognised as one).
    pub retention_hours: u64,
    /// How long a delivered event may stay unacknowledged before it goes to
    /// another instance of the subscriber, in milliseconds.
    pub visibility_timeout_ms: u64,
    /// Deliveries after which an unacknowledged event moves to the
    /// subscriber's dead-letter list.
    pub max_deliveries: u32,
    /// The most unacknowledged events one stream holds.
    pub max_in_flight: u32,
    /// How far a notification's timestamp may be from our clock, in
    /// seconds. 25 hours by default, not the 10 minutes 3.1 sets for
    /// requests: the spec does not say whether a retry (3.6: for about a
    /// day) is signed afresh, and if it is not, a narrow window refuses
    /// every retry after a store outage. Replays within the window are
    /// harmless because it must stay below the retention, within which
    /// the log recognises a notification it already has.
    pub timestamp_window_secs: u64,
    /// A second provider certificate or PEM public key accepted on
    /// notifications, for a key rotation (the first is `provider.cert`,
    /// `provider.pubkey` or the keystore's own).
    pub extra_cert: Option<PathBuf>,
}

/// The shared store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `redis://host:port/db` or `redis+unix:///path`
    /// (env `YUNGATE__STORE__REDIS_URL`; it may hold a password). Unset:
    /// in memory, for one replica only.
    pub redis_url: Option<Sensitive<String>>,
    /// The longest wait for one store command, in milliseconds: a dead
    /// store costs a call at most this long before money calls fail closed.
    pub timeout_ms: u64,
}

/// Idempotency records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long a finished call's outcome is kept for replay, in seconds.
    pub retention_secs: u64,
    /// How long a request waits for another one with the same key still in
    /// flight (never past its deadline), in milliseconds.
    pub in_flight_wait_ms: u64,
    /// How long a claim lives unrenewed (renewed every third of it), in milliseconds.
    pub lease_ms: u64,
    /// How long after an exchange that got no answer the provider may still
    /// act on the request, in milliseconds: until then a retry that finds no
    /// trace of it does not send it again.
    pub settle_ms: u64,
    /// The HMAC key of request fingerprints and record keys (at least 32
    /// characters), the same on every replica. Required with Redis; in
    /// memory it defaults to one derived from the merchant's private key.
    pub fingerprint_key: Option<Sensitive<String>>,
    /// A file holding `fingerprint_key`.
    pub fingerprint_key_file: Option<PathBuf>,
}

/// Rate limits: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Evaluate and log the limits without refusing anything.
    pub shadow: bool,
    /// The provider quota per class (`query`, `member`, `order`), shared by all replicas.
    pub provider: BTreeMap<String, Limit>,
    /// Per caller (`x-yungate-caller`) and class (`query`, `member`,
    /// `order`, `page`); the caller `*` is the default for the others.
    /// Empty: no per-caller limit.
    pub callers: BTreeMap<String, BTreeMap<String, Limit>>,
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
    /// The most provider calls in flight in one replica.
    pub max_in_flight: usize,
}

/// The fields the gateway fills in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The public URL of this gateway's notification endpoint, sent as
    /// `backUrl`. Unset: `http://<notify.listen as bound>/notify`.
    pub notify_url: Option<String>,
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
            store: StoreConfig::default(),
            idempotency: IdempotencyConfig::default(),
            rate_limit: RateLimitConfig::default(),
            notify: NotifyConfig::default(),
        }
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            retention_hours: 168,
            visibility_timeout_ms: 30_000,
            max_deliveries: 10,
            max_in_flight: 64,
            timestamp_window_secs: 25 * 3600,
            extra_cert: None,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            redis_url: None,
            timeout_ms: 500,
        }
    }
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            retention_secs: 7 * 24 * 3600,
            in_flight_wait_ms: 2_000,
            lease_ms: 10_000,
            settle_ms: 10_000,
            fingerprint_key: None,
            fingerprint_key_file: None,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let limit = |per_second, burst| Limit { per_second, burst };
        RateLimitConfig {
            shadow: false,
            // Generous: the provider's real quota is per merchant contract;
            // set it here. README's flows and a burst of duplicates never reach it.
            provider: BTreeMap::from([
                ("query".to_owned(), limit(200, 400)),
                ("member".to_owned(), limit(100, 200)),
                ("order".to_owned(), limit(100, 200)),
            ]),
            callers: BTreeMap::new(),
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
            max_in_flight: 256,
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
        if p.max_in_flight == 0 || p.max_in_flight > 100_000 {
            return Err(invalid("provider.max_in_flight", "must be between 1 and 100000"));
        }
        self.validate_store()?;
        if let Some(url) = &self.gateway.notify_url {
            http_url("gateway.notify_url", url)?;
            if url.contains('#') {
                return Err(invalid(
                    "gateway.notify_url",
                    "must not contain '#' (the provider refuses it)",
                ));
            }
        }
        self.validate_notify()?;
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

    fn validate_notify(&self) -> Result<(), ConfigError> {
        let n = &self.notify;
        if !(1..=90 * 24).contains(&n.retention_hours) {
            return Err(invalid(
                "notify.retention_hours",
                "must be between 1 and 2160 (90 days)",
            ));
        }
        if !(100..=86_400_000).contains(&n.visibility_timeout_ms) {
            return Err(invalid(
                "notify.visibility_timeout_ms",
                "must be between 100 and 86400000 (a day)",
            ));
        }
        if !(1..=1000).contains(&n.max_deliveries) {
            return Err(invalid("notify.max_deliveries", "must be between 1 and 1000"));
        }
        if !(60..=2 * 24 * 3600).contains(&n.timestamp_window_secs) {
            return Err(invalid(
                "notify.timestamp_window_secs",
                "must be between 60 and 172800 (2 days)",
            ));
        }
        if n.timestamp_window_secs >= n.retention_hours.saturating_mul(3600) {
            return Err(invalid(
                "notify.timestamp_window_secs",
                "must be shorter than notify.retention_hours: a replay older than the retention would be taken for a new notification",
            ));
        }
        if !(1..=10_000).contains(&n.max_in_flight) {
            return Err(invalid("notify.max_in_flight", "must be between 1 and 10000"));
        }
        Ok(())
    }

    /// The URL sent as `backUrl`: `gateway.notify_url`, else the ingress as bound.
    pub fn notify_url(&self, bound: SocketAddr) -> String {
        self.gateway
            .notify_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}/notify"))
    }

    fn validate_store(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.store.redis_url {
            let u = url.expose();
            if u.starts_with("rediss://") {
                return Err(invalid(
                    "store.redis_url",
                    "rediss:// (TLS) is not built in yet: use redis:// on a private network or a unix socket",
                ));
            }
            if !["redis://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| u.starts_with(s))
            {
                return Err(invalid("store.redis_url", "must be a redis:// or redis+unix:// URL"));
            }
            // Record keys and fingerprints outlive a process in Redis: their key
            // must not change with the merchant key.
            if self.idempotency.fingerprint_key.is_none() && self.idempotency.fingerprint_key_file.is_none() {
                return Err(invalid(
                    "idempotency.fingerprint_key",
                    "required with store.redis_url (or fingerprint_key_file): a key of its own, the same on \
                     every replica, so that rotating the merchant key does not hide stored records",
                ));
            }
        }
        if !(10..=60_000).contains(&self.store.timeout_ms) {
            return Err(invalid("store.timeout_ms", "must be between 10 and 60000"));
        }
        let i = &self.idempotency;
        if !(60..=90 * 24 * 3600).contains(&i.retention_secs) {
            return Err(invalid(
                "idempotency.retention_secs",
                "must be between 60 s and 90 days",
            ));
        }
        if i.in_flight_wait_ms > 60_000 {
            return Err(invalid("idempotency.in_flight_wait_ms", "must be at most 60000"));
        }
        if !(300..=600_000).contains(&i.lease_ms) {
            return Err(invalid("idempotency.lease_ms", "must be between 300 and 600000"));
        }
        // A renewal every third of the lease must fit a slow store answer.
        if i.lease_ms < 3 * self.store.timeout_ms {
            return Err(invalid(
                "idempotency.lease_ms",
                "must be at least 3 times store.timeout_ms",
            ));
        }
        if !(500..=3_600_000).contains(&i.settle_ms) {
            return Err(invalid("idempotency.settle_ms", "must be between 500 and 3600000"));
        }
        // A record must outlive every window it may still be in.
        let gates = u64::try_from(self.gates().as_millis()).unwrap_or(u64::MAX);
        let windows = self.provider.request_timeout_ms + i.settle_ms + i.lease_ms + gates;
        if i.retention_secs.saturating_mul(1000) <= windows.saturating_mul(2) {
            return Err(invalid(
                "idempotency.retention_secs",
                "must be well above provider.request_timeout_ms + settle_ms + lease_ms",
            ));
        }
        if i.fingerprint_key.as_ref().is_some_and(|k| k.expose().len() < 32) {
            return Err(invalid("idempotency.fingerprint_key", "must be at least 32 characters"));
        }
        self.rate_limits().map(|_| ())
    }

    /// The longest time between an idempotency claim and the send: the
    /// quota check (a store command, retried once by the connection
    /// manager after up to 500 ms) and the wait for a provider slot (1 s).
    pub fn gates(&self) -> std::time::Duration {
        std::time::Duration::from_millis(2 * self.store.timeout_ms + 500) + PROVIDER_SLOT_WAIT
    }

    /// The rate limits by class, checked.
    pub fn rate_limits(&self) -> Result<crate::ratelimit::RateLimits, ConfigError> {
        fn classes(
            key: &'static str,
            by_name: &BTreeMap<String, Limit>,
        ) -> Result<BTreeMap<RateClass, Limit>, ConfigError> {
            let mut out = BTreeMap::new();
            for (name, limit) in by_name {
                let class = RateClass::ALL
                    .into_iter()
                    .find(|c| c.name() == name)
                    .ok_or_else(|| invalid(key, format!("unknown class {name:?} (query, member, order, page)")))?;
                if !(1..=1_000_000).contains(&limit.per_second) || !(1..=1_000_000).contains(&limit.burst) {
                    return Err(invalid(
                        key,
                        format!("{name}: per_second and burst must be between 1 and 1000000"),
                    ));
                }
                out.insert(class, *limit);
            }
            Ok(out)
        }
        let r = &self.rate_limit;
        let mut callers = BTreeMap::new();
        for (caller, by_name) in &r.callers {
            if caller != crate::ratelimit::DEFAULT_CALLER && crate::ratelimit::caller_name(Some(caller)) != caller {
                return Err(invalid(
                    "rate_limit.callers",
                    format!("{caller:?} is not a caller name ([A-Za-z0-9._-], at most 64)"),
                ));
            }
            callers.insert(caller.clone(), classes("rate_limit.callers", by_name)?);
        }
        Ok(crate::ratelimit::RateLimits {
            shadow: r.shadow,
            provider: classes("rate_limit.provider", &r.provider)?,
            callers,
        })
    }

    /// The fingerprint key from the configuration or its file, if set.
    pub fn fingerprint_key(&self) -> Result<Option<Sensitive<String>>, ConfigError> {
        let i = &self.idempotency;
        if let Some(k) = &i.fingerprint_key {
            return Ok(Some(k.clone()));
        }
        match &i.fingerprint_key_file {
            None => Ok(None),
            Some(path) => {
                let key = std::fs::read_to_string(path)
                    .map_err(|e| invalid("idempotency.fingerprint_key_file", format!("{}: {e}", path.display())))?;
                let key = key.trim_end_matches(['\n', '\r']).to_owned();
                if key.len() < 32 {
                    return Err(invalid(
                        "idempotency.fingerprint_key_file",
                        "the key must be at least 32 characters",
                    ));
                }
                Ok(Some(Sensitive::new(key)))
            }
        }
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
