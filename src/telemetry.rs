//! Metrics, traces and logs: one gateway's Prometheus registry with every metric's name in one place, the layers that count and trace rpcs and provider calls, the `/metrics` listener, and the process's log subscriber and OTLP export.
//!
//! Each gateway owns its registry (a `PrometheusRecorder` it calls
//! directly, never the process-global recorder), so that two gateways in
//! one process (the tests) count apart. Every label value is from a
//! bounded set: rpc names only from the served services (else `unknown`),
//! provider calls from the catalogue, subscribers capped at
//! [`MAX_SUBSCRIBER_LABELS`] (then `~other`); no other value a caller
//! writes, and no personal value, ever becomes a label.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::SpanContext;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Instrument as _;

use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest, StackFuture};
use crate::serve::stack::{HttpRequest, HttpResponse};

/// Every metric the gateway exports: name, kind, help.
pub mod names {
    pub const BUILD_INFO: &str = "yungate_build_info";
    pub const SANDBOX_MODE: &str = "yungate_sandbox_mode";
    pub const READY: &str = "yungate_ready";
    pub const STORE_INITIALISED: &str = "yungate_store_initialised";
    pub const UNKNOWN_OUTCOMES: &str = "yungate_unknown_outcomes";
    pub const UNKNOWN_OLDEST: &str = "yungate_unknown_outcome_oldest_seconds";
    pub const RESOLVER_RESULTS: &str = "yungate_resolver_results_total";
    pub const RECONCILIATION_ROWS: &str = "yungate_reconciliation_rows";
    pub const RECONCILIATION_RUNS: &str = "yungate_reconciliation_runs_total";
    pub const RECONCILIATION_DAYS_MISSING: &str = "yungate_reconciliation_days_missing";
    pub const PROVIDER_REACHABLE: &str = "yungate_provider_reachable";
    pub const RPC_STARTED: &str = "yungate_grpc_server_started_total";
    pub const RPC_HANDLED: &str = "yungate_grpc_server_handled_total";
    pub const RPC_SECONDS: &str = "yungate_grpc_server_handling_seconds";
    pub const PROVIDER_REQUESTS: &str = "yungate_provider_requests_total";
    pub const PROVIDER_SECONDS: &str = "yungate_provider_request_seconds";
    pub const IDEMPOTENCY: &str = "yungate_idempotency_results_total";
    pub const RATE_LIMIT: &str = "yungate_rate_limit_decisions_total";
    pub const RATE_LIMIT_FALLBACKS: &str = "yungate_rate_limit_store_fallbacks_total";
    pub const NOTIFICATIONS_RECEIVED: &str = "yungate_notifications_received_total";
    pub const NOTIFICATIONS_REJECTED: &str = "yungate_notifications_rejected_total";
    pub const NOTIFICATIONS_DELIVERED: &str = "yungate_notifications_delivered_total";
    pub const NOTIFICATIONS_REDELIVERED: &str = "yungate_notifications_redelivered_total";
    pub const NOTIFICATIONS_DEAD_LETTERED: &str = "yungate_notifications_dead_lettered_total";
    pub const NOTIFICATION_LAG: &str = "yungate_notification_delivery_lag_seconds";
    pub const NOTIFICATION_STREAMS: &str = "yungate_notification_streams";
    pub const NOTIFICATION_PENDING: &str = "yungate_notification_pending";
    pub const NOTIFICATION_WAITING: &str = "yungate_notification_waiting";
    pub const NOTIFICATION_DEAD_LETTERS: &str = "yungate_notification_dead_letters";
    pub const CONNECTIONS_OPEN: &str = "yungate_connections_open";
    pub const CONNECTIONS_ACCEPTED: &str = "yungate_connections_accepted_total";
    pub const ACCEPT_RESOURCE_ERRORS: &str = "yungate_accept_resource_errors_total";
    pub const TLS_HANDSHAKE_FAILURES: &str = "yungate_tls_handshake_failures_total";
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// name, kind, unit, help: what `# HELP` says of each.
const CATALOGUE: &[(&str, Kind, Option<Unit>, &str)] = {
    use Kind::*;
    use names::*;
    &[
        (
            BUILD_INFO,
            Gauge,
            None,
            "Always 1; the version label says which build runs.",
        ),
        (
            SANDBOX_MODE,
            Gauge,
            None,
            "1 when the gateway runs against its embedded sandbox, not the provider.",
        ),
        (
            READY,
            Gauge,
            None,
            "1 when readiness is SERVING (the store answers and the gateway is not draining).",
        ),
        (
            STORE_INITIALISED,
            Gauge,
            None,
            "1 when the store has its identity marker; 0 when it is new or lost its data (money calls are refused until an operator initialises it or acknowledges the loss).",
        ),
        (
            UNKNOWN_OUTCOMES,
            Gauge,
            None,
            "Idempotency records of unknown outcome, by rpc (as the resolver last counted them, all replicas).",
        ),
        (
            UNKNOWN_OLDEST,
            Gauge,
            Some(Unit::Seconds),
            "How long the oldest record of unknown outcome has been unknown (0 when none).",
        ),
        (
            RESOLVER_RESULTS,
            Counter,
            None,
            "Records the resolver looked at, by what it learnt: landed, absent (the caller's retry sends), deferred.",
        ),
        (
            RECONCILIATION_ROWS,
            Gauge,
            None,
            "Rows of the newest reconciliation report by verdict (matched, amount_differs, provider_only, gateway_only, resolved_by_file, conflict), as stored, whichever replica ran it.",
        ),
        (
            RECONCILIATION_RUNS,
            Counter,
            None,
            "Reconciliation runs (not dry runs) this replica made, by result: ok, failed.",
        ),
        (
            RECONCILIATION_DAYS_MISSING,
            Gauge,
            None,
            "Days of the daily run's window (reconciliation.catch_up_days) without a whole report, as this replica last looked.",
        ),
        (
            PROVIDER_REACHABLE,
            Gauge,
            None,
            "1 when the last TCP connect to the provider succeeded.",
        ),
        (
            RPC_STARTED,
            Counter,
            None,
            "gRPC requests started, by service and method.",
        ),
        (
            RPC_HANDLED,
            Counter,
            None,
            "gRPC requests finished, by service, method and status code.",
        ),
        (
            RPC_SECONDS,
            Histogram,
            Some(Unit::Seconds),
            "From a request's arrival to the end of its response.",
        ),
        (
            PROVIDER_REQUESTS,
            Counter,
            None,
            "Signed calls to the provider, by service, method and outcome class.",
        ),
        (
            PROVIDER_SECONDS,
            Histogram,
            Some(Unit::Seconds),
            "Duration of signed calls to the provider, by service, method and outcome class.",
        ),
        (
            IDEMPOTENCY,
            Counter,
            None,
            "Keyed provider calls by what the idempotency record made of them.",
        ),
        (
            RATE_LIMIT,
            Counter,
            None,
            "Rate-limit decisions by scope (provider quota or caller), class and decision.",
        ),
        (
            RATE_LIMIT_FALLBACKS,
            Counter,
            None,
            "Rate-limit decisions made in this process because the store did not answer.",
        ),
        (
            NOTIFICATIONS_RECEIVED,
            Counter,
            None,
            "Provider notifications received, by result (accepted, duplicate, rejected, store_failure).",
        ),
        (
            NOTIFICATIONS_REJECTED,
            Counter,
            None,
            "Provider notifications refused, by reason (bad_signature: forged or altered).",
        ),
        (
            NOTIFICATIONS_DELIVERED,
            Counter,
            None,
            "Notifications handed to a subscriber's stream for the first time.",
        ),
        (
            NOTIFICATIONS_REDELIVERED,
            Counter,
            None,
            "Notifications handed to a subscriber's stream again (not acknowledged in time).",
        ),
        (
            NOTIFICATIONS_DEAD_LETTERED,
            Counter,
            None,
            "Notifications moved to a subscriber's dead-letter list by this replica.",
        ),
        (
            NOTIFICATION_LAG,
            Histogram,
            Some(Unit::Seconds),
            "From a notification's receipt to its hand-out to a subscriber's stream.",
        ),
        (
            NOTIFICATION_STREAMS,
            Gauge,
            None,
            "Subscribe streams open on this replica, by subscriber.",
        ),
        (
            NOTIFICATION_PENDING,
            Gauge,
            None,
            "Notifications delivered to a subscriber and not yet acknowledged (all replicas).",
        ),
        (
            NOTIFICATION_WAITING,
            Gauge,
            None,
            "Notifications in the log not yet delivered to a subscriber (all replicas).",
        ),
        (
            NOTIFICATION_DEAD_LETTERS,
            Gauge,
            None,
            "Notifications in a subscriber's dead-letter list (all replicas).",
        ),
        (CONNECTIONS_OPEN, Gauge, None, "Connections open on the gRPC listener."),
        (
            CONNECTIONS_ACCEPTED,
            Counter,
            None,
            "Connections accepted on the gRPC listener.",
        ),
        (
            ACCEPT_RESOURCE_ERRORS,
            Counter,
            None,
            "Accepts refused for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).",
        ),
        (
            TLS_HANDSHAKE_FAILURES,
            Counter,
            None,
            "TLS handshakes on the gRPC listener that failed or timed out.",
        ),
    ]
};

/// Latency buckets, in seconds: 5 ms to a minute.
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Notification lag buckets, in seconds: up to a day (the provider retries for one).
const LAG_SECONDS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0,
];

/// Distinct subscriber names that get a label of their own.
pub const MAX_SUBSCRIBER_LABELS: usize = 256;

/// The label of the subscribers past the cap: `~` is in no subscriber's name.
const OTHER_SUBSCRIBER: &str = "~other";

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// One gateway's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// `/package.Service/Method` of every rpc served: other paths are `unknown`.
    rpcs: HashSet<String>,
    subscribers: Mutex<BTreeMap<String, usize>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("rpcs", &self.rpcs.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry knowing the rpcs of `descriptor_sets` (encoded `FileDescriptorSet`s).
    pub fn new(descriptor_sets: &[&[u8]]) -> Arc<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SECONDS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(names::NOTIFICATION_LAG.to_owned()), LAG_SECONDS))
            // Both bucket lists are constant and non-empty.
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        for (name, kind, unit, help) in CATALOGUE {
            let key = KeyName::from_const_str(name);
            let help = SharedString::const_str(help);
            match kind {
                Kind::Counter => recorder.describe_counter(key, *unit, help),
                Kind::Gauge => recorder.describe_gauge(key, *unit, help),
                Kind::Histogram => recorder.describe_histogram(key, *unit, help),
            }
        }
        let mut rpcs = HashSet::new();
        for set in descriptor_sets {
            if let Ok(pool) = prost_reflect::DescriptorPool::decode(*set) {
                for service in pool.services() {
                    for method in service.methods() {
                        rpcs.insert(format!("/{}/{}", service.full_name(), method.name()));
                    }
                }
            }
        }
        let metrics = Arc::new(Metrics {
            recorder,
            handle,
            rpcs,
            subscribers: Mutex::default(),
        });
        metrics
            .gauge(
                names::BUILD_INFO,
                vec![
                    Label::new("version", env!("CARGO_PKG_VERSION")),
                    Label::new("crypto_backend", crate::provider::crypto::Backend::current().name()),
                ],
            )
            .set(1.0);
        metrics
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &METADATA)
    }

    /// The service and method labels of a request path.
    fn rpc_labels(&self, path: &str) -> (String, String) {
        match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
            Some((service, method)) if self.rpcs.contains(path) => (service.to_owned(), method.to_owned()),
            _ => ("unknown".to_owned(), "unknown".to_owned()),
        }
    }

    /// The label of subscriber `name`, from a bounded set.
    pub fn subscriber_label(&self, name: &str) -> String {
        let subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if subscribers.contains_key(name) || subscribers.len() < MAX_SUBSCRIBER_LABELS {
            name.to_owned()
        } else {
            OTHER_SUBSCRIBER.to_owned()
        }
    }

    /// A Subscribe stream of `subscriber` opened on this replica; the guard closes it.
    pub fn stream_opened(self: &Arc<Self>, subscriber: &str) -> StreamGuard {
        // The cap is checked and the name taken in one step, and the gauge
        // set under the same lock, so that concurrent opens and closes
        // leave it at the count.
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let label = if subscribers.contains_key(subscriber) || subscribers.len() < MAX_SUBSCRIBER_LABELS {
            subscriber.to_owned()
        } else {
            OTHER_SUBSCRIBER.to_owned()
        };
        let n = subscribers.entry(label.clone()).or_insert(0);
        *n += 1;
        self.gauge(
            names::NOTIFICATION_STREAMS,
            vec![Label::new("subscriber", label.clone())],
        )
        .set(*n as f64);
        drop(subscribers);
        StreamGuard {
            metrics: Arc::clone(self),
            label,
        }
    }

    /// Subscribers with a label, whether or not a stream is open now.
    fn subscriber_labels(&self) -> Vec<String> {
        let subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        subscribers.keys().filter(|k| *k != OTHER_SUBSCRIBER).cloned().collect()
    }

    /// A signed call to the provider (`service`.`method`, as the spec names it) and its outcome class.
    pub fn provider_call(&self, service: &'static str, method: &'static str, outcome: &'static str, elapsed: Duration) {
        let labels = || {
            vec![
                Label::from_static_parts("service", service),
                Label::from_static_parts("method", method),
                Label::from_static_parts("outcome", outcome),
            ]
        };
        self.counter(names::PROVIDER_REQUESTS, labels()).increment(1);
        self.histogram(names::PROVIDER_SECONDS, labels())
            .record(elapsed.as_secs_f64());
    }

    /// What the resolver last counted: records of unknown outcome by rpc
    /// (every backend rpc, 0 when none) and the oldest one's age.
    pub fn unknown_outcomes(&self, by_rpc: &std::collections::BTreeMap<&'static str, u64>, oldest: Duration) {
        for call in crate::provider::calls::Call::ALL {
            let spec = call.spec();
            if spec.kind != crate::provider::calls::CallKind::Backend || !spec.idempotency.is_mutation() {
                continue;
            }
            let count = by_rpc.get(spec.rpc).copied().unwrap_or(0);
            self.gauge(names::UNKNOWN_OUTCOMES, vec![Label::from_static_parts("rpc", spec.rpc)])
                .set(count as f64);
        }
        self.gauge(names::UNKNOWN_OLDEST, Vec::new()).set(oldest.as_secs_f64());
    }

    pub fn resolver_result(&self, result: &'static str) {
        self.counter(
            names::RESOLVER_RESULTS,
            vec![Label::from_static_parts("result", result)],
        )
        .increment(1);
    }

    /// The verdict counts of the last reconciliation run.
    pub fn reconciliation_rows(&self, counts: &std::collections::BTreeMap<String, u64>) {
        for (verdict, n) in counts {
            self.gauge(names::RECONCILIATION_ROWS, vec![Label::new("verdict", verdict.clone())])
                .set(*n as f64);
        }
    }

    pub fn reconciliation_days_missing(&self, days: u64) {
        self.gauge(names::RECONCILIATION_DAYS_MISSING, Vec::new())
            .set(days as f64);
    }

    pub fn reconciliation_run(&self, result: &'static str) {
        self.counter(
            names::RECONCILIATION_RUNS,
            vec![Label::from_static_parts("result", result)],
        )
        .increment(1);
    }

    pub fn idempotency(&self, result: &'static str) {
        self.counter(names::IDEMPOTENCY, vec![Label::from_static_parts("result", result)])
            .increment(1);
    }

    pub fn rate_limit(&self, scope: &'static str, class: &'static str, decision: &'static str) {
        self.counter(
            names::RATE_LIMIT,
            vec![
                Label::from_static_parts("scope", scope),
                Label::from_static_parts("class", class),
                Label::from_static_parts("decision", decision),
            ],
        )
        .increment(1);
    }

    pub fn rate_limit_fallback(&self) {
        self.counter(names::RATE_LIMIT_FALLBACKS, Vec::new()).increment(1);
    }

    /// A notification handed to `subscriber`'s stream, on its `attempt`th delivery, `lag` after its receipt.
    pub fn notification_delivered(&self, subscriber: &str, attempt: u32, lag: Duration) {
        let label = self.subscriber_label(subscriber);
        let name = if attempt <= 1 {
            names::NOTIFICATIONS_DELIVERED
        } else {
            names::NOTIFICATIONS_REDELIVERED
        };
        self.counter(name, vec![Label::new("subscriber", label.clone())])
            .increment(1);
        self.histogram(names::NOTIFICATION_LAG, vec![Label::new("subscriber", label)])
            .record(lag.as_secs_f64());
    }

    pub fn notifications_dead_lettered(&self, subscriber: &str, count: usize) {
        let label = self.subscriber_label(subscriber);
        self.counter(
            names::NOTIFICATIONS_DEAD_LETTERED,
            vec![Label::new("subscriber", label)],
        )
        .increment(count as u64);
    }

    /// Brings the gauges and copied counters up to date and renders the text format.
    pub async fn render(&self, sources: &Sources) -> String {
        let set = |name, on: bool| self.gauge(name, Vec::new()).set(if on { 1.0 } else { 0.0 });
        set(names::SANDBOX_MODE, sources.sandbox);
        if let Some(health) = &sources.health {
            set(names::READY, health.ready());
            set(names::STORE_INITIALISED, health.store_initialised());
            set(names::PROVIDER_REACHABLE, health.provider_reachable());
        }
        if let Some(listener) = &sources.listener {
            use std::sync::atomic::Ordering::Relaxed;
            self.gauge(names::CONNECTIONS_OPEN, Vec::new())
                .set(listener.open.load(Relaxed) as f64);
            self.counter(names::CONNECTIONS_ACCEPTED, Vec::new())
                .absolute(listener.accepted.load(Relaxed));
            self.counter(names::ACCEPT_RESOURCE_ERRORS, Vec::new())
                .absolute(listener.resource_errors.load(Relaxed));
            self.counter(names::TLS_HANDSHAKE_FAILURES, Vec::new())
                .absolute(listener.handshake_failures.load(Relaxed));
        }
        if let Some(counters) = &sources.notifications {
            let counts = counters.counts();
            let received = |result: &'static str, n: u64| {
                self.counter(
                    names::NOTIFICATIONS_RECEIVED,
                    vec![Label::from_static_parts("result", result)],
                )
                .absolute(n);
            };
            received("accepted", counts.accepted);
            received("duplicate", counts.duplicates);
            received("store_failure", counts.store_failures);
            received("rejected", counts.rejected.iter().map(|(_, n)| n).sum());
            for (reason, n) in counts.rejected {
                self.counter(
                    names::NOTIFICATIONS_REJECTED,
                    vec![Label::from_static_parts("reason", reason)],
                )
                .absolute(n);
            }
        }
        if let Some(log) = &sources.log {
            // All at once, under one deadline: a slow store must not hold the
            // scrape; the gauges of what did not answer keep their last values.
            let mut reads = tokio::task::JoinSet::new();
            for subscriber in self.subscriber_labels() {
                let log = Arc::clone(log);
                reads.spawn(async move {
                    let backlog = log.backlog(&subscriber).await;
                    (subscriber, backlog)
                });
            }
            let deadline = Instant::now() + BACKLOG_TIMEOUT;
            while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, reads.join_next()).await {
                let Ok((subscriber, backlog)) = joined else { continue };
                match backlog {
                    Ok(backlog) => {
                        let labels = || vec![Label::new("subscriber", subscriber.clone())];
                        self.gauge(names::NOTIFICATION_PENDING, labels())
                            .set(backlog.pending as f64);
                        if let Some(waiting) = backlog.waiting {
                            self.gauge(names::NOTIFICATION_WAITING, labels()).set(waiting as f64);
                        }
                        self.gauge(names::NOTIFICATION_DEAD_LETTERS, labels())
                            .set(backlog.dead as f64);
                    }
                    Err(e) => tracing::debug!(error = %e, "no backlog for a subscriber"),
                }
            }
            if !reads.is_empty() {
                // Dropped with the set: the reads still running are aborted.
                tracing::debug!(
                    left = reads.len(),
                    "the notification log did not answer every backlog in time"
                );
            }
        }
        self.handle.render()
    }

    /// Folds what histograms gathered every few seconds, scraped or not
    /// (without it, and without scrapes, their samples would pile up),
    /// until the handle is aborted.
    pub fn spawn_upkeep(self: &Arc<Self>) -> JoinHandle<()> {
        let metrics = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                metrics.handle.run_upkeep();
            }
        })
    }
}

/// How long a scrape waits for the subscribers' backlogs, all together.
const BACKLOG_TIMEOUT: Duration = Duration::from_secs(1);

/// Keeps a subscriber's stream counted open until dropped.
pub struct StreamGuard {
    metrics: Arc<Metrics>,
    label: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut subscribers = self
            .metrics
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = subscribers.entry(self.label.clone()).or_insert(1);
        *n = n.saturating_sub(1);
        self.metrics
            .gauge(
                names::NOTIFICATION_STREAMS,
                vec![Label::new("subscriber", self.label.clone())],
            )
            .set(*n as f64);
    }
}

/// What a scrape reads besides the registry.
#[derive(Default, Clone)]
pub struct Sources {
    pub sandbox: bool,
    pub health: Option<Arc<crate::serve::health::Health>>,
    pub listener: Option<Arc<crate::serve::listener::ListenerCounters>>,
    pub notifications: Option<Arc<crate::notify::Counters>>,
    pub log: Option<Arc<dyn crate::store::notifications::NotificationLog>>,
}

/// The `/metrics` listener; stopping lets a scrape in progress finish.
pub type MetricsServer = crate::serve::listener::HttpServer;

/// How often histograms are folded between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Scrapers connected at once (Prometheus keeps one per target), and how
/// long a quiet one keeps its connection.
const SCRAPE_CONNECTIONS: usize = 16;
const SCRAPE_IDLE: Duration = Duration::from_secs(120);

/// Binds `listen` and serves `GET /metrics` in the Prometheus text format.
pub async fn serve_metrics(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    sources: Sources,
    header_timeout: Duration,
) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(listen).await?;
    let state = Arc::new((metrics, sources));
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(state): axum::extract::State<Arc<(Arc<Metrics>, Sources)>>| async move {
                    let body = state.0.render(&state.1).await;
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        body,
                    )
                },
            ),
        )
        .with_state(state);
    let server = MetricsServer::start(
        listener,
        app,
        crate::serve::listener::HttpLimits {
            max_connections: SCRAPE_CONNECTIONS,
            idle: SCRAPE_IDLE,
            header_timeout,
        },
    )?;
    tracing::info!(addr = %server.addr(), "metrics listening on /metrics");
    Ok(server)
}

/// The server-stack layer that counts every rpc: started, handled by
/// status code, and the time from arrival to the end of the response
/// (its trailers, or the body dropped: then CANCELLED).
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        RpcMetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// See [`RpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> tower::Service<HttpRequest> for RpcMetrics<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let started = Instant::now();
        let (service, method) = self.metrics.rpc_labels(request.uri().path());
        let span = tracing::info_span!(
            target: "yungate::rpc",
            "rpc",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            caller = tracing::field::Empty,
            rate_limit = tracing::field::Empty,
        );
        // The caller's W3C trace context (`traceparent`), continued.
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
        let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
        self.metrics
            .counter(
                names::RPC_STARTED,
                vec![
                    Label::new("grpc_service", service.clone()),
                    Label::new("grpc_method", method.clone()),
                ],
            )
            .increment(1);
        let response = {
            // The inner layers' synchronous parts (access) record into the span too.
            let _entered = span.enter();
            self.inner.call(request)
        };
        let inside = span.clone();
        // Made before the answer: a call dropped before its headers (the
        // client reset the stream, tonic's deadline, an inner error) is
        // still counted, as CANCELLED, when this is dropped with it.
        let mut observed = Observed {
            metrics: Arc::clone(&self.metrics),
            service,
            method,
            started,
            code: None,
            done: false,
            span,
        };
        Box::pin(
            async move {
                let response = response.await?;
                // A trailers-only answer (every error) carries its status in the headers.
                if let Some(code) = grpc_code(response.headers()) {
                    observed.code = Some(code);
                }
                Ok(response.map(|body| tonic::body::Body::new(ObservedBody { inner: body, observed })))
            }
            .instrument(inside),
        )
    }
}

fn grpc_code(headers: &tonic::codegen::http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
}

/// The traces of this replica's recent provider calls by order number, so
/// that the order's notification (which comes later) can link to the
/// trace of the call that made it. A notification that reaches another
/// replica finds nothing here and links to its own ingest only; bounded,
/// the oldest orders forgotten first.
#[derive(Debug, Default)]
pub struct OrderTraces {
    recent: Mutex<(HashMap<String, SpanContext>, VecDeque<String>)>,
}

/// Orders whose trace a replica remembers.
const MAX_ORDER_TRACES: usize = 10_000;

impl OrderTraces {
    /// Remembers `span`'s trace as `order`'s unless a call before it did:
    /// the notification belongs to the call that made the order, not to
    /// the queries and confirmations after it (nothing when traces are not exported).
    fn remember(&self, order: &str, span: &tracing::Span) {
        let context = span_context(span);
        if !context.is_valid() {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (by_order, order_of_arrival) = &mut *recent;
        if !by_order.contains_key(order) {
            by_order.insert(order.to_owned(), context);
            order_of_arrival.push_back(order.to_owned());
            while order_of_arrival.len() > MAX_ORDER_TRACES {
                if let Some(oldest) = order_of_arrival.pop_front() {
                    by_order.remove(&oldest);
                }
            }
        }
    }

    /// Links `span` (a notification's) to `order`'s call when this replica
    /// made it, and returns the traceparent later spans of the event link
    /// to: the order's, else `span`'s own; `None` when traces are not exported.
    pub fn link(&self, span: &tracing::Span, order: Option<&str>) -> Option<String> {
        let known = order.and_then(|o| {
            let recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            recent.0.get(o).cloned()
        });
        match known {
            Some(context) => {
                let parent = traceparent(&context);
                tracing_opentelemetry::OpenTelemetrySpanExt::add_link(span, context);
                Some(parent)
            }
            None => {
                let own = span_context(span);
                own.is_valid().then(|| traceparent(&own))
            }
        }
    }
}

/// The OpenTelemetry context of a tracing span (invalid when nothing exports).
fn span_context(span: &tracing::Span) -> SpanContext {
    use opentelemetry::trace::TraceContextExt as _;
    let context = tracing_opentelemetry::OpenTelemetrySpanExt::context(span);
    context.span().span_context().clone()
}

/// A span context as a W3C `traceparent` value.
fn traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// Links `span` to the trace `traceparent` names (an event's stored link).
pub fn link_to(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::trace::TraceContextExt as _;
    struct One<'a>(&'a str);
    impl opentelemetry::propagation::Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == "traceparent").then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent"]
        }
    }
    let context = TraceContextPropagator::new().extract(&One(traceparent));
    let linked = context.span().span_context().clone();
    if linked.is_valid() {
        tracing_opentelemetry::OpenTelemetrySpanExt::add_link(span, linked);
    }
}

/// The provider stack's outermost layer: a span per provider call (the
/// logical call: its HTTP exchanges, resolution queries included, are
/// child spans made by `exchange::SoaService`), into which the layers
/// below record the idempotency result, the rate-limit decision and
/// whether the call follows an attempt of unknown outcome.
#[derive(Debug, Clone, Default)]
pub struct ProviderTraceLayer {
    orders: Arc<OrderTraces>,
}

impl ProviderTraceLayer {
    /// Remembers each order call's trace in `orders`.
    pub fn new(orders: Arc<OrderTraces>) -> Self {
        ProviderTraceLayer { orders }
    }
}

impl<S> tower::Layer<S> for ProviderTraceLayer {
    type Service = ProviderTrace<S>;

    fn layer(&self, inner: S) -> ProviderTrace<S> {
        ProviderTrace {
            inner,
            orders: Arc::clone(&self.orders),
        }
    }
}

/// See [`ProviderTraceLayer`].
#[derive(Debug, Clone)]
pub struct ProviderTrace<S> {
    inner: S,
    orders: Arc<OrderTraces>,
}

/// The longest order number a span carries (the spec's are 32 or fewer).
const MAX_ORDER_NO: usize = 64;

impl<S> tower::Service<ProviderRequest> for ProviderTrace<S>
where
    S: tower::Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = ProviderAnswer;
    type Error = GatewayError;
    type Future = StackFuture<ProviderAnswer>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ProviderRequest) -> Self::Future {
        let spec = request.call.spec();
        let order = request
            .param
            .get("bizOrderNo")
            .and_then(serde_json::Value::as_str)
            .map(|o| o.chars().take(MAX_ORDER_NO).collect::<String>());
        let span = tracing::info_span!(
            target: "yungate::provider",
            "provider call",
            otel.name = %format!("{}.{}", spec.service, spec.method),
            otel.kind = "internal",
            otel.status_code = tracing::field::Empty,
            section = spec.section,
            provider.service = spec.service,
            provider.method = spec.method,
            biz_order_no = order.as_deref(),
            idempotency = tracing::field::Empty,
            rate_limit = tracing::field::Empty,
            attempt = tracing::field::Empty,
        );
        if let Some(order) = &order {
            self.orders.remember(order, &span);
        }
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let recorded = span.clone();
        Box::pin(
            async move {
                let answer = future.await;
                if answer.is_err() {
                    recorded.record("otel.status_code", "ERROR");
                }
                answer
            }
            .instrument(span),
        )
    }
}

/// The codes that say the server failed (OpenTelemetry's rule for gRPC
/// servers): a span with one of these is an error, a caller's mistake is not.
fn is_server_error(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss
    )
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a tonic::codegen::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// A status code as the gRPC specification spells it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// One rpc's labels and clock, recorded once when its response ends.
struct Observed {
    metrics: Arc<Metrics>,
    service: String,
    method: String,
    started: Instant,
    code: Option<tonic::Code>,
    done: bool,
    /// The rpc's span: it ends with the response (a stream's too).
    span: tracing::Span,
}

impl Observed {
    fn finish(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let code = self.code.unwrap_or(code);
        self.span.record("rpc.grpc.status_code", code as i32);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        self.metrics
            .counter(
                names::RPC_HANDLED,
                vec![
                    Label::new("grpc_service", self.service.clone()),
                    Label::new("grpc_method", self.method.clone()),
                    Label::from_static_parts("grpc_code", code_name(code)),
                ],
            )
            .increment(1);
        self.metrics
            .histogram(
                names::RPC_SECONDS,
                vec![
                    Label::new("grpc_service", self.service.clone()),
                    Label::new("grpc_method", self.method.clone()),
                ],
            )
            .record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        // Dropped before its end: the caller went away or the connection closed.
        self.finish(tonic::Code::Cancelled);
    }
}

struct ObservedBody {
    inner: tonic::body::Body,
    observed: Observed,
}

impl Body for ObservedBody {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    this.observed.code = Some(code);
                    this.observed.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.observed.finish(tonic::Code::Internal),
            // Ended without trailers: a trailers-only answer, its code already known.
            Poll::Ready(None) => this.observed.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What [`init`] set up that must be shut down before the process exits.
pub struct Telemetry {
    export: Option<TraceExport>,
}

/// OTLP trace export: the SDK's provider (batching on a thread of its
/// own) and the small runtime that drives the exporter's gRPC channel.
struct TraceExport {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
    stop: Option<oneshot::Sender<()>>,
    driver: Option<std::thread::JoinHandle<()>>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.export.is_some()
    }

    /// Exports the spans not yet sent (bounded by the exporter's timeout), then stops.
    pub fn shutdown(mut self) {
        if let Some(mut export) = self.export.take() {
            if let Err(e) = export.provider.shutdown() {
                eprintln!("yungate: the last spans were not exported: {e}");
            }
            if let Some(stop) = export.stop.take() {
                let _ = stop.send(());
            }
            if let Some(driver) = export.driver.take() {
                let _ = driver.join();
            }
        }
    }
}

/// The spans exported by default: the gateway's own (rpcs, provider calls
/// and their events), not the ~150 a call makes in hyper and h2.
const DEFAULT_TRACE_FILTER: &str = "yungate=info";

fn env_value(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// OTLP export as the standard `OTEL_*` variables configure it: on when an
/// OTLP endpoint is set, off otherwise (or with `OTEL_SDK_DISABLED=true`,
/// `OTEL_TRACES_EXPORTER=none`).
fn trace_export() -> Result<Option<TraceExport>, String> {
    use opentelemetry_otlp::WithExportConfig as _;
    if env_value("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match env_value("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "OTEL_TRACES_EXPORTER={other}: yungate exports traces by otlp only (or none)"
            ));
        }
    }
    let Some(endpoint) =
        env_value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env_value("OTEL_EXPORTER_OTLP_ENDPOINT"))
    else {
        return Ok(None);
    };
    if let Some(protocol) = env_value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env_value("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .filter(|p| p.trim() != "grpc")
    {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: yungate exports OTLP over gRPC only (set grpc, and the collector's gRPC port, usually 4317)"
        ));
    }
    if !endpoint.trim().starts_with("http://") {
        return Err(
            "the OTLP endpoint must be a plaintext http:// URL (a collector in the cluster or beside the pod): TLS to the collector is not built in"
                .into(),
        );
    }
    // The exporter's channel runs on a runtime of its own: the batch
    // processor's thread polls exports outside any runtime, and the
    // gateway's runtime ends before the last spans are flushed.
    let (built_tx, built_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let driver = std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    let _ = built_tx.send(Err(format!("cannot start the OTLP exporter's runtime: {e}")));
                    return;
                }
            };
            let built = {
                let _entered = runtime.enter();
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint.trim())
                    .build()
                    .map_err(|e| format!("cannot set up the OTLP exporter: {e}"))
            };
            let ok = built.is_ok();
            let _ = built_tx.send(built);
            if ok {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            }
            // A resolver thread stuck on the collector's name must not hold the exit.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| format!("cannot start the OTLP exporter's thread: {e}"))?;
    let exporter = built_rx
        .recv()
        .map_err(|_| "the OTLP exporter's thread ended".to_owned())??;
    let mut resource = opentelemetry_sdk::Resource::builder();
    let named_by_env = env_value("OTEL_SERVICE_NAME").is_some()
        || env_value("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="));
    if !named_by_env {
        resource = resource.with_service_name("yungate");
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    Ok(Some(TraceExport {
        provider,
        stop: Some(stop),
        driver: Some(driver),
    }))
}

/// Installs the process's log subscriber (`RUST_LOG` filters it, default
/// `info`; to stderr) and, when the `OTEL_*` variables ask for it, OTLP
/// trace export (`YUNGATE_TRACE_FILTER` picks the spans, default
/// `yungate=info`).
pub fn init(format: LogFormat) -> Result<Telemetry, String> {
    use opentelemetry::trace::TracerProvider as _;
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _};
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let trace_filter = match env_value("YUNGATE_TRACE_FILTER") {
        Some(f) => EnvFilter::try_new(&f).map_err(|e| format!("YUNGATE_TRACE_FILTER: {e}"))?,
        None => EnvFilter::new(DEFAULT_TRACE_FILTER),
    };
    let export = trace_export()?;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // A closed stderr must not bring the server down: by default the
        // subscriber reports a failed write with eprintln!, which panics then.
        .log_internal_errors(false);
    let logs = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => logs
            .json()
            .with_ansi(false)
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let spans = export.as_ref().map(|e| {
        tracing_opentelemetry::layer()
            .with_tracer(e.provider.tracer("yungate"))
            .with_filter(trace_filter)
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(log_filter))
        .with(spans)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    Ok(Telemetry { export })
}
