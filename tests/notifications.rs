//! Notifications end to end, on both stores: the real sandbox signs and sends them (3.6 schedule, time-scaled), the gateway's ingress verifies and stores them, subscribers stream them over gRPC from any replica, with acks, redelivery, dead letters and replay.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::rig::{Rig, confirm_request, deposit_request};
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use tonic_types::StatusExt;
use yungate::grpc::proto::notification::Event;
use yungate::grpc::proto::notification_service_client::NotificationServiceClient;
use yungate::grpc::proto::order_service_client::OrderServiceClient;
use yungate::grpc::proto::{self, Notification, NotificationFilter, SubscribeRequest};
use yungate::provider::crypto::{PrivateKey, sign};
use yungate::provider::wire::{self, NotificationEnvelope};

const CARD: &str = "6228480402637874214";
const SYSID: &str = support::harness::SYSID;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Memory,
    Redis,
}

/// A rig whose gateway receives its own notifications (backUrl = its ingress).
async fn rig(backend: Backend, adjust: impl FnOnce(&mut yungate::config::Config)) -> (Rig, Option<RedisServer>) {
    let redis = (backend == Backend::Redis).then(RedisServer::start);
    let rig = Rig::on_store(redis.as_ref(), |c| {
        c.gateway.notify_url = None;
        c.notify.visibility_timeout_ms = 500;
        adjust(c);
    })
    .await;
    (rig, redis)
}

fn client(channel: &Channel) -> NotificationServiceClient<Channel> {
    NotificationServiceClient::new(channel.clone())
}

async fn subscribe(channel: &Channel, request: SubscribeRequest) -> Streaming<Notification> {
    client(channel).subscribe(request).await.unwrap().into_inner()
}

fn named(subscriber: &str) -> SubscribeRequest {
    SubscribeRequest {
        subscriber: subscriber.into(),
        ..Default::default()
    }
}

/// The next event within `within`, or `None`.
async fn next(stream: &mut Streaming<Notification>, within: Duration) -> Option<Notification> {
    match tokio::time::timeout(within, stream.message()).await {
        Ok(Ok(Some(n))) => Some(n),
        Ok(Ok(None)) => None,
        Ok(Err(status)) => panic!("stream failed: {status:?}"),
        Err(_) => None,
    }
}

async fn ack(channel: &Channel, subscriber: &str, n: &Notification) -> u32 {
    client(channel)
        .ack(proto::AckRequest {
            subscriber: subscriber.into(),
            cursors: vec![n.cursor.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .acknowledged
}

/// A deposit of `amount` paid by SMS confirmation through the gateway of `rig`.
async fn paid_deposit(rig: &Rig, user: &str, order: &str, amount: i64) {
    let direct = rig.direct();
    direct.individual(user).await;
    direct.bind_card(user, CARD).await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    orders
        .deposit_apply(deposit_request(order, user, amount))
        .await
        .unwrap();
    orders
        .confirm_pay_sms(confirm_request(user, order, "9999"))
        .await
        .unwrap();
}

fn order_result(n: &Notification) -> &proto::OrderResultNotification {
    match &n.event {
        Some(Event::OrderResult(o)) => o,
        _ => panic!("not an order result: {} {}", n.service, n.method),
    }
}

/// The ingress counters (`GET /notify/stats`).
async fn stats(addr: SocketAddr) -> Value {
    reqwest::get(format!("http://{addr}/notify/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A notification form signed by `key` for `sysid` at `at`.
fn signed_form(key: &PrivateKey, sysid: &str, rps: &str, at: time::OffsetDateTime) -> String {
    let timestamp = wire::format_timestamp(at);
    let sign = sign(
        yungate::provider::crypto::Protocol::V1,
        key,
        &wire::notification_signing_string(sysid, rps, &timestamp),
    )
    .unwrap();
    NotificationEnvelope {
        sysid: sysid.into(),
        sign,
        timestamp,
        v: "1.0".into(),
        rps: rps.into(),
    }
    .to_form()
}

/// 4.2.12's shape: rps{service=OrderService, method=pay, status, returnValue{orderNo, bizOrderNo, amount, buyerBizUserId}}.
fn order_rps(order: &str) -> String {
    json!({"service": "OrderService", "method": "pay", "status": "OK",
           "returnValue": {"orderNo": format!("yun-{order}"), "bizOrderNo": order, "amount": 100,
                           "payDatetime": "2026-12-01 10:00:00", "buyerBizUserId": "u1"}})
    .to_string()
}

async fn post(addr: SocketAddr, body: String, content_type: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/notify"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Posts a provider-signed order result for `order` to the ingress at `addr`.
async fn post_order(rig: &Rig, addr: SocketAddr, order: &str) {
    let form = signed_form(&rig.keys.own, SYSID, &order_rps(order), time::OffsetDateTime::now_utc());
    assert_eq!(post(addr, form, "application/x-www-form-urlencoded").await, 200);
}

async fn fan_out(backend: Backend) {
    let (rig, _redis) = rig(backend, |_| {}).await;
    // On Redis a second replica (its own ingress and gRPC server, the same store); in memory the one.
    let other = if backend == Backend::Redis {
        Some(rig.replica().await)
    } else {
        None
    };
    let b = other.as_ref().map_or(&rig.channel, |(_, channel)| channel);
    let mut ledger = subscribe(b, named("ledger")).await;
    let mut audit = subscribe(&rig.channel, named("audit")).await;
    let mut picky = subscribe(
        b,
        SubscribeRequest {
            filter: Some(NotificationFilter {
                biz_order_no: "another-order".into(),
                ..Default::default()
            }),
            ..named("picky")
        },
    )
    .await;
    paid_deposit(&rig, "ntf-1", "ntf-dep-1", 10_000).await;

    let got = next(&mut ledger, Duration::from_secs(10))
        .await
        .expect("ledger gets the result");
    assert_eq!((got.service.as_str(), got.method.as_str()), ("OrderService", "pay"));
    assert_eq!(got.biz_order_no, "ntf-dep-1");
    assert_eq!(got.biz_user_id, "ntf-1");
    assert_eq!(got.delivery_attempt, 1);
    let result = order_result(&got);
    // 4.2.12: "status ... OK = 订单成功"; amount in fen; bizOrderNo the merchant's.
    assert_eq!(result.status, "OK");
    assert_eq!(result.amount, 10_000);
    assert_eq!(result.biz_order_no, "ntf-dep-1");
    assert!(!result.order_no.is_empty());
    let raw: Value = serde_json::from_str(&got.raw_json).unwrap();
    assert_eq!(raw["service"], "OrderService");
    assert!(wire::parse_timestamp(&got.provider_timestamp).is_some());
    let seen_by_audit = next(&mut audit, Duration::from_secs(10))
        .await
        .expect("a second group gets it too");
    assert_eq!(seen_by_audit.cursor, got.cursor, "one stream, one cursor for everybody");
    assert_eq!(ack(b, "ledger", &got).await, 1);
    assert_eq!(ack(&rig.channel, "audit", &seen_by_audit).await, 1);
    assert_eq!(ack(b, "ledger", &got).await, 0, "acknowledged once");
    assert!(
        next(&mut picky, Duration::from_millis(700)).await.is_none(),
        "filtered out"
    );
    assert!(
        next(&mut ledger, Duration::from_millis(700)).await.is_none(),
        "acked: not again"
    );

    // History with the delivery state of each subscriber.
    let listed = client(&rig.channel)
        .list_notifications(proto::ListNotificationsRequest {
            subscriber: "ledger".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.notifications.len(), 1);
    assert_eq!(listed.notifications[0].state, proto::DeliveryState::Acked as i32);
    if let Some((gateway, _)) = other {
        gateway.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_deposit_result_reaches_every_subscriber_in_memory() {
    fan_out(Backend::Memory).await;
}

#[tokio::test]
async fn a_deposit_result_reaches_every_subscriber_on_another_replica() {
    fan_out(Backend::Redis).await;
}

async fn duplicates_and_reorders(backend: Backend) {
    let (rig, _redis) = rig(backend, |_| {}).await;
    let mut stream = subscribe(&rig.channel, named("ledger")).await;
    rig.set_faults(json!({"notifications": {"duplicateRate": 1.0, "reorder": true, "reorderWindowMs": 100}}))
        .await;
    paid_deposit(&rig, "ntf-d1", "ntf-dd-1", 100).await;
    paid_deposit(&rig, "ntf-d2", "ntf-dd-2", 200).await;
    let mut orders = Vec::new();
    while let Some(n) = next(&mut stream, Duration::from_millis(1500)).await {
        ack(&rig.channel, "ledger", &n).await;
        orders.push(n.biz_order_no);
    }
    orders.sort();
    assert_eq!(orders, ["ntf-dd-1", "ntf-dd-2"], "each once, whatever the sandbox sent");
    let counted = stats(rig.gateway.notify_addr()).await;
    assert_eq!(counted["accepted"], 2, "{counted}");
    assert!(counted["duplicates"].as_u64().unwrap() >= 2, "{counted}");
}

#[tokio::test]
async fn duplicated_and_reordered_notifications_are_delivered_once_in_memory() {
    duplicates_and_reorders(Backend::Memory).await;
}

#[tokio::test]
async fn duplicated_and_reordered_notifications_are_delivered_once_on_redis() {
    duplicates_and_reorders(Backend::Redis).await;
}

async fn refusals(backend: Backend) {
    let (rig, _redis) = rig(backend, |_| {}).await;
    let addr = rig.gateway.notify_addr();
    let mut stream = subscribe(&rig.channel, named("ledger")).await;
    let now = time::OffsetDateTime::now_utc();
    let forger = PrivateKey::generate(1024).unwrap();
    let form = "application/x-www-form-urlencoded";
    // 3.4: verify over sysid + rps + timestamp with the provider's key: another key is a forgery.
    assert_eq!(
        post(addr, signed_form(&forger, SYSID, &order_rps("f1"), now), form).await,
        403
    );
    // Further from our clock than notify.timestamp_window_secs (25 h by default; 3.1's 10 minutes
    // are for requests, and 3.6 does not say whether its retries are signed afresh).
    let stale = now - time::Duration::hours(26);
    assert_eq!(
        post(addr, signed_form(&rig.keys.own, SYSID, &order_rps("f2"), stale), form).await,
        403
    );
    assert_eq!(
        post(addr, signed_form(&rig.keys.own, "999", &order_rps("f3"), now), form).await,
        403
    );
    assert_eq!(post(addr, "sysid=1&rps=%7B".into(), form).await, 400);
    assert_eq!(post(addr, "a".repeat(70 * 1024), form).await, 413);
    let counted = stats(addr).await;
    assert_eq!(counted["rejected"]["too_large"], 1, "{counted}");
    assert_eq!(counted["rejected"]["bad_signature"], 1, "{counted}");
    assert_eq!(counted["rejected"]["stale"], 1, "{counted}");
    assert_eq!(counted["rejected"]["foreign_sysid"], 1, "{counted}");
    assert_eq!(counted["rejected"]["malformed"], 1, "{counted}");
    assert_eq!(counted["accepted"], 0, "{counted}");
    // A genuine one, labelled text/xml as the provider has been seen doing, goes through.
    let genuine = signed_form(&rig.keys.own, SYSID, &order_rps("g1"), now);
    assert_eq!(post(addr, genuine, "text/xml").await, 200);
    let n = next(&mut stream, Duration::from_secs(5)).await.unwrap();
    assert_eq!(n.biz_order_no, "g1");
    // Acknowledged first: the 500 ms visibility timeout would redeliver it during the wait.
    ack(&rig.channel, "ledger", &n).await;
    assert!(
        next(&mut stream, Duration::from_millis(500)).await.is_none(),
        "nothing refused was delivered"
    );

    // Authentic but unreadable (returnValue a string that is not JSON): stored and delivered
    // untyped, since a refusal would make the provider retry it until it gives up.
    let odd = r#"{"service":"OrderService","method":"pay","status":"OK","returnValue":"not json"}"#;
    assert_eq!(post(addr, signed_form(&rig.keys.own, SYSID, odd, now), form).await, 200);
    let n = next(&mut stream, Duration::from_secs(5)).await.expect("stored untyped");
    assert_eq!(n.raw_json, odd);
    assert!(n.event.is_none());
    ack(&rig.channel, "ledger", &n).await;

    // 4.1.21: updatePayPwd's result is {bizUserId, result} and nothing else. Two password changes a
    // minute apart are two events, not a retry of one.
    let pwd = r#"{"service":"MemberPwdService","method":"updatePayPwd","status":"OK","returnValue":{"bizUserId":"u9","result":"OK"}}"#;
    for at in [now - time::Duration::minutes(1), now] {
        assert_eq!(post(addr, signed_form(&rig.keys.own, SYSID, pwd, at), form).await, 200);
        let n = next(&mut stream, Duration::from_secs(5))
            .await
            .expect("each change delivered");
        assert_eq!((n.method.as_str(), n.biz_user_id.as_str()), ("updatePayPwd", "u9"));
        ack(&rig.channel, "ledger", &n).await;
    }
    // The same signed message again is a retry.
    assert_eq!(post(addr, signed_form(&rig.keys.own, SYSID, pwd, now), form).await, 200);
    assert!(next(&mut stream, Duration::from_millis(500)).await.is_none(), "a retry");
}

#[tokio::test]
async fn forged_stale_and_foreign_notifications_are_refused_in_memory() {
    refusals(Backend::Memory).await;
}

#[tokio::test]
async fn forged_stale_and_foreign_notifications_are_refused_on_redis() {
    refusals(Backend::Redis).await;
}

#[tokio::test]
async fn redis_stopped_during_ingest_the_provider_retries_and_it_arrives_once() {
    let (rig, redis) = rig(Backend::Redis, |_| {}).await;
    let redis = redis.unwrap();
    let mut stream = subscribe(&rig.channel, named("ledger")).await;
    // The first attempt comes 400 ms after the payment: Redis is frozen by then.
    rig.set_faults(json!({"notifications": {"delayMs": 400}})).await;
    paid_deposit(&rig, "ntf-r1", "ntf-rd-1", 300).await;
    redis.pause();
    let addr = rig.gateway.notify_addr();
    // The ingress cannot store it: 503, and the sandbox keeps retrying (5s, 2m, 10m... x 0.001).
    eventually("the notification never came", async || {
        stats(addr).await["storeFailures"].as_u64().unwrap() >= 1
    })
    .await;
    redis.resume();
    let n = next(&mut stream, Duration::from_secs(20))
        .await
        .expect("delivered after Redis returned");
    assert_eq!(n.biz_order_no, "ntf-rd-1");
    ack(&rig.channel, "ledger", &n).await;
    assert!(
        next(&mut stream, Duration::from_millis(800)).await.is_none(),
        "exactly once"
    );
    let attempts = support::harness::sandbox_get(rig.sandbox.addr(), "/sandbox/notifications").await;
    let codes: Vec<Value> = attempts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["url"].as_str().unwrap().contains(&addr.to_string()))
        .map(|a| a["httpStatus"].clone())
        .collect();
    assert!(codes.contains(&json!(503)), "{codes:?}");
    assert_eq!(codes.last().unwrap(), &json!(200), "{codes:?}");
}

/// In front of the replicas' ingresses, as a Kubernetes Service would be:
/// forwards each notification to the current target and answers what it
/// answered (502 when it died mid-request), recording each outcome; the
/// first `lose` answers of 200 become 502, as if the gateway had died after
/// the append and before its answer.
struct Front {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    outcomes: Arc<Mutex<Vec<(SocketAddr, u16)>>>,
}

impl Front {
    async fn start(lose: usize) -> Front {
        // Nothing listens on the discard port until a target is set.
        let target = Arc::new(Mutex::new(SocketAddr::from(([127, 0, 0, 1], 9))));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let (to, seen) = (Arc::clone(&target), Arc::clone(&outcomes));
        let app = axum::Router::new().route(
            "/notify",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (to, seen) = (Arc::clone(&to), Arc::clone(&seen));
                async move {
                    let addr = *to.lock().unwrap();
                    let status = reqwest::Client::new()
                        .post(format!("http://{addr}/notify"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(502);
                    let mut seen = seen.lock().unwrap();
                    let lost = seen.iter().filter(|(_, s)| *s == 200).count() < lose;
                    seen.push((addr, status));
                    let answer = if status == 200 && lost { 502 } else { status };
                    axum::http::StatusCode::from_u16(answer).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Front { addr, target, outcomes }
    }

    fn url(&self) -> String {
        format!("http://{}/notify", self.addr)
    }

    fn send_to(&self, addr: SocketAddr) {
        *self.target.lock().unwrap() = addr;
    }

    /// (target, its status) for each notification forwarded.
    fn outcomes(&self) -> Vec<(SocketAddr, u16)> {
        self.outcomes.lock().unwrap().clone()
    }
}

/// Polls `done` until it holds, failing the test after 10 s with `what`.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn lost_answers(backend: Backend) {
    let front = Front::start(2).await;
    let (rig, _redis) = rig(backend, |c| c.gateway.notify_url = Some(front.url())).await;
    front.send_to(rig.gateway.notify_addr());
    let mut stream = subscribe(&rig.channel, named("ledger")).await;
    paid_deposit(&rig, "ntf-l1", "ntf-ld-1", 400).await;
    let n = next(&mut stream, Duration::from_secs(10)).await.unwrap();
    assert_eq!(n.biz_order_no, "ntf-ld-1");
    ack(&rig.channel, "ledger", &n).await;
    assert!(
        next(&mut stream, Duration::from_millis(1500)).await.is_none(),
        "the retries were recognised"
    );
    let counted = stats(rig.gateway.notify_addr()).await;
    assert_eq!(counted["accepted"], 1, "{counted}");
    assert_eq!(counted["duplicates"], 2, "{counted}");
}

#[tokio::test]
async fn an_answer_lost_after_the_append_is_deduplicated_in_memory() {
    lost_answers(Backend::Memory).await;
}

#[tokio::test]
async fn an_answer_lost_after_the_append_is_deduplicated_on_redis() {
    lost_answers(Backend::Redis).await;
}

async fn redelivery_and_dead_letters(backend: Backend) {
    let (rig, _redis) = rig(backend, |c| {
        c.notify.visibility_timeout_ms = 300;
        c.notify.max_deliveries = 3;
    })
    .await;
    let addr = rig.gateway.notify_addr();
    let first = subscribe(
        &rig.channel,
        SubscribeRequest {
            consumer: "worker-1".into(),
            ..named("worker")
        },
    )
    .await;
    let mut first = first;
    post_order(&rig, addr, "rd-1").await;
    let got = next(&mut first, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.delivery_attempt, 1);
    // worker-1 dies without acknowledging.
    drop(first);
    let mut second = subscribe(
        &rig.channel,
        SubscribeRequest {
            consumer: "worker-2".into(),
            ..named("worker")
        },
    )
    .await;
    let started = Instant::now();
    let again = next(&mut second, Duration::from_secs(5)).await.expect("redelivered");
    assert_eq!(again.cursor, got.cursor);
    assert_eq!(again.delivery_attempt, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "not before the visibility timeout"
    );
    // worker-2 never acknowledges either: a third delivery, then the dead-letter list.
    let third = next(&mut second, Duration::from_secs(5)).await.expect("third delivery");
    assert_eq!(third.delivery_attempt, 3);
    assert!(
        next(&mut second, Duration::from_millis(1200)).await.is_none(),
        "given up after 3"
    );
    let mut notifications = client(&rig.channel);
    let dead = notifications
        .list_dead_letters(proto::ListDeadLettersRequest {
            subscriber: "worker".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dead.dead_letters.len(), 1);
    assert_eq!(dead.dead_letters[0].attempts, 3);
    assert_eq!(dead.dead_letters[0].notification.as_ref().unwrap().cursor, got.cursor);
    // Redrive: delivered again (to this subscriber only), acknowledged this time.
    let redriven = notifications
        .redrive(proto::RedriveRequest {
            subscriber: "worker".into(),
            cursors: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(redriven.redriven, 1);
    let back = next(&mut second, Duration::from_secs(5)).await.expect("redriven");
    assert_eq!(back.cursor, got.cursor);
    assert_eq!(back.delivery_attempt, 1);
    assert_eq!(ack(&rig.channel, "worker", &back).await, 1);
    let dead = notifications
        .list_dead_letters(proto::ListDeadLettersRequest {
            subscriber: "worker".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(dead.dead_letters.is_empty());
    assert!(next(&mut second, Duration::from_millis(800)).await.is_none());
}

#[tokio::test]
async fn unacknowledged_events_are_redelivered_then_dead_lettered_in_memory() {
    redelivery_and_dead_letters(Backend::Memory).await;
}

#[tokio::test]
async fn unacknowledged_events_are_redelivered_then_dead_lettered_on_redis() {
    redelivery_and_dead_letters(Backend::Redis).await;
}

async fn replay(backend: Backend) -> (Rig, Option<RedisServer>, Vec<String>) {
    let (rig, redis) = rig(backend, |_| {}).await;
    let addr = rig.gateway.notify_addr();
    for i in 0..5 {
        post_order(&rig, addr, &format!("rp-{i}")).await;
    }
    let listed = client(&rig.channel)
        .list_notifications(proto::ListNotificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let cursors: Vec<String> = listed
        .notifications
        .iter()
        .map(|l| l.notification.as_ref().unwrap().cursor.clone())
        .collect();
    assert_eq!(cursors.len(), 5);
    let mut stream = subscribe(
        &rig.channel,
        SubscribeRequest {
            from_cursor: Some(cursors[1].clone()),
            ..named("replayer")
        },
    )
    .await;
    let mut got = Vec::new();
    while let Some(n) = next(&mut stream, Duration::from_millis(800)).await {
        ack(&rig.channel, "replayer", &n).await;
        got.push(n.cursor);
    }
    assert_eq!(got, cursors[2..], "exactly the events after the cursor, in order");
    // A page at a time.
    let page = client(&rig.channel)
        .list_notifications(proto::ListNotificationsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.notifications.len(), 2);
    assert_eq!(page.next_cursor, cursors[1]);
    (rig, redis, cursors)
}

fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

#[tokio::test]
async fn replay_from_a_cursor_in_memory() {
    let (rig, _, _) = replay(Backend::Memory).await;
    let ahead = client(&rig.channel)
        .subscribe(SubscribeRequest {
            from_cursor: Some("99999999999999-0".into()),
            ..named("replayer")
        })
        .await
        .unwrap_err();
    assert_eq!(ahead.code(), Code::FailedPrecondition);
    assert_eq!(reason(&ahead), "CURSOR_UNKNOWN");
}

#[tokio::test]
async fn replay_from_a_cursor_and_an_expired_one_on_redis() {
    let (rig, redis, cursors) = replay(Backend::Redis).await;
    // What an append does once notify.retention_hours have passed: the oldest events trimmed, the
    // newest of them recorded (tests/notification_log.rs watches the real thing, with a short retention).
    let redis = redis.unwrap();
    let mut conn = redis.client().get_multiplexed_async_connection().await.unwrap();
    let trimmed: i64 = redis::cmd("XTRIM")
        .arg(format!("yg:ntf:{{{SYSID}}}:stream"))
        .arg("MINID")
        .arg(&cursors[3])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(trimmed, 3);
    let _: () = redis::cmd("SET")
        .arg(format!("yg:ntf:{{{SYSID}}}:trimmed"))
        .arg(&cursors[2])
        .query_async(&mut conn)
        .await
        .unwrap();
    let expired = client(&rig.channel)
        .subscribe(SubscribeRequest {
            from_cursor: Some(cursors[1].clone()),
            ..named("late")
        })
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition, "{expired:?}");
    assert_eq!(reason(&expired), "CURSOR_EXPIRED");
    let resume_from = expired.get_details_error_info().unwrap().metadata["resume_from"].clone();
    assert_eq!(
        resume_from, cursors[2],
        "the newest trimmed: everything after it is retained"
    );
    let mut stream = subscribe(
        &rig.channel,
        SubscribeRequest {
            from_cursor: Some(resume_from),
            ..named("late")
        },
    )
    .await;
    assert_eq!(
        next(&mut stream, Duration::from_secs(5)).await.unwrap().cursor,
        cursors[3]
    );
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let (rig, _) = rig(Backend::Memory, |_| {}).await;
    let mut notifications = client(&rig.channel);
    for (request, field) in [
        (named(""), "subscriber"),
        (named("has space"), "subscriber"),
        (
            SubscribeRequest {
                from_cursor: Some("yesterday".into()),
                ..named("ok")
            },
            "from_cursor",
        ),
        (
            SubscribeRequest {
                consumer: "yungate-redrive".into(),
                ..named("ok")
            },
            "consumer",
        ),
    ] {
        let err = notifications.subscribe(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let violations = err.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, field);
    }
    let too_many = notifications
        .ack(proto::AckRequest {
            subscriber: "ok".into(),
            cursors: vec!["1-0".into(); 1001],
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);

    // What a filter skips is acknowledged for the whole subscriber: one name, one filter.
    let _all = notifications.subscribe(named("billing")).await.unwrap();
    let narrow = SubscribeRequest {
        filter: Some(NotificationFilter {
            biz_order_no: "o-1".into(),
            ..Default::default()
        }),
        ..named("billing")
    };
    let err = notifications.subscribe(narrow).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "FILTER_MISMATCH");
}

#[tokio::test]
async fn stopping_ends_a_stalled_stream_with_unavailable() {
    let (rig, _redis, mut stream) = unread(Backend::Memory, "stalled", 1, 3).await;
    // The subscriber reads nothing: its channel is full and the fan-out waits on it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let Rig { gateway, .. } = rig;
    tokio::time::timeout(Duration::from_secs(10), gateway.stop())
        .await
        .expect("a stalled subscriber does not hold the gateway up")
        .unwrap();
    // What was already on its way may still arrive; then the stream ends with the status that
    // tells the subscriber to subscribe again (to another replica), never with OK.
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Err(status)) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert_eq!(reason(&status), "GATEWAY_SHUTTING_DOWN");
                break;
            }
            Ok(Ok(None)) => panic!("the stream ended with OK: the subscriber would not come back"),
            Err(_) => panic!("the stream did not end"),
        }
    }
}

async fn completion(backend: Backend) {
    let (rig, _redis) = rig(backend, |c| c.provider.request_timeout_ms = 300).await;
    let mut stream = subscribe(&rig.channel, named("ledger")).await;
    let direct = rig.direct();
    direct.individual("ntf-c1").await;
    direct.bind_card("ntf-c1", CARD).await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    orders
        .deposit_apply(deposit_request("ntf-cd-1", "ntf-c1", 700))
        .await
        .unwrap();
    // The provider takes the payment, then its answer never comes; its notification comes later.
    rig.set_faults(json!({"timeoutAfterCommit": {"OrderService.pay": 1.0}, "hangMs": 2000,
                          "notifications": {"delayMs": 1000}}))
        .await;
    let lost = orders
        .confirm_pay_sms(confirm_request("ntf-c1", "ntf-cd-1", "9999"))
        .await
        .unwrap_err();
    assert_eq!(reason(&lost), "OUTCOME_UNKNOWN", "{lost:?}");
    let n = next(&mut stream, Duration::from_secs(10))
        .await
        .expect("the notification");
    assert_eq!(order_result(&n).status, "OK");
    rig.set_faults(json!({})).await;
    // The retry replays what the notification said: no query, no second payment.
    let retried = orders
        .confirm_pay_sms(confirm_request("ntf-c1", "ntf-cd-1", "9999"))
        .await
        .unwrap();
    assert_eq!(retried.metadata().get("idempotent-recovered").unwrap(), "true");
    // 6.13 (l.2971): 4 交易成功.
    assert_eq!(
        retried.metadata().get("idempotent-recovered-order-status").unwrap(),
        "4"
    );
    let answer = retried.into_inner();
    assert_eq!(answer.pay_status, "success");
    assert_eq!(answer.biz_order_no, "ntf-cd-1");
    assert_eq!(rig.sent_for("pay"), 1);
    assert_eq!(rig.sent_for("getOrderDetail"), 0);
}

#[tokio::test]
async fn an_order_result_completes_an_unknown_outcome_in_memory() {
    completion(Backend::Memory).await;
}

#[tokio::test]
async fn an_order_result_completes_an_unknown_outcome_on_redis() {
    completion(Backend::Redis).await;
}

/// A subscriber streaming with room for `room` and `count` orders
/// notified (`<subscriber>-<i>`) that it has not read yet.
async fn unread(
    backend: Backend,
    subscriber: &str,
    room: u32,
    count: usize,
) -> (Rig, Option<RedisServer>, Streaming<Notification>) {
    // Long enough that nothing is redelivered while the subscriber dawdles.
    let (rig, redis) = rig(backend, |c| c.notify.visibility_timeout_ms = 10_000).await;
    let addr = rig.gateway.notify_addr();
    let stream = subscribe(
        &rig.channel,
        SubscribeRequest {
            max_in_flight: room,
            ..named(subscriber)
        },
    )
    .await;
    for i in 0..count {
        post_order(&rig, addr, &format!("{subscriber}-{i}")).await;
    }
    (rig, redis, stream)
}

async fn flow_control(backend: Backend) {
    let (rig, _redis, mut stream) = unread(backend, "slow", 2, 5).await;
    // The subscriber reads nothing: the gateway hands out two and keeps the rest in the store.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let listed = client(&rig.channel)
        .list_notifications(proto::ListNotificationsRequest {
            subscriber: "slow".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let states: Vec<i32> = listed.notifications.iter().map(|l| l.state).collect();
    let pending = proto::DeliveryState::Pending as i32;
    let waiting = proto::DeliveryState::Waiting as i32;
    assert_eq!(states, [pending, pending, waiting, waiting, waiting]);
    let mut got = Vec::new();
    while let Some(n) = next(&mut stream, Duration::from_millis(800)).await {
        ack(&rig.channel, "slow", &n).await;
        got.push(n.biz_order_no);
    }
    assert_eq!(got, ["slow-0", "slow-1", "slow-2", "slow-3", "slow-4"]);
}

#[tokio::test]
async fn a_slow_subscriber_holds_at_most_its_in_flight_bound_in_memory() {
    flow_control(Backend::Memory).await;
}

#[tokio::test]
async fn a_slow_subscriber_holds_at_most_its_in_flight_bound_on_redis() {
    flow_control(Backend::Redis).await;
}

/// A unix-socket proxy in front of Redis that forwards everything until the
/// gateway sends its notification append (a command naming a `seen:` key);
/// from then on it forwards requests but withholds every reply, so the
/// append is done in Redis and the gateway never learns it.
struct AppendSwallowingProxy {
    socket: std::path::PathBuf,
    swallowing: Arc<std::sync::atomic::AtomicBool>,
    _dir: tempfile::TempDir,
}

impl AppendSwallowingProxy {
    async fn start(redis: &RedisServer) -> AppendSwallowingProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("proxy.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let upstream = redis.socket().to_path_buf();
        let swallowing = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&swallowing);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::UnixStream::connect(&upstream).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = Arc::clone(&flag);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                        // Armed before the request goes on, so its reply cannot slip through.
                        if buf[..n].windows(5).any(|w| w == b"seen:") {
                            up.store(true, Ordering::SeqCst);
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let down = Arc::clone(&flag);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                        if down.load(Ordering::SeqCst) {
                            continue;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        AppendSwallowingProxy {
            socket,
            swallowing,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    fn swallowing(&self) -> bool {
        self.swallowing.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The issue's "gateway killed after the append but before answering": a
/// real `yungate serve` process is SIGKILLed once its append is in Redis and
/// before it can answer; the provider's retry reaches another replica, which
/// recognises it, and the subscriber gets the event once.
#[tokio::test]
async fn a_gateway_killed_between_append_and_answer_loses_and_doubles_nothing() {
    let redis = RedisServer::start();
    let proxy = AppendSwallowingProxy::start(&redis).await;
    let front = Front::start(0).await;
    let rig = Rig::on_store(Some(&redis), |c| c.gateway.notify_url = Some(front.url())).await;
    let mut doomed_config = rig.config.clone();
    doomed_config.store.redis_url = Some(yungate::provider::sensitive::Sensitive::new(proxy.url()));
    let mut doomed = support::replica::Replica::spawn(&doomed_config);
    front.send_to(doomed.notify_addr);

    // One earlier notification, straight to the surviving replica: the
    // append script is then in Redis's cache, so the doomed replica's first
    // EVALSHA is its append and not a NOSCRIPT round trip.
    post_order(&rig, rig.gateway.notify_addr(), "ntf-k-warm").await;
    let mut stream = subscribe(&rig.channel, named("ledger")).await;
    let mut conn = redis.client().get_multiplexed_async_connection().await.unwrap();
    assert_eq!(stream_length(&mut conn).await, 1);

    paid_deposit(&rig, "ntf-k1", "ntf-kill-1", 500).await;
    eventually("the append never came", async || {
        proxy.swallowing() && stream_length(&mut conn).await == 2
    })
    .await;
    // The append is in Redis; the doomed replica waits for its reply.
    front.send_to(rig.gateway.notify_addr());
    doomed.kill();

    let n = next(&mut stream, Duration::from_secs(10))
        .await
        .expect("the event stored by the dead replica is delivered");
    assert_eq!(n.biz_order_no, "ntf-kill-1");
    assert_eq!(n.delivery_attempt, 1);
    ack(&rig.channel, "ledger", &n).await;
    eventually("the retry never reached the survivor", async || {
        stats(rig.gateway.notify_addr()).await["duplicates"] == 1
    })
    .await;
    assert!(
        next(&mut stream, Duration::from_millis(800)).await.is_none(),
        "exactly once"
    );
    assert_eq!(stream_length(&mut conn).await, 2, "stored once");
    let outcomes = front.outcomes();
    assert_eq!(
        outcomes.first(),
        Some(&(doomed.notify_addr, 502)),
        "the doomed replica never answered: {outcomes:?}"
    );
    assert_eq!(outcomes.last(), Some(&(rig.gateway.notify_addr(), 200)), "{outcomes:?}");
}

async fn stream_length(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    redis::cmd("XLEN")
        .arg(format!("yg:ntf:{{{SYSID}}}:stream"))
        .query_async(conn)
        .await
        .unwrap()
}
