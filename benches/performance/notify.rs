//! Section 4: a provider notification from the POST to the ingress until it arrives on a subscriber's gRPC stream; the ingest rate against the signature-verification rate.
//!
//! In this process: the gateway (`yungate::serve::start`) with the memory
//! log and, when `redis-server` is installed, with Redis on a unix socket.
//! Notifications are signed beforehand (v1, RSA-1024) and posted over HTTP;
//! the subscriber is a real gRPC stream.

use std::path::Path;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tonic::transport::Channel;
use yungate::config::{Config, NotifyConfig};
use yungate::grpc::proto::notification_service_client::NotificationServiceClient;
use yungate::grpc::proto::{AckRequest, SubscribeRequest};
use yungate::provider::crypto::{PrivateKey, Protocol, sign};
use yungate::provider::notify::{self, Trust};
use yungate::provider::wire::{self, NotificationEnvelope};

use crate::load::SYSID;
use crate::table::{Goal, Table};

const SECTION: &str = "4. Notifications: ingest (POST /notify) to delivery on a subscriber's stream, loopback";

/// A signed 4.2.12 order result for order `i` of run `label`.
fn form(key: &PrivateKey, label: &str, i: usize) -> String {
    let rps = serde_json::json!({"service": "OrderService", "method": "pay", "status": "OK",
        "returnValue": {"orderNo": format!("yun-{i}"), "bizOrderNo": format!("{label}-{i}"), "amount": 100,
                        "payDatetime": "2026-12-01 10:00:00", "buyerBizUserId": "bench"}})
    .to_string();
    let timestamp = wire::format_timestamp(OffsetDateTime::now_utc());
    let sign = sign(
        Protocol::V1,
        key,
        &wire::notification_signing_string(SYSID, &rps, &timestamp),
    )
    .unwrap();
    NotificationEnvelope {
        sysid: SYSID.into(),
        sign,
        timestamp,
        v: "1.0".into(),
        rps,
    }
    .to_form()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(
    table: &mut Table,
    label: &str,
    key: &PrivateKey,
    key_file: &Path,
    redis_url: Option<String>,
    measuring: bool,
) {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        notify: NotifyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..NotifyConfig::default()
        },
        ..Config::default()
    };
    // A provider that is never called: only its key matters (v1 verifies with the merchant's own pair).
    config.provider.url = Some("http://127.0.0.1:9/service/soa".into());
    config.provider.key = Some(key_file.to_path_buf());
    if let Some(url) = redis_url {
        config.store.redis_url = Some(url.into());
        config.store.initialise_empty = true;
        config.idempotency.fingerprint_key = Some("bench-fingerprint-key-0123456789abcdef".into());
    }
    let gateway = yungate::serve::start(config).await.expect("gateway");
    let ingress = format!("http://{}/notify", gateway.notify_addr());
    let channel = Channel::from_shared(format!("http://{}", gateway.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (latency_n, ingest_n, concurrency) = if measuring { (300, 3000, 8) } else { (3, 20, 2) };
    let slug = label.replace(' ', "-");
    let label = slug.as_str();
    let latency_forms: Vec<String> = (0..latency_n).map(|i| form(key, &format!("{label}-lat"), i)).collect();
    let ingest_forms: Vec<String> = (0..ingest_n).map(|i| form(key, &format!("{label}-ing"), i)).collect();
    let http = reqwest::Client::new();

    // Baseline: verifying the same forms, one thread, no I/O.
    let trust = Trust {
        sysid: SYSID.into(),
        protocol: Protocol::V1,
        keys: vec![key.public_key()],
        window: wire::TIMESTAMP_WINDOW,
    };
    let started = Instant::now();
    for f in &ingest_forms {
        notify::verify(f.as_bytes(), &trust, OffsetDateTime::now_utc()).expect("verifies");
    }
    let verify_rate = ingest_n as f64 / started.elapsed().as_secs_f64();

    // Latency: one at a time, from the POST to the event on the stream.
    let subscriber = format!("bench-{label}");
    let mut notifications = NotificationServiceClient::new(channel.clone());
    let mut stream = notifications
        .subscribe(SubscribeRequest {
            subscriber: subscriber.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut latencies = Vec::with_capacity(latency_n);
    for f in latency_forms {
        let sent = Instant::now();
        let status = http.post(&ingress).body(f).send().await.unwrap().status();
        assert_eq!(status, 200);
        let n = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("delivered within 30 s")
            .unwrap()
            .expect("delivered");
        latencies.push(sent.elapsed());
        notifications
            .ack(AckRequest {
                subscriber: subscriber.clone(),
                cursors: vec![n.cursor],
            })
            .await
            .unwrap();
    }
    drop(stream);
    latencies.sort();

    // Ingest rate: `concurrency` posters, distinct notifications.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        let http = http.clone();
        let ingress = ingress.clone();
        let mine: Vec<String> = ingest_forms.iter().skip(t).step_by(concurrency).cloned().collect();
        tasks.spawn(async move {
            for f in mine {
                let status = http.post(&ingress).body(f).send().await.unwrap().status();
                assert_eq!(status, 200);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let ingest_rate = ingest_n as f64 / started.elapsed().as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    table.value(
        SECTION,
        format!("{label}: delivery p50"),
        (ms(percentile(&latencies, 0.5)), "ms"),
        None,
    );
    table.value(
        SECTION,
        format!("{label}: delivery p99"),
        (ms(percentile(&latencies, 0.99)), "ms"),
        Some(Goal::ValueAtMost(5.0)),
    );
    table.ratio(
        SECTION,
        format!("{label}: ingest, {concurrency} posters"),
        (ingest_rate, "/s"),
        (verify_rate, "/s verified on one thread"),
        None,
    );
    gateway.stop().await.unwrap();
}

pub fn run(table: &mut Table, dir: &Path, measuring: bool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = PrivateKey::generate(1024).unwrap();
    let key_file = dir.join("notify-merchant-key.pem");
    std::fs::write(&key_file, key.to_pkcs8_pem().unwrap()).unwrap();
    runtime.block_on(measure(table, "memory log", &key, &key_file, None, measuring));
    if !measuring {
        return;
    }
    let redis_dir = dir.join("notify-redis");
    std::fs::create_dir_all(&redis_dir).unwrap();
    let Some(redis) = crate::redis::BenchRedis::start(&redis_dir, None) else {
        table.note(SECTION, "Redis: redis-server not installed, not measured");
        return;
    };
    runtime.block_on(measure(
        table,
        "Redis log",
        &key,
        &key_file,
        Some(redis.url.clone()),
        measuring,
    ));
}
