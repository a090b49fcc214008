//! The gateway in front of a sandbox we start ourselves, with a proxy between them that records every request the gateway sends.
//!
//! Lets a test see the provider's side of a call: the exact `req` JSON the
//! gateway signed and sent (to check encryption and formats against the
//! spec), while the gateway and the sandbox still talk over real sockets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;
use tonic::transport::Channel;
use yungate::config::{Config, GatewayConfig, ProviderConfig};
use yungate::provider::calls::Environment;
use yungate::provider::crypto::{PartyKeys, PrivateKey, Protocol};
use yungate::provider::wire::{RequestBody, SignedRequest};
use yungate::sandbox::{self, RunningSandbox, SandboxConfig};
use yungate::serve::{self, RunningGateway};

use super::harness::{Receiver, SYSID};

/// One request the gateway sent to the provider.
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: String,
    pub param: Value,
}

#[derive(Clone)]
struct Upstream {
    url: String,
    http: reqwest::Client,
    sent: Arc<Mutex<Vec<Sent>>>,
}

/// Forwards `/service/soa` to the sandbox, recording the decoded `req`.
async fn forward(State(up): State<Upstream>, RawQuery(query): RawQuery, body: Bytes) -> impl IntoResponse {
    if let Ok(request) = SignedRequest::from_form(&body) {
        if let Ok(req) = RequestBody::parse(&request.req) {
            up.sent.lock().unwrap().push(Sent {
                method: req.method,
                param: Value::Object(req.param),
            });
        }
    }
    let url = match query {
        Some(q) => format!("{}?{q}", up.url),
        None => up.url.clone(),
    };
    let answer = up
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded; charset=UTF-8")
        .body(body)
        .send()
        .await;
    match answer {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, r.bytes().await.unwrap_or_default()).into_response()
        }
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()).into_response(),
    }
}

/// A sandbox, the recording proxy, and `yungate serve` pointed at the proxy.
pub struct Rig {
    pub sandbox: RunningSandbox,
    pub gateway: RunningGateway,
    pub channel: Channel,
    pub keys: PartyKeys,
    /// Receives the notifications the provider sends to the gateway's `backUrl`.
    pub receiver: Receiver,
    /// The configuration the gateway started with.
    pub config: Config,
    /// The recording proxy's SOA URL: what replicas of the gateway point at.
    pub soa_url: String,
    /// The merchant key, as a PEM file replicas can load.
    pub key_file: std::path::PathBuf,
    sent: Arc<Mutex<Vec<Sent>>>,
    _key_dir: tempfile::TempDir,
}

impl Rig {
    /// `sandbox` adjusts the sandbox's configuration, `gateway` the gateway's.
    pub async fn start(sandbox: impl FnOnce(&mut SandboxConfig), gateway: impl FnOnce(&mut Config)) -> Rig {
        yungate::provider::client::install_tls_provider();
        let key = rig_key();
        let keys = PartyKeys {
            protocol: Protocol::V1,
            peer: key.public_key(),
            own: key.clone(),
        };
        let mut sandbox_config = SandboxConfig::new(SYSID, keys.clone());
        sandbox_config.time_scale = 0.001;
        sandbox(&mut sandbox_config);
        let running = sandbox::start(sandbox_config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let upstream = Upstream {
            url: running.soa_url(),
            http: reqwest::Client::new(),
            sent: Arc::clone(&sent),
        };
        let app = axum::Router::new()
            .route("/service/soa", axum::routing::any(forward))
            .with_state(upstream);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("merchant-key.pem");
        std::fs::write(&key_file, key.to_pkcs8_pem().unwrap()).unwrap();
        let soa_url = format!("http://{proxy}/service/soa");
        let receiver = Receiver::start(keys.clone(), 0).await;
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            notify: yungate::config::NotifyConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..Default::default()
            },
            provider: ProviderConfig {
                url: Some(soa_url.clone()),
                // Pages are not proxied: links go to the sandbox itself.
                page_base_url: Some(format!("http://{}", running.addr())),
                environment: Some(Environment::Test),
                key: Some(key_file.clone()),
                ..ProviderConfig::default()
            },
            gateway: GatewayConfig {
                notify_url: Some(receiver.url.clone()),
                ..GatewayConfig::default()
            },
            // Off unless a test turns it on: then a test's own retries
            // decide what is asked when, and counts of queries are its own.
            resolver: yungate::config::ResolverConfig {
                enabled: false,
                ..Default::default()
            },
            // Likewise the daily reconciliation: a test runs it, or turns it on.
            reconciliation: yungate::config::ReconciliationConfig {
                daily: Some(false),
                ..Default::default()
            },
            ..Config::default()
        };
        gateway(&mut config);
        let gateway = serve::start(config.clone()).await.unwrap();
        let channel = Channel::from_shared(format!("http://{}", gateway.addr()))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap();
        Rig {
            sandbox: running,
            gateway,
            channel,
            keys,
            receiver,
            config,
            soa_url,
            key_file,
            sent,
            _key_dir: dir,
        }
    }

    /// The last request the gateway sent for the provider method `method`.
    pub fn last_sent(&self, method: &str) -> Value {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s.method == method)
            .map(|s| s.param.clone())
            .unwrap_or_else(|| panic!("the gateway sent no {method}"))
    }

    /// How many requests the gateway has sent.
    pub fn sent_count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// A rig whose gateway keeps its records and buckets in `redis` (with
    /// the fingerprint key Redis requires), or in memory without.
    pub async fn on_store(redis: Option<&super::redis::RedisServer>, gateway: impl FnOnce(&mut Config)) -> Rig {
        let url = redis.map(super::redis::RedisServer::url);
        Rig::start(
            |_| {},
            |c| {
                if let Some(url) = url {
                    c.store.redis_url = Some(url.into());
                    // The test's Redis is new: it gets its identity marker at start.
                    c.store.initialise_empty = true;
                    c.idempotency.fingerprint_key = Some(FINGERPRINT_KEY.into());
                }
                gateway(c);
            },
        )
        .await
    }

    /// Another gateway with the same configuration (a second replica in this process).
    pub async fn replica(&self) -> (RunningGateway, Channel) {
        let gateway = serve::start(self.config.clone()).await.unwrap();
        let channel = Channel::from_shared(format!("http://{}", gateway.addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        (gateway, channel)
    }

    /// A `yungate serve` process with the same provider, keys and store.
    pub fn replica_process(&self) -> super::replica::Replica {
        super::replica::Replica::spawn(&self.config)
    }

    /// [`Rig::replica_process`] with more environment.
    pub fn replica_process_with_env(&self, env: &[(&str, &str)]) -> super::replica::Replica {
        super::replica::Replica::spawn_with_env(&self.config, env)
    }

    /// A client straight to the sandbox (its calls are not recorded as the gateway's).
    pub fn direct(&self) -> super::harness::Direct {
        super::harness::Direct {
            client: super::harness::soa_client(
                self.sandbox.soa_url(),
                self.keys.clone(),
                Duration::from_secs(10),
                Environment::Test,
            ),
            back_url: self.receiver.url.clone(),
        }
    }

    /// How many requests the gateway has sent for the provider method `method`.
    pub fn sent_for(&self, method: &str) -> usize {
        self.sent.lock().unwrap().iter().filter(|s| s.method == method).count()
    }

    /// The sandbox's books (`GET /sandbox/accounts`).
    pub async fn books(&self) -> Value {
        super::harness::sandbox_get(self.sandbox.addr(), "/sandbox/accounts").await
    }

    /// Replaces the sandbox's faults; panics unless accepted.
    pub async fn set_faults(&self, faults: Value) {
        let status = super::harness::put_faults(self.sandbox.addr(), &faults).await;
        assert_eq!(status, 200, "faults {faults} refused");
    }
}

/// Which store a rig's gateway keeps its records in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

/// A rig on `backend`; the Redis server (if any) lives as long as the returned value.
pub async fn rig_on(backend: Backend, adjust: impl FnOnce(&mut Config)) -> (Rig, Option<super::redis::RedisServer>) {
    let redis = (backend == Backend::Redis).then(super::redis::RedisServer::start);
    (Rig::on_store(redis.as_ref(), adjust).await, redis)
}

/// A member with a real name, a phone and the test card bound for real-name pay.
pub async fn member(rig: &Rig, id: &str) {
    let direct = rig.direct();
    direct.individual(id).await;
    direct.bind_card(id, super::harness::CARD).await;
}

/// A DepositApply of `amount` to `user` by real-name pay with the test card (4.1.14's card).
pub fn deposit_request(order: &str, user: &str, amount: i64) -> yungate::grpc::proto::DepositApplyRequest {
    use yungate::grpc::proto;
    proto::DepositApplyRequest {
        biz_order_no: order.into(),
        biz_user_id: user.into(),
        account_set_no: "100000".into(),
        amount,
        fee: 0,
        industry_code: "1010".into(),
        industry_name: "保险代理".into(),
        source: proto::Source::Pc as i32,
        pay_method: Some(proto::PayMethod {
            realnamepay: Some(proto::RealnamepayPayment {
                bank_card_no: super::harness::CARD.into(),
                amount,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A ConfirmPaySms (4.2.8) of `order` by `user` with the SMS `code`.
pub fn confirm_request(user: &str, order: &str, code: &str) -> yungate::grpc::proto::ConfirmPaySmsRequest {
    yungate::grpc::proto::ConfirmPaySmsRequest {
        biz_user_id: user.into(),
        biz_order_no: order.into(),
        verification_code: code.into(),
        consumer_ip: "127.0.0.1".into(),
        ..Default::default()
    }
}

/// The fingerprint key of rigs on Redis (required there, and the same on every replica).
pub const FINGERPRINT_KEY: &str = "test-fingerprint-key-0123456789abcdef";

/// One RSA-1024 key for every rig of a test binary.
fn rig_key() -> PrivateKey {
    static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(1024).unwrap()).clone()
}
