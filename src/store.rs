//! The gateway's shared state: idempotency records and rate-limit buckets, behind one trait with a Redis and an in-memory backend.
//!
//! A record is one key (`yg:idem:{sysid:section:HMAC(key)}`, one hash tag,
//! so that a record would never span Redis Cluster slots) in one of three
//! states:
//!
//! ```text
//!   (absent) --claim--> pending(token, lease) --complete--> done(outcome)   kept for the retention window
//!                            |   ^                  \
//!                  mark_unknown  claim after the     release (nothing was sent) --> (absent)
//!                            v   lease lapsed
//!                         unknown --claim--> pending (the claimer resolves first)
//! ```
//!
//! Every transition is a compare-and-set on the claimer's token (a Lua
//! script on Redis, a mutex in memory), so a claimer whose lease lapsed
//! cannot overwrite its successor. A record also keeps until when the
//! provider may still act on its last attempt (`settled`): a claim and
//! `sending` push it to the end of a possible attempt, `mark_unknown` sets
//! it; a claimer that finds the provider without a trace of the attempt may
//! send again only after it. Times come from the store's own clock (Redis
//! `TIME`), never from a replica's.

pub mod memory;
pub mod notifications;
pub mod redis;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use memory::{MemoryLimits, MemoryStore};
pub use redis::RedisStore;

/// A boxed future, so that the trait can be used as `dyn Store`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not answer; nothing about the record is known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The store's identity marker. Only an explicit initialisation writes it:
/// `yungate store init` on a first deployment, `yungate store
/// acknowledge-loss` after the store lost its data (or, at start,
/// `store.initialise_empty`, for development). A store without one is new
/// *or* lost its data (a restart without persistence, a failover to an
/// empty replica, a `FLUSHALL`): nothing it lacks may be read as "never
/// happened", so money calls are refused unsent until an operator says which.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// A random id, new at each initialisation.
    pub id: String,
    /// When it was written, in milliseconds since the epoch (the store's clock).
    pub since_ms: u64,
    /// Set when an operator acknowledged a loss: records of calls made
    /// before then are gone.
    pub lost_at_ms: Option<u64>,
}

/// Why a marker is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initialise {
    /// A new store for a first deployment.
    FirstDeployment,
    /// An operator acknowledges that the store lost its data.
    AcknowledgeLoss,
}

/// What writing a marker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initialised {
    /// The store had none: this one is new.
    Created(Identity),
    /// The store has one already: nothing was written.
    Existing(Identity),
}

/// The call's spec section in a record key (`yg:idem:{sysid:section:hash}`).
pub fn section_of(key: &str) -> Option<&str> {
    let inner = key.strip_prefix("yg:idem:{")?.strip_suffix('}')?;
    let mut parts = inner.rsplitn(3, ':');
    let _hash = parts.next()?;
    parts.next()
}

/// A random identity id.
pub fn new_identity_id() -> String {
    let mut bytes = [0u8; 12];
    // The OS generator does not fail on the platforms we build for.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The store has no identity marker: it is new or lost its data
    /// (see [`Identity`]). Nothing was claimed.
    Uninitialised,
    /// The record is new and now the claimer's: nothing was sent before.
    Fresh,
    /// The record is now the claimer's, but an earlier attempt may have
    /// reached the provider (it was marked unknown, or its lease lapsed):
    /// resolve before sending anything. The provider may still act on that
    /// attempt for `settle_left`. `proved_absent`: a look (the resolver's,
    /// or an operator's settlement) already proved the attempt never
    /// landed, so this claim may send without asking again.
    Unknown { settle_left: Duration, proved_absent: bool },
    /// Another claimer holds a live lease.
    Busy { retry_after: Duration },
    /// Finished: the stored outcome.
    Done(Vec<u8>),
    /// The record was made for a different request (another fingerprint).
    Mismatch,
    /// No room for a new record (the memory store at its ceiling,
    /// `store.memory_max_records`): nothing was claimed.
    Full,
}

/// How long the provider may still act on an attempt whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Not at all: it answered, so it was done with the request.
    Closed,
    /// For this long from now: an exchange that got no answer just ended
    /// (the window of the claim, which covered the exchange, is replaced).
    Open(Duration),
    /// As the record already says (nothing was sent in this run).
    Keep,
}

/// What a claim needs besides the key and the token.
#[derive(Debug, Clone)]
pub struct ClaimTerms {
    /// The request's fingerprint: another request with the key is a mismatch.
    pub fingerprint: String,
    /// How long the claim lives unrenewed.
    pub lease: Duration,
    /// How long the record is kept.
    pub retention: Duration,
    /// How long after it starts the provider may still act on an attempt.
    pub attempt: Duration,
    /// What the request is about (`exchange::Subject` as JSON: its call's
    /// section, `bizOrderNo`, `member`, `amount`), kept with the record so
    /// that whatever completes it later can check it answers this request.
    pub subject: Vec<u8>,
}

/// What a completion from outside (a notification) knows of the request it
/// answers; a field left `None` is not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// The member the order is for.
    pub member: Option<String>,
    /// The order's amount, in fen.
    pub amount: Option<i64>,
}

impl Expect {
    /// Whether a record's subject (JSON with `member` and `amount`) agrees;
    /// a subject that does not say agrees (a record written before subjects were kept).
    pub fn agrees(&self, subject: &[u8]) -> bool {
        let Ok(subject) = serde_json::from_slice::<serde_json::Value>(subject) else {
            return true;
        };
        let member_ok = match (&self.member, subject.get("member").and_then(serde_json::Value::as_str)) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        };
        let amount_ok = match (self.amount, subject.get("amount").and_then(serde_json::Value::as_i64)) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        };
        member_ok && amount_ok
    }
}

/// What completing an unknown record from outside did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// The record was unknown and now holds the outcome.
    Done,
    /// The record is absent, held or finished: left as it is.
    NotUnknown,
    /// The record is unknown, but it is about another request (another
    /// member or amount): left unknown, to be flagged.
    Mismatch,
}

/// An unknown record the resolver took for a sweep: what it needs to ask the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The record's subject, as its first claim wrote it (`ClaimTerms::subject`).
    pub subject: Vec<u8>,
    /// How long the provider may still act on the last attempt.
    pub settle_left: Duration,
    /// How many sweeps took it before this one.
    pub tries: u32,
}

/// Where a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// A claim holds it (a call, a retry or the resolver is at work), or
    /// held it and its owner died (the resolver or a retry takes it over).
    Pending,
    /// Its outcome is unknown and nobody holds it.
    Unknown,
    /// Finished: `Inspected::outcome` holds the stored outcome.
    Done,
}

/// A record as [`Store::inspect`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub state: RecordState,
    /// What the request is about (`ClaimTerms::subject`).
    pub subject: Vec<u8>,
    /// The stored outcome, when done (`idempotency::outcome::Stored`).
    pub outcome: Vec<u8>,
}

/// The lease names in use: one store key each.
pub mod lease {
    /// The resolver's sweep.
    pub const RESOLVER: &str = "resolver";
    /// A reconciliation run (one at a time, whatever its date).
    pub const RECONCILIATION: &str = "reconciliation";
}

/// How many records are of unknown outcome, and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnknownStats {
    /// Records of unknown outcome (held by a resolving claim or not).
    pub count: u64,
    /// How long the oldest has been unknown.
    pub oldest: Option<Duration>,
    /// Counts by the call's spec section (the record key's), for at most
    /// the 10 000 oldest records.
    pub by_section: std::collections::BTreeMap<String, u64>,
}

/// A rate-limit decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Refused; the earliest time a retry can pass.
    Limited {
        retry_after: Duration,
    },
}

/// A rate: `per_second` on average, up to `burst` at once (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub per_second: u32,
    pub burst: u32,
}

impl Limit {
    /// The emission interval: the time one request costs.
    pub fn interval(self) -> Duration {
        Duration::from_secs(1) / self.per_second.max(1)
    }
}

/// The operations the idempotency and rate-limit layers need.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Claims `key` for a request with `terms.fingerprint`: creates it
    /// pending with `token` and a lease (an attempt may be under way until
    /// `terms.attempt` from now), takes over an unknown or lapsed one, or
    /// reports what is there. A claimed record lives `terms.retention`.
    fn claim<'a>(&'a self, key: &'a str, token: &'a str, terms: &'a ClaimTerms) -> StoreFuture<'a, Claim>;

    /// Extends the lease of `token`'s claim; false when the claim was lost.
    fn renew<'a>(&'a self, key: &'a str, token: &'a str, lease: Duration) -> StoreFuture<'a, bool>;

    /// Says `token`'s claim sends again now: the provider may act on it for `attempt`.
    fn sending<'a>(&'a self, key: &'a str, token: &'a str, attempt: Duration) -> StoreFuture<'a, bool>;

    /// Stores the outcome of `token`'s claim for `retention`; false when the claim was lost.
    fn complete<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        outcome: &'a [u8],
        retention: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Marks `token`'s claim as of unknown outcome and frees its lease;
    /// `window` says how long the provider may still act on the attempt.
    fn mark_unknown<'a>(&'a self, key: &'a str, token: &'a str, window: Window) -> StoreFuture<'a, bool>;

    /// Stores `outcome` for a record of unknown outcome that nobody holds
    /// (the provider told it, e.g. by notification), when its subject
    /// agrees with `expect`.
    fn complete_unknown<'a>(
        &'a self,
        key: &'a str,
        outcome: &'a [u8],
        retention: Duration,
        expect: &'a Expect,
    ) -> StoreFuture<'a, Completed>;

    /// Deletes `token`'s claim: nothing was sent, nothing is remembered.
    fn release<'a>(&'a self, key: &'a str, token: &'a str) -> StoreFuture<'a, bool>;

    /// Takes one request from the GCRA bucket `bucket` limited by `limit`.
    fn acquire<'a>(&'a self, bucket: &'a str, limit: Limit) -> StoreFuture<'a, RateDecision>;

    /// Answers when the store can serve (readiness).
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// Keys of unknown records whose next check is due, the longest due
    /// first, at most `limit`.
    fn due_unknown(&self, limit: usize) -> StoreFuture<'_, Vec<String>>;

    /// Takes an unknown record nobody holds (or whose holder's lease
    /// lapsed) as `token`'s claim for `lease`, as the resolver does; `None`
    /// when it is held, finished or gone (then it leaves the index).
    fn take_unknown<'a>(&'a self, key: &'a str, token: &'a str, lease: Duration) -> StoreFuture<'a, Option<Taken>>;

    /// Gives `token`'s claim back as unknown but proved absent: the next
    /// claim may send without asking again (`Claim::Unknown::proved_absent`),
    /// and the record leaves the resolver's indexes; false when the claim
    /// was lost. Never a release: a retry must still read a duplicate
    /// number as perhaps this attempt's, not as a first attempt's.
    fn prove_absent<'a>(&'a self, key: &'a str, token: &'a str) -> StoreFuture<'a, bool>;

    /// Gives `token`'s claim back as unknown (the provider's window as it
    /// was), next due `after` from now; false when the claim was lost.
    fn defer_unknown<'a>(&'a self, key: &'a str, token: &'a str, after: Duration) -> StoreFuture<'a, bool>;

    /// The lease `name` (the resolver's sweep, a reconciliation run): true
    /// when `holder` holds it for `ttl` from now (taken, or renewed), so
    /// that one replica does the work at a time.
    fn lease<'a>(&'a self, name: &'a str, holder: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;

    /// What the record `key` holds, read without taking it; `None` when
    /// there is none (never made, or expired).
    fn inspect<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Inspected>>;

    /// How many records are of unknown outcome, and for how long; records
    /// older than `retention` have expired and are not counted.
    fn unknown_stats(&self, retention: Duration) -> StoreFuture<'_, UnknownStats>;

    /// Appends `entry` to the journal `key` (the order timeline), keeping
    /// the newest `cap` entries, the journal living `retention` from now.
    fn journal_append<'a>(
        &'a self,
        key: &'a str,
        entry: &'a [u8],
        retention: Duration,
        cap: usize,
    ) -> StoreFuture<'a, ()>;

    /// The journal `key`'s entries, oldest first.
    fn journal_read<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Vec<Vec<u8>>>;

    /// The store's identity marker, if it has one.
    fn identity(&self) -> StoreFuture<'_, Option<Identity>>;

    /// Writes an identity marker when there is none; never replaces one.
    fn initialise(&self, how: Initialise) -> StoreFuture<'_, Initialised>;
}
