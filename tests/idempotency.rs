//! Exactly-once money calls through the real gateway and the real sandbox, on both stores: replays, key reuse, unknown outcomes resolved, leases, cancelled callers, Redis outages, many replicas.

mod support;

use std::time::{Duration, Instant};

use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;
use yungate::grpc::proto::{
    self, member_service_client::MemberServiceClient, order_service_client::OrderServiceClient,
};

use support::rig::{Backend, member, rig_on as rig};
use support::rig::{confirm_request, deposit_request as deposit};

fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

async fn replays_and_key_reuse(backend: Backend) {
    let (rig, _redis) = rig(backend, |_| {}).await;
    member(&rig, "idem-1").await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    let first = orders
        .deposit_apply(deposit("idem-dep-1", "idem-1", 10_000))
        .await
        .unwrap();
    assert!(first.metadata().get("idempotent-replayed").is_none());
    let first = first.into_inner();
    assert!(!first.order_no.is_empty());
    // The retry gets the original answer, byte for byte, and the provider never sees it.
    let again = orders
        .deposit_apply(deposit("idem-dep-1", "idem-1", 10_000))
        .await
        .unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.get_ref().encode_to_vec(), first.encode_to_vec());
    assert_eq!(rig.sent_for("depositApply"), 1);
    // The same bizOrderNo for another intent: refused, nothing sent.
    let other = orders
        .deposit_apply(deposit("idem-dep-1", "idem-1", 20_000))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert_eq!(reason(&other), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(other.get_details_error_info().unwrap().metadata["field"], "bizOrderNo");
    assert_eq!(rig.sent_for("depositApply"), 1);
    // The confirmation has a scope of its own: the same bizOrderNo is its key too.
    let confirm = || confirm_request("idem-1", "idem-dep-1", "9999");
    let paid = orders.confirm_pay_sms(confirm()).await.unwrap().into_inner();
    let paid_again = orders.confirm_pay_sms(confirm()).await.unwrap();
    assert_eq!(paid_again.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(paid_again.into_inner(), paid);
    assert_eq!(rig.sent_for("pay"), 1);
    let balance = orders
        .query_balance(proto::QueryBalanceRequest {
            biz_user_id: "idem-1".into(),
            account_set_no: "100000".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.all_amount, 10_000);
}

#[tokio::test]
async fn replays_and_key_reuse_in_memory() {
    replays_and_key_reuse(Backend::Memory).await;
}

#[tokio::test]
async fn replays_and_key_reuse_on_redis() {
    replays_and_key_reuse(Backend::Redis).await;
}

async fn refusals(backend: Backend) {
    let (rig, _redis) = rig(backend, |_| {}).await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    // A refusal whose signature covers its code (spec 3.3: a v1 error may
    // carry a sign) is final: stored and replayed.
    rig.set_faults(serde_json::json!({"v1ErrorSignature": "codeAndMessage"}))
        .await;
    let refused = orders
        .deposit_apply(deposit("idem-ref-1", "nobody", 100))
        .await
        .unwrap_err();
    let code = refused.code();
    let replayed = orders
        .deposit_apply(deposit("idem-ref-1", "nobody", 100))
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), code);
    assert_eq!(replayed.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(reason(&replayed), reason(&refused));
    assert_eq!(rig.sent_for("depositApply"), 1);
    // An unsigned v1 refusal proves nothing: not stored. The retry asks
    // getOrderDetail first (40000: it never landed), then sends once more.
    rig.set_faults(serde_json::json!({})).await;
    let unsigned = orders
        .deposit_apply(deposit("idem-ref-2", "nobody", 100))
        .await
        .unwrap_err();
    let info = unsigned.get_details_error_info().unwrap();
    assert_eq!(info.metadata["verified"], "false");
    let again = orders
        .deposit_apply(deposit("idem-ref-2", "nobody", 100))
        .await
        .unwrap_err();
    assert!(again.metadata().get("idempotent-replayed").is_none());
    assert_eq!(rig.sent_for("depositApply"), 3);
    assert_eq!(rig.sent_for("getOrderDetail"), 1);
}

#[tokio::test]
async fn refusals_in_memory() {
    refusals(Backend::Memory).await;
}

#[tokio::test]
async fn refusals_on_redis() {
    refusals(Backend::Redis).await;
}

async fn unknown_outcome_is_recovered(backend: Backend) {
    let (rig, _redis) = rig(backend, |c| c.provider.request_timeout_ms = 400).await;
    member(&rig, "idem-u").await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    // The sandbox commits the order, then never answers in time.
    rig.set_faults(serde_json::json!({"timeoutAfterCommit": {"OrderService.depositApply": 1.0}, "hangMs": 2000}))
        .await;
    let lost = orders
        .deposit_apply(deposit("idem-u-1", "idem-u", 10_000))
        .await
        .unwrap_err();
    assert_eq!(lost.code(), Code::DeadlineExceeded, "{lost:?}");
    assert_eq!(reason(&lost), "OUTCOME_UNKNOWN");
    rig.set_faults(serde_json::json!({})).await;
    // The retry learns what happened instead of sending the order again.
    let recovered = orders
        .deposit_apply(deposit("idem-u-1", "idem-u", 10_000))
        .await
        .unwrap();
    assert_eq!(recovered.metadata().get("idempotent-recovered").unwrap(), "true");
    // 6.13 status 1 未支付: the order exists and waits for its confirmation.
    assert_eq!(
        recovered.metadata().get("idempotent-recovered-order-status").unwrap(),
        "1"
    );
    // Recovered answers tell 未支付 (l.2968) apart from 进行中 (l.2973, "pending").
    let answer = recovered.into_inner();
    assert_eq!(
        (answer.biz_order_no.as_str(), answer.pay_status.as_deref()),
        ("idem-u-1", Some("unpaid"))
    );
    assert_eq!(rig.sent_for("depositApply"), 1);
    assert_eq!(rig.sent_for("getOrderDetail"), 1);
    // From now on it is a replay, still marked as recovered.
    let replay = orders
        .deposit_apply(deposit("idem-u-1", "idem-u", 10_000))
        .await
        .unwrap();
    assert_eq!(replay.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.metadata().get("idempotent-recovered").unwrap(), "true");
    assert_eq!(rig.sent_for("depositApply"), 1);
    // Exactly one order at the sandbox: the confirmation pays it once.
    let paid = orders
        .confirm_pay_sms(confirm_request("idem-u", "idem-u-1", "9999"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.pay_status, "success");
    let (all, _) = rig.direct().balance("idem-u").await;
    assert_eq!(all, 10_000);
}

#[tokio::test]
async fn unknown_outcome_is_recovered_in_memory() {
    unknown_outcome_is_recovered(Backend::Memory).await;
}

#[tokio::test]
async fn unknown_outcome_is_recovered_on_redis() {
    unknown_outcome_is_recovered(Backend::Redis).await;
}

async fn cancelled_caller(backend: Backend) {
    let (rig, _redis) = rig(backend, |_| {}).await;
    member(&rig, "idem-c").await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    rig.set_faults(serde_json::json!({"latencyMs": 800})).await;
    let mut request = tonic::Request::new(deposit("idem-c-1", "idem-c", 500));
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let gone = orders.deposit_apply(request).await.unwrap_err();
    assert_eq!(gone.code(), Code::DeadlineExceeded, "{gone:?}");
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    // The gateway answered before the deadline, and says the call goes on.
    if let Some(info) = gone.get_details_error_info() {
        assert_eq!(
            (info.reason.as_str(), info.metadata["cause"].as_str()),
            ("OUTCOME_UNKNOWN", "CALLER_DEADLINE")
        );
    }
    // The exchange finished without its caller and recorded the answer.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    rig.set_faults(serde_json::json!({})).await;
    let replay = orders.deposit_apply(deposit("idem-c-1", "idem-c", 500)).await.unwrap();
    assert_eq!(replay.metadata().get("idempotent-replayed").unwrap(), "true");
    assert!(!replay.get_ref().order_no.is_empty());
    assert_eq!(rig.sent_for("depositApply"), 1);
}

#[tokio::test]
async fn a_cancelled_caller_still_records_the_outcome_in_memory() {
    cancelled_caller(Backend::Memory).await;
}

#[tokio::test]
async fn a_cancelled_caller_still_records_the_outcome_on_redis() {
    cancelled_caller(Backend::Redis).await;
}

#[tokio::test]
async fn provider_latency_longer_than_the_lease_is_still_one_call() {
    // Two replicas share Redis; the lease (300 ms) is far shorter than the call (1.2 s).
    let (rig, _redis) = rig(Backend::Redis, |c| {
        c.idempotency.lease_ms = 300;
        c.store.timeout_ms = 100;
    })
    .await;
    member(&rig, "idem-l").await;
    let (second, channel) = rig.replica().await;
    rig.set_faults(serde_json::json!({"latencyMs": 1200})).await;
    let mut one = OrderServiceClient::new(rig.channel.clone());
    let mut two = OrderServiceClient::new(channel);
    let first = tokio::spawn(async move { one.deposit_apply(deposit("idem-l-1", "idem-l", 700)).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The first claim is renewed, so the second replica waits for it instead of sending.
    let waited = two.deposit_apply(deposit("idem-l-1", "idem-l", 700)).await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(waited.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(waited.get_ref().order_no, first.get_ref().order_no);
    assert_eq!(rig.sent_for("depositApply"), 1);
    second.stop().await.unwrap();
}

#[tokio::test]
async fn redis_down_fails_money_calls_closed_and_a_store_that_lost_its_data_waits_for_an_operator() {
    let (rig, redis) = rig(Backend::Redis, |c| c.store.timeout_ms = 300).await;
    let mut redis = redis.unwrap();
    member(&rig, "idem-r").await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    let mut members = MemberServiceClient::new(rig.channel.clone());
    redis.kill();
    let refused = orders
        .deposit_apply(deposit("idem-r-1", "idem-r", 100))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(reason(&refused), "STORE_UNAVAILABLE");
    assert!(refused.get_details_retry_info().is_some());
    assert_eq!(rig.sent_for("depositApply"), 0);
    // Queries still pass (and their rate limit falls back to this process).
    let info = members
        .get_member_info(proto::GetMemberInfoRequest {
            biz_user_id: "idem-r".into(),
        })
        .await;
    assert!(info.is_ok(), "{info:?}");
    redis.restart();
    // The test's Redis keeps nothing across a restart (`--save ""`), as one
    // without persistence would: the store lost its data, and money calls
    // wait for an operator, unsent.
    let mut lost = None;
    for _ in 0..50 {
        match orders.deposit_apply(deposit("idem-r-1", "idem-r", 100)).await {
            Ok(answer) => panic!("sent on a store that lost its data: {answer:?}"),
            Err(e) if reason(&e) == "STORE_UNAVAILABLE" => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => {
                lost = Some(e);
                break;
            }
        }
    }
    let lost = lost.expect("the gateway did not come back when Redis did");
    assert_eq!(
        (lost.code(), reason(&lost).as_str()),
        (Code::Unavailable, "STORE_NOT_INITIALISED"),
        "{lost:?}"
    );
    assert!(
        lost.message().contains("yungate store acknowledge-loss"),
        "{}",
        lost.message()
    );
    assert_eq!(rig.sent_for("depositApply"), 0);
    // The documented acknowledgement, by the command an operator runs.
    redis.acknowledge_loss();
    let done = orders.deposit_apply(deposit("idem-r-1", "idem-r", 100)).await;
    assert!(done.is_ok(), "{done:?}");
    assert_eq!(rig.sent_for("depositApply"), 1);
}

async fn caller_key(backend: Backend) {
    let (rig, _redis) = rig(backend, |_| {}).await;
    rig.direct().individual("idem-k").await;
    let mut members = MemberServiceClient::new(rig.channel.clone());
    let lock = |key: Option<&str>| {
        let mut r = tonic::Request::new(proto::LockMemberRequest {
            biz_user_id: "idem-k".into(),
        });
        if let Some(k) = key {
            r.metadata_mut().insert("idempotency-key", k.parse().unwrap());
        }
        r
    };
    members.lock_member(lock(Some("lock-1"))).await.unwrap();
    let again = members.lock_member(lock(Some("lock-1"))).await.unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(rig.sent_for("lockMember"), 1);
    // Without a key it is passed through as sent (the sandbox then refuses a second lock, or not).
    let _ = members.lock_member(lock(None)).await;
    assert_eq!(rig.sent_for("lockMember"), 2);
    // An unusable key is refused before anything is sent.
    let bad = members.lock_member(lock(Some(&"k".repeat(300)))).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(reason(&bad), "INVALID_IDEMPOTENCY_KEY");
    assert_eq!(rig.sent_for("lockMember"), 2);
}

#[tokio::test]
async fn a_caller_key_makes_any_mutation_idempotent_in_memory() {
    caller_key(Backend::Memory).await;
}

#[tokio::test]
async fn a_caller_key_makes_any_mutation_idempotent_on_redis() {
    caller_key(Backend::Redis).await;
}

async fn settling(backend: Backend) {
    // The provider is still working on the first attempt when the gateway
    // gives up (300 ms), and commits it at 1 s.
    let (rig, _redis) = rig(backend, |c| {
        c.provider.request_timeout_ms = 300;
        c.idempotency.settle_ms = 1500;
    })
    .await;
    member(&rig, "idem-s").await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    rig.set_faults(serde_json::json!({"processingMs": 1000})).await;
    let lost = orders
        .deposit_apply(deposit("idem-s-1", "idem-s", 300))
        .await
        .unwrap_err();
    assert_eq!(reason(&lost), "OUTCOME_UNKNOWN", "{lost:?}");
    rig.set_faults(serde_json::json!({})).await;
    // A retry now finds no trace of the order, yet must not send it again.
    let early = orders
        .deposit_apply(deposit("idem-s-1", "idem-s", 300))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::Unknown, "{early:?}");
    let info = early.get_details_error_info().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.metadata["cause"].as_str()),
        ("OUTCOME_UNKNOWN", "EARLIER_ATTEMPT_SETTLING")
    );
    // At most the whole window of the attempt: the wait for the layers
    // below (store timeout 500 ms + 1 s for a provider slot), the exchange
    // (300 ms) and settle_ms.
    let after = early.get_details_retry_info().unwrap().retry_delay.unwrap();
    assert!(
        after > Duration::ZERO && after <= Duration::from_millis(3300),
        "{after:?}"
    );
    assert_eq!(rig.sent_for("depositApply"), 1);
    // Once the first attempt has landed, the retry learns it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let recovered = orders.deposit_apply(deposit("idem-s-1", "idem-s", 300)).await.unwrap();
    assert_eq!(recovered.metadata().get("idempotent-recovered").unwrap(), "true");
    assert_eq!(rig.sent_for("depositApply"), 1);
}

#[tokio::test]
async fn a_retry_while_the_provider_may_still_act_sends_nothing_in_memory() {
    settling(Backend::Memory).await;
}

#[tokio::test]
async fn a_retry_while_the_provider_may_still_act_sends_nothing_on_redis() {
    settling(Backend::Redis).await;
}

#[tokio::test]
async fn a_request_meeting_one_in_flight_waits_then_is_aborted_with_retry_info() {
    let (rig, _redis) = rig(Backend::Memory, |c| c.idempotency.in_flight_wait_ms = 100).await;
    member(&rig, "idem-a").await;
    rig.set_faults(serde_json::json!({"latencyMs": 800})).await;
    let mut one = OrderServiceClient::new(rig.channel.clone());
    let mut two = OrderServiceClient::new(rig.channel.clone());
    let first = tokio::spawn(async move { one.deposit_apply(deposit("idem-a-1", "idem-a", 100)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let aborted = two.deposit_apply(deposit("idem-a-1", "idem-a", 100)).await.unwrap_err();
    assert_eq!(aborted.code(), Code::Aborted, "{aborted:?}");
    assert_eq!(reason(&aborted), "IDEMPOTENCY_IN_FLIGHT");
    assert!(aborted.get_details_retry_info().is_some());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let first = first.await.unwrap().unwrap().into_inner();
    let replay = two.deposit_apply(deposit("idem-a-1", "idem-a", 100)).await.unwrap();
    assert_eq!(replay.into_inner(), first);
    assert_eq!(rig.sent_for("depositApply"), 1);
}

#[tokio::test]
async fn a_refused_confirmation_leaves_the_order_open_for_a_corrected_one() {
    let (rig, _redis) = rig(Backend::Memory, |_| {}).await;
    member(&rig, "idem-p").await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    orders.deposit_apply(deposit("idem-p-1", "idem-p", 400)).await.unwrap();
    // Refusals are signed over their code: verified, final for other calls.
    rig.set_faults(serde_json::json!({"v1ErrorSignature": "codeAndMessage"}))
        .await;
    let confirm = |code: &str| confirm_request("idem-p", "idem-p-1", code);
    let wrong = orders.confirm_pay_sms(confirm("0000")).await.unwrap_err();
    assert_eq!(
        wrong.get_details_error_info().unwrap().metadata["verified"],
        "true",
        "{wrong:?}"
    );
    // Not IDEMPOTENCY_KEY_REUSED: the corrected code goes to the provider.
    let paid = orders.confirm_pay_sms(confirm("9999")).await.unwrap().into_inner();
    assert_eq!(paid.pay_status, "success");
    assert_eq!(rig.sent_for("pay"), 2);
    // The same with the spec's unsigned v1 refusals: the wrong code's outcome
    // is unknown, so the corrected confirmation first asks getOrderDetail
    // (6.13 status 1 未支付: the first never landed), then goes through.
    rig.set_faults(serde_json::json!({})).await;
    orders.deposit_apply(deposit("idem-p-2", "idem-p", 400)).await.unwrap();
    let second = |code: &str| confirm_request("idem-p", "idem-p-2", code);
    let wrong = orders.confirm_pay_sms(second("0000")).await.unwrap_err();
    assert_eq!(
        wrong.get_details_error_info().unwrap().metadata["verified"],
        "false",
        "{wrong:?}"
    );
    let paid = orders.confirm_pay_sms(second("9999")).await.unwrap().into_inner();
    assert_eq!(paid.pay_status, "success");
    assert_eq!(rig.sent_for("pay"), 4);
    assert_eq!(rig.sent_for("getOrderDetail"), 1);
    // Paid: any later confirmation of the order replays the success.
    let again = orders.confirm_pay_sms(second("1234")).await.unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(rig.sent_for("pay"), 4);
}

#[tokio::test]
async fn a_thousand_duplicates_over_two_replica_processes_make_one_provider_call() {
    let (rig, _redis) = rig(Backend::Redis, |_| {}).await;
    member(&rig, "idem-m").await;
    let replicas = [rig.replica_process(), rig.replica_process()];
    let channels = [replicas[0].channel().await, replicas[1].channel().await];
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let mut client = OrderServiceClient::new(channels[i % 2].clone());
        calls.spawn(async move {
            // ABORTED (still in flight) means: retry unchanged.
            for _ in 0..20 {
                match client.deposit_apply(deposit("idem-m-1", "idem-m", 900)).await {
                    Ok(answer) => return answer.into_inner().order_no,
                    Err(e) if e.code() == Code::Aborted && reason(&e) == "IDEMPOTENCY_IN_FLIGHT" => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            panic!("still in flight after 20 tries");
        });
    }
    let mut numbers = std::collections::BTreeSet::new();
    while let Some(order_no) = calls.join_next().await {
        numbers.insert(order_no.unwrap());
    }
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    assert_eq!(rig.sent_for("depositApply"), 1);
    // The sandbox's own count agrees: one 4.2.2 call, accepted.
    let counts = support::harness::sandbox_get(rig.sandbox.addr(), "/sandbox/calls").await;
    assert_eq!(counts["4.2.2"]["ok"], 1, "{counts}");
}

/// The memory store has a ceiling (`store.memory_max_records`): at it, a
/// new money call is refused unsent with STORE_UNAVAILABLE naming the
/// setting, a call it already records still replays, and queries go on.
#[tokio::test]
async fn the_memory_store_at_its_ceiling_refuses_new_money_calls_unsent() {
    let (rig, _redis) = rig(Backend::Memory, |c| c.store.memory_max_records = 2).await;
    member(&rig, "idem-cap").await;
    let mut orders = OrderServiceClient::new(rig.channel.clone());
    for n in ["idem-cap-1", "idem-cap-2"] {
        orders.deposit_apply(deposit(n, "idem-cap", 100)).await.unwrap();
    }
    let full = orders
        .deposit_apply(deposit("idem-cap-3", "idem-cap", 100))
        .await
        .unwrap_err();
    assert_eq!(
        (full.code(), reason(&full).as_str()),
        (Code::Unavailable, "STORE_UNAVAILABLE"),
        "{full:?}"
    );
    assert!(
        full.message().contains("store.memory_max_records"),
        "{}",
        full.message()
    );
    assert_eq!(rig.sent_for("depositApply"), 2, "nothing sent at the ceiling");
    let again = orders
        .deposit_apply(deposit("idem-cap-1", "idem-cap", 100))
        .await
        .unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").unwrap(), "true");
    orders
        .query_balance(proto::QueryBalanceRequest {
            biz_user_id: "idem-cap".into(),
            account_set_no: "100000".into(),
        })
        .await
        .unwrap();
}
