//! Health as the kubelet sees it, over real sockets: readiness follows the store (a real redis-server killed and restarted) and the drain, liveness stays SERVING, and the provider's reachability is an entry of its own that readiness does not follow.

mod support;

use std::time::{Duration, Instant};

use support::redis::RedisServer;
use support::rig::Rig;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use yungate::config::{Config, ProviderConfig};
use yungate::serve;

async fn status(channel: &Channel, service: &str) -> ServingStatus {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

async fn eventually(channel: &Channel, service: &str, wanted: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = status(channel, service).await;
        if now == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "{service:?} stayed {now:?}, not {wanted:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn readiness_follows_redis_and_liveness_does_not() {
    let mut redis = RedisServer::start();
    let rig = Rig::on_store(Some(&redis), |c| c.health.check_interval_ms = 200).await;
    assert_eq!(status(&rig.channel, "readiness").await, ServingStatus::Serving);
    assert_eq!(status(&rig.channel, "").await, ServingStatus::Serving);
    assert_eq!(
        status(&rig.channel, "yungate.v1.OrderService").await,
        ServingStatus::Serving
    );
    eventually(&rig.channel, "yungate.provider", ServingStatus::Serving).await;

    redis.kill();
    eventually(&rig.channel, "readiness", ServingStatus::NotServing).await;
    assert_eq!(status(&rig.channel, "").await, ServingStatus::NotServing);
    assert_eq!(
        status(&rig.channel, "yungate.v1.OrderService").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        status(&rig.channel, "liveness").await,
        ServingStatus::Serving,
        "the process still answers"
    );

    redis.restart();
    eventually(&rig.channel, "readiness", ServingStatus::Serving).await;
}

#[tokio::test]
async fn an_unreachable_provider_is_its_own_entry_not_readiness() {
    // A provider address nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/service/soa", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let generated = yungate::provider::crypto::PrivateKey::generate(1024).unwrap();
    std::fs::write(&key, generated.to_pkcs8_pem().unwrap()).unwrap();
    let config = Config {
        provider: ProviderConfig {
            url: Some(url),
            key: Some(key),
            ..ProviderConfig::default()
        },
        ..support::sandboxed::config()
    };
    let gateway = serve::start(config).await.unwrap();
    let channel = support::sandboxed::channel(gateway.addr()).await;
    // Not before a probe has finished: the entry starts NOT_SERVING.
    let deadline = Instant::now() + Duration::from_secs(15);
    while gateway.health().checks() == 0 {
        assert!(Instant::now() < deadline, "no reachability probe finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status(&channel, "yungate.provider").await, ServingStatus::NotServing);
    assert_eq!(status(&channel, "readiness").await, ServingStatus::Serving);
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn a_drain_turns_readiness_off_first_then_stops_within_its_deadline() {
    let mut config = support::sandboxed::config();
    config.health.drain_delay_ms = 1500;
    config.health.drain_deadline_ms = 1000;
    let gateway = serve::start(config).await.unwrap();
    let addr = gateway.addr();
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(status(&channel, "readiness").await, ServingStatus::Serving);
    // A health Watch never ends by itself: the deadline must close it.
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "liveness".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let started = Instant::now();
    let draining = tokio::spawn(gateway.drain());
    eventually(&channel, "readiness", ServingStatus::NotServing).await;
    assert_eq!(status(&channel, "liveness").await, ServingStatus::Serving);
    // During the delay the replica still serves what reaches it.
    support::sandboxed::member_lookup(&channel).await.unwrap();
    assert!(!draining.is_finished(), "the listener stays open for the delay");
    tokio::time::timeout(Duration::from_secs(20), draining)
        .await
        .expect("the drain ends within its deadline")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.message()).await;
    assert!(
        matches!(ended, Ok(Err(_)) | Ok(Ok(None))),
        "the Watch was closed at the deadline: {ended:?}"
    );
    // The accept loop ends with the drain; give it a moment to drop the socket.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the listener is closed after the drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
