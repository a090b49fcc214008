//! What flows through the provider stack: a `ProviderRequest` in, a `ProviderAnswer` out, and the innermost service that makes the signed call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::error::GatewayError;
use crate::provider::calls::Call;
use crate::provider::client::{CallError, SoaClient};
use crate::telemetry::Metrics;

/// One provider call on its way down the stack.
#[derive(Debug, Clone)]
pub struct ProviderRequest {
    pub call: Call,
    /// The parameters as they will be sent: clear text, the gateway's own fields filled in.
    pub param: Map<String, Json>,
    /// The caller-supplied parameters as canonical JSON (sorted keys,
    /// before the gateway filled anything): what the fingerprint covers.
    pub supplied: Vec<u8>,
    /// The caller's `idempotency-key`, for mutations without a natural key.
    pub caller_key: Option<String>,
    /// When the caller stops waiting, if it said.
    pub deadline: Option<Instant>,
}

impl ProviderRequest {
    /// A request the gateway makes on its own (a query resolving an unknown outcome).
    pub fn internal(call: Call, param: Map<String, Json>, deadline: Option<Instant>) -> Self {
        ProviderRequest {
            call,
            param,
            supplied: Vec::new(),
            caller_key: None,
            deadline,
        }
    }
}

/// The provider's answer as the stack returns it. `Debug` never shows `clear`.
pub struct ProviderAnswer {
    /// The verified `signedValue` (fields the catalogue marks encrypted are
    /// still encrypted: stored records never hold them in clear), or why
    /// there is none.
    pub result: Result<Json, CallError>,
    /// `result`'s value with its encrypted fields decrypted (or why they
    /// did not decrypt), when the exchange decrypted them with its
    /// verification: never stored; empty for replays, which decrypt on the
    /// way out.
    pub clear: Option<Result<Json, CallError>>,
    /// Replayed from the idempotency store: the provider was not called.
    pub replayed: bool,
    /// Learnt from a query after an attempt whose outcome was unknown.
    pub recovered: bool,
}

impl std::fmt::Debug for ProviderAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `clear` holds decrypted card and identity numbers.
        f.debug_struct("ProviderAnswer")
            .field("result", &self.result)
            .field("clear", &self.clear.as_ref().map(|_| "***"))
            .field("replayed", &self.replayed)
            .field("recovered", &self.recovered)
            .finish()
    }
}

impl ProviderAnswer {
    /// A fresh answer from the provider.
    pub fn fresh(result: Result<Json, CallError>) -> Self {
        ProviderAnswer {
            result,
            clear: None,
            replayed: false,
            recovered: false,
        }
    }
}

/// A boxed, sendable future of the stack.
pub type StackFuture<T> = Pin<Box<dyn Future<Output = Result<T, GatewayError>> + Send>>;

/// The bottom of the provider stack: `SoaClient::exchange_value`, the one signed HTTP call.
#[derive(Debug, Clone)]
pub struct SoaService {
    client: SoaClient,
    metrics: Arc<Metrics>,
}

impl SoaService {
    /// Calls the provider through `client`, counting each call in `metrics`.
    pub fn new(client: SoaClient, metrics: Arc<Metrics>) -> Self {
        SoaService { client, metrics }
    }
}

/// The outcome class of a provider call, a metric label.
pub fn outcome_class(result: &Result<Json, CallError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(CallError::NotSent(_)) => "not_sent",
        Err(CallError::RefusedUnread { .. }) => "refused_unread",
        Err(CallError::OutcomeUnknown(_)) => "outcome_unknown",
        Err(CallError::Http { .. }) => "http_error",
        Err(CallError::BadSignature(_)) => "bad_signature",
        Err(CallError::Malformed(_)) => "malformed",
        Err(CallError::Decrypt { .. }) => "decrypt_error",
        Err(CallError::Business { .. }) => "business_error",
    }
}

impl tower::Service<ProviderRequest> for SoaService {
    type Response = ProviderAnswer;
    type Error = GatewayError;
    type Future = StackFuture<ProviderAnswer>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ProviderRequest) -> Self::Future {
        let client = self.client.clone();
        let metrics = Arc::clone(&self.metrics);
        let spec = request.call.spec();
        // One span per HTTP exchange, under the provider call's span.
        let span = tracing::info_span!(
            target: "yungate::provider",
            "exchange",
            otel.name = %format!("POST {}.{}", spec.service, spec.method),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            provider.service = spec.service,
            provider.method = spec.method,
            outcome = tracing::field::Empty,
            error_code = tracing::field::Empty,
        );
        let recorded = span.clone();
        Box::pin(
            async move {
                let started = Instant::now();
                let (result, clear) = match client.exchange_value(request.call, Json::Object(request.param)).await {
                    Ok(answered) => (Ok(answered.signed), answered.clear),
                    Err(e) => (Err(e), None),
                };
                let outcome = outcome_class(&result);
                metrics.provider_call(spec.service, spec.method, outcome, started.elapsed());
                recorded.record("outcome", outcome);
                if let Err(CallError::Business { code, .. }) = &result {
                    // Section 7 codes are a few digits; a longer one is cut, not carried whole.
                    recorded.record("error_code", code.chars().take(16).collect::<String>().as_str());
                }
                if !matches!(outcome, "ok" | "business_error") {
                    recorded.record("otel.status_code", "ERROR");
                }
                Ok(ProviderAnswer {
                    clear,
                    ..ProviderAnswer::fresh(result)
                })
            }
            .instrument(span),
        )
    }
}
