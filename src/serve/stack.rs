//! THE tower stacks, in order: the server stack every gRPC request passes, and the provider stack every provider call passes.
//!
//! Server stack (outermost first), around every gRPC service:
//!
//! 0. rpc metrics (`telemetry::RpcMetricsLayer`): started, handled by
//!    code and the time to the response's end, for every request, refused
//!    ones included;
//! 1. sandbox marker: in sandbox mode every response carries
//!    `x-yungate-sandbox: true`, so no caller mistakes it for the provider;
//! 2. admission (`AdmissionLayer`): stamps when the request came
//!    (`Arrival`), so that the caller's deadline is measured from there, not
//!    from the handler; bounds the request message in time and bytes
//!    (`serve/body.rs`) and counts the connection busy until the response
//!    ends (the idle timeout); then bounds the gateway requests in progress
//!    in the replica (a request waits for a slot, its deadline already
//!    counting);
//! 3. access (`access::AccessLayer`): who is calling (client certificate,
//!    mesh header, or an unauthenticated name) and whether the rules let
//!    it call this rpc: UNAUTHENTICATED / PERMISSION_DENIED before anything
//!    else is spent on it;
//! 4. per-caller limit (`ratelimit::CallerLimitLayer`): by the name the
//!    access layer put in the request (`access::Caller`); it runs before
//!    idempotency, so its refusals are never stored.
//!
//! Provider stack (outermost first), between `Gateway` and the provider:
//!
//! 0. the provider call's span (`telemetry::ProviderTraceLayer`), which
//!    the layers below fill in;
//! 1. idempotency (`idempotency::IdempotencyLayer`): replays, in-flight
//!    waits and key reuse are answered here, so they cost no quota;
//! 2. provider quota (`ratelimit::ProviderQuota`): GCRA shared by all replicas;
//! 3. in-flight bound (`ratelimit::InFlightBound`): a slow provider cannot
//!    pile up tasks (both are `Gate`s behind a `GateLayer`);
//! 4. `exchange::SoaService`: `SoaClient::exchange_value`, the one signed call.
//!
//! Each of them counts its own results in `telemetry::Metrics` (records,
//! rate-limit decisions, provider calls by outcome class).

use std::sync::Arc;
use std::time::Duration;

use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

use super::body::{BoundedBody, Budgets, CountedBody, FRAME_BYTES};
use super::listener::Peer;
use crate::config::PROVIDER_SLOT_WAIT;
use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest, SoaService};
use crate::idempotency::{IdempotencyLayer, IdempotencySettings};
use crate::provider::client::SoaClient;
use crate::ratelimit::{CallerLimitLayer, GateLayer, InFlightBound, ProviderQuota, RateLimits};
use crate::store::Store;
use crate::telemetry::{Metrics, OrderTraces, ProviderTraceLayer};

/// When a request arrived (a request extension the server stack sets first).
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub tokio::time::Instant);

pub type HttpRequest = tonic::codegen::http::Request<tonic::body::Body>;
pub type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

/// The first layer of the server stack: stamps a request's arrival, then
/// admits it within the replica's bound on gateway requests in progress.
/// The wait happens inside the call, after the stamp (a limit in
/// `poll_ready` would hold requests before anything measured them), and
/// ends with the caller's deadline or after 1 s: then UNAVAILABLE,
/// nothing started. Health and reflection are never held back.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    permits: Arc<tokio::sync::Semaphore>,
    settings: AdmissionSettings,
    /// The request bytes the replica may hold (see `serve/body.rs`).
    request_bytes: Arc<tokio::sync::Semaphore>,
}

/// What admission bounds.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionSettings {
    /// Gateway requests in progress in the replica.
    pub max_requests: usize,
    /// How long a request message may take to arrive.
    pub body_timeout: Duration,
    /// Request bytes buffered in the replica at once.
    pub request_bytes: usize,
    /// Request bytes buffered per connection at once.
    pub connection_request_bytes: usize,
    /// The largest request message.
    pub max_message: usize,
}

impl AdmissionLayer {
    pub fn new(settings: AdmissionSettings) -> Self {
        AdmissionLayer {
            permits: Arc::new(tokio::sync::Semaphore::new(settings.max_requests.max(1))),
            request_bytes: Arc::new(tokio::sync::Semaphore::new(settings.request_bytes.max(FRAME_BYTES))),
            settings,
        }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`AdmissionLayer`].
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
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

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let arrival = tokio::time::Instant::now();
        let layer = &self.layer;
        let peer = request.extensions().get::<Peer>();
        let active = peer.map(|p| p.state.begin());
        let connection_bytes = peer.map_or_else(
            || Arc::new(tokio::sync::Semaphore::new(layer.settings.connection_request_bytes)),
            |p| Arc::clone(&p.state.request_bytes),
        );
        let (parts, body) = request.into_parts();
        let budgets = Budgets {
            connection: connection_bytes,
            global: Arc::clone(&layer.request_bytes),
            max_message: layer.settings.max_message,
        };
        let body = BoundedBody::new(body, arrival, layer.settings.body_timeout, budgets);
        let mut request = HttpRequest::from_parts(parts, tonic::body::Body::new(body));
        request.extensions_mut().insert(Arrival(arrival));
        let inner = self.inner.clone();
        let permits = Arc::clone(&layer.permits);
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
            let response = inner.oneshot(request).await?;
            Ok(response.map(|body| tonic::body::Body::new(CountedBody::new(body, active))))
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
    /// Where the provider stack counts calls, records and decisions.
    pub metrics: Arc<Metrics>,
    /// Where order calls leave their trace for the order's notification.
    pub order_traces: Arc<OrderTraces>,
}

/// Builds the provider stack over `client`.
pub fn provider_stack(client: SoaClient, store: Arc<dyn Store>, settings: &StackSettings) -> ProviderStack {
    let sysid = client.sysid().to_owned();
    let stack = ServiceBuilder::new()
        .layer(ProviderTraceLayer::new(Arc::clone(&settings.order_traces)))
        .layer(IdempotencyLayer::new(
            Arc::clone(&store),
            settings.idempotency.clone(),
            Arc::clone(&settings.metrics),
        ))
        .layer(GateLayer::new(ProviderQuota::new(
            store,
            &sysid,
            &settings.rate_limits,
            Arc::clone(&settings.metrics),
        )))
        .layer(GateLayer::new(InFlightBound::new(
            settings.max_in_flight,
            settings.in_flight_wait,
        )))
        .service(SoaService::new(client, Arc::clone(&settings.metrics)));
    BoxCloneSyncService::new(stack)
}

/// The per-caller limit of the server stack.
pub fn caller_limit(store: Arc<dyn Store>, sysid: &str, settings: &StackSettings) -> CallerLimitLayer {
    CallerLimitLayer::new(store, sysid, &settings.rate_limits, Arc::clone(&settings.metrics))
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
        let admission = AdmissionLayer::new(AdmissionSettings {
            max_requests: 1,
            body_timeout: Duration::from_secs(5),
            request_bytes: 1 << 20,
            connection_request_bytes: 1 << 20,
            max_message: 1 << 19,
        })
        .layer(slow);
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
