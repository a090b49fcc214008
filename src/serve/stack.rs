//! THE tower stacks, in order: the server stack every gRPC request passes, and the provider stack every provider call passes.
//!
//! Server stack (outermost first), around every gRPC service:
//!
//! 1. arrival: stamps when the request came (`Arrival`), so that the
//!    caller's deadline is measured from there, not from the handler;
//!    tracing and metrics slots for the telemetry work go here too;
//! 2. concurrency: a bound on requests in progress in the replica (tower's
//!    global concurrency limit); a request waits for a slot, its deadline
//!    already counting;
//! 3. per-caller limit (`ratelimit::CallerLimitLayer`): the caller is the
//!    `x-yungate-caller` metadata (`ratelimit::caller_name`; mTLS identities
//!    later); it runs before idempotency, so its refusals are never stored.
//!
//! Provider stack (outermost first), between `Gateway` and the provider:
//!
//! 1. idempotency (`idempotency::IdempotencyLayer`): replays, in-flight
//!    waits and key reuse are answered here, so they cost no quota;
//! 2. provider quota (`ratelimit::ProviderQuota`): GCRA shared by all replicas;
//! 3. in-flight bound (`ratelimit::InFlightBound`): a slow provider cannot
//!    pile up tasks (both are `Gate`s behind a `GateLayer`);
//! 4. `exchange::SoaService`: `SoaClient::exchange_value`, the one signed call.

use std::sync::Arc;
use std::time::Duration;

use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest, SoaService};
use crate::idempotency::{IdempotencyLayer, IdempotencySettings};
use crate::provider::client::SoaClient;
use crate::ratelimit::{CallerLimitLayer, GateLayer, InFlightBound, ProviderQuota, RateLimits};
use crate::store::Store;

/// When a request arrived (a request extension the server stack sets first).
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub tokio::time::Instant);

type HttpRequest = tonic::codegen::http::Request<tonic::body::Body>;

/// Stamps a request's arrival (the outermost layer of the server stack).
pub fn stamp_arrival(mut request: HttpRequest) -> HttpRequest {
    request.extensions_mut().insert(Arrival(tokio::time::Instant::now()));
    request
}

/// The arrival layer of the server stack.
pub fn arrival() -> tower::util::MapRequestLayer<fn(HttpRequest) -> HttpRequest> {
    tower::util::MapRequestLayer::new(stamp_arrival as fn(HttpRequest) -> HttpRequest)
}

/// The provider stack, type-erased for `Gateway`.
pub type ProviderStack = BoxCloneSyncService<ProviderRequest, ProviderAnswer, GatewayError>;

/// What the stacks are built from.
#[derive(Debug, Clone)]
pub struct StackSettings {
    pub idempotency: IdempotencySettings,
    pub rate_limits: RateLimits,
    /// The most provider calls in flight in this process.
    pub max_in_flight: usize,
    /// How long a call waits for a free slot before it is refused unsent.
    pub in_flight_wait: Duration,
}

/// Builds the provider stack over `client`.
pub fn provider_stack(client: SoaClient, store: Arc<dyn Store>, settings: &StackSettings) -> ProviderStack {
    let sysid = client.sysid().to_owned();
    let stack = ServiceBuilder::new()
        .layer(IdempotencyLayer::new(Arc::clone(&store), settings.idempotency.clone()))
        .layer(GateLayer::new(ProviderQuota::new(store, &sysid, &settings.rate_limits)))
        .layer(GateLayer::new(InFlightBound::new(
            settings.max_in_flight,
            settings.in_flight_wait,
        )))
        .service(SoaService::new(client));
    BoxCloneSyncService::new(stack)
}

/// The per-caller limit of the server stack.
pub fn caller_limit(store: Arc<dyn Store>, sysid: &str, settings: &StackSettings) -> CallerLimitLayer {
    CallerLimitLayer::new(store, sysid, &settings.rate_limits)
}
