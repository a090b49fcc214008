//! THE tower stacks, in order: the server stack every gRPC request passes, and the provider stack every provider call passes.
//!
//! Server stack (outermost first), around every gRPC service:
//!
//! 1. admission (`AdmissionLayer`): stamps when the request came
//!    (`Arrival`), so that the caller's deadline is measured from there, not
//!    from the handler, then bounds the gateway requests in progress in the
//!    replica (a request waits for a slot, its deadline already counting);
//!    tracing and metrics slots for the telemetry work go here too;
//! 2. per-caller limit (`ratelimit::CallerLimitLayer`): the caller is the
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

use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

use crate::config::PROVIDER_SLOT_WAIT;
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
type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

/// The first layer of the server stack: stamps a request's arrival, then
/// admits it within the replica's bound on gateway requests in progress.
/// The wait happens inside the call, after the stamp (a limit in
/// `poll_ready` would hold requests before anything measured them), and
/// ends with the caller's deadline or after 1 s: then UNAVAILABLE,
/// nothing started. Health and reflection are never held back.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    permits: Arc<tokio::sync::Semaphore>,
}

impl AdmissionLayer {
    pub fn new(max: usize) -> Self {
        AdmissionLayer {
            permits: Arc::new(tokio::sync::Semaphore::new(max.max(1))),
        }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            permits: Arc::clone(&self.permits),
        }
    }
}

/// See [`AdmissionLayer`].
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    permits: Arc<tokio::sync::Semaphore>,
}

impl<S> tower::Service<HttpRequest> for Admission<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's business, inside the call.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: HttpRequest) -> Self::Future {
        let arrival = tokio::time::Instant::now();
        request.extensions_mut().insert(Arrival(arrival));
        let inner = self.inner.clone();
        let permits = Arc::clone(&self.permits);
        Box::pin(async move {
            let _permit = if request.uri().path().starts_with("/yungate.v1.") {
                let timeout = request
                    .headers()
                    .get("grpc-timeout")
                    .and_then(|v| v.to_str().ok())
                    .and_then(crate::grpc::service::grpc_timeout)
                    .map_or(PROVIDER_SLOT_WAIT, |t| t.min(PROVIDER_SLOT_WAIT));
                match tokio::time::timeout_at(arrival + timeout, permits.acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    _ => {
                        let refused = GatewayError::Overloaded {
                            retry_after: Duration::from_millis(200),
                        };
                        return Ok(crate::grpc::status::from_gateway_error(&refused).into_http());
                    }
                }
            } else {
                None
            };
            inner.oneshot(request).await
        })
    }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tonic::codegen::http;
    use tower::{Layer, ServiceExt};

    use super::*;

    fn request(path: &str, timeout: &str) -> HttpRequest {
        http::Request::builder()
            .uri(path)
            .header("grpc-timeout", timeout)
            .body(tonic::body::Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn admission_stamps_arrival_and_refuses_unstarted_past_the_bound() {
        let slow = tower::service_fn(|r: HttpRequest| async move {
            assert!(r.extensions().get::<Arrival>().is_some(), "arrival stamped");
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok::<_, std::convert::Infallible>(HttpResponse::new(tonic::body::Body::empty()))
        });
        let admission = AdmissionLayer::new(1).layer(slow);
        let busy = tokio::spawn(
            admission
                .clone()
                .oneshot(request("/yungate.v1.OrderService/DepositApply", "5S")),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The one slot is taken: a caller with 100 ms left hears so within its deadline.
        let started = Instant::now();
        let refused = admission
            .clone()
            .oneshot(request("/yungate.v1.OrderService/DepositApply", "100m"))
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        let status = tonic::Status::from_header_map(refused.headers()).expect("a gRPC status");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        // Health checks are never held back by gateway traffic.
        let health = admission.oneshot(request("/grpc.health.v1.Health/Check", "100m")).await;
        assert!(health.is_ok());
        assert!(busy.await.unwrap().is_ok());
    }
}
