//! The sandbox's order calls over HTTP via `SoaClient`: money flows, the spec's worked examples, and refusals.

mod support;

use serde_json::json;
use support::harness::{CARD, ESCROW, Harness};
use yungate::provider::calls::Call;

const OTHER_CARD: &str = "6228490000000000017";

fn consume(order: &str, payer: &str, receiver: &str, amount: i64, url: &str) -> serde_json::Value {
    json!({"bizOrderNo": order, "payerId": payer, "recieverId": receiver, "amount": amount, "fee": 0,
           "validateType": 1, "backUrl": url, "industryCode": "1010", "industryName": "保险代理", "source": 2,
           "payMethod": {"BALANCE": [{"accountSetNo": ESCROW, "amount": amount}]}})
}

#[tokio::test]
async fn deposit_confirmed_by_sms_credits_the_balance_and_notifies() {
    let h = Harness::start().await;
    h.individual("alice").await;
    h.bind_card("alice", CARD).await;
    h.deposit("alice", "dep-1", 10_000, CARD).await;
    assert_eq!(h.balance("alice").await, (10_000, 0));
    assert_eq!(h.status("alice", "dep-1").await, 4);
    let got = h.receiver.wait_for(1).await;
    let n = &got[0].body;
    assert_eq!(
        (n.service.as_str(), n.method.as_str(), n.status.as_deref()),
        ("OrderService", "pay", Some("OK"))
    );
    assert_eq!(n.return_value["bizOrderNo"], "dep-1");
    assert_eq!(n.return_value["amount"], 10_000);
    assert_eq!(n.return_value["buyerBizUserId"], "alice");
    // Confirming twice is refused: the order is no longer unpaid.
    let code = h
        .refused(
            Call::PayBackendSms,
            json!({"bizUserId": "alice", "bizOrderNo": "dep-1", "verificationCode": "9999", "consumerIp": "1.1.1.1"}),
        )
        .await;
    assert_eq!(code, "40004");
}

#[tokio::test]
async fn order_apply_refusals_carry_their_codes() {
    let h = Harness::start().await;
    h.individual("bob").await;
    h.bind_card("bob", CARD).await;
    let base = json!({"bizOrderNo": "d", "bizUserId": "bob", "accountSetNo": ESCROW, "amount": 100, "fee": 0,
        "backUrl": h.receiver.url, "industryCode": "1010", "industryName": "x", "source": 2,
        "payMethod": {"REALNAMEPAY": {"bankCardNo": CARD, "amount": 100}}});
    let with = |k: &str, v: serde_json::Value| {
        let mut p = base.clone();
        p[k] = v;
        p
    };
    let cases = [
        (with("fee", json!(101)), "40016"),
        (
            with("payMethod", json!({"REALNAMEPAY": {"bankCardNo": CARD, "amount": 99}})),
            "40005",
        ),
        (with("accountSetNo", json!("999")), "30019"),
        (
            with(
                "payMethod",
                json!({"BALANCE": [{"accountSetNo": ESCROW, "amount": 100}]}),
            ),
            "40015",
        ),
        (with("validateType", json!(0)), "40028"),
        (with("bizUserId", json!("nobody")), "30001"),
        (
            with("summary", json!("一二三四五六七八九十一二三四五六七八九十一")),
            "10000",
        ),
        (with("backUrl", json!("http://x/#frag")), "10000"),
        (with("ordErexpireDatetime", json!("2000-01-01 00:00:00")), "10000"),
        (
            with(
                "payMethod",
                json!({"REALNAMEPAY": {"bankCardNo": OTHER_CARD, "amount": 100}}),
            ),
            "30016",
        ),
    ];
    for (param, code) in cases {
        assert_eq!(h.refused(Call::DepositApply, param.clone()).await, code, "{param}");
    }
    // A member without a phone cannot pay.
    h.call(
        Call::CreateMember,
        json!({"bizUserId": "nophone", "memberType": 3, "source": 1}),
    )
    .await;
    assert_eq!(
        h.refused(Call::DepositApply, with("bizUserId", json!("nophone"))).await,
        "30021"
    );
    h.call(Call::DepositApply, base.clone()).await;
    assert_eq!(h.refused(Call::DepositApply, base.clone()).await, "40017");
    let wrong_code =
        json!({"bizUserId": "bob", "bizOrderNo": "d", "verificationCode": "0000", "consumerIp": "1.1.1.1"});
    assert_eq!(h.refused(Call::PayBackendSms, wrong_code).await, "50001");
    let not_payer = json!({"bizUserId": "nobody", "bizOrderNo": "d", "verificationCode": "9999", "consumerIp": "1"});
    assert_eq!(h.refused(Call::PayBackendSms, not_payer).await, "40022");
    assert_eq!(
        h.refused(Call::GetOrderDetail, json!({"bizUserId": "bob", "bizOrderNo": "zz"}))
            .await,
        "40000"
    );
}

#[tokio::test]
async fn spec_5_3_multi_level_split_gives_the_listed_balances() {
    let h = Harness::start().await;
    for id in ["payer", "shop", "10000", "10001", "10002", "10003", "10004"] {
        h.individual(id).await;
    }
    h.bind_card("payer", CARD).await;
    h.deposit("payer", "dep-payer", 1000, CARD).await;
    let mut p = consume("c-5.3", "payer", "shop", 1000, &h.receiver.url);
    p["splitRule"] = json!([{"amount": 1000, "fee": 10, "remark": "消费一级分账", "bizUserId": "10000", "splitRuleList": [
        {"amount": 500, "fee": 0, "remark": "二级 001", "bizUserId": "10001", "splitRuleList": [
            {"amount": 100, "fee": 0, "remark": "三级 003", "bizUserId": "10003"}]},
        {"amount": 200, "fee": 0, "remark": "二级 002", "bizUserId": "10002", "splitRuleList": [
            {"amount": 50, "fee": 0, "remark": "三级 004", "bizUserId": "10004"}]}]}]);
    h.call(Call::ConsumeApply, p).await;
    h.confirm("payer", "c-5.3").await;
    let expected = [
        ("10000", 290),
        ("10001", 400),
        ("10002", 150),
        ("10003", 100),
        ("10004", 50),
        ("shop", 0),
        ("payer", 0),
    ];
    for (id, balance) in expected {
        assert_eq!(h.balance(id).await.0, balance, "{id}");
    }
    assert_eq!(h.platform("100001").await, 10, "the platform's level-1 fee");
    // 10000's journal shows the example's entries, newest first: +1000 -10 -500 -200 (the platform's 10 is its fee).
    let detail = h
        .call(
            Call::QueryInExpDetail,
            json!({"bizUserId": "10000", "accountSetNo": ESCROW, "startPosition": 1, "queryNum": 10}),
        )
        .await;
    assert_eq!(detail["totalNum"], 1);
    assert_eq!(detail["inExpDetail"][0]["chgAmount"], 290);
}

#[tokio::test]
async fn spec_5_11_batch_agent_pay_gives_the_listed_balances() {
    let h = Harness::start().await;
    for id in ["buyer", "userA", "userB"] {
        h.individual(id).await;
    }
    h.bind_card("buyer", CARD).await;
    h.deposit("buyer", "dep-b", 30_000, CARD).await;
    h.call(
        Call::AgentCollectApplySimplify,
        json!({"bizOrderNo": "col-1", "payerId": "buyer", "tradeCode": "3001", "amount": 30_000, "fee": 0,
               "validateType": 1, "backUrl": h.receiver.url, "industryCode": "1010", "industryName": "x", "source": 2,
               "payMethod": {"BALANCE": [{"accountSetNo": ESCROW, "amount": 30_000}]}}),
    )
    .await;
    h.confirm("buyer", "col-1").await;
    assert_eq!(h.balance("buyer").await.0, 0);
    h.call(
        Call::BatchAgentPaySimplify,
        json!({"bizBatchNo": "batch-1", "tradeCode": "4001", "batchPayList": [
            {"bizOrderNo": "pay-A", "bizUserId": "userA", "accountSetNo": ESCROW, "backUrl": h.receiver.url, "amount": 10_000, "fee": 500},
            {"bizOrderNo": "pay-B", "bizUserId": "userB", "accountSetNo": ESCROW, "backUrl": h.receiver.url, "amount": 20_000, "fee": 1200}]}),
    )
    .await;
    assert_eq!(h.balance("userA").await.0, 9500);
    assert_eq!(h.balance("userB").await.0, 18_800);
    // The platform collects both fees: +500 +1200 (the spec prints "+500 -1200").
    assert_eq!(h.platform("100001").await, 1700);
    assert_eq!(h.platform("100004").await, 0, "the collected pool is empty again");
    // One notification per sub-order, plus the deposit and the collect.
    let got = h.receiver.wait_for(4).await;
    let mut paid: Vec<String> = got
        .iter()
        .map(|r| r.body.return_value["bizOrderNo"].as_str().unwrap().to_owned())
        .filter(|n| n.starts_with("pay-"))
        .collect();
    paid.sort();
    assert_eq!(paid, ["pay-A", "pay-B"]);
    // Nothing left to pay out: a further agent pay is refused.
    let more = json!({"bizOrderNo": "pay-C", "bizUserId": "userA", "accountSetNo": ESCROW, "backUrl": h.receiver.url,
                      "amount": 1, "fee": 0, "tradeCode": "4001"});
    assert_eq!(h.refused(Call::SignalAgentPaySimplify, more.clone()).await, "40014");
    let mut wrong_code = more;
    wrong_code["tradeCode"] = json!("3001");
    assert_eq!(h.refused(Call::SignalAgentPaySimplify, wrong_code).await, "40010");
    assert_eq!(
        h.refused(
            Call::BatchAgentPaySimplify,
            json!({"bizBatchNo": "batch-1", "tradeCode": "4001", "batchPayList": []})
        )
        .await,
        "40017"
    );
}

#[tokio::test]
async fn withdraw_pays_out_to_the_card_and_lowers_the_reserve_fund() {
    let h = Harness::start().await;
    h.individual("carol").await;
    h.bind_card("carol", CARD).await;
    h.deposit("carol", "dep-c", 5000, CARD).await;
    let before = h
        .call(Call::QueryReserveFundBalance, json!({"sysid": support::harness::SYSID}))
        .await;
    h.call(
        Call::WithdrawApply,
        json!({"bizOrderNo": "wd-1", "bizUserId": "carol", "accountSetNo": ESCROW, "amount": 3000, "fee": 100,
               "backUrl": h.receiver.url, "bankCardNo": CARD, "industryCode": "1010", "industryName": "x", "source": 2}),
    )
    .await;
    // Balance is taken at confirmation only.
    assert_eq!(h.balance("carol").await.0, 5000);
    h.confirm("carol", "wd-1").await;
    assert_eq!(h.balance("carol").await.0, 2000);
    let after = h
        .call(Call::QueryReserveFundBalance, json!({"sysid": support::harness::SYSID}))
        .await;
    assert_eq!(
        before["balance"].as_i64().unwrap() - after["balance"].as_i64().unwrap(),
        2900
    );
    let too_much = json!({"bizOrderNo": "wd-2", "bizUserId": "carol", "accountSetNo": ESCROW, "amount": 2001, "fee": 0,
        "backUrl": h.receiver.url, "bankCardNo": CARD, "industryCode": "1010", "industryName": "x", "source": 2});
    assert_eq!(h.refused(Call::WithdrawApply, too_much).await, "40014");
    let unbound = json!({"bizOrderNo": "wd-3", "bizUserId": "carol", "accountSetNo": ESCROW, "amount": 1, "fee": 0,
        "backUrl": h.receiver.url, "bankCardNo": OTHER_CARD, "industryCode": "1010", "industryName": "x", "source": 2});
    assert_eq!(h.refused(Call::WithdrawApply, unbound).await, "30016");
    assert_eq!(
        h.refused(Call::QueryReserveFundBalance, json!({"sysid": "other"}))
            .await,
        "10000"
    );
}

#[tokio::test]
async fn refunds_partial_then_full_and_not_beyond() {
    let h = Harness::start().await;
    h.individual("payer").await;
    h.individual("shop").await;
    h.bind_card("payer", CARD).await;
    h.deposit("payer", "dep", 1000, CARD).await;
    let mut p = consume("c-1", "payer", "shop", 1000, &h.receiver.url);
    p["fee"] = json!(100);
    h.call(Call::ConsumeApply, p).await;
    h.confirm("payer", "c-1").await;
    assert_eq!(h.balance("shop").await.0, 900);
    let refund = |no: &str, amount: i64, fee: i64| json!({"bizOrderNo": no, "oriBizOrderNo": "c-1", "bizUserId": "payer", "amount": amount, "feeAmount": fee});
    let r = h.call(Call::Refund, refund("r-1", 400, 0)).await;
    assert_eq!(r["amount"], 400);
    assert_eq!(h.balance("payer").await.0, 400);
    assert_eq!(h.balance("shop").await.0, 500);
    assert_eq!(h.status("payer", "c-1").await, 5);
    assert_eq!(h.refused(Call::Refund, refund("r-2", 601, 0)).await, "40020");
    assert_eq!(h.refused(Call::Refund, refund("r-2", 600, 101)).await, "10000");
    h.call(Call::Refund, refund("r-2", 600, 100)).await;
    assert_eq!(h.balance("payer").await.0, 1000);
    assert_eq!(h.balance("shop").await.0, 0);
    assert_eq!(h.refused(Call::Refund, refund("r-3", 1, 0)).await, "40020");
    let mut not_payer = refund("r-4", 1, 0);
    not_payer["bizUserId"] = json!("shop");
    assert_eq!(h.refused(Call::Refund, not_payer).await, "40022");
    let mut deposit = refund("r-5", 1, 0);
    deposit["oriBizOrderNo"] = json!("dep");
    assert_eq!(h.refused(Call::Refund, deposit).await, "40018");
}

#[tokio::test]
async fn freeze_unfreeze_transfer_and_detail() {
    let h = Harness::start().await;
    h.individual("dave").await;
    let t = h
        .call(
            Call::ApplicationTransfer,
            json!({"bizTransferNo": "t-1", "sourceAccountSetNo": "2000000", "targetBizUserId": "dave",
                   "targetAccountSetNo": ESCROW, "amount": 800, "remark": "红包"}),
        )
        .await;
    assert_eq!(t["amount"], 800);
    let again = json!({"bizTransferNo": "t-1", "sourceAccountSetNo": "2000000", "targetBizUserId": "dave",
                       "targetAccountSetNo": ESCROW, "amount": 1});
    assert_eq!(h.refused(Call::ApplicationTransfer, again.clone()).await, "40017");
    let mut bad_source = again;
    bad_source["bizTransferNo"] = json!("t-2");
    bad_source["sourceAccountSetNo"] = json!("100001");
    assert_eq!(h.refused(Call::ApplicationTransfer, bad_source).await, "30018");
    h.call(
        Call::FreezeMoney,
        json!({"bizUserId": "dave", "bizFreezenNo": "f-1", "accountSetNo": ESCROW, "amount": 500}),
    )
    .await;
    assert_eq!(h.balance("dave").await, (800, 500));
    let over = json!({"bizUserId": "dave", "bizFreezenNo": "f-2", "accountSetNo": ESCROW, "amount": 301});
    assert_eq!(h.refused(Call::FreezeMoney, over).await, "40014");
    let unfreeze =
        |amount: i64| json!({"bizUserId": "dave", "bizFreezenNo": "f-1", "accountSetNo": ESCROW, "amount": amount});
    assert_eq!(h.refused(Call::UnfreezeMoney, unfreeze(501)).await, "40020");
    h.call(Call::UnfreezeMoney, unfreeze(200)).await;
    assert_eq!(h.balance("dave").await, (800, 300));
    let detail = h
        .call(
            Call::QueryInExpDetail,
            json!({"bizUserId": "dave", "accountSetNo": ESCROW, "startPosition": 1, "queryNum": 2}),
        )
        .await;
    assert_eq!(detail["totalNum"], 3);
    let page = detail["inExpDetail"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["curFreezenAmount"], 300, "newest first");
    assert_eq!(page[1]["curFreezenAmount"], 500);
    let bad_dates = json!({"bizUserId": "dave", "dateStart": "2026-02-01", "dateEnd": "2026-01-01"});
    assert_eq!(h.refused(Call::QueryInExpDetail, bad_dates).await, "50003");
    assert_eq!(
        h.refused(Call::QueryBalance, json!({"bizUserId": "dave", "accountSetNo": "1"}))
            .await,
        "30019"
    );
}

#[tokio::test]
async fn p2p_goods_collect_limits_and_failed_bid_refund() {
    let h = Harness::start().await;
    for id in ["lender", "investor"] {
        h.individual(id).await;
    }
    h.bind_card("investor", CARD).await;
    h.deposit("investor", "dep-i", 10_000, CARD).await;
    let goods = json!({"bizUserId": "lender", "goodsType": 1, "bizGoodsNo": "loan-1", "goodsName": "借款标",
        "goodsParams": {"amount": 5000, "totalAmount": 5500, "annualYield": 0.1, "investmentHorizon": 12,
                        "investmentHorizonScale": 2, "repayType": 1, "guaranteeType": 1, "minimumAmountInvestment": 1000}});
    let entered = h.call(Call::EntryGoods, goods.clone()).await;
    assert_eq!(entered["bizGoodsNo"], "loan-1");
    assert_eq!(h.refused(Call::EntryGoods, goods).await, "40013");
    let queried = h
        .call(
            Call::QueryModifyGoods,
            json!({"bizUserId": "lender", "bizGoodsNo": "loan-1", "goodsType": 1, "endDate": "2027-01-01"}),
        )
        .await;
    assert_eq!(queried["goodsParams"]["endDate"], "2027-01-01");
    let collect = |no: &str, amount: i64| {
        json!({"bizOrderNo": no, "payerId": "investor", "tradeCode": "1001", "goodsType": 1, "goodsNo": "loan-1",
               "amount": amount, "fee": 0, "validateType": 1, "backUrl": h.receiver.url, "industryCode": "1010",
               "industryName": "x", "source": 2, "payMethod": {"BALANCE": [{"accountSetNo": ESCROW, "amount": amount}]}})
    };
    assert_eq!(
        h.refused(Call::AgentCollectApplySimplify, collect("inv-0", 500)).await,
        "40029"
    );
    assert_eq!(
        h.refused(Call::AgentCollectApplySimplify, collect("inv-0", 6000)).await,
        "40023"
    );
    h.call(Call::AgentCollectApplySimplify, collect("inv-1", 3000)).await;
    h.confirm("investor", "inv-1").await;
    assert_eq!(h.balance("investor").await.0, 7000);
    let mut unknown_goods = collect("inv-2", 1000);
    unknown_goods["goodsNo"] = json!("nope");
    assert_eq!(h.refused(Call::AgentCollectApplySimplify, unknown_goods).await, "40024");
    let refunded = h
        .call(
            Call::FailureBidRefund,
            json!({"bizBatchNo": "fb-1", "goodsType": 1, "goodsNo": "loan-1",
                   "batchRefundList": [{"bizOrderNo": "fbr-1", "oriBizOrderNo": "inv-1"}]}),
        )
        .await;
    assert_eq!(refunded["orderNoList"][0]["bizOrderNo"], "fbr-1");
    assert_eq!(h.balance("investor").await.0, 10_000);
    let twice = json!({"bizBatchNo": "fb-2", "goodsType": 1, "goodsNo": "loan-1",
                       "batchRefundList": [{"bizOrderNo": "fbr-2", "oriBizOrderNo": "inv-1"}]});
    assert_eq!(h.refused(Call::FailureBidRefund, twice).await, "40019");
}

#[tokio::test]
async fn scan_orders_complete_on_the_payer_side_and_appear_in_the_reconciliation_file() {
    // A sandbox day passes in a moment: the file is generated at 11:00 the next day (4.3.2 l.2329).
    let h = Harness::with(|c| c.time_scale = 1e-6).await;
    h.individual("erin").await;
    let applied = h
        .call(
            Call::DepositApply,
            json!({"bizOrderNo": "scan-1", "bizUserId": "erin", "accountSetNo": ESCROW, "amount": 700, "fee": 7,
                   "validateType": 0, "backUrl": h.receiver.url, "industryCode": "1010", "industryName": "x", "source": 1,
                   "payMethod": {"SCAN_WEIXIN": {"payType": "W01", "amount": 700}}}),
        )
        .await;
    // "订单请求，不返回“payStatus”，返回“支付请求信息”" (5.2 l.2454).
    assert!(applied.get("payStatus").is_none(), "{applied}");
    assert!(applied["payInfo"].as_str().unwrap().starts_with("http://"));
    assert_eq!(h.status("erin", "scan-1").await, 1);
    let confirm = json!({"bizUserId": "erin", "bizOrderNo": "scan-1", "verificationCode": "9999", "consumerIp": "1"});
    assert_eq!(h.refused(Call::PayBackendSms, confirm).await, "40028");
    let done = reqwest::Client::new()
        .post(format!("http://{}/sandbox/orders/scan-1/complete", h.sandbox.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(h.balance("erin").await.0, 693);
    // A barcode payment settles inside the apply call.
    let code = h
        .call(
            Call::DepositApply,
            json!({"bizOrderNo": "code-1", "bizUserId": "erin", "accountSetNo": ESCROW, "amount": 100, "fee": 0,
                   "validateType": 0, "backUrl": h.receiver.url, "industryCode": "1010", "industryName": "x", "source": 1,
                   "payMethod": {"CODEPAY_A": {"amount": 100, "authcode": "28763443825664394"}}}),
        )
        .await;
    assert_eq!(code["payStatus"], "success");
    assert_eq!(h.balance("erin").await.0, 793);
    let date = support::harness::china_today();
    let url = h.check_file_url(&date).await;
    assert!(
        url.ends_with(&format!("{}_{date}_allinpay.txt", support::harness::SYSID)),
        "{url}"
    );
    let file = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), 2, "{file}");
    // "通联订单号|订单类型|交易金额(单位:分)|渠道手续费金额(单位:分)|交易时间|商户订单编号" (l.2335):
    // the fourth column is the channel's fee (none by default), not the order's fee of 7.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("|充值|700|0|") && l.ends_with("|scan-1")),
        "{file}"
    );
    assert!(lines.iter().all(|l| l.split('|').count() == 6), "{file}");
    assert_eq!(
        h.refused(Call::GetCheckAccountFile, json!({"date": "yesterday"})).await,
        "10000"
    );
}

#[tokio::test]
async fn an_unconfirmed_order_closes_at_its_expiry() {
    let h = Harness::start().await;
    h.individual("exp").await;
    h.bind_card("exp", CARD).await;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let expiry = yungate::provider::wire::format_timestamp(soon);
    h.call(
        Call::DepositApply,
        json!({"bizOrderNo": "e-1", "bizUserId": "exp", "accountSetNo": ESCROW, "amount": 100, "fee": 0, "validateType": 1,
               "ordErexpireDatetime": expiry, "backUrl": h.receiver.url, "industryCode": "1010", "industryName": "x", "source": 2,
               "payMethod": {"REALNAMEPAY": {"bankCardNo": CARD, "amount": 100}}}),
    )
    .await;
    assert_eq!(h.status("exp", "e-1").await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(h.status("exp", "e-1").await, 6);
    let confirm = json!({"bizUserId": "exp", "bizOrderNo": "e-1", "verificationCode": "9999", "consumerIp": "1"});
    assert_eq!(h.refused(Call::PayBackendSms, confirm).await, "40003");
    assert_eq!(h.balance("exp").await.0, 0);
}
