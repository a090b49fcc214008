//! Every one of the 41 backend calls, through `SoaClient` over HTTP, at least once accepted and once refused.
//!
//! The sandbox counts outcomes per spec section (`GET /sandbox/calls`); the
//! test ends by checking that each backend section of the catalogue has both.

mod support;

use serde_json::{Value, json};
use support::harness::{CARD, ESCROW, Harness, ID_NO, NAME, SYSID, phone_of};
use yungate::provider::calls::{Call, CallKind};

const CARD2: &str = "6228490000000000017";
const CARD3: &str = "6228480000000000025";

fn order(no: &str, extra: Value) -> Value {
    let mut v = json!({"bizOrderNo": no, "amount": 1000, "fee": 10, "validateType": 1, "backUrl": "http://127.0.0.1:9/n",
                       "industryCode": "1010", "industryName": "x", "source": 2});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    v
}

#[tokio::test]
async fn every_backend_call_is_accepted_and_refused_at_least_once() {
    let h = Harness::with(|c| c.company_audit_delay = None).await;

    // Members: create, real name, codes, phones.
    h.individual("a").await; // createMember, setRealName, sendVerificationCode, bindPhone
    h.individual("b").await;
    h.refused(
        Call::CreateMember,
        json!({"bizUserId": "a", "memberType": 3, "source": 1}),
    )
    .await;
    h.refused(
        Call::SetRealName,
        json!({"bizUserId": "a", "name": NAME, "identityType": 1, "identityNo": ID_NO}),
    )
    .await;
    h.refused(
        Call::SendVerificationCode,
        json!({"bizUserId": "a", "phone": "123", "verificationCodeType": 9}),
    )
    .await;
    h.refused(
        Call::BindPhone,
        json!({"bizUserId": "a", "phone": phone_of("a"), "verificationCode": "9999"}),
    )
    .await;
    h.call(
        Call::SendVerificationCode,
        json!({"bizUserId": "a", "phone": "13600000000", "verificationCodeType": 9}),
    )
    .await;
    h.refused(
        Call::ChangeBindPhone,
        json!({"bizUserId": "a", "oldPhone": "13000000000", "newPhone": "13600000000", "newVerificationCode": "9999"}),
    )
    .await;
    h.call(
        Call::ChangeBindPhone,
        json!({"bizUserId": "a", "oldPhone": phone_of("a"), "newPhone": "13600000000", "newVerificationCode": "9999"}),
    )
    .await;
    h.call(Call::GetMemberInfo, json!({"bizUserId": "a"})).await;
    h.refused(Call::GetMemberInfo, json!({"bizUserId": "zz"})).await;
    // Company.
    h.call(
        Call::CreateMember,
        json!({"bizUserId": "co", "memberType": 2, "source": 2}),
    )
    .await;
    let info = json!({"companyName": "ACME", "businessLicense": "91330000000000000X", "legalName": "张三", "identityType": 1, "legalIds": ID_NO, "legalPhone": "13800000000",
                      "accountNo": "1234567890", "parentBankName": "农业银行", "bankName": "农业银行杭州分行"});
    h.call(
        Call::SetCompanyInfo,
        json!({"bizUserId": "co", "companyBasicInfo": info}),
    )
    .await;
    h.refused(
        Call::SetCompanyInfo,
        json!({"bizUserId": "a", "companyBasicInfo": info}),
    )
    .await;
    // Cards.
    h.call(Call::GetBankCardBin, json!({"cardNo": CARD})).await;
    h.refused(Call::GetBankCardBin, json!({"cardNo": "1"})).await;
    h.bind_card("a", CARD).await; // applyBindBankCard + bindBankCard
    h.refused(Call::ApplyBindBankCard, json!({"bizUserId": "a", "cardNo": CARD2, "phone": "18800000000", "name": NAME, "identityType": 1, "identityNo": ID_NO})).await;
    h.refused(
        Call::BindBankCard,
        json!({"bizUserId": "a", "tranceNum": "nope", "phone": phone_of("a"), "verificationCode": "9999"}),
    )
    .await;
    let vp = h
        .call(Call::ApplyVerifyPayBindBankCard, json!({"bizUserId": "a", "cardNo": CARD2, "phone": "13600000000", "name": NAME, "identityType": 1, "identityNo": ID_NO}))
        .await;
    h.refused(Call::ApplyVerifyPayBindBankCard, json!({"bizUserId": "a", "cardNo": CARD3, "phone": "13600000000", "name": "x", "identityType": 1, "identityNo": ID_NO})).await;
    h.refused(
        Call::AffirmVerifyPayBindCard,
        json!({"bizUserId": "a", "tranceNum": vp["tranceNum"], "verificationCode": "0000"}),
    )
    .await;
    h.call(
        Call::AffirmVerifyPayBindCard,
        json!({"bizUserId": "a", "tranceNum": vp["tranceNum"], "verificationCode": "9999"}),
    )
    .await;
    let three = json!({"bizUserId": "a", "name": NAME, "identityType": 1, "identityNo": ID_NO, "cardNo": CARD3});
    h.call(Call::ThreeElementsBindBankCard, three.clone()).await;
    h.refused(Call::ThreeElementsBindBankCard, three).await;
    h.call(Call::SetSafeCard, json!({"bizUserId": "a", "cardNo": CARD}))
        .await;
    h.refused(
        Call::SetSafeCard,
        json!({"bizUserId": "a", "cardNo": "6228480000000000999"}),
    )
    .await;
    h.call(Call::QueryBankCard, json!({"bizUserId": "a"})).await;
    h.refused(Call::QueryBankCard, json!({"bizUserId": "zz"})).await;
    h.call(Call::UnbindBankCard, json!({"bizUserId": "a", "cardNo": CARD3}))
        .await;
    h.refused(Call::UnbindBankCard, json!({"bizUserId": "a", "cardNo": CARD}))
        .await;
    h.call(Call::LockMember, json!({"bizUserId": "b"})).await;
    h.refused(Call::LockMember, json!({"bizUserId": "zz"})).await;
    h.call(Call::UnlockMember, json!({"bizUserId": "b"})).await;
    h.refused(Call::UnlockMember, json!({"bizUserId": "zz"})).await;
    // New-mobile passwords.
    let who = |extra: Value| {
        let mut v = json!({"bizUserId": "a", "name": NAME, "identityType": 1, "identityNo": ID_NO});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    h.call(
        Call::SetNewMobilePayPwd,
        who(json!({"operationType": "set", "newPassword": "135790"})),
    )
    .await;
    h.refused(
        Call::SetNewMobilePayPwd,
        who(json!({"operationType": "set", "newPassword": "111111"})),
    )
    .await;
    let reset = h.call(Call::ResetNewMobilePayPwdApply, who(json!({}))).await;
    h.refused(
        Call::ResetNewMobilePayPwdApply,
        json!({"bizUserId": "a", "name": "x", "identityType": 1, "identityNo": ID_NO}),
    )
    .await;
    let affirm = |code: &str| {
        who(
            json!({"payPassword": "246802", "lastCardNo": CARD2, "mobileFlowNO": reset["mobileFlowNO"], "mobileMsCode": code}),
        )
    };
    h.refused(Call::ResetNewMobilePayPwdAffirm, affirm("0000")).await;
    h.call(Call::ResetNewMobilePayPwdAffirm, affirm("9999")).await;

    // Orders.
    h.deposit("a", "dep-1", 100_000, CARD).await; // depositApply + pay 4.2.8
    h.refused(
        Call::DepositApply,
        order(
            "dep-1",
            json!({"bizUserId": "a", "accountSetNo": ESCROW, "amount": 1000,
        "payMethod": {"REALNAMEPAY": {"bankCardNo": CARD, "amount": 1000}}}),
        ),
    )
    .await;
    h.refused(
        Call::PayBackendSms,
        json!({"bizUserId": "a", "bizOrderNo": "dep-1", "verificationCode": "9999", "consumerIp": "1"}),
    )
    .await;
    h.call(
        Call::WithdrawApply,
        order(
            "wd-1",
            json!({"bizUserId": "a", "accountSetNo": ESCROW, "bankCardNo": CARD}),
        ),
    )
    .await;
    h.refused(
        Call::WithdrawApply,
        order(
            "wd-2",
            json!({"bizUserId": "a", "accountSetNo": ESCROW, "bankCardNo": CARD2}),
        ),
    )
    .await;
    h.confirm("a", "wd-1").await;
    let balance = json!({"BALANCE": [{"accountSetNo": ESCROW, "amount": 1000}]});
    h.call(
        Call::ConsumeApply,
        order("c-1", json!({"payerId": "a", "recieverId": "b", "payMethod": balance})),
    )
    .await;
    h.refused(
        Call::ConsumeApply,
        order("c-2", json!({"payerId": "a", "recieverId": "zz", "payMethod": balance})),
    )
    .await;
    h.confirm("a", "c-1").await;
    h.call(
        Call::AgentCollectApplySimplify,
        order(
            "col-1",
            json!({"payerId": "a", "tradeCode": "3001", "payMethod": balance}),
        ),
    )
    .await;
    h.refused(
        Call::AgentCollectApplySimplify,
        order(
            "col-2",
            json!({"payerId": "a", "tradeCode": "4001", "payMethod": balance}),
        ),
    )
    .await;
    h.confirm("a", "col-1").await;
    let agent_pay = |no: &str, amount: i64| json!({"bizOrderNo": no, "bizUserId": "b", "accountSetNo": ESCROW, "backUrl": "http://127.0.0.1:9/n", "amount": amount, "fee": 0, "tradeCode": "4001"});
    h.call(Call::SignalAgentPaySimplify, agent_pay("ap-1", 400)).await;
    h.refused(Call::SignalAgentPaySimplify, agent_pay("ap-2", 10_000)).await;
    h.call(
        Call::BatchAgentPaySimplify,
        json!({"bizBatchNo": "bt-1", "tradeCode": "4001", "batchPayList": [agent_pay("ap-3", 100)]}),
    )
    .await;
    // A batch is refused as a whole only when malformed (here: an order number already used);
    // items that cannot be paid fail one by one (tests/spec_fidelity.rs).
    h.refused(
        Call::BatchAgentPaySimplify,
        json!({"bizBatchNo": "bt-2", "tradeCode": "4001", "batchPayList": [agent_pay("ap-3", 100)]}),
    )
    .await;
    // New-mobile quick pay, confirmed by 4.2.11.
    let nm = h
        .call(
            Call::ApplyBindBankCard,
            who(json!({"cardNo": "6228480000000000033", "phone": "13600000000", "cardCheck": 4})),
        )
        .await;
    h.call(
        Call::BindBankCard,
        json!({"bizUserId": "a", "tranceNum": nm["tranceNum"], "phone": "13600000000", "verificationCode": "9999"}),
    )
    .await;
    h.call(
        Call::DepositApply,
        order(
            "qp-1",
            json!({"bizUserId": "a", "accountSetNo": ESCROW, "validateType": 0,
        "payMethod": {"QUICKPAY_N": {"bankCardNo": "6228480000000000033", "amount": 1000}}}),
        ),
    )
    .await;
    let quick = |pwd: &str| json!({"bizUserId": "a", "bizOrderNo": "qp-1", "verificationCode": "9999", "quickNewPwd": pwd, "consumerIp": "1"});
    h.refused(Call::PayBackendNewMobile, quick("000000")).await;
    h.call(Call::PayBackendNewMobile, quick("246802")).await;
    // Goods.
    let goods = json!({"bizUserId": "b", "goodsType": 1, "bizGoodsNo": "g-1", "goodsName": "标", "goodsParams": {"amount": 5000,
        "totalAmount": 5500, "annualYield": 0.1, "investmentHorizon": 12, "investmentHorizonScale": 2, "repayType": 1, "guaranteeType": 1}});
    h.call(Call::EntryGoods, goods.clone()).await;
    h.refused(Call::EntryGoods, goods).await;
    h.call(
        Call::QueryModifyGoods,
        json!({"bizUserId": "b", "bizGoodsNo": "g-1", "goodsType": 1}),
    )
    .await;
    h.refused(
        Call::QueryModifyGoods,
        json!({"bizUserId": "b", "bizGoodsNo": "g-9", "goodsType": 1}),
    )
    .await;
    h.call(
        Call::AgentCollectApplySimplify,
        order(
            "inv-1",
            json!({"payerId": "a", "tradeCode": "1001", "goodsType": 1, "goodsNo": "g-1", "payMethod": balance}),
        ),
    )
    .await;
    h.confirm("a", "inv-1").await;
    let bid = |ori: &str| json!({"bizBatchNo": format!("fb-{ori}"), "goodsType": 1, "goodsNo": "g-1", "batchRefundList": [{"bizOrderNo": format!("fbr-{ori}"), "oriBizOrderNo": ori}]});
    h.refused(Call::FailureBidRefund, bid("c-1")).await;
    h.call(Call::FailureBidRefund, bid("inv-1")).await;
    // Freeze, refund, transfer, queries.
    h.call(
        Call::FreezeMoney,
        json!({"bizUserId": "a", "bizFreezenNo": "f-1", "accountSetNo": ESCROW, "amount": 100}),
    )
    .await;
    h.refused(
        Call::FreezeMoney,
        json!({"bizUserId": "a", "bizFreezenNo": "f-1", "accountSetNo": ESCROW, "amount": 100}),
    )
    .await;
    h.call(
        Call::UnfreezeMoney,
        json!({"bizUserId": "a", "bizFreezenNo": "f-1", "accountSetNo": ESCROW, "amount": 100}),
    )
    .await;
    h.refused(
        Call::UnfreezeMoney,
        json!({"bizUserId": "a", "bizFreezenNo": "f-1", "accountSetNo": ESCROW, "amount": 1}),
    )
    .await;
    h.call(
        Call::Refund,
        json!({"bizOrderNo": "r-1", "oriBizOrderNo": "c-1", "bizUserId": "a", "amount": 500}),
    )
    .await;
    h.refused(
        Call::Refund,
        json!({"bizOrderNo": "r-2", "oriBizOrderNo": "c-1", "bizUserId": "a", "amount": 501}),
    )
    .await;
    let transfer = json!({"bizTransferNo": "t-1", "sourceAccountSetNo": "2000000", "targetBizUserId": "b", "targetAccountSetNo": ESCROW, "amount": 5});
    h.call(Call::ApplicationTransfer, transfer.clone()).await;
    h.refused(Call::ApplicationTransfer, transfer).await;
    h.call(Call::QueryBalance, json!({"bizUserId": "a", "accountSetNo": ESCROW}))
        .await;
    h.refused(Call::QueryBalance, json!({"bizUserId": "zz", "accountSetNo": ESCROW}))
        .await;
    h.call(Call::GetOrderDetail, json!({"bizUserId": "a", "bizOrderNo": "c-1"}))
        .await;
    h.refused(Call::GetOrderDetail, json!({"bizUserId": "b", "bizOrderNo": "dep-1"}))
        .await;
    h.call(Call::QueryInExpDetail, json!({"bizUserId": "a"})).await;
    h.refused(Call::QueryInExpDetail, json!({"bizUserId": "a", "accountSetNo": "1"}))
        .await;
    h.call(Call::QueryReserveFundBalance, json!({"sysid": SYSID})).await;
    h.refused(Call::QueryReserveFundBalance, json!({})).await;
    h.call(Call::GetCheckAccountFile, json!({"date": "20261125"})).await;
    h.refused(Call::GetCheckAccountFile, json!({"date": "2026-13-45"}))
        .await;

    let counts: Value = reqwest::get(format!("http://{}/sandbox/calls", h.sandbox.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut missing = Vec::new();
    for call in Call::ALL.into_iter().filter(|c| c.spec().kind == CallKind::Backend) {
        let s = call.spec();
        let c = &counts[s.section];
        if c["ok"].as_u64().unwrap_or(0) == 0 || c["refused"].as_u64().unwrap_or(0) == 0 {
            missing.push(format!("{} {}.{} {c}", s.section, s.service, s.method));
        }
    }
    assert!(missing.is_empty(), "not covered both ways: {missing:#?}");
    assert_eq!(counts.as_object().unwrap().len(), 41);
}
