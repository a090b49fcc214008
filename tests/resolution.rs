//! Unknown outcomes resolved by the query the spec has for each call, through the real gateway and the real sandbox: member and card state, goods, freezes and transfers by the account's income and expense, batches by their items; confirmations keyed by what they confirm; a refusal of a resend never read as the outcome.

mod support;

use std::time::Duration;

use serde_json::{Value as Json, json};
use support::dynamic_grpc::call_answered;
use support::harness::{CARD, ESCROW, ID_NO, NAME, phone_of};
use support::rig::{Rig, member};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use yungate::provider::calls::Call;

/// The provider commits the call, then its answer is lost.
const LOST: u64 = 1_500;

async fn rig() -> Rig {
    Rig::on_store(None, |c| {
        c.provider.request_timeout_ms = 400;
        c.idempotency.settle_ms = 500;
    })
    .await
}

fn cause(status: &Status) -> (String, String) {
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("{status:?}"));
    (info.reason, info.metadata.get("cause").cloned().unwrap_or_default())
}

/// `Service.method` of a call, as the sandbox's faults name it.
fn name(call: Call) -> String {
    format!("{}.{}", call.spec().service, call.spec().method)
}

/// Sends `wire` while the provider commits it and loses the answer, then
/// again once the settle window has passed: the second is answered from
/// the query the call's resolution names, and the call was sent once.
async fn lost_then_recovered(rig: &Rig, call: Call, wire: Json, key: Option<&str>, query: &str) -> Json {
    let method = call.spec().method;
    let sent = rig.sent_for(method);
    let queried = rig.sent_for(query);
    rig.set_faults(json!({"timeoutAfterCommit": {name(call): 1.0}, "hangMs": LOST}))
        .await;
    let lost = call_answered(&rig.channel, call, wire.clone(), key).await.unwrap_err();
    assert_eq!(cause(&lost).0, "OUTCOME_UNKNOWN", "{call:?}: {lost:?}");
    rig.set_faults(json!({})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (metadata, answer) = call_answered(&rig.channel, call, wire, key)
        .await
        .unwrap_or_else(|e| panic!("{call:?}: {e:?}"));
    assert_eq!(
        metadata.get("idempotent-recovered").map(|v| v.to_str().unwrap()),
        Some("true"),
        "{call:?}"
    );
    assert_eq!(rig.sent_for(method), sent + 1, "{call:?} was sent again");
    assert!(rig.sent_for(query) > queried, "{call:?} did not ask {query}");
    answer
}

#[tokio::test]
async fn member_and_card_changes_are_read_back_not_sent_again() {
    let rig = rig().await;
    let direct = rig.direct();
    direct
        .call(
            Call::CreateMember,
            json!({"bizUserId": "rv-m", "memberType": 3, "source": 2}),
        )
        .await;
    // 4.1.5 setRealName; getMemberInfo's isIdentityChecked (5.8 l.2707). Sent again, the
    // provider would refuse with 30007 用户已经实名认证 a change that happened.
    let real_name = json!({"bizUserId": "rv-m", "name": NAME, "identityType": 1, "identityNo": ID_NO});
    lost_then_recovered(&rig, Call::SetRealName, real_name, Some("rn-1"), "getMemberInfo").await;
    // 4.1.3 bindPhone; isPhoneChecked and phone (l.2700, 2702).
    let phone = phone_of("rv-m");
    direct
        .call(
            Call::SendVerificationCode,
            json!({"bizUserId": "rv-m", "phone": phone, "verificationCodeType": 9}),
        )
        .await;
    let bind = json!({"bizUserId": "rv-m", "phone": phone, "verificationCode": "9999"});
    let answer = lost_then_recovered(&rig, Call::BindPhone, bind, Some("bp-1"), "getMemberInfo").await;
    assert_eq!(answer["phone"], phone.as_str());
    // 4.1.15 setSafeCard; queryBankCard's isSafeCard (5.9 l.2723).
    direct.bind_card("rv-m", CARD).await;
    let safe = json!({"bizUserId": "rv-m", "cardNo": CARD, "setSafeCard": true});
    lost_then_recovered(&rig, Call::SetSafeCard, safe, Some("sc-1"), "queryBankCard").await;
    // 4.1.18 lockMember; userState 5 锁定 (l.2695, 6.11).
    lost_then_recovered(
        &rig,
        Call::LockMember,
        json!({"bizUserId": "rv-m"}),
        Some("lk-1"),
        "getMemberInfo",
    )
    .await;
}

#[tokio::test]
async fn goods_freezes_transfers_and_batches_are_found_at_the_provider() {
    let rig = rig().await;
    member(&rig, "rv-o").await;
    let direct = rig.direct();
    direct.deposit("rv-o", "rv-dep", 5_000, CARD).await;
    // 4.2.13 entryGoods; 4.2.14 queryModifyGoods without dates (l.1979-1980).
    let goods = json!({"bizUserId": "rv-o", "goodsType": 1, "bizGoodsNo": "rv-g-1", "goodsName": "标",
                       "goodsParams": {"amount": 5000, "totalAmount": 5500, "annualYield": 0.1, "investmentHorizon": 12,
                                       "investmentHorizonScale": 2, "repayType": 1, "guaranteeType": 1}});
    let answer = lost_then_recovered(&rig, Call::EntryGoods, goods, None, "queryModifyGoods").await;
    assert_eq!(answer["bizGoodsNo"], "rv-g-1");
    // 4.2.15 freezeMoney; 4.2.22 queryInExpDetail, 5.14 bizOrderNo (l.2850).
    let freeze = json!({"bizUserId": "rv-o", "bizFreezenNo": "rv-f-1", "accountSetNo": ESCROW, "amount": 700});
    lost_then_recovered(&rig, Call::FreezeMoney, freeze, None, "queryInExpDetail").await;
    assert_eq!(direct.balance("rv-o").await.1, 700, "frozen once");
    // 4.2.19 applicationTransfer, found in the target's income and expense.
    let transfer = json!({"bizTransferNo": "rv-t-1", "sourceAccountSetNo": "2000000", "targetBizUserId": "rv-o",
                          "targetAccountSetNo": ESCROW, "amount": 300});
    let answer = lost_then_recovered(&rig, Call::ApplicationTransfer, transfer, None, "queryInExpDetail").await;
    assert_eq!(answer["bizTransferNo"], "rv-t-1");
    assert_eq!(direct.balance("rv-o").await.0, 5_300, "transferred once");
    // 4.2.7 batchAgentPaySimplify: each 5.11 item is an order getOrderDetail finds.
    direct.individual("rv-b").await;
    direct
        .call(
            Call::AgentCollectApplySimplify,
            json!({"payerId": "rv-o", "bizOrderNo": "rv-col", "amount": 1000, "fee": 0, "validateType": 1,
                   "tradeCode": "3001", "industryCode": "1010", "industryName": "x", "source": 2, "backUrl": direct.back_url,
                   "payMethod": {"BALANCE": [{"accountSetNo": ESCROW, "amount": 1000}]}}),
        )
        .await;
    direct.confirm("rv-o", "rv-col").await;
    let item =
        |no: &str| json!({"bizOrderNo": no, "bizUserId": "rv-b", "accountSetNo": ESCROW, "amount": 200, "fee": 0});
    let batch =
        json!({"bizBatchNo": "rv-bt-1", "tradeCode": "4001", "batchPayList": [item("rv-bi-1"), item("rv-bi-2")]});
    lost_then_recovered(&rig, Call::BatchAgentPaySimplify, batch, None, "getOrderDetail").await;
    assert_eq!(direct.balance("rv-b").await.0, 400, "paid once");
}

#[tokio::test]
async fn a_freeze_without_an_entry_is_not_proved_absent() {
    let rig = rig().await;
    member(&rig, "rv-a").await;
    rig.direct().deposit("rv-a", "rv-a-dep", 1_000, CARD).await;
    // 9000 其他错误 (l.3314) proves nothing: the outcome is unknown.
    rig.set_faults(json!({"errorRate": {"OrderService.freezeMoney": 1.0}}))
        .await;
    let freeze = json!({"bizUserId": "rv-a", "bizFreezenNo": "rv-a-f", "accountSetNo": ESCROW, "amount": 400});
    let unknown = call_answered(&rig.channel, Call::FreezeMoney, freeze.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(cause(&unknown).0, "OUTCOME_UNKNOWN", "{unknown:?}");
    rig.set_faults(json!({})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // No queryInExpDetail entry carries the number, but 5.14's bizOrderNo is optional
    // ("(新增) ... 否", l.2850): no proof it never happened, so nothing is sent again.
    let still = call_answered(&rig.channel, Call::FreezeMoney, freeze, None)
        .await
        .unwrap_err();
    let (reason, why) = cause(&still);
    assert_eq!(
        (reason.as_str(), why.as_str()),
        ("OUTCOME_UNKNOWN", "RESOLUTION_FAILED"),
        "{still:?}"
    );
    assert!(still.message().contains("ResolveOutcome"), "{}", still.message());
    assert_eq!(rig.sent_for("freezeMoney"), 1);
    assert_eq!(rig.direct().balance("rv-a").await.1, 0);
}

#[tokio::test]
async fn a_card_binding_is_keyed_by_its_trance_num() {
    let rig = rig().await;
    rig.direct().individual("rv-c").await;
    let applied = rig
        .direct()
        .call(
            Call::ApplyBindBankCard,
            json!({"bizUserId": "rv-c", "cardNo": CARD, "phone": phone_of("rv-c"), "name": NAME, "cardCheck": 3,
                   "identityType": 1, "identityNo": ID_NO}),
        )
        .await;
    // 4.1.11: "tranceNum ... 请求绑定银行卡接口返回的流水号" (l.709): the binding's own number.
    let confirm = |code: &str| json!({"bizUserId": "rv-c", "tranceNum": applied["tranceNum"], "phone": phone_of("rv-c"), "verificationCode": code});
    // A wrong code (50001) is not kept: the corrected one goes through under the same number.
    rig.set_faults(json!({"v1ErrorSignature": "codeAndMessage"})).await;
    let wrong = call_answered(&rig.channel, Call::BindBankCard, confirm("0000"), None)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
    let (first, _) = call_answered(&rig.channel, Call::BindBankCard, confirm("9999"), None)
        .await
        .unwrap();
    assert!(first.get("idempotent-replayed").is_none());
    // The retry is a replay: never a second binding the provider would refuse.
    let (again, _) = call_answered(&rig.channel, Call::BindBankCard, confirm("9999"), None)
        .await
        .unwrap();
    assert_eq!(again.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(rig.sent_for("bindBankCard"), 2);
}

#[tokio::test]
async fn a_refused_resend_is_not_the_outcome() {
    // A company's phone binding cannot be read back (5.6 has no phone field):
    // it is sent again, and the refusal of the resend (30024 已绑定手机, l.3259,
    // the earlier attempt's doing) is reported as unsure, not as the outcome.
    let rig = rig().await;
    let direct = rig.direct();
    direct
        .call(
            Call::CreateMember,
            json!({"bizUserId": "rv-co", "memberType": 2, "source": 2}),
        )
        .await;
    direct
        .call(
            Call::SetCompanyInfo,
            json!({"bizUserId": "rv-co", "companyBasicInfo": support::harness::company_info("ACME", "1234567890")}),
        )
        .await;
    let phone = phone_of("rv-co");
    direct
        .call(
            Call::SendVerificationCode,
            json!({"bizUserId": "rv-co", "phone": phone, "verificationCodeType": 9}),
        )
        .await;
    let bind = json!({"bizUserId": "rv-co", "phone": phone, "verificationCode": "9999"});
    rig.set_faults(json!({"timeoutAfterCommit": {"MemberService.bindPhone": 1.0}, "hangMs": LOST}))
        .await;
    let lost = call_answered(&rig.channel, Call::BindPhone, bind.clone(), Some("co-bp"))
        .await
        .unwrap_err();
    assert_eq!(cause(&lost).0, "OUTCOME_UNKNOWN");
    rig.set_faults(json!({})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let unsure = call_answered(&rig.channel, Call::BindPhone, bind, Some("co-bp"))
        .await
        .unwrap_err();
    assert_eq!(
        cause(&unsure),
        ("OUTCOME_UNKNOWN".to_owned(), "REFUSED_AFTER_UNKNOWN".to_owned()),
        "{unsure:?}"
    );
    assert!(unsure.message().contains("30024"), "{}", unsure.message());
}

/// A rig whose resolver looks every 100 ms, then each second.
async fn resolving(redis: Option<&support::redis::RedisServer>) -> Rig {
    Rig::on_store(redis, |c| {
        c.provider.request_timeout_ms = 400;
        c.idempotency.settle_ms = 500;
        c.resolver.enabled = true;
        c.resolver.interval_ms = 100;
        c.resolver.schedule_secs = vec![1];
    })
    .await
}

fn deposit(order: &str, user: &str) -> Json {
    json!({"bizOrderNo": order, "bizUserId": user, "accountSetNo": ESCROW, "amount": 300, "fee": 0, "validateType": 1,
           "industryCode": "1010", "industryName": "保险代理", "source": 2,
           "payMethod": {"REALNAMEPAY": {"bankCardNo": CARD, "amount": 300}}})
}

/// Waits until the resolver has asked getOrderDetail `n` times in all.
async fn queried(rig: &Rig, n: usize) {
    for _ in 0..100 {
        if rig.sent_for("getOrderDetail") >= n {
            // Let the record be written after the answer.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the resolver asked getOrderDetail {} times, not {n}",
        rig.sent_for("getOrderDetail")
    );
}

async fn nobody_retries(redis: Option<&support::redis::RedisServer>) {
    let rig = resolving(redis).await;
    member(&rig, "rz-1").await;
    // Landed, its answer lost: the resolver finds the order (4.2.21) and records it.
    rig.set_faults(json!({"timeoutAfterCommit": {"OrderService.depositApply": 1.0}, "hangMs": LOST}))
        .await;
    let lost = call_answered(&rig.channel, Call::DepositApply, deposit("rz-d-1", "rz-1"), None)
        .await
        .unwrap_err();
    assert_eq!(cause(&lost).0, "OUTCOME_UNKNOWN");
    // Never landed (9000 proves nothing, and nothing was made): the resolver proves it absent.
    rig.set_faults(json!({"errorRate": {"OrderService.depositApply": 1.0}}))
        .await;
    let refused = call_answered(&rig.channel, Call::DepositApply, deposit("rz-d-2", "rz-1"), None)
        .await
        .unwrap_err();
    assert_eq!(cause(&refused).0, "OUTCOME_UNKNOWN");
    rig.set_faults(json!({})).await;
    queried(&rig, 2).await;
    // The first's retry replays what the resolver recorded: no query, no send.
    let (replayed, answer) = call_answered(&rig.channel, Call::DepositApply, deposit("rz-d-1", "rz-1"), None)
        .await
        .unwrap();
    assert_eq!(replayed.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replayed.get("idempotent-recovered").unwrap(), "true");
    // 6.13 l.2968: 1 未支付.
    assert_eq!(answer["payStatus"], "unpaid");
    // The second's retry is sent, as a first attempt: the resolver released it.
    let (fresh, answer) = call_answered(&rig.channel, Call::DepositApply, deposit("rz-d-2", "rz-1"), None)
        .await
        .unwrap();
    assert!(fresh.get("idempotent-recovered").is_none() && fresh.get("idempotent-replayed").is_none());
    assert!(answer["orderNo"].as_str().is_some_and(|n| !n.is_empty()), "{answer}");
    assert_eq!(rig.sent_for("depositApply"), 3);
    assert_eq!(rig.sent_for("getOrderDetail"), 2, "the retries asked nothing");
}

#[tokio::test]
async fn an_unknown_outcome_nobody_retries_is_resolved_in_memory() {
    nobody_retries(None).await;
}

#[tokio::test]
async fn an_unknown_outcome_nobody_retries_is_resolved_on_redis() {
    let redis = support::redis::RedisServer::start();
    nobody_retries(Some(&redis)).await;
}

#[tokio::test]
async fn two_replicas_share_the_sweep_without_double_queries() {
    let redis = support::redis::RedisServer::start();
    let rig = resolving(Some(&redis)).await;
    let (second, _) = rig.replica().await;
    member(&rig, "rz-2").await;
    rig.set_faults(json!({"timeoutAfterCommit": {"OrderService.depositApply": 1.0}, "hangMs": LOST}))
        .await;
    let orders: Vec<String> = (0..4).map(|i| format!("rz-2-{i}")).collect();
    for order in &orders {
        let lost = call_answered(&rig.channel, Call::DepositApply, deposit(order, "rz-2"), None)
            .await
            .unwrap_err();
        assert_eq!(cause(&lost).0, "OUTCOME_UNKNOWN");
    }
    rig.set_faults(json!({})).await;
    queried(&rig, orders.len()).await;
    // Two resolvers, one sweep at a time: each order asked about once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.sent_for("getOrderDetail"), orders.len());
    for order in &orders {
        let (metadata, _) = call_answered(&rig.channel, Call::DepositApply, deposit(order, "rz-2"), None)
            .await
            .unwrap();
        assert_eq!(metadata.get("idempotent-replayed").unwrap(), "true", "{order}");
    }
    second.stop().await.unwrap();
}

#[tokio::test]
async fn the_timeline_tells_what_happened_and_holds_no_personal_data() {
    use yungate::grpc::proto::GetTimelineRequest;
    use yungate::grpc::proto::outcome_service_client::OutcomeServiceClient;
    // The gateway receives its own notifications.
    let rig = Rig::on_store(None, |c| {
        c.provider.request_timeout_ms = 400;
        c.idempotency.settle_ms = 500;
        c.gateway.notify_url = None;
    })
    .await;
    member(&rig, "tl-1").await;
    let recovered = lost_then_recovered(
        &rig,
        Call::DepositApply,
        deposit("tl-d-1", "tl-1"),
        None,
        "getOrderDetail",
    )
    .await;
    assert_eq!(recovered["payStatus"], "unpaid");
    let confirm =
        json!({"bizUserId": "tl-1", "bizOrderNo": "tl-d-1", "verificationCode": "9999", "consumerIp": "127.0.0.1"});
    call_answered(&rig.channel, Call::PayBackendSms, confirm, None)
        .await
        .unwrap();
    let mut outcomes = OutcomeServiceClient::new(rig.channel.clone());
    let mut events = Vec::new();
    for _ in 0..100 {
        events = outcomes
            .get_timeline(GetTimelineRequest {
                number: "tl-d-1".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .events;
        if events.iter().any(|e| e.kind == "notification") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.rpc.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("attempt", "DepositApply", "unknown"),
            ("resolution", "DepositApply", "landed"),
            ("attempt", "ConfirmPaySms", "ok"),
            ("notification", "", "OK"),
        ],
        "{events:?}"
    );
    // 6.13 l.2968 / l.2970: 1 未支付 when recovered, 4 交易成功 when notified.
    assert_eq!((events[1].order_status, events[3].order_status), (1, 4));
    assert_eq!(events[1].actor, "retry");
    assert!(events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    let text = format!("{events:?}");
    for personal in [CARD, ID_NO, NAME, phone_of("tl-1").as_str()] {
        assert!(!text.contains(personal), "{text}");
    }
}

#[tokio::test]
async fn an_outcome_no_query_settles_is_settled_by_an_operator_named_by_a_rule() {
    use yungate::config::AccessRule;
    use yungate::grpc::proto::outcome_service_client::OutcomeServiceClient;
    use yungate::grpc::proto::{GetTimelineRequest, ResolveOutcomeRequest, SettledOutcome};
    const OPS: &str = "spiffe://cluster.local/ns/finance/sa/ops";
    const SHOP: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
    let rig = Rig::on_store(None, |c| {
        c.provider.request_timeout_ms = 400;
        c.idempotency.settle_ms = 500;
        c.access.identity = yungate::config::IdentitySource::Header;
        c.access.rules = vec![
            AccessRule {
                callers: vec![SHOP.into()],
                rpcs: vec![
                    "yungate.v1.OrderService/*".into(),
                    "yungate.v1.OutcomeService/GetTimeline".into(),
                ],
                subscribers: vec![],
            },
            AccessRule {
                callers: vec![OPS.into()],
                rpcs: vec!["yungate.v1.OutcomeService/*".into()],
                subscribers: vec![],
            },
        ];
    })
    .await;
    member(&rig, "ov-1").await;
    rig.direct().deposit("ov-1", "ov-dep", 1_000, CARD).await;
    rig.direct()
        .call(
            Call::FreezeMoney,
            json!({"bizUserId": "ov-1", "bizFreezenNo": "ov-f", "accountSetNo": ESCROW, "amount": 600}),
        )
        .await;
    let unfreeze = || yungate::grpc::proto::UnfreezeMoneyRequest {
        biz_user_id: "ov-1".into(),
        biz_freeze_no: "ov-f".into(),
        account_set_no: ESCROW.into(),
        amount: 200,
    };
    let keyed = |message| {
        let mut request = as_caller(SHOP, message);
        request
            .metadata_mut()
            .insert("idempotency-key", "part-1".parse().unwrap());
        request
    };
    let mut orders = yungate::grpc::proto::order_service_client::OrderServiceClient::new(rig.channel.clone());
    // The provider never answers this unfreeze; no query tells one part of a freeze from another.
    rig.set_faults(json!({"errorRate": {"OrderService.unfreezeMoney": 1.0}}))
        .await;
    let lost = orders.unfreeze_money(keyed(unfreeze())).await.unwrap_err();
    assert_eq!(cause(&lost).0, "OUTCOME_UNKNOWN");
    rig.set_faults(json!({})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stuck = orders.unfreeze_money(keyed(unfreeze())).await.unwrap_err();
    assert_eq!(cause(&stuck), ("OUTCOME_UNKNOWN".to_owned(), "NO_QUERY".to_owned()));
    // An operator looked at the freeze's entries (nothing released) and settles it.
    let mut outcomes = OutcomeServiceClient::new(rig.channel.clone());
    let settle = || ResolveOutcomeRequest {
        rpc: "UnfreezeMoney".into(),
        number: "ov-f".into(),
        idempotency_key: "part-1".into(),
        outcome: SettledOutcome::Absent as i32,
        reason: "QueryInExpDetail shows no release of ov-f after 10:02".into(),
    };
    // Only a caller a rule names for it.
    let denied = outcomes.resolve_outcome(as_caller(SHOP, settle())).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    outcomes.resolve_outcome(as_caller(OPS, settle())).await.unwrap();
    // The caller's retry sends it now, without asking anyone again.
    orders.unfreeze_money(keyed(unfreeze())).await.unwrap();
    assert_eq!(rig.direct().balance("ov-1").await.1, 400);
    // Done: nothing left to settle.
    let again = outcomes.resolve_outcome(as_caller(OPS, settle())).await.unwrap_err();
    assert_eq!(cause(&again).0, "NO_UNKNOWN_OUTCOME");
    let events = outcomes
        .get_timeline(as_caller(SHOP, GetTimelineRequest { number: "ov-f".into() }))
        .await
        .unwrap()
        .into_inner()
        .events;
    let over = events
        .iter()
        .find(|e| e.kind == "override")
        .expect("the override is in the timeline");
    assert_eq!((over.actor.as_str(), over.outcome.as_str()), (OPS, "absent"));
    assert!(over.detail.contains("QueryInExpDetail"));
}

/// `message` as a mesh sidecar passes it on for `who` (`x-forwarded-client-cert`).
fn as_caller<T>(who: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-forwarded-client-cert", format!("URI={who}").parse().unwrap());
    request
}
