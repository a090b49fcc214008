//! Rate limits as tower layers: the provider quota shared by all replicas (GCRA on the store), the per-caller limit, and the bound on provider calls in flight.
//!
//! The per-caller limit sits in the server stack, before idempotency, so
//! its refusals are never stored; the provider quota sits just above the
//! `SoaClient` call, so replays and in-flight waits cost no quota. A
//! refusal is RESOURCE_EXHAUSTED with RetryInfo; nothing is queued. In
//! shadow mode the limits are evaluated and logged but refuse nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::error::{GatewayError, LimitScope};
use crate::exchange::{ProviderAnswer, ProviderRequest, StackFuture};
use crate::provider::calls::RateClass;
use crate::store::{Limit, MemoryStore, RateDecision, Store};
use crate::telemetry::Metrics;

/// The metadata key naming the calling service when callers do not
/// authenticate (`access.identity = "none"`); otherwise ignored.
pub const CALLER_HEADER: &str = "x-yungate-caller";

/// The caller name used when a request names none (or an unusable one).
pub const ANONYMOUS: &str = "anonymous";

/// The configuration key of the limit for callers without their own.
pub const DEFAULT_CALLER: &str = "*";

/// Every limit in force.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    /// Evaluate and log, never refuse.
    pub shadow: bool,
    /// The provider quota per class, shared by every replica.
    pub provider: BTreeMap<RateClass, Limit>,
    /// Per caller and class; `*` for callers without an entry of their own.
    pub callers: BTreeMap<String, BTreeMap<RateClass, Limit>>,
}

/// The caller's name from the metadata: at most 64 of `[A-Za-z0-9._-]`,
/// else anonymous (the name becomes part of a store key).
pub fn caller_name(value: Option<&str>) -> &str {
    match value {
        Some(v)
            if !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            v
        }
        _ => ANONYMOUS,
    }
}

/// Decides against the store, falling back to a local limiter when the
/// store cannot answer: a dead Redis must not stop queries, and each
/// replica then enforces the whole quota on its own.
#[derive(Debug, Clone)]
struct Limiter {
    store: Arc<dyn Store>,
    fallback: MemoryStore,
    sysid: String,
    shadow: bool,
    metrics: Arc<Metrics>,
}

impl Limiter {
    async fn check(&self, scope: LimitScope, who: &str, class: RateClass, limit: Limit) -> Result<(), GatewayError> {
        let bucket = format!("yg:rate:{{{}:{}:{who}:{}}}", self.sysid, scope.name(), class.name());
        let decision = match self.store.acquire(&bucket, limit).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "rate-limit store unavailable: limiting in this process only");
                self.metrics.rate_limit_fallback();
                self.fallback
                    .acquire(&bucket, limit)
                    .await
                    .unwrap_or(RateDecision::Allowed)
            }
        };
        let decided = match decision {
            RateDecision::Allowed => "allowed",
            RateDecision::Limited { .. } if self.shadow => "shadow_limited",
            RateDecision::Limited { .. } => "limited",
        };
        self.metrics.rate_limit(scope.name(), class.name(), decided);
        // The rpc's span (caller limit) or the provider call's (quota).
        tracing::Span::current().record("rate_limit", decided);
        match decision {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } if self.shadow => {
                tracing::info!(
                    scope = scope.name(),
                    caller = who,
                    class = class.name(),
                    ?retry_after,
                    "rate limit exceeded (shadow mode: not refused)"
                );
                Ok(())
            }
            RateDecision::Limited { retry_after } => Err(GatewayError::RateLimited {
                scope,
                class,
                retry_after,
            }),
        }
    }
}

/// A check made before a provider call; what it passes is held until the call ends.
pub trait Gate: Clone + Send + Sync + 'static {
    /// Held for the duration of the call (a permit, or nothing).
    type Pass: Send;
    fn pass(
        &self,
        request: &ProviderRequest,
    ) -> impl std::future::Future<Output = Result<Self::Pass, GatewayError>> + Send;
}

/// Puts a [`Gate`] in front of the rest of the provider stack.
#[derive(Debug, Clone)]
pub struct GateLayer<G>(G);

impl<G> GateLayer<G> {
    pub fn new(gate: G) -> Self {
        GateLayer(gate)
    }
}

impl<S, G: Clone> Layer<S> for GateLayer<G> {
    type Service = Gated<S, G>;

    fn layer(&self, inner: S) -> Gated<S, G> {
        Gated {
            inner,
            gate: self.0.clone(),
        }
    }
}

/// The service of a [`GateLayer`]: refused by the gate means not sent.
#[derive(Debug, Clone)]
pub struct Gated<S, G> {
    inner: S,
    gate: G,
}

impl<S, G> Service<ProviderRequest> for Gated<S, G>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + 'static,
    S::Future: Send,
    G: Gate,
{
    type Response = ProviderAnswer;
    type Error = GatewayError;
    type Future = StackFuture<ProviderAnswer>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ProviderRequest) -> Self::Future {
        let mut inner = self.inner.clone();
        let gate = self.gate.clone();
        Box::pin(async move {
            let _pass = gate.pass(&request).await?;
            inner.call(request).await
        })
    }
}

/// The provider quota per class, shared by every replica through the store.
#[derive(Debug, Clone)]
pub struct ProviderQuota {
    limiter: Limiter,
    limits: Arc<BTreeMap<RateClass, Limit>>,
}

impl ProviderQuota {
    pub fn new(store: Arc<dyn Store>, sysid: &str, limits: &RateLimits, metrics: Arc<Metrics>) -> Self {
        ProviderQuota {
            limiter: Limiter {
                store,
                fallback: MemoryStore::new(),
                sysid: sysid.to_owned(),
                shadow: limits.shadow,
                metrics,
            },
            limits: Arc::new(limits.provider.clone()),
        }
    }
}

impl Gate for ProviderQuota {
    type Pass = ();

    async fn pass(&self, request: &ProviderRequest) -> Result<(), GatewayError> {
        let class = request.call.spec().rate_class;
        match self.limits.get(&class) {
            Some(limit) => self.limiter.check(LimitScope::Provider, "all", class, *limit).await,
            None => Ok(()),
        }
    }
}

/// Bounds the provider calls in flight in this process, so that a slow
/// provider cannot pile up tasks: past the bound a call waits at most
/// `wait` (and never past its deadline), then is refused unsent.
#[derive(Debug, Clone)]
pub struct InFlightBound {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl InFlightBound {
    pub fn new(max: usize, wait: Duration) -> Self {
        InFlightBound {
            permits: Arc::new(Semaphore::new(max.max(1))),
            wait,
        }
    }
}

impl Gate for InFlightBound {
    type Pass = tokio::sync::OwnedSemaphorePermit;

    async fn pass(&self, request: &ProviderRequest) -> Result<Self::Pass, GatewayError> {
        let mut until = tokio::time::Instant::now() + self.wait;
        if let Some(deadline) = request.deadline {
            until = until.min(deadline);
        }
        match tokio::time::timeout_at(until, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(GatewayError::ProviderBusy {
                retry_after: Duration::from_millis(200),
            }),
        }
    }
}

/// The per-caller limit, for the server stack: reads the caller's name
/// and the rpc's class, and answers a refusal itself.
#[derive(Debug, Clone)]
pub struct CallerLimitLayer {
    limiter: Limiter,
    limits: Arc<BTreeMap<String, BTreeMap<RateClass, Limit>>>,
}

impl CallerLimitLayer {
    pub fn new(store: Arc<dyn Store>, sysid: &str, limits: &RateLimits, metrics: Arc<Metrics>) -> Self {
        CallerLimitLayer {
            limiter: Limiter {
                store,
                fallback: MemoryStore::new(),
                sysid: sysid.to_owned(),
                shadow: limits.shadow,
                metrics,
            },
            limits: Arc::new(limits.callers.clone()),
        }
    }

    fn limit(&self, caller: &str, class: RateClass) -> Option<Limit> {
        self.limits
            .get(caller)
            .or_else(|| self.limits.get(DEFAULT_CALLER))
            .and_then(|by_class| by_class.get(&class))
            .copied()
    }
}

impl<S> Layer<S> for CallerLimitLayer {
    type Service = CallerLimit<S>;

    fn layer(&self, inner: S) -> CallerLimit<S> {
        CallerLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`CallerLimitLayer`].
#[derive(Debug, Clone)]
pub struct CallerLimit<S> {
    inner: S,
    layer: CallerLimitLayer,
}

type HttpRequest<B> = tonic::codegen::http::Request<B>;
type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

impl<S, B> Service<HttpRequest<B>> for CallerLimit<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        // The ready clone serves this request; the fresh clone stays for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            // No per-caller limit configured (the default): nothing to look up.
            if layer.limits.is_empty() {
                return inner.call(request).await;
            }
            let class = crate::grpc::call_of_path(request.uri().path()).map(|c| c.spec().rate_class);
            // The access layer has named the caller (its identity when callers authenticate).
            let caller = match request.extensions().get::<crate::serve::access::Caller>() {
                Some(c) => c.name.to_string(),
                None => caller_name(request.headers().get(CALLER_HEADER).and_then(|v| v.to_str().ok())).to_owned(),
            };
            if let Some((class, limit)) = class.and_then(|c| layer.limit(&caller, c).map(|l| (c, l))) {
                if let Err(e) = layer.limiter.check(LimitScope::Caller, &caller, class, limit).await {
                    return Ok(crate::grpc::status::from_gateway_error(&e).into_http());
                }
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_names_are_bounded_and_plain() {
        assert_eq!(caller_name(Some("billing-v2.eu")), "billing-v2.eu");
        assert_eq!(caller_name(None), ANONYMOUS);
        assert_eq!(caller_name(Some("")), ANONYMOUS);
        assert_eq!(caller_name(Some("a}b")), ANONYMOUS);
        assert_eq!(caller_name(Some(&"x".repeat(65))), ANONYMOUS);
    }
}
