//! Bad input from callers gets INVALID_ARGUMENT with a readable, bounded BadRequest, before anything is sent or paid for with RSA work; nothing panics.

mod support;

use std::time::{Duration, Instant};

use prost::Message;
use serde_json::json;
use support::dynamic_grpc;
use support::rig::Rig;
use yungate::grpc::proto;
use yungate::grpc::status::MAX_VIOLATIONS;
use yungate::provider::calls::Call;
use yungate::provider::formats::MAX_AMOUNT_FEN;

const CARD: &str = "6228480402637874214";

use support::dynamic_grpc::violations as bad_request;

/// A split rule with `below` levels of split rules under it.
fn nested_split_rule(below: usize) -> proto::SplitRule {
    let rule = |children: Vec<proto::SplitRule>| proto::SplitRule {
        biz_user_id: "s".into(),
        amount: 1,
        split_rule_list: children,
        ..Default::default()
    };
    (0..below).fold(rule(Vec::new()), |inner, _| rule(vec![inner]))
}

#[tokio::test]
async fn int64_max_amounts_are_invalid_argument_not_a_panic() {
    let rig = Rig::start(|_| {}, |_| {}).await;
    let consume = json!({"payerId": "p", "recieverId": "r", "bizOrderNo": "o", "amount": i64::MAX, "fee": 0,
                         "industryCode": "1010", "industryName": "x", "source": 1,
                         "payMethod": {"BALANCE": [{"accountSetNo": "100000", "amount": i64::MAX},
                                                   {"accountSetNo": "100000", "amount": 1}]},
                         "splitRule": [{"bizUserId": "s", "amount": i64::MAX, "fee": i64::MAX}]});
    let status = dynamic_grpc::call(&rig.channel, Call::ConsumeApply, consume)
        .await
        .unwrap_err();
    let v = bad_request(&status);
    let bound = format!("must be at most {MAX_AMOUNT_FEN} fen");
    for field in [
        "amount",
        "pay_method.balance[0].amount",
        "split_rule[0].amount",
        "split_rule[0].fee",
    ] {
        assert!(
            v.iter().any(|(f, d)| f == field && *d == bound),
            "{field} should say {bound}: {v:?}"
        );
    }
    // The wrapped sum of the parts equals nothing: no "amounts add up" claim is made from a wrapped total.
    assert!(!v.iter().any(|(_, d)| d.contains("add up to -")), "{v:?}");
    assert_eq!(rig.sent_count(), 0);
}

#[tokio::test]
async fn invalid_utf8_and_runaway_nesting_are_invalid_argument() {
    let rig = Rig::start(|_| {}, |_| {}).await;
    // CreateMemberRequest field 1 (biz_user_id), a string holding the bytes FF FE.
    let status = dynamic_grpc::raw(
        &rig.channel,
        "yungate.v1.MemberService",
        "CreateMember",
        vec![0x0a, 0x02, 0xff, 0xfe],
    )
    .await
    .unwrap_err();
    let v = bad_request(&status);
    assert!(v[0].1.contains("cannot be decoded"), "{v:?}");
    assert!(
        status.message().contains("UTF-8") || status.message().contains("utf-8"),
        "{}",
        status.message()
    );
    // Split rules nested 200 deep: past prost's recursion limit.
    let request = proto::ConsumeApplyRequest {
        payer_id: "p".into(),
        split_rule: vec![nested_split_rule(200)],
        ..Default::default()
    };
    let status = dynamic_grpc::raw(
        &rig.channel,
        "yungate.v1.OrderService",
        "ConsumeApply",
        request.encode_to_vec(),
    )
    .await
    .unwrap_err();
    let v = bad_request(&status);
    assert!(v[0].1.contains("cannot be decoded"), "{v:?}");
    // Six levels decode, but split rules nest at most five deep.
    let rule = nested_split_rule(5);
    let mut orders = proto::order_service_client::OrderServiceClient::new(rig.channel.clone());
    let status = orders
        .consume_apply(proto::ConsumeApplyRequest {
            payer_id: "p".into(),
            receiver_id: "r".into(),
            biz_order_no: "o".into(),
            amount: 10,
            split_rule: vec![rule],
            industry_code: "1010".into(),
            industry_name: "x".into(),
            source: proto::Source::Pc as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let v = bad_request(&status);
    assert!(
        v.iter().any(|(_, d)| d == "split rules nest at most 5 levels deep"),
        "{v:?}"
    );
    assert_eq!(rig.sent_count(), 0);
}

#[tokio::test]
async fn a_field_that_travels_encrypted_is_bounded_before_any_rsa_work() {
    let rig = Rig::start(|_| {}, |_| {}).await;
    // A passport number (identityType 2: no ID-card format to check) of 100 000 bytes
    // would cost some 900 private-key operations to encrypt.
    let mut members = proto::member_service_client::MemberServiceClient::new(rig.channel.clone());
    let status = members
        .set_real_name(proto::SetRealNameRequest {
            biz_user_id: "u".into(),
            name: "王小二".into(),
            identity_type: proto::IdentityType::Passport as i32,
            identity_no: "E".repeat(100_000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let v = bad_request(&status);
    assert_eq!(
        v,
        [(
            "identity_no".to_owned(),
            "must be at most 64 bytes (it travels RSA-encrypted)".to_owned()
        )]
    );
    assert_eq!(rig.sent_count(), 0);
}

#[tokio::test]
async fn ten_thousand_batch_items_are_refused_before_any_rsa_work() {
    let rig = Rig::start(|_| {}, |_| {}).await;
    let item = |i: usize| proto::BatchPayItem {
        biz_order_no: format!("b-{i}"),
        biz_user_id: "u".into(),
        account_set_no: "100000".into(),
        amount: 100,
        pay_to_bank_card_info: Some(proto::PayToBankCardInfo {
            bank_card_no: CARD.into(),
            amount: 100,
            ..Default::default()
        }),
        ..Default::default()
    };
    let request = proto::BatchAgentPayRequest {
        biz_batch_no: "big".into(),
        batch_pay_list: (0..10_000).map(item).collect(),
        trade_code: proto::TradeCode::PayPurchase as i32,
        ..Default::default()
    };
    let mut orders = proto::order_service_client::OrderServiceClient::new(rig.channel.clone());
    let started = Instant::now();
    let status = orders.batch_agent_pay(request).await.unwrap_err();
    let elapsed = started.elapsed();
    let v = bad_request(&status);
    assert_eq!(
        v[0],
        (
            "batch_pay_list".to_owned(),
            "must hold at most 100 entries, has 10000".to_owned()
        )
    );
    assert_eq!(rig.sent_count(), 0);
    // 10,000 RSA-1024 encryptions alone would take seconds; this is a generous sanity bound, not a benchmark.
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

#[tokio::test]
async fn a_hundred_violations_come_back_bounded_and_readable() {
    let rig = Rig::start(|_| {}, |_| {}).await;
    // 100 items, each missing its order number, receiver and account set, with a bad fee.
    let items: Vec<_> = (0..100)
        .map(|_| proto::BatchPayItem {
            amount: 10,
            fee: 20,
            ..Default::default()
        })
        .collect();
    let mut orders = proto::order_service_client::OrderServiceClient::new(rig.channel.clone());
    let status = orders
        .batch_agent_pay(proto::BatchAgentPayRequest {
            biz_batch_no: "many".into(),
            batch_pay_list: items,
            trade_code: proto::TradeCode::PayPurchase as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    // A default tonic client read it: the trailer stayed under its metadata limit.
    let v = bad_request(&status);
    assert_eq!(v.len(), MAX_VIOLATIONS + 1, "{v:?}");
    assert_eq!(v[0].0, "batch_pay_list[0].fee");
    assert_eq!(v[MAX_VIOLATIONS].1, "380 more violations not listed");
    assert!(status.message().len() < 1_000, "{}", status.message());
    assert!(status.message().contains("and 395 more"), "{}", status.message());
}
