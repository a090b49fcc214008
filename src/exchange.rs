//! What flows through the provider stack: a `ProviderRequest` in, a `ProviderAnswer` out, and the innermost service that makes the signed call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::error::GatewayError;
use crate::provider::calls::{Call, CallSpec, Idempotency, Resolution};
use crate::provider::client::{CallError, SoaClient};
use crate::telemetry::Metrics;

/// One provider call on its way down the stack.
#[derive(Debug, Clone)]
pub struct ProviderRequest {
    pub call: Call,
    /// The call's facts, looked up once.
    pub spec: &'static CallSpec,
    /// The parameters as they will be sent: clear text, the gateway's own fields filled in.
    pub param: Map<String, Json>,
    /// The caller-supplied parameters as canonical JSON (sorted keys,
    /// before the gateway filled anything): what the fingerprint covers.
    pub supplied: Vec<u8>,
    /// What the request is about, read once from `param`.
    pub subject: Subject,
    /// When the caller stops waiting, if it said.
    pub deadline: Option<Instant>,
    /// The caller's name (for the order timeline), when one called.
    pub caller: Option<Arc<str>>,
}

/// The key a keyed mutation's record is found by, and the field it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The natural number, the caller's `idempotency-key`, or both (`Idempotency::Part`).
    pub value: String,
    /// The number a caller looks the call up by (its timeline): the natural
    /// number, else the `idempotency-key`.
    pub number: String,
    /// Where it came from, as a caller knows it (a wire field name, or `idempotency-key`).
    pub field: &'static str,
}

/// What a request is about: its key, order number, member and amount, read
/// once from its parameters, so that the layers below key, resolve and
/// match on it instead of digging in the JSON. No personal data: member
/// ids are the merchant's own identifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// The idempotency key, for a mutation made idempotent by one.
    pub key: Option<Key>,
    /// `bizOrderNo`, when the request has one.
    pub biz_order_no: Option<String>,
    /// The member the call acts for: the payer of an order (the field its
    /// resolution queries with), else `bizUserId`, `payerId` or `targetBizUserId`.
    pub member: Option<String>,
    /// `amount`, in fen, when the request has one.
    pub amount: Option<i64>,
}

impl Subject {
    /// Reads the subject of a `call` with `param` and the caller's `idempotency-key`.
    pub fn of(spec: &CallSpec, param: &Map<String, Json>, caller_key: Option<String>) -> Result<Subject, GatewayError> {
        Ok(Subject {
            key: key_of(spec, param, caller_key)?,
            ..Subject::unkeyed(spec, param)
        })
    }

    /// The subject as an idempotency record keeps it (`store::ClaimTerms::subject`):
    /// the call's section, `bizOrderNo`, `member` and `amount`.
    pub fn kept(&self, spec: &CallSpec) -> Map<String, Json> {
        let mut kept = Map::new();
        kept.insert("section".into(), Json::from(spec.section));
        if let Some(order) = &self.biz_order_no {
            kept.insert("bizOrderNo".into(), Json::from(order.as_str()));
        }
        if let Some(member) = &self.member {
            kept.insert("member".into(), Json::from(member.as_str()));
        }
        if let Some(amount) = self.amount {
            kept.insert("amount".into(), Json::from(amount));
        }
        kept
    }

    /// A subject as a record kept it (see [`Subject::kept`]); its key is not kept.
    pub fn from_kept(kept: &Map<String, Json>) -> Subject {
        let text = |field: &str| kept.get(field).and_then(Json::as_str).map(str::to_owned);
        Subject {
            key: None,
            biz_order_no: text("bizOrderNo"),
            member: text("member"),
            amount: kept.get("amount").and_then(Json::as_i64),
        }
    }

    /// The subject without a key (a request the gateway makes on its own).
    fn unkeyed(spec: &CallSpec, param: &Map<String, Json>) -> Subject {
        let text = |field: &str| param.get(field).and_then(Json::as_str).filter(|s| !s.is_empty());
        let member_fields: &[&str] = match spec.resolution {
            Resolution::OrderDetail { member } => &[member],
            _ => &["bizUserId", "payerId", "targetBizUserId"],
        };
        Subject {
            key: None,
            biz_order_no: text("bizOrderNo").map(str::to_owned),
            member: member_fields.iter().find_map(|f| text(f)).map(str::to_owned),
            amount: param.get("amount").and_then(Json::as_i64),
        }
    }
}

/// Checks a caller's `idempotency-key`: 1 to 255 printable ASCII characters.
pub fn check_caller_key(key: &str) -> Result<(), GatewayError> {
    if key.is_empty() || key.len() > MAX_CALLER_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GatewayError::InvalidKey(format!(
            "must be 1 to {MAX_CALLER_KEY} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

/// The longest `idempotency-key` accepted, in bytes.
pub const MAX_CALLER_KEY: usize = 255;

/// The key of a request, if the call is made idempotent by one.
fn key_of(spec: &CallSpec, param: &Map<String, Json>, caller_key: Option<String>) -> Result<Option<Key>, GatewayError> {
    let idempotency = spec.idempotency;
    if let Some(field) = idempotency.natural_field() {
        let Some(number) = param.get(field).and_then(Json::as_str).filter(|k| !k.is_empty()) else {
            return Err(GatewayError::Invalid(vec![crate::error::Violation {
                field: field.to_owned(),
                description: "is required: it is the call's idempotency key".into(),
            }]));
        };
        if let Idempotency::Part(_) = idempotency {
            let Some(part) = caller_key else {
                return Err(GatewayError::InvalidKey(format!(
                    "is required for {}: one {field} may be used by several calls (each releases a part), \
                     so the key tells a retry from the next part; send a new key per part, the same one to retry",
                    spec.rpc
                )));
            };
            check_caller_key(&part)?;
            // A NUL cannot occur in either part: the pair is unambiguous.
            return Ok(Some(Key {
                value: format!("{number}\0{part}"),
                number: number.to_owned(),
                field,
            }));
        }
        return Ok(Some(Key {
            value: number.to_owned(),
            number: number.to_owned(),
            field,
        }));
    }
    Ok(match (idempotency, caller_key) {
        (Idempotency::CallerKey, Some(value)) => {
            check_caller_key(&value)?;
            Some(Key {
                number: value.clone(),
                value,
                field: "idempotency-key",
            })
        }
        _ => None,
    })
}

impl ProviderRequest {
    /// A request from a caller: reads its subject (and checks its key).
    pub fn new(
        call: Call,
        param: Map<String, Json>,
        supplied: Vec<u8>,
        caller_key: Option<String>,
        deadline: Option<Instant>,
        caller: Option<Arc<str>>,
    ) -> Result<Self, GatewayError> {
        let spec = call.spec();
        let subject = Subject::of(spec, &param, caller_key)?;
        Ok(ProviderRequest {
            call,
            spec,
            param,
            supplied,
            subject,
            deadline,
            caller,
        })
    }

    /// A request rebuilt from an idempotency record, to resolve it: `param`
    /// holds what its resolution queries with.
    pub fn rebuilt(call: Call, param: Map<String, Json>, subject: Subject, deadline: Option<Instant>) -> Self {
        ProviderRequest {
            call,
            spec: call.spec(),
            param,
            supplied: Vec::new(),
            subject,
            deadline,
            caller: None,
        }
    }

    /// A request the gateway makes on its own (a query resolving an unknown outcome): never keyed.
    pub fn internal(call: Call, param: Map<String, Json>, deadline: Option<Instant>) -> Self {
        let spec = call.spec();
        let subject = Subject::unkeyed(spec, &param);
        ProviderRequest {
            call,
            spec,
            param,
            supplied: Vec::new(),
            subject,
            deadline,
            caller: None,
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
        let spec = request.spec;
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
