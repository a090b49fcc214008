//! The idempotency layer: a retried call never moves money twice, and a retry after a success gets the original answer.
//!
//! For a mutation with a key (the call's natural number, or the caller's
//! `idempotency-key`), scoped by sysid and call: claim the record with the
//! request's fingerprint, run the provider exchange in a task this layer
//! owns (a caller that gives up neither abandons the lease nor loses the
//! answer), renew the lease while it runs, and store a final outcome for
//! the retention window. The state machine is in `store.rs`; what each
//! answer means for it is `CallError::outcome`.
//!
//! Requests for one key that meet in one process wait on the running one
//! instead of polling the store; requests that meet a claim held by
//! another replica poll it, within the in-flight wait.

pub mod fingerprint;
pub mod outcome;
pub mod resolve;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use self::outcome::Stored;
use self::resolve::{Resolved, resolve};
use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest, StackFuture};
use crate::provider::calls::Idempotency;
use crate::provider::client::{CallError, Outcome};
use crate::store::{Claim, Store};

/// The longest `idempotency-key` accepted, in bytes.
pub const MAX_CALLER_KEY: usize = 255;

/// How the layer behaves.
#[derive(Debug, Clone)]
pub struct IdempotencySettings {
    /// The merchant's system number: records are scoped by it.
    pub sysid: String,
    /// The fingerprint's HMAC key.
    pub secret: [u8; 32],
    /// How long a finished record is kept.
    pub retention: Duration,
    /// How long a request waits for another one with the same key.
    pub in_flight_wait: Duration,
    /// How long a claim lives without renewal; renewed every third of it.
    pub lease: Duration,
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

type Local = Mutex<HashMap<String, (String, watch::Receiver<()>)>>;

struct Shared {
    store: Arc<dyn Store>,
    settings: IdempotencySettings,
    /// Records this process is running: fingerprint, and a channel that
    /// closes when the run ends.
    local: Local,
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
    pub fn new(store: Arc<dyn Store>, settings: IdempotencySettings) -> Self {
        IdempotencyLayer {
            shared: Arc::new(Shared {
                store,
                settings,
                local: Mutex::new(HashMap::new()),
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
        Box::pin(async move { handle(shared, inner, request).await })
    }
}

/// The key of a request, if the call is made idempotent by one.
fn key_of(request: &ProviderRequest) -> Result<Option<(String, &'static str)>, GatewayError> {
    match request.call.spec().idempotency {
        Idempotency::Query => Ok(None),
        Idempotency::Natural(field) => match request.param.get(field).and_then(Json::as_str) {
            Some(key) if !key.is_empty() => Ok(Some((key.to_owned(), field))),
            _ => Err(GatewayError::Invalid(vec![crate::error::Violation {
                field: field.to_owned(),
                description: "is required: it is the call's idempotency key".into(),
            }])),
        },
        Idempotency::CallerKey => match &request.caller_key {
            Some(key) => {
                check_caller_key(key)?;
                Ok(Some((key.clone(), "idempotency-key")))
            }
            None => Ok(None),
        },
    }
}

fn token() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator does not fail on the platforms we build for; a token
    // of zeros would still be unique enough within one lease.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

async fn handle<S>(shared: Arc<Shared>, inner: S, request: ProviderRequest) -> Result<ProviderAnswer, GatewayError>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + 'static,
    S::Future: Send,
{
    let Some((key, field)) = key_of(&request)? else {
        return inner.oneshot(request).await;
    };
    let spec = request.call.spec();
    let settings = &shared.settings;
    let record = fingerprint::record_key(&settings.sysid, request.call, &key);
    let print = fingerprint::fingerprint(&settings.secret, request.call, &request.supplied);
    let now = Instant::now();
    let mut wait_until = now + settings.in_flight_wait;
    if let Some(deadline) = request.deadline {
        wait_until = wait_until.min(deadline);
    }
    let mut backoff = Duration::from_millis(5);
    loop {
        let running_here = {
            let local = shared.local.lock().unwrap_or_else(|p| p.into_inner());
            local
                .get(&record)
                .filter(|(fp, _)| *fp == print)
                .map(|(_, rx)| rx.clone())
        };
        if let Some(mut done) = running_here {
            // Wait for this process's run of the same request, then read its record.
            if tokio::time::timeout_at(wait_until, done.changed()).await.is_err() {
                return Err(GatewayError::InFlight {
                    retry_after: Duration::from_millis(500),
                });
            }
        }
        let token = token();
        let claim = shared
            .store
            .claim(&record, &print, &token, settings.lease, settings.retention)
            .await;
        match claim {
            Err(e) if spec.moves_money => return Err(GatewayError::StoreUnavailable(e.0)),
            Err(e) => {
                tracing::warn!(method = spec.method, error = %e, "idempotency store unavailable: sent without a record");
                return inner.oneshot(request).await;
            }
            Ok(Claim::Mismatch) => return Err(GatewayError::KeyReused { field }),
            Ok(Claim::Done(bytes)) => {
                return Stored::from_bytes(&bytes)
                    .map(Stored::into_answer)
                    .map_err(|e| GatewayError::Internal(format!("unreadable idempotency record: {e}")));
            }
            Ok(Claim::Busy { retry_after }) => {
                let now = Instant::now();
                if now >= wait_until {
                    return Err(GatewayError::InFlight {
                        retry_after: retry_after.min(Duration::from_secs(1)),
                    });
                }
                tokio::time::sleep_until((now + backoff).min(wait_until)).await;
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
            Ok(claim @ (Claim::Fresh | Claim::Unknown)) => {
                return run_owned(shared, inner, request, record, print, token, claim == Claim::Unknown).await;
            }
        }
    }
}

/// Removes a local run from the map when the run ends, however it ends.
struct LocalRun {
    shared: Arc<Shared>,
    record: String,
    _done: watch::Sender<()>,
}

impl Drop for LocalRun {
    fn drop(&mut self) {
        let mut local = self.shared.local.lock().unwrap_or_else(|p| p.into_inner());
        local.remove(&self.record);
    }
}

/// Runs a claimed request in a task of its own and waits for it; if the
/// caller goes away, the task still finishes and records the outcome.
async fn run_owned<S>(
    shared: Arc<Shared>,
    inner: S,
    request: ProviderRequest,
    record: String,
    print: String,
    token: String,
    earlier_unknown: bool,
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
        .insert(record.clone(), (print, rx));
    let run = LocalRun {
        shared: Arc::clone(&shared),
        record: record.clone(),
        _done: tx,
    };
    let task = tokio::spawn(async move {
        let _run = run;
        let work = owned(&shared, inner, request, &record, &token, earlier_unknown);
        let renew = async {
            let every = shared.settings.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                match shared.store.renew(&record, &token, shared.settings.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!("idempotency lease lost while the call runs: another attempt may resolve it");
                        break;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot renew the idempotency lease; retrying"),
                }
            }
            std::future::pending().await
        };
        tokio::select! {
            result = work => result,
            never = renew => never,
        }
    });
    task.await
        .map_err(|e| GatewayError::Internal(format!("the call's task failed: {e}")))?
}

async fn owned<S>(
    shared: &Shared,
    inner: S,
    request: ProviderRequest,
    record: &str,
    token: &str,
    mut earlier_unknown: bool,
) -> Result<ProviderAnswer, GatewayError>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + 'static,
    S::Future: Send,
{
    let method = request.call.spec().method;
    if earlier_unknown {
        match resolve(inner.clone(), &request).await {
            Resolved::Landed(value) => {
                tracing::info!(
                    method,
                    "an earlier attempt with this key went through: recovered its outcome"
                );
                let result = Ok(value);
                finish(shared, record, token, Next::after(&result, true, false)).await;
                return Ok(ProviderAnswer {
                    result,
                    replayed: false,
                    recovered: true,
                });
            }
            Resolved::Absent => earlier_unknown = false,
            Resolved::Resend => {}
            Resolved::Unresolved { cause, detail } => {
                finish(shared, record, token, Next::Unknown).await;
                return Err(GatewayError::Unresolved { cause, detail });
            }
        }
    }
    match inner.oneshot(request).await {
        // Refused by a layer below (quota, in-flight bound): nothing was sent.
        Err(e) => {
            let next = if earlier_unknown { Next::Unknown } else { Next::Release };
            finish(shared, record, token, next).await;
            Err(e)
        }
        Ok(answer) => {
            finish(
                shared,
                record,
                token,
                Next::after(&answer.result, false, earlier_unknown),
            )
            .await;
            Ok(answer)
        }
    }
}

/// What becomes of a record when its run ends.
enum Next {
    /// A final outcome, kept for the retention window.
    Store(Stored),
    /// Nothing was sent and nothing earlier is unknown: forget the key.
    Release,
    /// The provider may have acted: the next attempt resolves first.
    Unknown,
}

impl Next {
    fn after(result: &Result<Json, CallError>, recovered: bool, earlier_unknown: bool) -> Next {
        if let Some(stored) = Stored::of(result, recovered) {
            return Next::Store(stored);
        }
        let outcome = result.as_ref().err().map_or(Outcome::Unknown, CallError::outcome);
        if outcome == Outcome::NotSent && !earlier_unknown {
            Next::Release
        } else {
            Next::Unknown
        }
    }
}

/// Records what a run learnt.
async fn finish(shared: &Shared, record: &str, token: &str, next: Next) {
    let store = &shared.store;
    let written = match next {
        Next::Store(stored) => {
            store
                .complete(record, token, &stored.to_bytes(), shared.settings.retention)
                .await
        }
        Next::Release => store.release(record, token).await,
        Next::Unknown => store.mark_unknown(record, token).await,
    };
    match written {
        Ok(true) => {}
        Ok(false) => tracing::error!("the idempotency claim was lost before its outcome was recorded"),
        Err(e) => tracing::error!(
            error = %e,
            "cannot record the outcome: the record stays pending until its lease lapses, then resolves"
        ),
    }
}
