//! The notification ingress: `POST /notify` on a listener of its own, verified, deduplicated and appended to the log before the provider hears 200.
//!
//! The provider retries a notification until it gets HTTP 200 (3.6: up to 8
//! times over about a day), so 200 is a promise that the event is stored:
//! it is answered only after the append (or when the append finds the event
//! already there, a retry), and any failure to store answers 503 so that
//! the provider tries again. A refusal (forged, stale, foreign) is 4xx,
//! counted, logged without the payload (it may hold phones), never stored.

pub mod fanout;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::idempotency::notified::Completion;
use crate::provider::notify::{self, Rejection, Trust, Verified};
use crate::store::notifications::{NotificationLog, Record};
use crate::telemetry::OrderTraces;
use tracing::Instrument as _;

/// [`Counters`] read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub accepted: u64,
    pub duplicates: u64,
    pub store_failures: u64,
    /// By reason, every reason listed.
    pub rejected: Vec<(&'static str, u64)>,
}

/// What the ingress has seen since the process started.
#[derive(Debug, Default)]
pub struct Counters {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    store_failures: AtomicU64,
    rejected: [AtomicU64; Rejection::REASONS.len()],
}

impl Counters {
    fn reject(&self, rejection: &Rejection) {
        if let Some(i) = Rejection::REASONS.iter().position(|r| *r == rejection.reason()) {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub fn counts(&self) -> Counts {
        Counts {
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            store_failures: self.store_failures.load(Ordering::Relaxed),
            rejected: Rejection::REASONS
                .iter()
                .zip(&self.rejected)
                .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// The counts as JSON: `accepted`, `duplicates`, `storeFailures`, `rejected{reason: n}`.
    pub fn to_json(&self) -> Value {
        let rejected: serde_json::Map<String, Value> = Rejection::REASONS
            .iter()
            .zip(&self.rejected)
            .map(|(r, n)| ((*r).to_owned(), json!(n.load(Ordering::Relaxed))))
            .collect();
        json!({
            "accepted": self.accepted.load(Ordering::Relaxed),
            "duplicates": self.duplicates.load(Ordering::Relaxed),
            "storeFailures": self.store_failures.load(Ordering::Relaxed),
            "rejected": rejected,
        })
    }
}

/// What the ingress needs.
#[derive(Debug, Clone)]
pub struct Ingress {
    pub trust: Arc<Trust>,
    pub log: Arc<dyn NotificationLog>,
    pub counters: Arc<Counters>,
    /// Completes idempotency records of unknown outcome from order results.
    pub completion: Option<Completion>,
    /// The traces of this replica's recent order calls, which an order's notification links to.
    pub traces: Arc<OrderTraces>,
}

/// The ingress serving on a socket; stopping lets the requests in progress finish (their appends included).
pub type RunningIngress = crate::serve::listener::HttpServer;

/// Connections the ingress takes at once (the provider opens few; the rest wait in the backlog).
const INGRESS_CONNECTIONS: usize = 256;

/// A connection quiet this long is closed: a notification is one small
/// POST, but its answer waits for the store (timeouts of up to a minute
/// over a few commands), during which the client sends nothing.
const INGRESS_IDLE: Duration = Duration::from_secs(180);

/// Binds `listen` and serves the ingress: `POST /notify`, and `GET /notify/stats` (the counters).
/// A request's head must arrive within `header_timeout`, its body within `body_timeout`.
pub async fn start(
    listen: SocketAddr,
    ingress: Ingress,
    (header_timeout, body_timeout): (Duration, Duration),
) -> std::io::Result<RunningIngress> {
    let listener = TcpListener::bind(listen).await?;
    let app = axum::Router::new()
        .route("/notify", post(receive))
        .route("/notify/stats", get(stats))
        .with_state(ingress)
        .layer(axum::Extension(BodyTimeout(body_timeout)));
    let server = RunningIngress::start(
        listener,
        app,
        crate::serve::listener::HttpLimits {
            max_connections: INGRESS_CONNECTIONS,
            idle: INGRESS_IDLE,
            header_timeout,
        },
    )?;
    tracing::info!(addr = %server.addr(), "notification ingress listening on /notify");
    Ok(server)
}

async fn stats(State(ingress): State<Ingress>) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        ingress.counters.to_json().to_string(),
    )
}

/// The record the log keeps of a verified notification.
pub fn record_of(verified: &Verified) -> Record {
    Record {
        id: verified.id.clone(),
        service: verified.body.service.clone(),
        method: verified.body.method.clone(),
        biz_order_no: verified.biz_order_no.clone(),
        biz_user_id: verified.biz_user_id.clone(),
        timestamp: verified.timestamp.clone(),
        version: verified.version.clone(),
        rps: verified.rps.clone(),
        trace: None,
    }
}

/// How long a notification's body may take to arrive.
#[derive(Debug, Clone, Copy)]
struct BodyTimeout(Duration);

/// Why a body was not read: refused, or it did not arrive in time (408:
/// a slow client, not a forgery; the provider retries a real one).
enum Unread {
    Refused(Rejection),
    Slow(Duration),
}

impl From<Rejection> for Unread {
    fn from(rejection: Rejection) -> Self {
        Unread::Refused(rejection)
    }
}

/// The body, at most [`notify::MAX_BODY_BYTES`] of it within `limit`, read
/// here rather than by an extractor so that a refusal for size is counted
/// like any other.
async fn read(body: Body, limit: Duration) -> Result<Bytes, Unread> {
    let Ok(read) = tokio::time::timeout(limit, read_bounded(body)).await else {
        return Err(Unread::Slow(limit));
    };
    Ok(read?)
}

async fn read_bounded(body: Body) -> Result<Bytes, Rejection> {
    match axum::body::to_bytes(body, notify::MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            if e.into_inner().is::<http_body_util::LengthLimitError>() {
                Err(Rejection::TooLarge(notify::MAX_BODY_BYTES + 1))
            } else {
                Err(Rejection::Malformed("the body was cut short".into()))
            }
        }
    }
}

// The body is read as a form whatever its Content-Type says: the provider
// has been seen labelling notifications `text/xml`.
async fn receive(
    State(ingress): State<Ingress>,
    axum::Extension(BodyTimeout(body_timeout)): axum::Extension<BodyTimeout>,
    body: Body,
) -> (StatusCode, &'static str) {
    let span = tracing::info_span!(
        target: "yungate::notify",
        "notification ingest",
        otel.name = "POST /notify",
        otel.kind = "server",
        provider.service = tracing::field::Empty,
        provider.method = tracing::field::Empty,
        biz_order_no = tracing::field::Empty,
        result = tracing::field::Empty,
    );
    let answer = ingest(ingress, body, body_timeout, &span)
        .instrument(span.clone())
        .await;
    span.record("result", answer.2);
    (answer.0, answer.1)
}

/// `receive`'s work: the answer, and the result its span records.
async fn ingest(
    ingress: Ingress,
    body: Body,
    body_timeout: Duration,
    span: &tracing::Span,
) -> (StatusCode, &'static str, &'static str) {
    let body = match read(body, body_timeout).await {
        Ok(body) => Ok(body),
        Err(Unread::Refused(rejection)) => Err(rejection),
        Err(Unread::Slow(limit)) => {
            tracing::warn!(
                limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                "a notification's body did not arrive in time (limits.http_body_timeout_ms): 408"
            );
            return (StatusCode::REQUEST_TIMEOUT, "body too slow", "slow_body");
        }
    };
    // At most two public-key checks (a key rotation), tens of microseconds:
    // in place, where a trip to the crypto pool would cost as much.
    let verified = match body.and_then(|body| notify::verify(&body, &ingress.trust, OffsetDateTime::now_utc())) {
        Ok(v) => v,
        Err(rejection) => {
            ingress.counters.reject(&rejection);
            tracing::warn!(reason = rejection.reason(), detail = %rejection, "notification refused");
            let status = match rejection {
                Rejection::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
                Rejection::ForeignSysid | Rejection::Stale | Rejection::BadSignature => StatusCode::FORBIDDEN,
            };
            return (status, "refused", rejection.reason());
        }
    };
    span.record("provider.service", verified.body.service.as_str());
    span.record("provider.method", verified.body.method.as_str());
    let mut record = record_of(&verified);
    if let Some(order) = &verified.biz_order_no {
        span.record("biz_order_no", order.as_str());
    }
    // The order's trace where this replica made the call, else the ingest's own.
    record.trace = ingress.traces.link(span, verified.biz_order_no.as_deref());
    if let Some(why) = &verified.unreadable {
        tracing::warn!(detail = %why, "a verified notification's rps cannot be read: stored untyped (raw JSON only)");
    }
    // Before the append: whoever sees the event can rely on the record
    // knowing it. Verified data, so harmless when the append then fails
    // (the retry completes nothing more).
    if let Some(completion) = &ingress.completion {
        completion.complete(&verified).await;
    }
    match ingress.log.append(&record).await {
        Ok(appended) => {
            let (counter, result) = if appended.duplicate {
                (&ingress.counters.duplicates, "duplicate")
            } else {
                (&ingress.counters.accepted, "accepted")
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                service = %verified.body.service,
                method = %verified.body.method,
                cursor = %appended.cursor,
                duplicate = appended.duplicate,
                "notification stored"
            );
            (StatusCode::OK, "success", result)
        }
        Err(e) => {
            ingress.counters.store_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "notification not stored: answered 503, the provider retries");
            (StatusCode::SERVICE_UNAVAILABLE, "retry later", "store_failure")
        }
    }
}
