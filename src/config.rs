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
    /// TLS on the gRPC listener.
    pub tls: TlsConfig,
    /// Who may call what.
    pub access: AccessConfig,
    /// What one replica accepts before it refuses or waits.
    pub limits: LimitsConfig,
    /// Health checks and the drain at shutdown.
    pub health: HealthConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// The background resolution of unknown outcomes.
    pub resolver: ResolverConfig,
    /// The order timeline.
    pub timeline: TimelineConfig,
    /// The daily reconciliation against the provider's file (4.3.2).
    pub reconciliation: ReconciliationConfig,
}

/// The reconciliation of what the gateway did against the provider's daily file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconciliationConfig {
    /// Reconcile the previous day by itself each day. Unset: on with a real
    /// provider, off with the sandbox (whose days are rarely real days).
    pub daily: Option<bool>,
    /// China time (HH:MM) after which the previous day is reconciled: the
    /// provider generates the file at 11:00 (4.3.2 l.2329).
    pub at: String,
    /// Hosts besides the provider's that the file may be downloaded from
    /// (over HTTPS), should the provider serve it from another.
    pub file_hosts: Vec<String>,
    /// The largest file downloaded, in bytes.
    pub max_file_bytes: u64,
    /// The time a download may take, in milliseconds.
    pub download_timeout_ms: u64,
    /// How long a day's report is kept, in seconds.
    pub report_retention_secs: u64,
    /// After a failed daily run, how long until the next try, in seconds.
    pub retry_after_secs: u64,
    /// How often a replica checks whether a daily run is due, in seconds.
    pub check_interval_secs: u64,
    /// How many past days the daily run looks back for a day without a
    /// report (a day whose runs failed, or missed while the gateway was down).
    pub catch_up_days: u32,
}

impl Default for ReconciliationConfig {
    fn default() -> Self {
        ReconciliationConfig {
            daily: None,
            at: "11:30".into(),
            file_hosts: Vec::new(),
            max_file_bytes: 256 * 1024 * 1024,
            download_timeout_ms: 120_000,
            report_retention_secs: 90 * 86_400,
            retry_after_secs: 600,
            check_interval_secs: 60,
            catch_up_days: 3,
        }
    }
}

impl ReconciliationConfig {
    /// `at` as a time of day.
    pub fn at_time(&self) -> Option<time::Time> {
        let (h, m) = self.at.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        time::Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
    }
}

/// The order timeline: what the gateway learnt about each number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimelineConfig {
    /// How long a number's timeline is kept after its last event, in
    /// seconds: at least the idempotency records' retention, so that a
    /// month's reconciliation finds what the gateway did (35 days).
    pub retention_secs: u64,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        TimelineConfig {
            retention_secs: 35 * 86_400,
        }
    }
}

/// The background resolution of unknown outcomes: a sweep, one replica at
/// a time, that asks the provider about records nobody retries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolverConfig {
    /// Off: unknown outcomes are resolved only when their caller retries.
    pub enabled: bool,
    /// How often a replica looks for due records, in milliseconds.
    pub interval_ms: u64,
    /// After the provider's window is over, how long until each next look
    /// at a record still unknown, in seconds; the last repeats until the
    /// record's retention ends.
    pub schedule_secs: Vec<u64>,
    /// The most records one sweep looks at.
    pub batch: usize,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            enabled: true,
            interval_ms: 5_000,
            schedule_secs: vec![300, 3_600, 21_600, 86_400],
            batch: 100,
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// A plaintext HTTP listener serving `GET /metrics` in the Prometheus
    /// text format. Unset: no metrics endpoint.
    pub listen: Option<SocketAddr>,
}

/// TLS on the gRPC listener (PEM files, re-read when they change).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first. Unset: plaintext (behind a mesh
    /// that terminates TLS, or on loopback).
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// CA certificates that client certificates must chain to (mTLS). A
    /// client without a certificate still connects, and is UNAUTHENTICATED
    /// for everything but health when `access.identity = "tls"`.
    pub client_ca: Option<PathBuf>,
    /// How often the files are checked for changes, in seconds.
    pub reload_interval_secs: u64,
}

/// Where a caller's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// No authenticated identity; `x-yungate-caller` names callers for rate limits.
    None,
    /// The client certificate (needs `tls.client_ca`): its first URI SAN,
    /// else DNS SAN, else CN.
    Tls,
    /// A header set by a mesh sidecar that terminated mTLS
    /// (`access.identity_header`; `x-forwarded-client-cert` is parsed as
    /// Envoy writes it, any other header is taken verbatim).
    Header,
}

/// Who may call what.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    pub identity: IdentitySource,
    /// The header of `identity = "header"`.
    pub identity_header: String,
    /// Serve gRPC server reflection (grpcurl, Postman); off in production if the schema is private.
    pub reflection: bool,
    /// With rules, a call is allowed only when one rule names its caller and rpc.
    pub rules: Vec<AccessRule>,
}

/// One access rule. Patterns are exact, `*`, or a prefix ending in `*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Caller identities.
    pub callers: Vec<String>,
    /// `*`, `yungate.v1.OrderService`, `yungate.v1.OrderService/*` or
    /// `yungate.v1.OrderService/DepositApply` (reflection is
    /// `grpc.reflection.v1alpha.ServerReflection` and `...v1...`).
    pub rpcs: Vec<String>,
    /// The notification subscribers these callers may subscribe, ack, list
    /// and redrive as (none unless named).
    #[serde(default)]
    pub subscribers: Vec<String>,
}

/// The limits of one replica. Each bounds what a client can make the gateway hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Connections open at once on the gRPC listener; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// HTTP/2 streams one connection may have open; each may hold 64 KiB
    /// unread (its HTTP/2 window), so the connection's window is this many
    /// times 64 KiB.
    pub max_concurrent_streams: u32,
    /// gRPC requests in progress in the replica before more wait for admission.
    pub max_concurrent_requests: usize,
    /// The largest request message, in bytes.
    pub max_message_bytes: usize,
    /// Request bytes one connection may have buffered at once.
    pub connection_request_bytes: usize,
    /// Request bytes the replica may have buffered at once.
    pub request_bytes: usize,
    /// How long a request message may take to arrive, in milliseconds.
    pub request_body_timeout_ms: u64,
    /// How long a TLS handshake may take, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// A connection without a request in progress for this long is closed, in seconds.
    pub idle_timeout_secs: u64,
    /// HTTP/2 PING interval on idle connections, in seconds (0: none).
    pub keepalive_interval_secs: u64,
    /// How long a PING may go unanswered before the connection is closed, in seconds.
    pub keepalive_timeout_secs: u64,
    /// The largest header block of a request, in bytes.
    pub max_header_list_bytes: u32,
    /// The notification ingress and /metrics: a request's head must arrive
    /// within this, however slowly its bytes trickle in, in milliseconds.
    pub http_header_timeout_ms: u64,
    /// The notification ingress: a notification's body must arrive within
    /// this after its head, in milliseconds (else 408).
    pub http_body_timeout_ms: u64,
}

/// Health checks and the drain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// A plaintext listener serving only grpc.health.v1, for the kubelet's
    /// gRPC probes (they speak no TLS). Unset: health on the gRPC listener only.
    pub listen: Option<SocketAddr>,
    /// How often the store and the provider are checked, in milliseconds.
    pub check_interval_ms: u64,
    /// After SIGTERM, how long readiness says NOT_SERVING before the
    /// listener closes (time for endpoints to drop the pod), in milliseconds.
    pub drain_delay_ms: u64,
    /// Then how long in-flight calls may take to finish, in milliseconds.
    pub drain_deadline_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            client_ca: None,
            reload_interval_secs: 10,
        }
    }
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            identity: IdentitySource::None,
            identity_header: crate::serve::access::XFCC.to_owned(),
            reflection: true,
            rules: Vec::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 1024,
            max_concurrent_streams: 100,
            max_concurrent_requests: 4096,
            max_message_bytes: 4 << 20,
            connection_request_bytes: 8 << 20,
            request_bytes: 256 << 20,
            request_body_timeout_ms: 10_000,
            handshake_timeout_ms: 10_000,
            idle_timeout_secs: 300,
            keepalive_interval_secs: 30,
            keepalive_timeout_secs: 20,
            max_header_list_bytes: 16 << 10,
            http_header_timeout_ms: 10_000,
            http_body_timeout_ms: 10_000,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            listen: None,
            check_interval_ms: 5_000,
            drain_delay_ms: 2_000,
            drain_deadline_ms: 30_000,
        }
    }
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
    /// At start, give a Redis store without an identity marker one, as
    /// `yungate store init` does. For development and tests only: a store
    /// that lost its data has no marker either, and this setting would hide
    /// the loss (a payment made before it could be sent again under its
    /// number, and answered as a number already used). Default false.
    pub initialise_empty: bool,
    /// Without Redis: the most idempotency records kept in memory (about
    /// 1 KiB each). At the ceiling, money calls are refused unsent
    /// (`STORE_UNAVAILABLE`) until records expire (idempotency.retention_secs).
    pub memory_max_records: usize,
    /// Without Redis: the most bytes of timelines, day indexes and
    /// reconciliation reports kept in memory; past it, the oldest
    /// journals go first.
    pub memory_max_journal_bytes: usize,
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
    /// The SOA endpoint, e.g. `https://yun.allinpay.com/service/soa`. Unset
    /// with no other provider setting: the embedded sandbox (README's first
    /// command); unset with any other provider setting: a start-up error.
    pub url: Option<String>,
    /// Run the embedded sandbox on purpose (with `sysid`, `environment` or
    /// `protocol` set, or beside a store, TLS, access rules or a notify
    /// URL, which the defaults would otherwise refuse).
    pub sandbox: bool,
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
            tls: TlsConfig::default(),
            access: AccessConfig::default(),
            limits: LimitsConfig::default(),
            health: HealthConfig::default(),
            metrics: MetricsConfig::default(),
            resolver: ResolverConfig::default(),
            timeline: TimelineConfig::default(),
            reconciliation: ReconciliationConfig::default(),
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
            initialise_empty: false,
            memory_max_records: 100_000,
            memory_max_journal_bytes: 64 * 1024 * 1024,
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
            sandbox: false,
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

/// The `YUNGATE__*` variables (`__` separates the keys), every value kept
/// as the text it is. figment's own `Env` reads values that look like
/// numbers as numbers, so a sysid or a password of digits would be refused
/// as "not a string", and one with leading zeros would lose them (`007`
/// read as 7); here a number field is read from its text instead.
struct EnvText;

impl figment::Provider for EnvText {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("`YUNGATE__` environment variable(s)")
            .interpolater(|_, keys| format!("YUNGATE__{}", keys.join("__").to_ascii_uppercase()))
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        fn merge(into: &mut Dict, from: Dict) {
            for (key, value) in from {
                match (into.get_mut(&key), value) {
                    (Some(Value::Dict(_, existing)), Value::Dict(_, more)) => merge(existing, more),
                    (_, value) => {
                        into.insert(key, value);
                    }
                }
            }
        }
        let mut dict = Dict::new();
        for (key, value) in Env::prefixed("YUNGATE__").split("__").iter() {
            let key = key.as_str().to_ascii_lowercase();
            // Trimmed, as figment's Env does (a Secret made from a file ends in a newline).
            let value = value.trim();
            // Arrays, inline tables and quoted strings keep figment's syntax
            // (access rules, a rate limit's table); anything else is text.
            let value = if value.starts_with(['[', '{', '"']) {
                value.parse::<Value>().unwrap_or_else(|_| Value::from(value.to_owned()))
            } else {
                Value::from(value.to_owned())
            };
            if let Value::Dict(_, nested) = figment::util::nest(&key, value) {
                merge(&mut dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

impl Config {
    /// Defaults, then `file` (TOML) if given, then `YUNGATE__*` variables; validated.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let config = Config::read(file)?;
        config.validate()?;
        Ok(config)
    }

    /// The settings as given, unchecked: for tools that use one section
    /// (`yungate store` needs the store, not the provider).
    pub fn read(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Load(format!("{} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Lossy: a number or a bool written as text (every variable is text)
        // is read as one; in the TOML file too, where "512" for a number
        // or "true" for a bool is then accepted rather than refused.
        let config: Config = figment
            .merge(EnvText)
            .extract_lossy()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
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
        self.validate_sandbox()?;
        self.validate_store()?;
        self.validate_listener()?;
        crate::serve::access::AccessPolicy::new(&self.access)?;
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

    /// Whether the gateway runs against the embedded sandbox.
    pub fn sandbox_mode(&self) -> bool {
        self.provider.url.is_none()
    }

    /// The embedded sandbox runs only when nothing about the provider is
    /// configured, or on purpose: one variable missing from a deployment
    /// must not make payments "succeed" against a fake.
    fn validate_sandbox(&self) -> Result<(), ConfigError> {
        let p = &self.provider;
        let d = ProviderConfig::default();
        let keys = [
            ("provider.keystore", p.keystore.is_some()),
            ("provider.keystore_password", p.keystore_password.is_some()),
            ("provider.keystore_password_file", p.keystore_password_file.is_some()),
            ("provider.alias", p.alias.is_some()),
            ("provider.key", p.key.is_some()),
            ("provider.cert", p.cert.is_some()),
            ("provider.pubkey", p.pubkey.is_some()),
            ("provider.page_base_url", p.page_base_url.is_some()),
        ];
        let chosen = [
            ("provider.sysid", p.sysid != d.sysid),
            ("provider.environment", p.environment.is_some()),
            ("provider.protocol", p.protocol != d.protocol),
            // A deployment (shared store, TLS, rules, a public notify URL) that lost its
            // provider settings altogether must not start on the sandbox either.
            ("store.redis_url", self.store.redis_url.is_some()),
            ("tls.cert", self.tls.cert.is_some()),
            ("access.rules", !self.access.rules.is_empty()),
            ("gateway.notify_url", self.gateway.notify_url.is_some()),
        ];
        match (&p.url, p.sandbox) {
            (Some(_), true) => Err(invalid(
                "provider.sandbox",
                "provider.url is set too: choose the real provider (url) or the embedded sandbox (sandbox = true)",
            )),
            (Some(_), false) => Ok(()),
            (None, true) => match keys.iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(invalid(
                    "provider.sandbox",
                    format!(
                        "{key} is set, but the embedded sandbox makes its own key pair: remove it, or set provider.url"
                    ),
                )),
                None => Ok(()),
            },
            (None, false) => {
                let set: Vec<&str> = keys
                    .iter()
                    .chain(&chosen)
                    .filter(|(_, s)| *s)
                    .map(|(k, _)| *k)
                    .collect();
                if set.is_empty() {
                    return Ok(());
                }
                Err(invalid(
                    "provider.url",
                    format!(
                        "unset while {} {} set: set provider.url to the provider's endpoint \
                         (YUNGATE__PROVIDER__URL), or provider.sandbox = true to run the embedded sandbox on purpose",
                        set.join(", "),
                        if set.len() == 1 { "is" } else { "are" }
                    ),
                ))
            }
        }
    }

    fn validate_listener(&self) -> Result<(), ConfigError> {
        let t = &self.tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => return Err(invalid("tls.key", "required with tls.cert")),
            (None, Some(_)) => return Err(invalid("tls.cert", "required with tls.key")),
            (None, None) if t.client_ca.is_some() => {
                return Err(invalid("tls.client_ca", "needs tls.cert and tls.key"));
            }
            _ => {}
        }
        if !(1..=3600).contains(&t.reload_interval_secs) {
            return Err(invalid("tls.reload_interval_secs", "must be between 1 and 3600"));
        }
        if self.access.identity == IdentitySource::Header && t.client_ca.is_some() {
            return Err(invalid(
                "access.identity",
                "\"header\" with tls.client_ca: the header would override the certificates this listener verifies; choose one",
            ));
        }
        if self.access.identity == IdentitySource::Tls && t.client_ca.is_none() {
            return Err(invalid(
                "access.identity",
                "\"tls\" needs tls.client_ca, the CA that client certificates chain to",
            ));
        }
        let l = &self.limits;
        let range = |key, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(invalid(key, format!("must be between {lo} and {hi}")))
            }
        };
        range("limits.max_connections", l.max_connections as u64, 1, 1_000_000)?;
        range(
            "limits.max_concurrent_streams",
            u64::from(l.max_concurrent_streams),
            1,
            1_000,
        )?;
        range(
            "limits.max_concurrent_requests",
            l.max_concurrent_requests as u64,
            1,
            1_000_000,
        )?;
        range(
            "limits.max_message_bytes",
            l.max_message_bytes as u64,
            64 << 10,
            64 << 20,
        )?;
        range(
            "limits.request_body_timeout_ms",
            l.request_body_timeout_ms,
            100,
            600_000,
        )?;
        range("limits.handshake_timeout_ms", l.handshake_timeout_ms, 100, 600_000)?;
        range("limits.idle_timeout_secs", l.idle_timeout_secs, 1, 86_400)?;
        range("limits.keepalive_interval_secs", l.keepalive_interval_secs, 0, 86_400)?;
        range("limits.keepalive_timeout_secs", l.keepalive_timeout_secs, 1, 3_600)?;
        range(
            "limits.max_header_list_bytes",
            u64::from(l.max_header_list_bytes),
            1 << 10,
            1 << 20,
        )?;
        range("limits.http_header_timeout_ms", l.http_header_timeout_ms, 100, 120_000)?;
        range("limits.http_body_timeout_ms", l.http_body_timeout_ms, 100, 120_000)?;
        // A message is reserved whole (with its 5-byte prefix) from its connection's share, which must fit the whole.
        if (l.connection_request_bytes as u64) < l.max_message_bytes as u64 + 5 {
            return Err(invalid(
                "limits.connection_request_bytes",
                "must be at least limits.max_message_bytes + 5 (a message is reserved whole)",
            ));
        }
        if l.request_bytes < l.connection_request_bytes || l.request_bytes > 1 << 40 {
            return Err(invalid(
                "limits.request_bytes",
                "must be at least limits.connection_request_bytes (and at most 1 TiB)",
            ));
        }
        let h = &self.health;
        range("health.check_interval_ms", h.check_interval_ms, 100, 600_000)?;
        range("health.drain_delay_ms", h.drain_delay_ms, 0, 600_000)?;
        range("health.drain_deadline_ms", h.drain_deadline_ms, 0, 3_600_000)?;
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
        if !(1..=10_000_000).contains(&self.store.memory_max_records) {
            return Err(invalid("store.memory_max_records", "must be between 1 and 10000000"));
        }
        if !(1 << 20..=usize::try_from(16u64 << 30).unwrap_or(usize::MAX))
            .contains(&self.store.memory_max_journal_bytes)
        {
            return Err(invalid(
                "store.memory_max_journal_bytes",
                "must be between 1048576 (1 MiB) and 17179869184 (16 GiB)",
            ));
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
        if self.timeline.retention_secs < i.retention_secs || self.timeline.retention_secs > 400 * 86_400 {
            return Err(invalid(
                "timeline.retention_secs",
                "must be at least idempotency.retention_secs and at most 400 days",
            ));
        }
        let r = &self.resolver;
        if !(100..=3_600_000).contains(&r.interval_ms) {
            return Err(invalid("resolver.interval_ms", "must be between 100 and 3600000"));
        }
        if r.schedule_secs.is_empty()
            || r.schedule_secs.len() > 32
            || r.schedule_secs.iter().any(|s| !(1..=7 * 86_400).contains(s))
        {
            return Err(invalid(
                "resolver.schedule_secs",
                "must list 1 to 32 waits of 1 s to 7 days each",
            ));
        }
        if !(1..=10_000).contains(&r.batch) {
            return Err(invalid("resolver.batch", "must be between 1 and 10000"));
        }
        let c = &self.reconciliation;
        if c.at_time().is_none() {
            return Err(invalid(
                "reconciliation.at",
                "must be a China time of day as HH:MM, e.g. 11:30",
            ));
        }
        if c.file_hosts.len() > 16
            || c.file_hosts.iter().any(|h| {
                h.is_empty() || h.len() > 253 || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            })
        {
            return Err(invalid(
                "reconciliation.file_hosts",
                "must list at most 16 host names (letters, digits, dots and dashes)",
            ));
        }
        // The file, its decoded text and its rows are held at once: about three times this.
        if !(1024..=1024 * 1024 * 1024).contains(&c.max_file_bytes) {
            return Err(invalid(
                "reconciliation.max_file_bytes",
                "must be between 1024 and 1073741824 (1 GiB)",
            ));
        }
        if !(1_000..=1_800_000).contains(&c.download_timeout_ms) {
            return Err(invalid(
                "reconciliation.download_timeout_ms",
                "must be between 1000 and 1800000",
            ));
        }
        if !(86_400..=400 * 86_400).contains(&c.report_retention_secs) {
            return Err(invalid(
                "reconciliation.report_retention_secs",
                "must be between 1 day and 400 days",
            ));
        }
        if !(10..=86_400).contains(&c.retry_after_secs) {
            return Err(invalid(
                "reconciliation.retry_after_secs",
                "must be between 10 and 86400",
            ));
        }
        if !(1..=3_600).contains(&c.check_interval_secs) {
            return Err(invalid(
                "reconciliation.check_interval_secs",
                "must be between 1 and 3600",
            ));
        }
        if !(1..=31).contains(&c.catch_up_days) {
            return Err(invalid("reconciliation.catch_up_days", "must be between 1 and 31"));
        }
        // A day the daily run may still look at must keep its report and
        // the timelines it compared with: else it is reconciled again from nothing.
        let window = (u64::from(c.catch_up_days) + 2) * 86_400;
        if c.report_retention_secs < window {
            return Err(invalid(
                "reconciliation.report_retention_secs",
                "must be at least reconciliation.catch_up_days + 2 days",
            ));
        }
        if self.timeline.retention_secs < window {
            return Err(invalid(
                "timeline.retention_secs",
                "must be at least reconciliation.catch_up_days + 2 days",
            ));
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
            if caller != crate::ratelimit::DEFAULT_CALLER && !crate::serve::access::identity_ok(caller) {
                return Err(invalid(
                    "rate_limit.callers",
                    format!(
                        "{caller:?} is neither a caller name nor an identity (visible ASCII without braces, at most 256)"
                    ),
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
                "listen = \"0.0.0.0:6000\"\n[provider]\nsandbox = true\nsysid = \"from-file\"\nrequest_timeout_ms = 5000\n",
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
    fn environment_values_of_digits_keep_their_text() {
        // A sysid is digits (the spec's example: 1902271423530001); a password may be too.
        Jail::expect_with(|jail| {
            jail.set_env("YUNGATE__PROVIDER__URL", "https://yun.allinpay.com/service/soa");
            jail.set_env("YUNGATE__PROVIDER__SYSID", "1902271423530001");
            jail.set_env("YUNGATE__PROVIDER__ALIAS", "0012");
            jail.set_env("YUNGATE__PROVIDER__KEYSTORE", "/run/keystore.p12");
            jail.set_env("YUNGATE__PROVIDER__KEYSTORE_PASSWORD", "007");
            jail.set_env("YUNGATE__PROVIDER__REQUEST_TIMEOUT_MS", "4000");
            jail.set_env("YUNGATE__LIMITS__KEEPALIVE_INTERVAL_SECS", "0");
            jail.set_env("YUNGATE__ACCESS__REFLECTION", "false");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.provider.sysid, "1902271423530001");
            assert_eq!(config.provider.alias.as_deref(), Some("0012"));
            assert_eq!(
                config.provider.keystore_password.as_ref().map(|p| p.expose().as_str()),
                Some("007")
            );
            assert_eq!(config.provider.request_timeout_ms, 4000);
            assert_eq!(config.limits.keepalive_interval_secs, 0);
            assert!(!config.access.reflection);
            // Trimmed; structured values keep figment's syntax; quoted text stays text.
            jail.set_env(
                "YUNGATE__IDEMPOTENCY__FINGERPRINT_KEY",
                "0123456789abcdef0123456789abcdef\n",
            );
            jail.set_env("YUNGATE__RATE_LIMIT__PROVIDER__ORDER", "{per_second=7, burst=9}");
            jail.set_env("YUNGATE__GATEWAY__DEFAULT_JUMP_URL", "\"https://shop.example/back\"");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                config.idempotency.fingerprint_key.as_ref().map(|k| k.expose().as_str()),
                Some("0123456789abcdef0123456789abcdef")
            );
            let order = config.rate_limit.provider.get("order").copied();
            assert_eq!(order.map(|l| (l.per_second, l.burst)), Some((7, 9)), "{order:?}");
            assert_eq!(
                config.gateway.default_jump_url.as_deref(),
                Some("https://shop.example/back")
            );
            // A word where a number belongs is still refused, by the variable's name.
            jail.set_env("YUNGATE__PROVIDER__REQUEST_TIMEOUT_MS", "soon");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("YUNGATE__PROVIDER__REQUEST_TIMEOUT_MS"), "{err}");
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
    fn the_sandbox_runs_only_when_nothing_about_the_provider_is_set_or_on_purpose() {
        // README's first command: nothing configured.
        assert!(Config::default().validate().is_ok());
        let with = |adjust: fn(&mut Config)| {
            let mut c = Config::default();
            adjust(&mut c);
            c.validate().map_err(|e| e.to_string())
        };
        // One variable missing from a deployment (the URL), others set: refused, naming both.
        let err = with(|c| c.provider.keystore = Some("/keys/merchant.p12".into())).unwrap_err();
        assert!(
            err.contains("provider.url") && err.contains("provider.keystore"),
            "{err}"
        );
        let err = with(|c| c.provider.sysid = "2001010000000001".into()).unwrap_err();
        assert!(err.contains("provider.sysid"), "{err}");
        // On purpose, with a sysid of one's own.
        assert!(
            with(|c| {
                c.provider.sandbox = true;
                c.provider.sysid = "2001010000000001".into();
            })
            .is_ok()
        );
        // But not with keys (the sandbox makes its own), nor with a URL.
        let err = with(|c| {
            c.provider.sandbox = true;
            c.provider.key = Some("/keys/key.pem".into());
        })
        .unwrap_err();
        assert!(err.contains("provider.key"), "{err}");
        let err = with(|c| {
            c.provider.sandbox = true;
            c.provider.url = Some("https://yun.allinpay.com/service/soa".into());
            c.provider.key = Some("/keys/key.pem".into());
        })
        .unwrap_err();
        assert!(err.contains("provider.sandbox"), "{err}");
    }

    #[test]
    fn listener_settings_are_checked() {
        let with = |adjust: fn(&mut Config)| {
            let mut c = Config::default();
            // TLS beside no provider settings is a deployment: the sandbox on purpose.
            c.provider.sandbox = true;
            adjust(&mut c);
            c.validate().map_err(|e| e.to_string())
        };
        assert!(
            with(|c| c.tls.cert = Some("/tls/tls.crt".into()))
                .unwrap_err()
                .contains("tls.key")
        );
        assert!(
            with(|c| c.tls.client_ca = Some("/tls/ca.crt".into()))
                .unwrap_err()
                .contains("tls.client_ca")
        );
        assert!(
            with(|c| c.access.identity = IdentitySource::Tls)
                .unwrap_err()
                .contains("tls.client_ca")
        );
        let header_over_certificates = with(|c| {
            c.tls.cert = Some("/tls/tls.crt".into());
            c.tls.key = Some("/tls/tls.key".into());
            c.tls.client_ca = Some("/tls/ca.crt".into());
            c.access.identity = IdentitySource::Header;
        });
        assert!(header_over_certificates.unwrap_err().contains("access.identity"));
        let bad_header = with(|c| {
            c.access.identity = IdentitySource::Header;
            c.access.identity_header = "x bad".into();
        });
        assert!(bad_header.unwrap_err().contains("access.identity_header"));
        assert!(
            with(|c| c.limits.connection_request_bytes = c.limits.max_message_bytes)
                .unwrap_err()
                .contains("limits.connection_request_bytes")
        );
        assert!(
            with(|c| c.limits.max_connections = 0)
                .unwrap_err()
                .contains("limits.max_connections")
        );
        assert!(
            with(|c| c.rate_limit.callers = BTreeMap::from([("bad name".into(), BTreeMap::new())]))
                .unwrap_err()
                .contains("rate_limit.callers")
        );
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

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_images_environment_is_a_valid_configuration() {
        let dockerfile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
        // `ENV A=1 \` continued by `    B=2 \` lines: every YUNGATE__ pair the image sets.
        let pairs: Vec<(String, String)> = dockerfile
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .filter(|(k, _)| k.starts_with("YUNGATE__"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(pairs.len(), 4, "{pairs:?}");
        assert!(dockerfile.contains("YUNGATE_LOG_FORMAT=json"), "JSON logs in the image");
        figment::Jail::expect_with(|jail| {
            for (k, v) in &pairs {
                jail.set_env(k, v);
            }
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert!(
                config.listen.ip().is_unspecified(),
                "the gRPC port faces the pod network"
            );
            assert!(config.notify.listen.ip().is_unspecified());
            let health = config.health.listen.expect("a health port for the kubelet");
            let metrics = config.metrics.listen.expect("a metrics port for Prometheus");
            assert!(metrics.ip().is_unspecified());
            // The ports the image exposes are the ones it listens on.
            for port in [
                config.listen.port(),
                config.notify.listen.port(),
                health.port(),
                metrics.port(),
            ] {
                assert!(dockerfile.contains(&format!(" {port}")), "EXPOSE {port}");
            }
            Ok(())
        });
    }
}
