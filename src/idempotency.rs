//! The idempotency layer: a retried call never moves money twice, and a retry after a success gets the original answer.
//!
//! For a mutation with a key (the call's natural number, or the caller's
//! `idempotency-key`), scoped by sysid and call: claim the record with the
//! request's fingerprint, run the provider exchange, renew the lease while
//! it runs, and store a final outcome for the retention window. All of it
//! runs in a task this layer owns, so a caller that gives up neither
//! abandons a claim nor loses the answer. The state machine is in
//! `store.rs`; what each answer means for it is `CallError::outcome`.
//!
//! Requests for one key that meet in one process wait on the running one
//! instead of polling the store; requests that meet a claim held by
//! another replica poll it, within the in-flight wait.

pub mod fingerprint;
pub mod notified;
pub mod outcome;
pub mod resolve;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use self::outcome::{Stored, StoredResult, recovered_answer};
use self::resolve::{Resolved, order_status, resolve};
use crate::error::{Forgets, GatewayError, NumberUsed};
use crate::exchange::{Key, ProviderAnswer, ProviderRequest, StackFuture};
use crate::provider::calls::{Call, Idempotency};
use crate::provider::checkfile;
use crate::provider::client::{CallError, Outcome};
use crate::provider::codes::OrderStatus;
use crate::provider::errors::{self, Meaning};
use crate::store::{Claim, ClaimTerms, Store, Window};
use crate::telemetry::Metrics;
use crate::timeline::{Event, Timeline};
use tracing::Instrument as _;

/// How often a failed outcome write is tried again before giving up (the
/// lease is renewed meanwhile).
const FINISH_ATTEMPTS: u32 = 5;

/// How the layer behaves. Its `Debug` leaves the secret out.
#[derive(Clone)]
pub struct IdempotencySettings {
    /// The merchant's system number: records are scoped by it.
    pub sysid: String,
    /// The HMAC key of fingerprints and record keys.
    pub secret: [u8; 32],
    /// How long a finished record is kept.
    pub retention: Duration,
    /// How long a request waits for another one with the same key.
    pub in_flight_wait: Duration,
    /// How long a claim lives without renewal; renewed every third of it.
    pub lease: Duration,
    /// How long after the end of an exchange without an answer the provider
    /// may still act on the request (its own processing and retries).
    pub settle: Duration,
    /// The longest exchange (the provider client's request timeout).
    pub exchange: Duration,
    /// The longest time between a claim and the send: the layers below may
    /// wait this long (quota check, in-flight bound).
    pub gates: Duration,
    /// Whether the store keeps its records across restarts (Redis) or not
    /// (memory): a number-used answer says what may be forgotten.
    pub durable: bool,
    /// How long the order timeline keeps a number's events.
    pub timeline: Duration,
}

crate::debug_shows!(IdempotencySettings: sysid, retention, in_flight_wait, lease, settle, exchange, gates, durable, timeline);

impl IdempotencySettings {
    /// How long after a claim the provider may still act on its attempt.
    fn attempt(&self) -> Duration {
        self.gates + self.exchange + self.settle
    }
}

type Local = Mutex<HashMap<String, (String, watch::Receiver<()>)>>;

struct Shared {
    store: Arc<dyn Store>,
    settings: IdempotencySettings,
    /// Records this process is running: fingerprint, and a channel that
    /// closes when the run ends.
    local: Local,
    metrics: Arc<Metrics>,
    /// What each attempt and resolution came to, per number.
    timeline: Timeline,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("store", &self.store)
            .field("retention", &self.settings.retention)
            .finish_non_exhaustive()
    }
}

/// The layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct IdempotencyLayer {
    shared: Arc<Shared>,
}

impl IdempotencyLayer {
    pub fn new(store: Arc<dyn Store>, settings: IdempotencySettings, metrics: Arc<Metrics>) -> Self {
        let timeline = Timeline::new(
            Arc::clone(&store),
            settings.sysid.clone(),
            settings.secret,
            settings.timeline,
        );
        IdempotencyLayer {
            shared: Arc::new(Shared {
                store,
                settings,
                local: Mutex::new(HashMap::new()),
                metrics,
                timeline,
            }),
        }
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = IdempotencyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdempotencyService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service the layer wraps around the rest of the provider stack.
#[derive(Debug, Clone)]
pub struct IdempotencyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<ProviderRequest> for IdempotencyService<S>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = ProviderAnswer;
    type Error = GatewayError;
    type Future = StackFuture<ProviderAnswer>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ProviderRequest) -> Self::Future {
        let inner = self.inner.clone();
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let Some(key) = request.subject.key.clone() else {
                shared.metrics.idempotency("unkeyed");
                tracing::Span::current().record("idempotency", "unkeyed");
                return inner.oneshot(request).await;
            };
            let metrics = Arc::clone(&shared.metrics);
            // From the claim to the recorded outcome, nothing depends on the caller staying.
            let result = tokio::spawn(keyed(shared, inner, request, key).instrument(tracing::Span::current()))
                .await
                .map_err(|_| GatewayError::Unresolved {
                    cause: "GATEWAY_TASK_FAILED",
                    detail: "the gateway's task for this call failed; retry with the same key".into(),
                    retry_after: Some(Duration::from_secs(1)),
                })
                .and_then(|r| r);
            let class = result_class(&result);
            metrics.idempotency(class);
            tracing::Span::current().record("idempotency", class);
            result
        })
    }
}

/// What the record made of a keyed call, a metric label.
fn result_class(result: &Result<ProviderAnswer, GatewayError>) -> &'static str {
    match result {
        Ok(a) if a.replayed => "replayed",
        Ok(a) if a.recovered => "recovered",
        Ok(_) => "executed",
        Err(GatewayError::NumberUsed(used)) if used.replayed => "replayed",
        Err(GatewayError::NumberUsed(_)) => "executed",
        Err(GatewayError::OrderFailed(failed)) if failed.replayed => "replayed",
        Err(GatewayError::OrderFailed(_)) => "recovered",
        Err(GatewayError::KeyReused { .. }) => "key_reused",
        Err(GatewayError::InFlight { .. }) => "in_flight",
        Err(GatewayError::StoreUnavailable(_)) => "store_unavailable",
        Err(GatewayError::Unresolved { .. }) => "unresolved",
        Err(_) => "failed",
    }
}

fn token() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator does not fail on the platforms we build for; a token
    // of zeros would still be unique enough within one lease.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// The store failed: the caller hears that it did, the log hears why.
fn store_down(error: &crate::store::StoreError) -> GatewayError {
    tracing::warn!(error = %error, "idempotency store unavailable");
    GatewayError::StoreUnavailable("the store did not answer".into())
}

async fn keyed<S>(
    shared: Arc<Shared>,
    inner: S,
    request: ProviderRequest,
    key: Key,
) -> Result<ProviderAnswer, GatewayError>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + 'static,
    S::Future: Send,
{
    let spec = request.spec;
    let settings = &shared.settings;
    let record = fingerprint::record_key(&settings.secret, &settings.sysid, request.call, &key.value);
    let terms = ClaimTerms {
        fingerprint: fingerprint::fingerprint(&settings.secret, request.call, &request.supplied),
        lease: settings.lease,
        retention: settings.retention,
        attempt: settings.attempt(),
        subject: {
            let mut kept = request.subject.kept(spec);
            // The timeline's key, not the number: a number may be a phone number.
            kept.insert("timeline".into(), Json::from(shared.timeline.key(&key.number)));
            kept.insert("param".into(), Json::Object(resolve::plan(spec, &request.param)));
            // The number the day's file names (never a member's number).
            if checkfile::FILE_CALLS.contains(&request.call) {
                kept.insert("fileNo".into(), Json::from(key.number.as_str()));
            }
            Json::Object(kept).to_string().into_bytes()
        },
    };
    let mut wait_until = Instant::now() + settings.in_flight_wait;
    if let Some(deadline) = request.deadline {
        wait_until = wait_until.min(deadline);
    }
    let in_flight = |retry_after: Duration| GatewayError::InFlight {
        retry_after: retry_after.clamp(Duration::from_millis(50), Duration::from_secs(1)),
    };
    let mut backoff = Duration::from_millis(5);
    loop {
        let running_here = {
            let local = shared.local.lock().unwrap_or_else(|p| p.into_inner());
            local
                .get(&record)
                .filter(|(fp, _)| *fp == terms.fingerprint)
                .map(|(_, rx)| rx.clone())
        };
        if let Some(mut done) = running_here {
            // Wait for this process's run of the same request, then read its record.
            if tokio::time::timeout_at(wait_until, done.changed()).await.is_err() {
                return Err(in_flight(Duration::from_millis(500)));
            }
        }
        let token = token();
        match shared.store.claim(&record, &token, &terms).await {
            Err(e) if spec.moves_money => return Err(store_down(&e)),
            Err(e) => {
                tracing::warn!(method = spec.method, error = %e, "idempotency store unavailable: sent without a record");
                return inner.oneshot(request).await;
            }
            Ok(Claim::Uninitialised) if spec.moves_money => {
                tracing::error!(
                    "the idempotency store has no identity marker (new, or its data was lost): money calls refused \
                     until `yungate store init` or `yungate store acknowledge-loss`"
                );
                return Err(GatewayError::StoreUninitialised);
            }
            Ok(Claim::Uninitialised) => {
                tracing::warn!(
                    method = spec.method,
                    "idempotency store not initialised: sent without a record"
                );
                return inner.oneshot(request).await;
            }
            Ok(Claim::Full) if spec.moves_money => {
                tracing::warn!(
                    method = spec.method,
                    "the in-memory store holds its most records (store.memory_max_records): money call refused unsent"
                );
                return Err(GatewayError::StoreUnavailable(
                    "the in-memory store holds its most records (store.memory_max_records); room comes as records \
                     expire (idempotency.retention_secs), or keep records in Redis"
                        .into(),
                ));
            }
            Ok(Claim::Full) => {
                tracing::warn!(
                    method = spec.method,
                    "the in-memory store holds its most records: sent without a record"
                );
                return inner.oneshot(request).await;
            }
            Ok(Claim::Mismatch) => return Err(GatewayError::KeyReused { field: key.field }),
            Ok(Claim::Done(bytes)) => {
                return Stored::from_bytes(&bytes)
                    .map_err(|_| GatewayError::Internal("an idempotency record of this key cannot be read".into()))?
                    .into_answer(spec);
            }
            Ok(Claim::Busy { retry_after }) => {
                let now = Instant::now();
                if now >= wait_until {
                    return Err(in_flight(retry_after));
                }
                let next = now + backoff;
                if next >= wait_until {
                    // No claim after the wait: its answer could come too late.
                    return Err(in_flight(retry_after));
                }
                tokio::time::sleep_until(next).await;
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
            Ok(Claim::Fresh) => {
                tracing::Span::current().record("attempt", "first");
                return run(&shared, inner, request, (&record, &token, &terms.fingerprint), None).await;
            }
            Ok(Claim::Unknown {
                settle_left,
                proved_absent,
            }) => {
                // An earlier attempt's outcome is unknown: this one resolves it first.
                tracing::Span::current().record("attempt", "after_unknown");
                let claim = (record.as_str(), token.as_str(), terms.fingerprint.as_str());
                let earlier = Earlier {
                    settle_left,
                    proved_absent,
                };
                return run(&shared, inner, request, claim, Some(earlier)).await;
            }
        }
    }
}

/// Removes a local run from the map when the run ends, however it ends
/// (and only its own entry: a later run of the key may have replaced it).
struct LocalRun<'a> {
    shared: &'a Shared,
    record: &'a str,
    mine: watch::Receiver<()>,
    _done: watch::Sender<()>,
}

impl Drop for LocalRun<'_> {
    fn drop(&mut self) {
        let mut local = self.shared.local.lock().unwrap_or_else(|p| p.into_inner());
        if local
            .get(self.record)
            .is_some_and(|(_, rx)| rx.same_channel(&self.mine))
        {
            local.remove(self.record);
        }
    }
}

/// Runs a claimed request, renewing the lease until its outcome is
/// recorded. `earlier` is set when an earlier attempt may have reached the
/// provider: the provider may still act on it for that long.
async fn run<S>(
    shared: &Shared,
    inner: S,
    request: ProviderRequest,
    (record, token, print): (&str, &str, &str),
    earlier: Option<Earlier>,
) -> Result<ProviderAnswer, GatewayError>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + 'static,
    S::Future: Send,
{
    let (tx, rx) = watch::channel(());
    shared
        .local
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(record.to_owned(), (print.to_owned(), rx.clone()));
    let _run = LocalRun {
        shared,
        record,
        mine: rx,
        _done: tx,
    };
    let lost = AtomicBool::new(false);
    let renew = async {
        let every = shared.settings.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match shared.store.renew(record, token, shared.settings.lease).await {
                Ok(true) => {}
                Ok(false) => {
                    // The run checks this before it sends; an exchange
                    // already under way cannot be recalled, and the settle
                    // window keeps a successor from sending over it.
                    lost.store(true, Ordering::SeqCst);
                    tracing::error!("idempotency lease lost while the call runs: another attempt resolves it");
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the idempotency lease; retrying"),
            }
        }
        std::future::pending().await
    };
    let claim = Owned {
        shared,
        record,
        token,
        lost: &lost,
    };
    tokio::select! {
        result = claim.run(inner, request, earlier) => result,
        never = renew => never,
    }
}

/// A claim this run holds.
struct Owned<'a> {
    shared: &'a Shared,
    record: &'a str,
    token: &'a str,
    lost: &'a AtomicBool,
}

impl Owned<'_> {
    /// Another claimer holds the record now: this run must not send.
    fn lost(&self) -> GatewayError {
        GatewayError::InFlight {
            retry_after: Duration::from_millis(500),
        }
    }

    async fn finish(&self, next: Next) {
        finish(self.shared, self.record, self.token, next).await;
    }

    /// Adds an event to the number's timeline.
    async fn journal(&self, number: &str, event: Option<Event>) {
        if let Some(event) = event.filter(|_| !number.is_empty()) {
            self.shared.timeline.record(number, event).await;
        }
    }

    /// Adds `number` to today's day index when `value`, an answer of
    /// `call`, says the money moved (what the day's file must then list).
    async fn book(&self, number: &str, call: Call, value: &Json, amount: Option<i64>, via: &str) {
        if !number.is_empty() && checkfile::books(call, value) {
            self.shared
                .timeline
                .book(number, call.spec().rpc, amount, via, None)
                .await;
        }
    }

    /// What the records may have forgotten that an earlier attempt of this
    /// request could be: everything before a restart (in memory), or
    /// before a loss acknowledged within the retention.
    async fn forgets(&self) -> Option<Forgets> {
        let settings = &self.shared.settings;
        if !settings.durable {
            return Some(Forgets::Restart);
        }
        let lost_at = self.shared.store.identity().await.ok().flatten()?.lost_at_ms?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let retention = u64::try_from(settings.retention.as_millis()).unwrap_or(u64::MAX);
        (now.saturating_sub(lost_at) < retention).then_some(Forgets::Loss { at_ms: lost_at })
    }

    async fn run<S>(
        &self,
        inner: S,
        request: ProviderRequest,
        earlier: Option<Earlier>,
    ) -> Result<ProviderAnswer, GatewayError>
    where
        S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + 'static,
        S::Future: Send,
    {
        let shared = self.shared;
        let spec = request.spec;
        let number = request
            .subject
            .key
            .as_ref()
            .map(|k| k.number.clone())
            .unwrap_or_default();
        let caller = request.caller.clone();
        // An earlier attempt may still have landed, unless a query proved it did not.
        let mut pending_unknown = earlier.is_some();
        if let Some(Earlier {
            settle_left,
            proved_absent,
        }) = earlier
        {
            // A look proved it absent already (the resolver, or an operator).
            let resolved = if proved_absent {
                Resolved::Absent
            } else {
                let resolved = resolve(inner.clone(), &request, shared.settings.retention).await;
                self.journal(&number, resolution_event(spec.rpc, &resolved)).await;
                if let Resolved::Landed(value) = &resolved {
                    self.book(&number, request.call, value, request.subject.amount, "resolution")
                        .await;
                }
                resolved
            };
            match resolved {
                Resolved::Landed(value) => {
                    tracing::info!(
                        method = spec.method,
                        "an earlier attempt with this key went through: recovered its outcome"
                    );
                    let stored = Stored::V1 {
                        result: StoredResult::Answer(value.clone()),
                        recovered: true,
                    };
                    self.finish(Next::Store(stored)).await;
                    return recovered_answer(value, false);
                }
                // The provider has no trace of it, but may still act on it:
                // sending now could make a second order.
                Resolved::Absent if !settle_left.is_zero() => {
                    self.finish(Next::Unknown(Window::Keep)).await;
                    return Err(GatewayError::Unresolved {
                        cause: "EARLIER_ATTEMPT_SETTLING",
                        detail: format!(
                            "the provider has no trace of the earlier attempt yet, but may still process it \
                             for {} ms; retry then",
                            settle_left.as_millis()
                        ),
                        retry_after: Some(settle_left),
                    });
                }
                Resolved::Absent => pending_unknown = false,
                Resolved::Resend => {}
                Resolved::Unresolved { cause, detail } => {
                    self.finish(Next::Unknown(Window::Keep)).await;
                    return Err(GatewayError::Unresolved {
                        cause,
                        detail,
                        retry_after: None,
                    });
                }
                Resolved::Refused(e) => {
                    self.finish(Next::Unknown(Window::Keep)).await;
                    return Err(still_unknown(&e));
                }
            }
            if self.lost.load(Ordering::SeqCst) {
                return Err(self.lost());
            }
            match shared
                .store
                .sending(self.record, self.token, shared.settings.attempt())
                .await
            {
                Ok(true) => {}
                Ok(false) => return Err(self.lost()),
                // The earlier attempt is still unknown: not "nothing moved".
                Err(e) => {
                    tracing::warn!(error = %e, "idempotency store unavailable before a resend");
                    self.finish(Next::Unknown(Window::Keep)).await;
                    return Err(GatewayError::Unresolved {
                        cause: "STORE_UNAVAILABLE",
                        detail: "the idempotency store did not answer before the resend; nothing was sent again".into(),
                        retry_after: Some(Duration::from_secs(1)),
                    });
                }
            }
        }
        if self.lost.load(Ordering::SeqCst) {
            return Err(self.lost());
        }
        let prior = match (earlier.is_some(), pending_unknown) {
            (false, _) => Prior::None,
            (true, false) => Prior::ProvedAbsent,
            (true, true) => Prior::Unknown,
        };
        let subject = request.subject.clone();
        let deadline = request.deadline;
        let call = request.call;
        let sent = inner.clone().oneshot(request).await;
        self.journal(&number, attempt_event(spec, caller.as_deref(), &sent, prior))
            .await;
        if let Ok(ProviderAnswer { result: Ok(value), .. }) = &sent {
            self.book(&number, call, value, subject.amount, "answer").await;
        }
        match sent {
            // Refused by a layer below (quota, in-flight bound): nothing was sent.
            Err(e) => {
                if pending_unknown {
                    self.finish(Next::Unknown(Window::Keep)).await;
                    return Err(still_unknown(&e));
                }
                self.finish(Next::Release).await;
                Err(e)
            }
            Ok(answer) => {
                if let Some((code, message, verified)) = number_used(spec.idempotency, &answer.result) {
                    if prior != Prior::None {
                        // The number may be used by the earlier attempt itself.
                        self.finish(Next::Unknown(Window::Closed)).await;
                        return Err(GatewayError::Unresolved {
                            cause: "DUPLICATE_AFTER_UNKNOWN",
                            detail: format!(
                                "the provider answered {code} ({}): the number is used, perhaps by the earlier \
                                 attempt of this request, whose outcome is not known yet; retry unchanged to learn \
                                 it, and do not send this intent under a new number",
                                errors::shown(&code).map_or("", |e| e.message_en)
                            ),
                            retry_after: None,
                        });
                    }
                    // Nothing was recorded before: this request did not make
                    // what holds the number, and is never resolved into it.
                    let existing = order_status(inner, spec, &subject, deadline).await;
                    let forgets = self.forgets().await;
                    self.finish(Next::Store(Stored::V1 {
                        result: StoredResult::NumberUsed {
                            code: code.clone(),
                            message: message.clone(),
                            verified,
                            existing: existing.map(|s| s.code()),
                            forgets,
                        },
                        recovered: false,
                    }))
                    .await;
                    return Err(GatewayError::NumberUsed(Box::new(NumberUsed {
                        existing,
                        forgets,
                        ..NumberUsed::new(spec, code, message, verified)
                    })));
                }
                if prior == Prior::Unknown
                    && let Err(CallError::Business { code, message, .. }) = &answer.result
                {
                    // The earlier attempt may have made this very refusal
                    // happen (the phone is bound now, the tranceNum used).
                    self.finish(Next::Unknown(Window::Closed)).await;
                    return Err(GatewayError::Unresolved {
                        cause: "REFUSED_AFTER_UNKNOWN",
                        detail: format!(
                            "the provider refused the call sent again with {code} ({message}), which may be the \
                             doing of the earlier attempt, whose outcome is not known: look at the state it sets \
                             (GetMemberInfo, QueryBankCard) before anything else"
                        ),
                        retry_after: None,
                    });
                }
                let next = match Next::after(spec.idempotency, &answer.result, prior) {
                    // An exchange that ended without an answer: the provider may go on with it.
                    Next::Unknown(_) if !answered(&answer.result) => {
                        Next::Unknown(Window::Open(shared.settings.settle))
                    }
                    other => other,
                };
                self.finish(next).await;
                Ok(answer)
            }
        }
    }
}

/// A refusal of this run's own work (a rate limit, a busy provider slot)
/// while an earlier attempt is still unknown: nothing was sent now, but
/// "nothing moved" would be a lie, so the caller hears OUTCOME_UNKNOWN,
/// with the refusal's wait.
fn still_unknown(e: &GatewayError) -> GatewayError {
    let retry_after = match e {
        GatewayError::RateLimited { retry_after, .. }
        | GatewayError::ProviderBusy { retry_after }
        | GatewayError::Overloaded { retry_after }
        | GatewayError::InFlight { retry_after } => Some(*retry_after),
        _ => Some(Duration::from_secs(1)),
    };
    GatewayError::Unresolved {
        cause: "EARLIER_ATTEMPT_UNKNOWN",
        detail: format!(
            "an earlier attempt's outcome is still unknown, and this retry could not ask or send ({e}): retry \
             unchanged"
        ),
        retry_after,
    }
}

/// The timeline's event of an attempt: what it came to, by whom.
fn attempt_event(
    spec: &crate::provider::calls::CallSpec,
    caller: Option<&str>,
    sent: &Result<ProviderAnswer, GatewayError>,
    prior: Prior,
) -> Option<Event> {
    // What the answer said of the order, so that the timeline alone tells
    // a failure from a success once the record has expired.
    let mut status = None;
    let (outcome, code) = match sent {
        Err(_) => ("not_sent", String::new()),
        Ok(answer) => match &answer.result {
            Ok(value) => {
                status = OrderStatus::of_answer(value).map(OrderStatus::code);
                ("ok", String::new())
            }
            Err(CallError::Business { code, .. }) => {
                let outcome = match errors::meaning(code, spec.idempotency.confirms_order()) {
                    Meaning::NumberUsed => "number_used",
                    Meaning::Refusal => "refused",
                    Meaning::Unknown => "unknown",
                };
                // Section 7 codes are a few digits; anything longer is cut.
                (outcome, code.chars().take(16).collect())
            }
            Err(e) => match e.outcome() {
                Outcome::NotSent => ("not_sent", String::new()),
                _ => ("unknown", String::new()),
            },
        },
    };
    Some(Event {
        rpc: spec.rpc.to_owned(),
        actor: caller.unwrap_or_default().to_owned(),
        provider_code: code,
        order_status: status,
        detail: if prior == Prior::None {
            String::new()
        } else {
            "after an earlier attempt".to_owned()
        },
        ..Event::now("attempt", outcome)
    })
}

/// The timeline's event of a retry's resolution, if it learnt something.
fn resolution_event(rpc: &str, resolved: &Resolved) -> Option<Event> {
    let (outcome, status, detail) = match resolved {
        Resolved::Landed(value) => ("landed", value.get("orderStatus").and_then(Json::as_i64), String::new()),
        Resolved::Absent => ("absent", None, String::new()),
        Resolved::Unresolved { cause, .. } => ("unresolved", None, (*cause).to_owned()),
        Resolved::Resend | Resolved::Refused(_) => return None,
    };
    Some(Event {
        rpc: rpc.to_owned(),
        actor: "retry".to_owned(),
        order_status: status,
        detail,
        ..Event::now("resolution", outcome)
    })
}

/// The code, message and verification of a "number already used" answer
/// (`errors::Meaning::NumberUsed` for this kind of call), if it is one.
fn number_used(idempotency: Idempotency, result: &Result<Json, CallError>) -> Option<(String, String, bool)> {
    let confirmation = idempotency.confirms_order();
    match result {
        Err(CallError::Business {
            code,
            message,
            verified,
        }) if errors::meaning(code, confirmation) == Meaning::NumberUsed => {
            Some((code.clone(), message.clone(), *verified))
        }
        _ => None,
    }
}

/// Whether the provider's answer was received: it is then done with the
/// request, so a query afterwards sees what it did. An answer that does not
/// verify or parse may not be the provider's; an unsigned v1 refusal is
/// how the provider answers (3.3).
fn answered(result: &Result<Json, CallError>) -> bool {
    match result {
        Ok(_) | Err(CallError::NotSent(_) | CallError::RefusedUnread { .. } | CallError::Decrypt { .. }) => true,
        Err(
            CallError::OutcomeUnknown(_)
            | CallError::Http { .. }
            | CallError::BadSignature(_)
            | CallError::Malformed(_),
        ) => false,
        // A code that proves nothing (40007: the channel timed out and may
        // still complete; 9100, 9999, 51002...) leaves the provider's window open.
        Err(CallError::Business { code, .. }) => crate::provider::client::proves_something(code),
    }
}

/// What a claim of a record of unknown outcome found of the earlier attempt.
#[derive(Debug, Clone, Copy)]
struct Earlier {
    /// How long the provider may still act on it.
    settle_left: Duration,
    /// A look proved it absent: send without asking again.
    proved_absent: bool,
}

/// What earlier attempts of the key left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prior {
    /// Nothing: this run made the first attempt.
    None,
    /// An attempt of unknown outcome that a query proved never landed.
    ProvedAbsent,
    /// An attempt that may have landed (the call is sent again regardless).
    Unknown,
}

/// What becomes of a record when its run ends.
enum Next {
    /// A final outcome, kept for the retention window.
    Store(Stored),
    /// Nothing was sent and nothing earlier is unknown: forget the key.
    Release,
    /// The provider may have acted: the next attempt resolves first.
    Unknown(Window),
}

impl Next {
    /// Number-used answers are decided before (`number_used`).
    fn after(idempotency: Idempotency, result: &Result<Json, CallError>, prior: Prior) -> Next {
        let refused = result.is_err();
        match Stored::of(result, false) {
            // After an attempt that may have landed, only a success is final.
            Some(_) if refused && prior == Prior::Unknown => Next::Unknown(Window::Closed),
            // A refused confirmation (a wrong code) leaves the order as it
            // was: the next confirmation may be sent.
            Some(_) if refused && matches!(idempotency, Idempotency::Confirmation(_)) => Next::Release,
            Some(stored) => Next::Store(stored),
            None => {
                let outcome = result.as_ref().err().map_or(Outcome::Unknown, CallError::outcome);
                match (outcome, prior) {
                    (Outcome::NotSent, Prior::None | Prior::ProvedAbsent) => Next::Release,
                    (Outcome::NotSent, Prior::Unknown) => Next::Unknown(Window::Keep),
                    _ => Next::Unknown(Window::Closed),
                }
            }
        }
    }
}

/// Records what a run learnt, trying again while the store fails (the
/// lease is renewed meanwhile); a record left pending resolves once its
/// lease lapses.
async fn finish(shared: &Shared, record: &str, token: &str, next: Next) {
    let store = &shared.store;
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=FINISH_ATTEMPTS {
        let written = match &next {
            Next::Store(stored) => {
                store
                    .complete(record, token, &stored.to_bytes(), shared.settings.retention)
                    .await
            }
            Next::Release => store.release(record, token).await,
            Next::Unknown(window) => store.mark_unknown(record, token, *window).await,
        };
        match written {
            Ok(true) => return,
            Ok(false) => {
                tracing::error!("the idempotency claim was lost before its outcome was recorded");
                return;
            }
            Err(e) if attempt < FINISH_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "cannot record the outcome yet; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => tracing::error!(
                error = %e,
                "cannot record the outcome: the record stays pending until its lease lapses, then resolves"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::IdempotencySettings;

    #[test]
    fn settings_print_without_the_secret() {
        let settings = IdempotencySettings {
            sysid: "1902".into(),
            secret: [0xef; 32],
            retention: Duration::from_secs(60),
            in_flight_wait: Duration::ZERO,
            lease: Duration::ZERO,
            settle: Duration::ZERO,
            exchange: Duration::ZERO,
            gates: Duration::ZERO,
            durable: true,
            timeline: Duration::ZERO,
        };
        let printed = format!("{settings:?}");
        assert!(
            printed.contains("1902") && !printed.contains("239") && !printed.contains("efef"),
            "{printed}"
        );
    }
}
