//! `yungate serve`: builds the provider client from the configuration and serves the gRPC API with health and reflection.
//!
//! With no provider configured at all (or `provider.sandbox = true`) it
//! first starts the embedded sandbox on a local port with a throw-away key
//! pair, says so at WARN, and marks every response `x-yungate-sandbox:
//! true`: the gateway still reaches it over HTTP only (invariant 8).

pub mod access;
pub mod body;
pub mod health;
pub mod listener;
pub mod stack;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use self::stack::StackSettings;
use crate::config::{Config, ConfigError};
use crate::grpc::notification::{FanoutSettings, Notifications};
use crate::grpc::proto::member_pwd_service_server::MemberPwdServiceServer;
use crate::grpc::proto::member_service_server::MemberServiceServer;
use crate::grpc::proto::merchant_service_server::MerchantServiceServer;
use crate::grpc::proto::notification_service_server::NotificationServiceServer;
use crate::grpc::proto::order_service_server::OrderServiceServer;
use crate::grpc::proto::outcome_service_server::OutcomeServiceServer;
use crate::grpc::proto::page_service_server::PageServiceServer;
use crate::grpc::proto::reconciliation_service_server::ReconciliationServiceServer;
use crate::grpc::service::{Gateway, GatewaySettings};
use crate::idempotency::IdempotencySettings;
use crate::idempotency::notified::Completion;
use crate::notify::{self, Ingress, RunningIngress};
use crate::provider::client::{SoaClient, SoaConfig};
use crate::provider::crypto::{
    Keystore, PartyKeys, PrivateKey, Protocol, load_certificate_file, load_private_key_pem, load_public_key_pem,
};
use crate::provider::notify::Trust;
use crate::sandbox::{self, RunningSandbox, SandboxConfig};
use crate::store::notifications::{MemoryLog, NotificationLog, RedisLog};
use crate::store::{MemoryStore, RedisStore, Store};
use crate::telemetry::{self, Metrics};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the embedded sandbox: {0}")]
    Sandbox(std::io::Error),
    #[error("cannot set up the gRPC server: {0}")]
    Setup(String),
}

/// A gateway serving on a socket.
pub struct RunningGateway {
    addr: SocketAddr,
    health_addr: Option<SocketAddr>,
    ingress: Option<RunningIngress>,
    sandbox: Option<RunningSandbox>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Ends the Subscribe streams, which graceful shutdown would wait for
    /// forever, the accept loop, and the health and TLS watchers.
    streams: watch::Sender<bool>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    /// Tells the listeners' connections to end: idle ones at once, all at the deadline.
    phase: watch::Sender<listener::Phase>,
    health_task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    health: Arc<health::Health>,
    /// Stopped last, so that a scrape during the drain sees it.
    metrics_server: Option<telemetry::MetricsServer>,
    upkeep: JoinHandle<()>,
    listener: Arc<listener::ListenerCounters>,
    tls: Option<Arc<listener::ReloadingTls>>,
    drain_delay: Duration,
    drain_deadline: Duration,
}

impl RunningGateway {
    /// The gRPC address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The notification ingress's address (`POST /notify`).
    pub fn notify_addr(&self) -> SocketAddr {
        self.ingress.as_ref().map_or(self.addr, RunningIngress::addr)
    }

    /// The embedded sandbox's address, when the gateway started one.
    pub fn sandbox_addr(&self) -> Option<SocketAddr> {
        self.sandbox.as_ref().map(RunningSandbox::addr)
    }

    /// The plaintext health listener's address, when `health.listen` is set.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// The Prometheus listener's address, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(telemetry::MetricsServer::addr)
    }

    /// The replica's health.
    pub fn health(&self) -> &health::Health {
        &self.health
    }

    /// What the gRPC listener's accept loop has seen.
    pub fn listener_counters(&self) -> &listener::ListenerCounters {
        &self.listener
    }

    /// How many times the TLS files were reloaded.
    pub fn tls_reloads(&self) -> u64 {
        self.tls.as_ref().map_or(0, |t| t.reloads())
    }

    /// The drain of SIGTERM: readiness NOT_SERVING at once, then after
    /// `health.drain_delay_ms` (while load balancers take the replica out)
    /// the listener closes and in-flight calls get `health.drain_deadline_ms`
    /// to finish.
    pub async fn drain(self) -> Result<(), String> {
        self.health.drain().await;
        tracing::info!(
            delay_ms = self.drain_delay.as_millis() as u64,
            "draining: readiness is NOT_SERVING; the listener closes after the delay"
        );
        tokio::time::sleep(self.drain_delay).await;
        self.stop().await
    }

    /// Stops accepting, lets in-flight calls finish within the drain
    /// deadline, then stops the ingress and the embedded sandbox.
    pub async fn stop(mut self) -> Result<(), String> {
        self.health.drain().await;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.streams.send(true);
        let _ = self.phase.send(listener::Phase::Stopping);
        let deadline = tokio::time::Instant::now() + self.drain_deadline;
        // Kept, not returned at once: the ingress and the sandbox stop whatever happened here.
        let served = match tokio::time::timeout_at(deadline, &mut self.task).await {
            Ok(joined) => joined
                .map_err(|e| format!("the gRPC server task failed: {e}"))
                .and_then(|served| served.map_err(|e| e.to_string())),
            Err(_) => {
                // What is still open is a client's (a health Watch, a slow call whose
                // provider exchange records its outcome in a task of its own).
                tracing::warn!(
                    deadline_ms = self.drain_deadline.as_millis() as u64,
                    "drain deadline passed with calls or connections still open: closing them"
                );
                let _ = self.phase.send(listener::Phase::Closing);
                if tokio::time::timeout(CLOSE_WAIT, &mut self.task).await.is_err() {
                    self.task.abort();
                }
                Ok(())
            }
        };
        let mut failures = Vec::new();
        if let Err(e) = served {
            failures.push(e);
        }
        if let Some(mut task) = self.health_task.take() {
            if tokio::time::timeout_at(deadline.max(tokio::time::Instant::now()) + CLOSE_WAIT, &mut task)
                .await
                .is_err()
            {
                let _ = self.phase.send(listener::Phase::Closing);
                task.abort();
            }
        }
        // After the gRPC server: a notification arriving meanwhile is still stored.
        if let Some(ingress) = self.ingress.take() {
            // axum's graceful shutdown waits for every connection: bounded by the deadline here.
            match tokio::time::timeout_at(deadline.max(tokio::time::Instant::now()) + CLOSE_WAIT, ingress.stop()).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("the notification ingress: {e}")),
                Err(_) => tracing::warn!("the notification ingress did not stop by the drain deadline: left behind"),
            }
        }
        if let Some(sandbox) = self.sandbox.take() {
            match tokio::time::timeout_at(deadline.max(tokio::time::Instant::now()) + CLOSE_WAIT, sandbox.stop()).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("the embedded sandbox: {e}")),
                Err(_) => tracing::warn!("the embedded sandbox did not stop by the drain deadline: left behind"),
            }
        }
        self.upkeep.abort();
        if let Some(server) = self.metrics_server.take() {
            match tokio::time::timeout(CLOSE_WAIT, server.stop()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("the metrics listener: {e}")),
                Err(_) => tracing::warn!("the metrics listener did not stop in time: left behind"),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

fn keys_error(e: impl std::fmt::Display) -> ServeError {
    ServeError::Keys(e.to_string())
}

/// The merchant's keys from the configuration.
fn configured_keys(config: &Config) -> Result<PartyKeys, ServeError> {
    let p = &config.provider;
    let (own, own_public) = match (&p.keystore, &p.key) {
        (Some(path), _) => {
            let password = config
                .keystore_password()?
                .ok_or_else(|| keys_error("keystore password missing"))?;
            let store = Keystore::open(path, &password, p.alias.as_deref()).map_err(keys_error)?;
            let public = store.public_key();
            (store.key, public)
        }
        (None, Some(path)) => {
            let key = load_private_key_pem(path).map_err(keys_error)?;
            let public = key.public_key();
            (key, public)
        }
        (None, None) => return Err(keys_error("no provider.keystore or provider.key")),
    };
    // v1: the provider answers with the merchant's own pair unless a certificate says otherwise.
    let peer = if let Some(cert) = &p.cert {
        load_certificate_file(cert).map_err(keys_error)?.public_key().clone()
    } else if let Some(pubkey) = &p.pubkey {
        load_public_key_pem(pubkey).map_err(keys_error)?
    } else {
        own_public
    };
    Ok(PartyKeys {
        protocol: p.protocol,
        own,
        peer,
    })
}

/// Starts the gateway (and, without a provider URL, the embedded sandbox).
pub async fn start(config: Config) -> Result<RunningGateway, ServeError> {
    config.validate()?;
    // Before anything slow: a bad certificate or rule should fail at once.
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => {
            let files = listener::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: config.tls.client_ca.clone(),
            };
            let loaded = tokio::task::spawn_blocking(move || listener::ReloadingTls::load(files))
                .await
                .map_err(keys_error)?
                .map_err(|e| ServeError::Setup(e.to_string()))?;
            Some(Arc::new(loaded))
        }
        _ => None,
    };
    let access = access::AccessPolicy::new(&config.access)?;
    let (keys, url, sandbox) = match &config.provider.url {
        Some(url) => {
            // PKCS#12 decryption and key parsing are CPU work: off the executor.
            let for_keys = config.clone();
            let keys = tokio::task::spawn_blocking(move || configured_keys(&for_keys))
                .await
                .map_err(keys_error)??;
            (keys, url.clone(), None)
        }
        None => {
            let key = tokio::task::spawn_blocking(|| PrivateKey::generate(2048))
                .await
                .map_err(keys_error)?
                .map_err(keys_error)?;
            let keys = PartyKeys {
                protocol: Protocol::V1,
                peer: key.public_key(),
                own: key,
            };
            let sandbox_config = SandboxConfig {
                // The embedded sandbox plays the environment the gateway's page links are built for.
                environment: config.environment(),
                ..SandboxConfig::new(config.provider.sysid.clone(), keys.clone())
            };
            let running = sandbox::start(sandbox_config, SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(ServeError::Sandbox)?;
            tracing::warn!(
                url = %running.soa_url(),
                "SANDBOX MODE: no provider is configured, so calls go to the embedded sandbox (a simulator; \
                 nothing reaches Allinpay and no money moves). Set provider.url for the real provider."
            );
            (keys, running.soa_url(), Some(running))
        }
    };
    tracing::info!(
        crypto_backend = keys.own.backend().name(),
        key_bits = keys.own.bits(),
        "RSA operations computed by this backend"
    );
    let page_base_url = config.provider.page_base_url.clone().unwrap_or_else(|| origin_of(&url));
    tracing::info!(
        environment = config.environment().name(),
        %page_base_url,
        "page links use this environment's layout"
    );
    let keys_secret = keys.own.derived_secret(FINGERPRINT_LABEL).map_err(keys_error)?;
    let trust = notification_trust(&config, &keys).await?;
    let client = SoaClient::new(
        SoaConfig {
            url: url.clone(),
            sysid: config.provider.sysid.clone(),
            connect_timeout: Duration::from_millis(config.provider.connect_timeout_ms),
            request_timeout: Duration::from_millis(config.provider.request_timeout_ms),
            environment: config.environment(),
        },
        keys,
    )
    .map_err(|e| ServeError::Setup(e.to_string()))?;
    let store = open_store(&config)?;
    // Known before the first call when the store answers; else at its first answer.
    if !check_identity(store.as_ref(), config.store.initialise_empty).await {
        let (store, initialise_empty) = (Arc::clone(&store), config.store.initialise_empty);
        tokio::spawn(async move {
            while !check_identity(store.as_ref(), initialise_empty).await {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    let metrics = Metrics::new(&[
        crate::grpc::DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]);
    let stack_settings = stack_settings(&config, &keys_secret, Arc::clone(&metrics))?;
    let timeline = crate::timeline::Timeline::new(
        Arc::clone(&store),
        stack_settings.idempotency.sysid.clone(),
        stack_settings.idempotency.secret,
        Duration::from_secs(config.timeline.retention_secs),
    );
    let log = open_log(&config)?;
    let notify_counters = Arc::new(notify::Counters::default());
    let ingress = notify::start(
        config.notify.listen,
        Ingress {
            trust: Arc::new(trust),
            log: Arc::clone(&log),
            counters: Arc::clone(&notify_counters),
            completion: Some(Completion {
                store: Arc::clone(&store),
                sysid: stack_settings.idempotency.sysid.clone(),
                secret: stack_settings.idempotency.secret,
                retention: stack_settings.idempotency.retention,
                timeline: timeline.clone(),
            }),
            traces: Arc::clone(&stack_settings.order_traces),
        },
        (
            Duration::from_millis(config.limits.http_header_timeout_ms),
            Duration::from_millis(config.limits.http_body_timeout_ms),
        ),
    )
    .await
    .map_err(|source| ServeError::Listen {
        addr: config.notify.listen,
        source,
    })?;
    let notify_url = config.notify_url(ingress.addr());
    tracing::info!(%notify_url, "the provider is told to send notifications here (backUrl)");
    if sandbox.is_none() && config.gateway.notify_url.is_none() {
        // Only a provider on this host could reach the bound address.
        tracing::warn!(
            %notify_url,
            "gateway.notify_url is unset: the provider is sent the ingress's own address, which it cannot reach from outside; set it to the address the provider can reach"
        );
    }
    let (streams, streams_end) = watch::channel(false);
    let notifications = Notifications::new(
        Arc::clone(&log),
        FanoutSettings {
            visibility: Duration::from_millis(config.notify.visibility_timeout_ms),
            max_deliveries: config.notify.max_deliveries,
            max_in_flight: config.notify.max_in_flight,
        },
        streams_end,
        Arc::clone(&metrics),
    );
    let provider = stack::provider_stack(client.clone(), Arc::clone(&store), &stack_settings);
    if config.resolver.enabled {
        let resolver = crate::resolver::Resolver::new(
            Arc::clone(&store),
            provider.clone(),
            resolver_settings(&config),
            Arc::clone(&metrics),
            timeline.clone(),
        );
        tokio::spawn(resolver.run(streams.subscribe()));
    }
    let reconciler = Arc::new(
        crate::reconcile::Reconciler::new(
            Arc::clone(&store),
            provider.clone(),
            timeline.clone(),
            Arc::clone(&log),
            Arc::clone(&metrics),
            crate::reconcile::ReconcileSettings {
                provider_url: url.clone(),
                file_hosts: config.reconciliation.file_hosts.clone(),
                limits: crate::provider::checkfile::FetchLimits {
                    max_bytes: usize::try_from(config.reconciliation.max_file_bytes).unwrap_or(usize::MAX),
                    timeout: Duration::from_millis(config.reconciliation.download_timeout_ms),
                },
                report_retention: Duration::from_secs(config.reconciliation.report_retention_secs),
                record_retention: stack_settings.idempotency.retention,
                sysid: stack_settings.idempotency.sysid.clone(),
                secret: stack_settings.idempotency.secret,
            },
        )
        .map_err(ServeError::Setup)?,
    );
    if config.reconciliation.daily.unwrap_or(sandbox.is_none())
        && let Some(at) = config.reconciliation.at_time()
    {
        tracing::info!(at = %config.reconciliation.at, "the previous day is reconciled daily after this China time");
        tokio::spawn(Arc::clone(&reconciler).daily(
            crate::reconcile::DailySettings {
                at,
                check_every: Duration::from_secs(config.reconciliation.check_interval_secs),
                retry_after: Duration::from_secs(config.reconciliation.retry_after_secs),
                catch_up_days: config.reconciliation.catch_up_days,
            },
            streams.subscribe(),
        ));
    }
    let caller_limit = stack::caller_limit(Arc::clone(&store), &config.provider.sysid, &stack_settings);
    let probe = client.clone();
    let gateway = Gateway::new(
        client,
        provider,
        GatewaySettings {
            notify_url,
            page_base_url,
            default_front_url: config.gateway.default_front_url.clone(),
            default_jump_url: config.gateway.default_jump_url.clone(),
        },
    );

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = health::Health::new(reporter).await;
    let check_timeout = Duration::from_millis(config.store.timeout_ms.max(1000));
    // Readiness is known before the first request: the store answers or not.
    health.check_store(store.as_ref(), check_timeout).await;
    tokio::spawn(Arc::clone(&health).watch(
        Arc::clone(&store),
        probe,
        Duration::from_millis(config.health.check_interval_ms),
        check_timeout,
        streams.subscribe(),
    ));
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::grpc::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details, so that clients like grpcurl can show ErrorInfo and BadRequest.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Setup(e.to_string()))?;
    // grpcurl and other older clients speak only v1alpha.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::grpc::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Setup(e.to_string()))?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: config.listen,
        source,
    })?;
    let health_listener = match config.health.listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .map_err(|source| ServeError::Listen { addr: at, source })?,
        ),
        None => None,
    };
    let (tx, rx) = oneshot::channel::<()>();
    let l = &config.limits;
    let max_message = l.max_message_bytes;
    let sandbox_marker = sandbox
        .is_some()
        .then(|| tonic::codegen::http::HeaderValue::from_static("true"));
    // The server stack, in the order of serve/stack.rs.
    let router = tonic::transport::Server::builder()
        .layer(telemetry::RpcMetricsLayer::new(Arc::clone(&metrics)))
        .max_concurrent_streams(l.max_concurrent_streams)
        .http2_keepalive_interval(
            (l.keepalive_interval_secs > 0).then(|| Duration::from_secs(l.keepalive_interval_secs)),
        )
        .http2_keepalive_timeout(Some(Duration::from_secs(l.keepalive_timeout_secs)))
        .http2_max_header_list_size(l.max_header_list_bytes)
        .max_frame_size(u32::try_from(body::FRAME_BYTES).unwrap_or(16_384))
        // Small windows: what a stalled stream holds unread is bounded per
        // stream and per connection (serve/body.rs).
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(connection_window(l.max_concurrent_streams))
        .layer(tower::util::MapResponseLayer::new(
            move |mut response: stack::HttpResponse| {
                if let Some(marker) = &sandbox_marker {
                    response.headers_mut().insert(SANDBOX_HEADER, marker.clone());
                }
                response
            },
        ))
        .layer(stack::AdmissionLayer::new(stack::AdmissionSettings {
            max_requests: l.max_concurrent_requests,
            body_timeout: Duration::from_millis(l.request_body_timeout_ms),
            request_bytes: l.request_bytes,
            connection_request_bytes: l.connection_request_bytes,
            max_message: l.max_message_bytes,
        }))
        .layer(access::AccessLayer::new(access.clone()))
        .layer(caller_limit)
        .add_service(health_service.clone().max_decoding_message_size(max_message))
        .add_optional_service(
            config
                .access
                .reflection
                .then(|| reflection_v1.max_decoding_message_size(max_message)),
        )
        .add_optional_service(
            config
                .access
                .reflection
                .then(|| reflection_v1alpha.max_decoding_message_size(max_message)),
        )
        .add_service(MemberServiceServer::new(gateway.clone()).max_decoding_message_size(max_message))
        .add_service(MemberPwdServiceServer::new(gateway.clone()).max_decoding_message_size(max_message))
        .add_service(OrderServiceServer::new(gateway.clone()).max_decoding_message_size(max_message))
        .add_service(MerchantServiceServer::new(gateway.clone()).max_decoding_message_size(max_message))
        .add_service(PageServiceServer::new(gateway).max_decoding_message_size(max_message))
        .add_service(
            OutcomeServiceServer::new(crate::grpc::outcome::Outcomes::new(
                timeline,
                Arc::clone(&store),
                (
                    stack_settings.idempotency.sysid.clone(),
                    stack_settings.idempotency.secret,
                ),
                (stack_settings.idempotency.retention, stack_settings.idempotency.lease),
                access.clone(),
            ))
            .max_decoding_message_size(max_message),
        )
        .add_service(
            ReconciliationServiceServer::new(crate::grpc::reconciliation::Reconciliations::new(reconciler))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            NotificationServiceServer::new(notifications.with_access(access)).max_decoding_message_size(max_message),
        );
    let counters = Arc::new(listener::ListenerCounters::default());
    // Bound before any task starts: a taken port fails the start cleanly.
    let metrics_server = match config.metrics.listen {
        Some(at) => Some(
            telemetry::serve_metrics(
                at,
                Arc::clone(&metrics),
                telemetry::Sources {
                    sandbox: sandbox.is_some(),
                    health: Some(Arc::clone(&health)),
                    listener: Some(Arc::clone(&counters)),
                    notifications: Some(notify_counters),
                    log: Some(log),
                },
                Duration::from_millis(config.limits.http_header_timeout_ms),
            )
            .await
            .map_err(|source| ServeError::Listen { addr: at, source })?,
        ),
        None => None,
    };
    let (phase, _) = watch::channel(listener::Phase::Serving);
    let listener_settings = listener::ListenerSettings {
        max_connections: l.max_connections,
        handshake_timeout: Duration::from_millis(l.handshake_timeout_ms),
        idle_timeout: Duration::from_secs(l.idle_timeout_secs),
        connection_request_bytes: l.connection_request_bytes,
    };
    let incoming = listener::incoming(
        listener,
        listener_settings.clone(),
        tls.clone(),
        Arc::clone(&counters),
        phase.subscribe(),
    );
    if let Some(tls) = &tls {
        tokio::spawn(Arc::clone(tls).watch(
            Duration::from_secs(config.tls.reload_interval_secs),
            streams.subscribe(),
        ));
    }
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await
    });
    let (health_addr, health_task) = match health_listener {
        Some(bound) => {
            let at = bound.local_addr().map_err(|source| ServeError::Listen {
                addr: config.listen,
                source,
            })?;
            let mut stop = phase.subscribe();
            // Only grpc.health.v1, plaintext, for the kubelet's probes: no API, the
            // same accept loop with few connections, and admission so that a probe
            // (a Watch too) counts its connection busy and its small body is bounded.
            let incoming = listener::incoming(
                bound,
                listener::ListenerSettings {
                    max_connections: HEALTH_CONNECTIONS,
                    ..listener_settings
                },
                None,
                Arc::default(),
                phase.subscribe(),
            );
            let task = tokio::spawn(
                tonic::transport::Server::builder()
                    .max_concurrent_streams(HEALTH_STREAMS)
                    .max_frame_size(u32::try_from(body::FRAME_BYTES).unwrap_or(16_384))
                    .layer(stack::AdmissionLayer::new(stack::AdmissionSettings {
                        max_requests: HEALTH_CONNECTIONS,
                        body_timeout: Duration::from_millis(l.request_body_timeout_ms),
                        request_bytes: HEALTH_CONNECTIONS * HEALTH_MESSAGE,
                        connection_request_bytes: l.connection_request_bytes,
                        max_message: HEALTH_MESSAGE,
                    }))
                    .add_service(health_service.max_decoding_message_size(HEALTH_MESSAGE))
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = stop.wait_for(|p| *p >= listener::Phase::Stopping).await;
                    }),
            );
            tracing::info!(addr = %at, "health listening (plaintext, grpc.health.v1 only)");
            (Some(at), Some(task))
        }
        None => (None, None),
    };
    tracing::info!(
        %addr,
        tls = tls.is_some(),
        client_certificates = config.tls.client_ca.is_some(),
        identity = ?config.access.identity,
        rules = config.access.rules.len(),
        reflection = config.access.reflection,
        "yungate gRPC listening"
    );
    // Histograms are folded whether or not anything scrapes them.
    let upkeep = metrics.spawn_upkeep();
    Ok(RunningGateway {
        addr,
        health_addr,
        ingress: Some(ingress),
        sandbox,
        shutdown: Some(tx),
        streams,
        task,
        phase,
        health_task,
        health,
        metrics_server,
        upkeep,
        listener: counters,
        tls,
        drain_delay: Duration::from_millis(config.health.drain_delay_ms),
        drain_deadline: Duration::from_millis(config.health.drain_deadline_ms),
    })
}

/// Connections the plaintext health listener takes at once (probes are few).
const HEALTH_CONNECTIONS: usize = 64;

/// Streams per health connection, and the largest health request (a service name).
const HEALTH_STREAMS: u32 = 8;
const HEALTH_MESSAGE: usize = 1024;

/// After the drain deadline, how long connections get to close before the server task is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The response header that marks a gateway running against the embedded sandbox.
pub const SANDBOX_HEADER: &str = "x-yungate-sandbox";

/// The HTTP/2 flow-control window of each stream on the gRPC listener, in
/// bytes (about the protocol's default, 65,535): what a stream waiting for
/// its reservation holds unread at most. It also bounds one upload's pace
/// to 64 KiB per round trip: in a cluster (under a millisecond) that is
/// no limit; across regions (150 ms) a 4 MiB message takes some 10 s.
const STREAM_WINDOW: u32 = 64 << 10;

/// The connection's window: room for every stream's window, so that streams
/// waiting for a reservation (each holding its window unread) never starve
/// the ones that have theirs: with a smaller window a few large uploads on
/// one connection would stall each other until their body deadline.
fn connection_window(max_concurrent_streams: u32) -> u32 {
    max_concurrent_streams
        .saturating_add(1)
        .saturating_mul(STREAM_WINDOW)
        .clamp(1 << 20, (1 << 31) - 1)
}

/// The label of the fingerprint key derived from the merchant key.
const FINGERPRINT_LABEL: &str = "yungate idempotency fingerprint v1";

/// The configured store: Redis, or in memory for a single replica.
fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServeError> {
    match &config.store.redis_url {
        Some(url) => {
            let store = RedisStore::open(url.expose(), Duration::from_millis(config.store.timeout_ms))
                .map_err(|e| ServeError::Setup(format!("store.redis_url: {e}")))?;
            tracing::info!("idempotency records and rate-limit buckets in Redis");
            Ok(Arc::new(store))
        }
        None => {
            let limits = crate::store::MemoryLimits {
                records: config.store.memory_max_records,
                journal_bytes: config.store.memory_max_journal_bytes,
            };
            tracing::warn!(
                max_records = limits.records,
                max_journal_bytes = limits.journal_bytes,
                retention_secs = config.idempotency.retention_secs,
                "no store.redis_url: idempotency records, timelines and rate-limit buckets in memory: one replica \
                 only, lost on restart; at store.memory_max_records money calls are refused unsent until records \
                 expire"
            );
            Ok(Arc::new(MemoryStore::bounded(limits)))
        }
    }
}

/// Reads the store's identity marker at the first contact after start
/// (the store may be down then: the caller tries again until it answers),
/// and with `store.initialise_empty` gives a store without one a marker.
/// Only then: a marker that vanishes later is a loss, and only an operator
/// may acknowledge it. False when the store did not answer.
async fn check_identity(store: &dyn Store, initialise_empty: bool) -> bool {
    use crate::store::{Initialise, Initialised};
    match store.identity().await {
        Ok(Some(identity)) => {
            tracing::info!(store_id = %identity.id, lost_at_ms = ?identity.lost_at_ms, "store identity");
            true
        }
        Ok(None) if initialise_empty => {
            match store.initialise(Initialise::FirstDeployment).await {
                Ok(Initialised::Created(identity) | Initialised::Existing(identity)) => tracing::warn!(
                    store_id = %identity.id,
                    "store.initialise_empty: the store had no identity marker and was given one; this hides \
                     a store that lost its data, never use it where data matters"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "store.initialise_empty: cannot initialise the store");
                    return false;
                }
            }
            true
        }
        Ok(None) => {
            tracing::error!(
                "the store has no identity marker: it is new, or it lost its data; money calls are refused \
                     until `yungate store init` (a first deployment) or `yungate store acknowledge-loss`"
            );
            true
        }
        Err(_) => false,
    }
}

/// The configured notification log: a Redis stream, or in memory.
fn open_log(config: &Config) -> Result<Arc<dyn NotificationLog>, ServeError> {
    let retention = Duration::from_secs(config.notify.retention_hours * 3600);
    match &config.store.redis_url {
        Some(url) => {
            let log = RedisLog::open(
                url.expose(),
                Duration::from_millis(config.store.timeout_ms),
                &config.provider.sysid,
                retention,
            )
            .map_err(|e| ServeError::Setup(format!("store.redis_url: {e}")))?;
            tracing::info!("notifications in a Redis stream, shared by every replica");
            Ok(Arc::new(log))
        }
        None => {
            tracing::warn!(
                "no store.redis_url: notifications are kept in memory and LOST ON RESTART (one replica only); \
                 set store.redis_url for durable delivery"
            );
            Ok(Arc::new(MemoryLog::new(retention)))
        }
    }
}

/// Whom notifications must come from: our sysid, signed by the provider's
/// key (and, during a rotation, `notify.extra_cert`).
async fn notification_trust(config: &Config, keys: &PartyKeys) -> Result<Trust, ServeError> {
    let mut trusted = vec![keys.peer.clone()];
    if let Some(path) = config.notify.extra_cert.clone() {
        let extra = tokio::task::spawn_blocking(move || {
            load_certificate_file(&path)
                .map(|c| c.public_key().clone())
                .or_else(|cert_error| {
                    load_public_key_pem(&path).map_err(|key_error| {
                        format!(
                            "notify.extra_cert: not a certificate ({cert_error}) nor a PEM public key ({key_error})"
                        )
                    })
                })
        })
        .await
        .map_err(keys_error)?
        .map_err(ServeError::Keys)?;
        trusted.push(extra);
    }
    Ok(Trust {
        sysid: config.provider.sysid.clone(),
        protocol: keys.protocol,
        keys: trusted,
        window: time::Duration::seconds(i64::try_from(config.notify.timestamp_window_secs).unwrap_or(25 * 3600)),
    })
}

/// The stacks' settings from the configuration.
fn stack_settings(
    config: &Config,
    derived_secret: &[u8; 32],
    metrics: Arc<Metrics>,
) -> Result<StackSettings, ServeError> {
    use sha2::Digest;
    let secret = match config.fingerprint_key()? {
        Some(key) => sha2::Sha256::digest(key.expose().as_bytes()).into(),
        None => *derived_secret,
    };
    let i = &config.idempotency;
    Ok(StackSettings {
        idempotency: IdempotencySettings {
            sysid: config.provider.sysid.clone(),
            secret,
            retention: Duration::from_secs(i.retention_secs),
            in_flight_wait: Duration::from_millis(i.in_flight_wait_ms),
            lease: Duration::from_millis(i.lease_ms),
            settle: Duration::from_millis(i.settle_ms),
            exchange: Duration::from_millis(config.provider.request_timeout_ms),
            gates: config.gates(),
            durable: config.store.redis_url.is_some(),
            timeline: Duration::from_secs(config.timeline.retention_secs),
        },
        rate_limits: config.rate_limits()?,
        max_in_flight: config.provider.max_in_flight,
        in_flight_wait: crate::config::PROVIDER_SLOT_WAIT,
        metrics,
        order_traces: Arc::default(),
    })
}

/// The resolver's settings from the configuration.
fn resolver_settings(config: &Config) -> crate::resolver::ResolverSettings {
    let r = &config.resolver;
    crate::resolver::ResolverSettings {
        interval: Duration::from_millis(r.interval_ms),
        schedule: r.schedule_secs.iter().map(|s| Duration::from_secs(*s)).collect(),
        batch: r.batch,
        // A look may make several queries (a batch's items, pages of
        // income and expense), each up to the provider's timeout.
        lease: Duration::from_millis(config.idempotency.lease_ms.max(3 * config.provider.request_timeout_ms)),
        retention: Duration::from_secs(config.idempotency.retention_secs),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i].to_owned(),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origin() {
        assert_eq!(
            origin_of("https://yun.allinpay.com/service/soa"),
            "https://yun.allinpay.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:9/service/soa"), "http://127.0.0.1:9");
        assert_eq!(origin_of("http://h"), "http://h");
    }
}
