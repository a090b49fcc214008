//! `GatewayError`: every way a gateway call can fail, sorted by what the caller may do next; `grpc/status.rs` maps it to a status once.

use std::time::Duration;

use crate::provider::calls::RateClass;
use crate::provider::client::CallError;

/// One field violation: the proto field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The calling service's own limit.
    Caller,
    /// The provider quota shared by all replicas.
    Provider,
}

impl LimitScope {
    /// The scope's name in ErrorInfo and logs.
    pub fn name(self) -> &'static str {
        match self {
            LimitScope::Caller => "caller",
            LimitScope::Provider => "provider",
        }
    }
}

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request breaks the spec's rules; nothing was sent.
    #[error("invalid request ({} violations)", .0.len())]
    Invalid(Vec<Violation>),
    /// The `idempotency-key` metadata value is unusable; nothing was sent.
    #[error("invalid idempotency-key: {0}")]
    InvalidKey(String),
    /// The provider call failed (or a stored refusal is replayed).
    #[error(transparent)]
    Provider(#[from] CallError),
    /// The key was first used with a different request; nothing was sent.
    #[error("the idempotency key {field} was used before with a different request")]
    KeyReused { field: &'static str },
    /// The first request with this key is still running.
    #[error("a request with this idempotency key is still in flight")]
    InFlight { retry_after: Duration },
    /// An earlier attempt with this key may have been processed and its
    /// outcome cannot be learnt now; nothing new was sent.
    #[error("an earlier attempt's outcome is still unknown: {detail}")]
    Unresolved {
        cause: &'static str,
        detail: String,
        /// When a retry may learn more, if the gateway can tell.
        retry_after: Option<Duration>,
    },
    /// The idempotency store cannot be reached: a call that moves money is
    /// not sent without it.
    #[error("idempotency store unavailable: {0}")]
    StoreUnavailable(String),
    /// A rate limit refused the call; nothing was sent.
    #[error("rate limited ({} {})", scope.name(), class.name())]
    RateLimited {
        scope: LimitScope,
        class: RateClass,
        retry_after: Duration,
    },
    /// The replica has too many requests in progress; nothing was sent.
    #[error("the gateway is overloaded")]
    Overloaded { retry_after: Duration },
    /// Too many provider calls are in flight; nothing was sent.
    #[error("too many provider calls in flight")]
    ProviderBusy { retry_after: Duration },
    /// The caller's deadline is about to pass. `sent` says whether the call
    /// may have reached the provider; `continues` whether it goes on and
    /// records its outcome for a retry with the same key.
    #[error("the caller's deadline passed")]
    DeadlineExceeded { sent: bool, continues: bool },
    /// The caller did not prove who it is, and this gateway requires it; nothing was done.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The access rules do not let this caller do this; nothing was done.
    #[error("{caller} may not call {what}")]
    PermissionDenied { caller: String, what: String },
    /// A failure inside the gateway, never the caller's fault.
    #[error("internal: {0}")]
    Internal(String),
}
