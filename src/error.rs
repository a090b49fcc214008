//! `GatewayError`: every way a gateway call can fail, sorted by what the caller may do next; `grpc/status.rs` maps it to a status once.

use std::time::Duration;

use crate::provider::calls::{CallSpec, RateClass};
use crate::provider::client::CallError;
use crate::provider::codes::OrderStatus;

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
    /// The provider answered that the request's number is already used
    /// (30000, 40017; 40004 for a confirmation), and this gateway has no
    /// record of an earlier attempt with it: this request was not
    /// processed, and what holds the number is not its doing here.
    #[error("{} is already used at the provider ({})", .0.field, .0.code)]
    NumberUsed(Box<NumberUsed>),
    /// What the provider reports of an earlier attempt (by query or by
    /// notification) is an order that failed or closed: nothing moved.
    #[error("the order failed at the provider ({})", .0.status.code())]
    OrderFailed(Box<OrderFailed>),
    /// An earlier attempt with this key may have been processed and its
    /// outcome cannot be learnt now; nothing new was sent.
    #[error("an earlier attempt's outcome is still unknown: {detail}")]
    Unresolved {
        cause: &'static str,
        detail: String,
        /// When a retry may learn more, if the gateway can tell.
        retry_after: Option<Duration>,
    },
    /// The idempotency store has no identity marker: it is new, or it lost
    /// its data. A call that moves money is not sent until an operator
    /// initialises it or acknowledges the loss.
    #[error("the idempotency store is not initialised")]
    StoreUninitialised,
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

/// A number-used answer on a first attempt, as the caller hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberUsed {
    /// The field holding the number (`bizOrderNo`, `bizUserId`...).
    pub field: &'static str,
    /// Whether the call confirms an order (4.2.8, 4.2.11) rather than creating something.
    pub confirmation: bool,
    /// The provider's code and message.
    pub code: String,
    pub message: String,
    /// Whether a signature covers the code.
    pub verified: bool,
    /// The order's 6.13 status when the gateway asked right after (order calls only).
    pub existing: Option<OrderStatus>,
    /// What the gateway's records may have forgotten (an attempt before
    /// the last restart of an in-memory store, or before an acknowledged
    /// loss): the existing order may be that very attempt.
    pub forgets: Option<Forgets>,
    /// Replayed from the idempotency store.
    pub replayed: bool,
}

impl NumberUsed {
    /// `spec`'s call met `code`: nothing forgotten, no status asked, not replayed.
    pub fn new(spec: &CallSpec, code: String, message: String, verified: bool) -> Self {
        NumberUsed {
            field: spec.idempotency.natural_field().unwrap_or("idempotency-key"),
            confirmation: spec.idempotency.confirms_order(),
            code,
            message,
            verified,
            existing: None,
            forgets: None,
            replayed: false,
        }
    }
}

/// What the idempotency records may have forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Forgets {
    /// In memory: every attempt before the gateway's last restart.
    Restart,
    /// Every attempt before an acknowledged loss of the store's data.
    #[serde(rename_all = "camelCase")]
    Loss { at_ms: u64 },
}

/// A failed or closed order, as learnt after the fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFailed {
    /// The 6.13 status (3 交易失败 or 6 关闭).
    pub status: OrderStatus,
    /// The provider's order number, when known.
    pub order_no: Option<String>,
    /// The provider's failure message, when it gave one.
    pub message: Option<String>,
    /// Replayed from the idempotency store.
    pub replayed: bool,
}
