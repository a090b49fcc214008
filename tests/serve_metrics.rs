//! The Prometheus endpoint of a running gateway, on both stores: a payment, a retry, refusals and notifications through the real sandbox, then what `/metrics` says of them, and that it says nothing personal.

mod support;

use std::time::Duration;

use support::harness::{ID_NO, NAME, phone_of};
use support::redis::RedisServer;
use support::rig::{Rig, confirm_request, deposit_request};
use tonic::Code;
use tonic::transport::Channel;
use yungate::grpc::proto::notification_service_client::NotificationServiceClient;
use yungate::grpc::proto::order_service_client::OrderServiceClient;
use yungate::grpc::proto::{self, SubscribeRequest};

const CARD: &str = "6228480402637874214";

/// The sum of the samples of `name` whose labels include `labels`, or
/// `None` when there is no such sample.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let present = labels
            .iter()
            .all(|(k, v)| label_text.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
        if present {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    found
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

/// Scrapes until `ready` holds of the text (gauges and counters of other tasks lag a little).
async fn scrape_until(addr: std::net::SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = scrape(addr).await;
        if ready(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics_follow_the_flow(redis: Option<&RedisServer>) {
    let rig = Rig::on_store(redis, |c| {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        // The provider's notifications come to this gateway's own ingress.
        c.gateway.notify_url = None;
        c.notify.visibility_timeout_ms = 300;
        c.notify.max_deliveries = 2;
    })
    .await;
    let addr = rig.gateway.metrics_addr().expect("metrics.listen is set");
    let channel: &Channel = &rig.channel;
    let fresh = scrape(addr).await;
    // The rig's sandbox is reached through provider.url, as the provider would be: not sandbox mode.
    assert_eq!(sample(&fresh, "yungate_sandbox_mode", &[]), Some(0.0), "{fresh}");
    assert_eq!(sample(&fresh, "yungate_ready", &[]), Some(1.0));

    // A subscriber that never acknowledges: each event is delivered, redelivered, dead-lettered.
    let mut stream = NotificationServiceClient::new(channel.clone())
        .subscribe(SubscribeRequest {
            subscriber: "books".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let direct = rig.direct();
    direct.individual("m1").await;
    direct.bind_card("m1", CARD).await;
    let mut orders = OrderServiceClient::new(channel.clone());
    orders
        .deposit_apply(deposit_request("m-dep-1", "m1", 100))
        .await
        .unwrap();
    // The caller's retry of the same order is answered from its record.
    orders
        .deposit_apply(deposit_request("m-dep-1", "m1", 100))
        .await
        .unwrap();
    orders
        .confirm_pay_sms(confirm_request("m1", "m-dep-1", "9999"))
        .await
        .unwrap();
    let invalid = orders
        .query_balance(proto::QueryBalanceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    // A path no service serves is counted, under `unknown`.
    let unknown = support::dynamic_grpc::raw(channel, "yungate.v1.NoSuchService", "Nothing", Vec::new())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented);
    // An unreadable notification is refused and counted.
    let refused = reqwest::Client::new()
        .post(format!("http://{}/notify", rig.gateway.notify_addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("sysid=1&rps=%7B")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // The deposit's result (4.2.12), twice: delivered, then again after the visibility timeout.
    for _ in 0..2 {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("the deposit's result is delivered")
            .unwrap()
            .unwrap();
        assert_eq!(n.biz_order_no, "m-dep-1");
    }

    let dead = |t: &str| {
        sample(t, "yungate_notification_dead_letters", &[("subscriber", "books")]).unwrap_or(0.0) >= 1.0
            && sample(
                t,
                "yungate_notifications_dead_lettered_total",
                &[("subscriber", "books")],
            )
            .unwrap_or(0.0)
                >= 1.0
    };
    let text = scrape_until(addr, dead).await;
    let order = [("grpc_service", "yungate.v1.OrderService")];
    let count = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels).unwrap_or(0.0);
    assert_eq!(
        count(
            "yungate_grpc_server_handled_total",
            &[order[0], ("grpc_method", "DepositApply"), ("grpc_code", "OK")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        count(
            "yungate_grpc_server_handled_total",
            &[
                order[0],
                ("grpc_method", "QueryBalance"),
                ("grpc_code", "INVALID_ARGUMENT")
            ]
        ),
        1.0
    );
    assert_eq!(
        count(
            "yungate_grpc_server_handled_total",
            &[("grpc_service", "unknown"), ("grpc_code", "UNIMPLEMENTED")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "yungate_grpc_server_handling_seconds_count",
            &[order[0], ("grpc_method", "ConfirmPaySms")]
        ),
        1.0
    );
    // The deposit went to the provider once, its retry was a replay.
    assert_eq!(
        count(
            "yungate_provider_requests_total",
            &[
                ("service", "OrderService"),
                ("method", "depositApply"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert!(count("yungate_provider_request_seconds_count", &[("method", "depositApply")]) >= 1.0);
    assert_eq!(
        count("yungate_idempotency_results_total", &[("result", "replayed")]),
        1.0
    );
    assert!(count("yungate_idempotency_results_total", &[("result", "executed")]) >= 2.0);
    assert!(
        count(
            "yungate_rate_limit_decisions_total",
            &[("scope", "provider"), ("class", "order"), ("decision", "allowed")]
        ) >= 2.0
    );
    assert!(count("yungate_notifications_received_total", &[("result", "accepted")]) >= 1.0);
    assert_eq!(
        count("yungate_notifications_rejected_total", &[("reason", "malformed")]),
        1.0
    );
    assert_eq!(
        count("yungate_notifications_rejected_total", &[("reason", "bad_signature")]),
        0.0
    );
    let books = [("subscriber", "books")];
    assert!(count("yungate_notifications_delivered_total", &books) >= 1.0);
    assert!(count("yungate_notifications_redelivered_total", &books) >= 1.0);
    assert!(count("yungate_notification_delivery_lag_seconds_count", &books) >= 2.0);
    assert_eq!(count("yungate_notification_streams", &books), 1.0);
    assert!(count("yungate_notification_dead_letters", &books) >= 1.0, "{text}");
    assert!(count("yungate_notification_waiting", &books) == 0.0, "{text}");
    assert!(count("yungate_connections_open", &[]) >= 1.0);
    assert!(count("yungate_connections_accepted_total", &[]) >= 1.0);
    // The chart's Grafana dashboard uses only metrics that exist.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/yungate/dashboards/yungate.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut used = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("yungate_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name)
                    .to_owned();
                used.insert(base);
            }
        }
    }
    assert!(used.len() >= 20, "{used:?}");
    for name in &used {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "the dashboard uses {name}, which /metrics does not have"
        );
    }
    // No personal value in any metric.
    for secret in [CARD, ID_NO, NAME, phone_of("m1").as_str()] {
        assert!(!text.contains(secret), "a personal value in /metrics");
    }

    drop(stream);
    let closed = scrape_until(addr, |t| sample(t, "yungate_notification_streams", &books) == Some(0.0)).await;
    assert_eq!(sample(&closed, "yungate_notification_streams", &books), Some(0.0));
    rig.gateway.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_follow_a_payment_and_its_notifications_in_memory() {
    metrics_follow_the_flow(None).await;
}

#[tokio::test]
async fn metrics_follow_a_payment_and_its_notifications_on_redis() {
    let redis = RedisServer::start();
    metrics_follow_the_flow(Some(&redis)).await;
}

/// Sends a bare HTTP/1.1 GET /metrics on `stream` and waits up to `within` for a status line.
async fn answered(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: metrics\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    matches!(
        tokio::time::timeout(within, stream.read_exact(&mut first)).await,
        Ok(Ok(_)) if first.starts_with(b"HTTP/1.1 200")
    )
}

#[tokio::test]
async fn the_metrics_listener_serves_a_bounded_number_of_connections() {
    let mut config = support::sandboxed::config();
    config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    let gateway = yungate::serve::start(config).await.unwrap();
    let addr = gateway.metrics_addr().unwrap();
    // Sixteen scrapers hold their connections (kept alive after an answer)...
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(answered(&mut stream, Duration::from_secs(5)).await);
        held.push(stream);
    }
    // ... so a seventeenth waits in the kernel's backlog, unanswered ...
    let mut waiting = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        !answered(&mut waiting, Duration::from_millis(500)).await,
        "past the cap a connection waits"
    );
    // ... until one of them goes; the gRPC side is served all along.
    let channel = support::sandboxed::channel(gateway.addr()).await;
    support::sandboxed::member_lookup(&channel).await.unwrap();
    drop(held.pop());
    use tokio::io::AsyncReadExt as _;
    let mut first = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), waiting.read_exact(&mut first))
        .await
        .expect("answered once a slot is free")
        .unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    drop((held, waiting));
    gateway.stop().await.unwrap();
}
