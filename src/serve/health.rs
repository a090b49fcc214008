//! Health as Kubernetes reads it: liveness (the process answers), readiness (the store answers and the replica is not draining), and the provider's reachability as an entry of its own.
//!
//! The provider is deliberately not part of readiness: when it is slow or
//! down every replica would go unready at once, and the Service would
//! refuse even the calls that need no provider (replays, page links,
//! notifications). Its entry and the log say what is wrong instead.
//!
//! Entries of grpc.health.v1: `liveness` is SERVING while the process
//! runs; `readiness`, `""` (the whole server) and each API service follow
//! readiness; `yungate.provider` follows the last reachability probe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::provider::client::SoaClient;
use crate::store::Store;

pub const LIVENESS: &str = "liveness";
pub const READINESS: &str = "readiness";
pub const PROVIDER: &str = "yungate.provider";

/// The services that follow readiness.
const SERVED: [&str; 8] = [
    "yungate.v1.MemberService",
    "yungate.v1.MemberPwdService",
    "yungate.v1.OrderService",
    "yungate.v1.MerchantService",
    "yungate.v1.PageService",
    "yungate.v1.NotificationService",
    "yungate.v1.OutcomeService",
    "yungate.v1.ReconciliationService",
];

/// The replica's health, as checked and as reported.
#[derive(Debug)]
pub struct Health {
    reporter: HealthReporter,
    store_ok: AtomicBool,
    /// The store has its identity marker (`store::Identity`); without it
    /// money calls are refused. Not part of readiness: a replica that says
    /// why it refuses serves callers better than one taken out of the Service.
    store_initialised: AtomicBool,
    provider_ok: AtomicBool,
    draining: AtomicBool,
    /// Publishes one at a time, so a check that read the state before a
    /// drain cannot publish SERVING after the drain's NOT_SERVING.
    publishing: tokio::sync::Mutex<()>,
    checks: std::sync::atomic::AtomicU64,
}

impl Health {
    /// Everything starts NOT_SERVING but liveness, until the first check.
    pub async fn new(reporter: HealthReporter) -> Arc<Self> {
        let health = Arc::new(Health {
            reporter,
            store_ok: AtomicBool::new(false),
            store_initialised: AtomicBool::new(true),
            provider_ok: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            publishing: tokio::sync::Mutex::new(()),
            checks: std::sync::atomic::AtomicU64::new(0),
        });
        health
            .reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        health.publish().await;
        health
    }

    /// Whether readiness is SERVING.
    pub fn ready(&self) -> bool {
        self.store_ok.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    /// Whether the store had its identity marker at the last check.
    pub fn store_initialised(&self) -> bool {
        self.store_initialised.load(Ordering::Acquire)
    }

    /// Whether the last probe reached the provider.
    pub fn provider_reachable(&self) -> bool {
        self.provider_ok.load(Ordering::Acquire)
    }

    /// How many full checks (store and provider) have finished.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Acquire)
    }

    async fn publish(&self) {
        let _one = self.publishing.lock().await;
        let status = |ok| {
            if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        let ready = status(self.ready());
        for name in ["", READINESS].into_iter().chain(SERVED) {
            self.reporter.set_service_status(name, ready).await;
        }
        self.reporter
            .set_service_status(PROVIDER, status(self.provider_reachable()))
            .await;
    }

    /// Readiness goes NOT_SERVING for good: the first step of the drain.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.publish().await;
    }

    /// Checks the store and the provider now.
    pub async fn check(&self, store: &dyn Store, provider: &SoaClient, timeout: Duration) {
        self.check_store(store, timeout).await;
        let reachable = provider.reachable().await;
        match (&reachable, self.provider_ok.load(Ordering::Acquire)) {
            (Err(e), true) => tracing::warn!(error = %e, "the provider is unreachable"),
            (Ok(()), false) => tracing::info!("the provider is reachable"),
            _ => {}
        }
        self.provider_ok.store(reachable.is_ok(), Ordering::Release);
        self.publish().await;
        self.checks.fetch_add(1, Ordering::AcqRel);
    }

    /// Checks the store now.
    pub async fn check_store(&self, store: &dyn Store, timeout: Duration) {
        let store_ok = match tokio::time::timeout(timeout, store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                if self.store_ok.load(Ordering::Acquire) {
                    tracing::warn!(error = %e, "the store does not answer: readiness NOT_SERVING");
                }
                false
            }
            Err(_) => {
                if self.store_ok.load(Ordering::Acquire) {
                    tracing::warn!("the store did not answer in time: readiness NOT_SERVING");
                }
                false
            }
        };
        if store_ok && !self.store_ok.load(Ordering::Acquire) {
            tracing::info!("the store answers: readiness SERVING unless draining");
        }
        self.store_ok.store(store_ok, Ordering::Release);
        if store_ok && let Ok(Ok(identity)) = tokio::time::timeout(timeout, store.identity()).await {
            let initialised = identity.is_some();
            if self.store_initialised.swap(initialised, Ordering::AcqRel) != initialised {
                if initialised {
                    tracing::info!("the store has its identity marker again: money calls go through");
                } else {
                    tracing::error!(
                        "the store has no identity marker: it is new, or it lost its data (a restart without \
                         persistence, a failover to an empty replica, a FLUSHALL); money calls are refused until \
                         `yungate store init` (a first deployment) or `yungate store acknowledge-loss`"
                    );
                }
            }
        }
        self.publish().await;
    }

    /// Checks every `interval` until `stop` changes.
    pub async fn watch(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        provider: SoaClient,
        interval: Duration,
        timeout: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            self.check(store.as_ref(), &provider, timeout).await;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
