//! The resolver: a background sweep that asks the provider about records of unknown outcome nobody retries, and completes them or proves them absent; it never sends a call again.
//!
//! One replica sweeps at a time (a lease in the store). A record is looked
//! at once the provider can no longer be acting on its last attempt (its
//! settle window), then after each wait of the schedule (5 min, 1 h, 6 h,
//! then daily by default) until its retention ends. Each look takes the
//! record as a claim, exactly as a caller's retry would, so a caller and
//! the resolver never both act on it; it asks the query the call's
//! resolution names (`idempotency::resolve`) with what the record kept
//! (`resolve::plan`): a landed call completes the record (the caller's
//! retry replays it, marked recovered), an absent one is marked so (the
//! caller's retry sends it without asking again, still as a retry), anything
//! else waits for the next look.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use tokio::sync::watch;
use tower::Service;

use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest, Subject};
use crate::idempotency::outcome::{Stored, StoredResult};
use crate::idempotency::resolve::{Resolved, resolve};
use crate::provider::calls::Call;
use crate::provider::checkfile;
use crate::store::{Store, lease, section_of};
use crate::telemetry::Metrics;
use crate::timeline::{Event, Timeline};

/// How the resolver sweeps.
#[derive(Debug, Clone)]
pub struct ResolverSettings {
    /// How often a replica looks for due records.
    pub interval: Duration,
    /// The waits between looks at a record still unknown; the last repeats.
    pub schedule: Vec<Duration>,
    /// The most records one sweep looks at.
    pub batch: usize,
    /// How long a look holds a record (the queries' time).
    pub lease: Duration,
    /// How long records are kept: how far back an attempt may be.
    pub retention: Duration,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Another replica holds the sweep.
    pub skipped: bool,
    /// Records found landed and completed.
    pub landed: usize,
    /// Records proved absent and released.
    pub absent: usize,
    /// Records looked at again later.
    pub deferred: usize,
}

/// The sweep over records of unknown outcome; `S` is the provider stack.
pub struct Resolver<S> {
    store: Arc<dyn Store>,
    provider: S,
    settings: ResolverSettings,
    metrics: Arc<Metrics>,
    timeline: Timeline,
    /// This replica's name in the sweep lease.
    holder: String,
}

impl<S> std::fmt::Debug for Resolver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A random token or holder name.
fn random_name() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator does not fail on the platforms we build for.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

impl<S> Resolver<S>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + 'static,
    S::Future: Send,
{
    pub fn new(
        store: Arc<dyn Store>,
        provider: S,
        settings: ResolverSettings,
        metrics: Arc<Metrics>,
        timeline: Timeline,
    ) -> Self {
        Resolver {
            store,
            provider,
            settings,
            metrics,
            timeline,
            holder: random_name(),
        }
    }

    /// Sweeps every interval until `stop` says so.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let swept = self.sweep().await;
            if swept.landed + swept.absent > 0 {
                tracing::info!(
                    landed = swept.landed,
                    absent = swept.absent,
                    deferred = swept.deferred,
                    "resolver: unknown outcomes settled"
                );
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.interval) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One sweep, if this replica holds the sweep lease.
    pub async fn sweep(&self) -> Swept {
        let mut swept = Swept::default();
        let ttl = self.settings.interval * 3 + self.settings.lease;
        match self.store.lease(lease::RESOLVER, &self.holder, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                swept.skipped = true;
                return swept;
            }
            Err(e) => {
                tracing::warn!(error = %e, "resolver: the store did not answer");
                swept.skipped = true;
                return swept;
            }
        }
        let due = match self.store.due_unknown(self.settings.batch).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "resolver: cannot list due records");
                return swept;
            }
        };
        for key in due {
            // Renewed before each look: a long sweep stays this replica's.
            if !matches!(self.store.lease(lease::RESOLVER, &self.holder, ttl).await, Ok(true)) {
                break;
            }
            match self.look(&key).await {
                Some(Looked::Landed) => swept.landed += 1,
                Some(Looked::Absent) => swept.absent += 1,
                Some(Looked::Deferred) => swept.deferred += 1,
                None => {}
            }
        }
        self.count().await;
        swept
    }

    /// Counts the records of unknown outcome for the metrics.
    async fn count(&self) {
        let Ok(stats) = self.store.unknown_stats(self.settings.retention).await else {
            return;
        };
        let mut by_rpc: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (section, n) in &stats.by_section {
            if let Some(call) = call_of(section) {
                *by_rpc.entry(call.spec().rpc).or_insert(0) += n;
            }
        }
        self.metrics
            .unknown_outcomes(&by_rpc, stats.oldest.unwrap_or(Duration::ZERO));
    }

    /// Looks at one record: `None` when it was not free to take.
    async fn look(&self, key: &str) -> Option<Looked> {
        let token = random_name();
        let taken = match self.store.take_unknown(key, &token, self.settings.lease).await {
            Ok(Some(taken)) => taken,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "resolver: cannot take a record");
                return None;
            }
        };
        // The provider may still be acting on the last attempt: not yet.
        if !taken.settle_left.is_zero() {
            return self.defer(key, &token, taken.settle_left).await;
        }
        let after = self.wait_after(taken.tries);
        let kept: Map<String, Json> = serde_json::from_slice(&taken.subject).unwrap_or_default();
        let call = kept.get("section").and_then(Json::as_str).and_then(call_of);
        let Some(call) = call else {
            tracing::warn!(record = %section_of(key).unwrap_or("?"), "resolver: a record without a known call");
            return self.defer(key, &token, after).await;
        };
        let param = kept.get("param").and_then(Json::as_object).cloned().unwrap_or_default();
        // Within the look's lease, with a margin to record what it learnt.
        let budget = self.settings.lease.saturating_sub(self.settings.lease / 5);
        let deadline = tokio::time::Instant::now() + budget;
        let request = ProviderRequest::rebuilt(call, param, Subject::from_kept(&kept), Some(deadline));
        let resolved = tokio::time::timeout(
            budget,
            resolve(self.provider.clone(), &request, self.settings.retention),
        )
        .await;
        let method = call.spec().method;
        let timeline_key = kept.get("timeline").and_then(Json::as_str).unwrap_or_default();
        let journal = |outcome: &str, status: Option<i64>| Event {
            rpc: call.spec().rpc.to_owned(),
            actor: "resolver".to_owned(),
            order_status: status,
            ..Event::now("resolution", outcome)
        };
        match resolved {
            Ok(Resolved::Landed(value)) => {
                let event = journal("landed", value.get("orderStatus").and_then(Json::as_i64));
                let stored = Stored::V1 {
                    result: StoredResult::Answer(value),
                    recovered: true,
                };
                match self
                    .store
                    .complete(key, &token, &stored.to_bytes(), self.settings.retention)
                    .await
                {
                    Ok(true) => {
                        self.timeline.record_at(timeline_key, event).await;
                        if let Some(number) = kept.get("fileNo").and_then(Json::as_str)
                            && checkfile::books(call, &value_of(&stored))
                        {
                            let amount = kept.get("amount").and_then(Json::as_i64);
                            self.timeline
                                .book(number, call.spec().rpc, amount, "resolution", None)
                                .await;
                        }
                        tracing::info!(method, "resolver: an unknown outcome went through; recorded");
                        self.metrics.resolver_result("landed");
                        Some(Looked::Landed)
                    }
                    _ => None,
                }
            }
            // Proved absent, not released: the caller's retry sends it, and
            // a duplicate number it then meets is still read as perhaps
            // this attempt's (DUPLICATE_AFTER_UNKNOWN), never as final.
            Ok(Resolved::Absent) => match self.store.prove_absent(key, &token).await {
                Ok(true) => {
                    self.timeline.record_at(timeline_key, journal("absent", None)).await;
                    tracing::info!(
                        method,
                        "resolver: an unknown outcome never landed; the caller's retry sends it"
                    );
                    self.metrics.resolver_result("absent");
                    Some(Looked::Absent)
                }
                _ => None,
            },
            // Never sent again by the resolver; nothing learnt now.
            Ok(Resolved::Resend | Resolved::Unresolved { .. } | Resolved::Refused(_)) | Err(_) => {
                self.defer(key, &token, after).await
            }
        }
    }

    async fn defer(&self, key: &str, token: &str, after: Duration) -> Option<Looked> {
        match self.store.defer_unknown(key, token, after).await {
            Ok(true) => {
                self.metrics.resolver_result("deferred");
                Some(Looked::Deferred)
            }
            _ => None,
        }
    }

    /// The wait before the next look after `tries` looks.
    fn wait_after(&self, tries: u32) -> Duration {
        let schedule = &self.settings.schedule;
        let i = usize::try_from(tries)
            .unwrap_or(usize::MAX)
            .min(schedule.len().saturating_sub(1));
        schedule.get(i).copied().unwrap_or(Duration::from_secs(86_400))
    }
}

/// The answer a stored outcome holds (null for a refusal).
fn value_of(stored: &Stored) -> Json {
    match stored {
        Stored::V1 {
            result: StoredResult::Answer(value),
            ..
        } => value.clone(),
        Stored::V1 { .. } => Json::Null,
    }
}

/// What one look did.
enum Looked {
    Landed,
    Absent,
    Deferred,
}

/// The call of a spec section (the five `pay` calls each have their own).
fn call_of(section: &str) -> Option<Call> {
    Call::ALL.into_iter().find(|c| c.spec().section == section)
}
