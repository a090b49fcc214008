//! Every rpc of the API called through `yungate serve` (real gRPC, then real HTTP to the sandbox),
//! each backend call succeeding at least once, each page rpc returning a link.

mod support;

use serde_json::{Value as Json, json};
use support::dynamic_grpc;
use tonic::Code;
use tonic::transport::Channel;
use yungate::config::Config;
use yungate::provider::calls::{Call, CallKind, Environment};
use yungate::serve;

const CARD: &str = "6228480402637874214";
const CARD2: &str = "6228490000000000017";
const CARD3: &str = "6228480000000000025";
const QUICK_CARD: &str = "6228480000000000033";
const NAME: &str = "王小二";
const ID_NO: &str = "610422198600000000";
const ESCROW: &str = "100000";

struct Client {
    channel: Channel,
}

impl Client {
    async fn ok(&self, call: Call, wire: Json) -> Json {
        self.ok_keyed(call, wire, None).await
    }

    async fn ok_keyed(&self, call: Call, wire: Json, key: Option<&str>) -> Json {
        match dynamic_grpc::call_keyed(&self.channel, call, wire.clone(), key).await {
            Ok(v) => v,
            Err(e) => panic!("{call:?} {wire} failed: {} {}", e.code(), e.message()),
        }
    }

    async fn member(&self, id: &str, phone: &str) {
        self.ok(
            Call::CreateMember,
            json!({"bizUserId": id, "memberType": 3, "source": 2}),
        )
        .await;
        self.ok(
            Call::SetRealName,
            json!({"bizUserId": id, "name": NAME, "identityType": 1, "identityNo": ID_NO}),
        )
        .await;
        self.ok(
            Call::SendVerificationCode,
            json!({"bizUserId": id, "phone": phone, "verificationCodeType": 9}),
        )
        .await;
        self.ok(
            Call::BindPhone,
            json!({"bizUserId": id, "phone": phone, "verificationCode": "9999"}),
        )
        .await;
    }
}

fn order(no: &str, extra: Json) -> Json {
    let mut v = json!({"bizOrderNo": no, "amount": 1000, "fee": 10, "validateType": 1,
                       "industryCode": "1010", "industryName": "x", "source": 2});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    v
}

#[tokio::test]
async fn every_rpc_through_the_gateway() {
    let running = serve::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        notify: yungate::config::NotifyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let c = Client { channel };
    let phone_a = "13600000001";
    c.member("a", phone_a).await;
    c.member("b", "13600000002").await;
    c.ok(
        Call::SendVerificationCode,
        json!({"bizUserId": "a", "phone": "13600000009", "verificationCodeType": 9}),
    )
    .await;
    c.ok(
        Call::ChangeBindPhone,
        json!({"bizUserId": "a", "oldPhone": phone_a, "newPhone": "13600000009", "newVerificationCode": "9999"}),
    )
    .await;
    let phone_a = "13600000009";
    c.ok(Call::GetMemberInfo, json!({"bizUserId": "a"})).await;
    c.ok(
        Call::CreateMember,
        json!({"bizUserId": "co", "memberType": 2, "source": 2}),
    )
    .await;
    let info = json!({"companyName": "ACME", "businessLicense": "91330000000000000X", "legalName": "张三", "identityType": 1, "legalIds": ID_NO, "legalPhone": "13800000000",
                      "accountNo": "1234567890", "parentBankName": "农业银行", "bankName": "农业银行杭州分行"});
    c.ok(
        Call::SetCompanyInfo,
        json!({"bizUserId": "co", "companyBasicInfo": info}),
    )
    .await;
    c.ok(Call::GetBankCardBin, json!({"cardNo": CARD})).await;
    let applied = c
        .ok(
            Call::ApplyBindBankCard,
            json!({"bizUserId": "a", "cardNo": CARD, "phone": phone_a, "name": NAME, "cardCheck": 3,
                                            "identityType": 1, "identityNo": ID_NO}),
        )
        .await;
    c.ok(
        Call::BindBankCard,
        json!({"bizUserId": "a", "tranceNum": applied["tranceNum"], "phone": phone_a, "verificationCode": "9999"}),
    )
    .await;
    let vp = c
        .ok(Call::ApplyVerifyPayBindBankCard, json!({"bizUserId": "a", "cardNo": CARD2, "phone": phone_a, "name": NAME, "identityType": 1, "identityNo": ID_NO}))
        .await;
    c.ok(
        Call::AffirmVerifyPayBindCard,
        json!({"bizUserId": "a", "tranceNum": vp["tranceNum"], "verificationCode": "9999"}),
    )
    .await;
    c.ok(
        Call::ThreeElementsBindBankCard,
        json!({"bizUserId": "a", "name": NAME, "identityType": 1, "identityNo": ID_NO, "cardNo": CARD3}),
    )
    .await;
    c.ok(Call::SetSafeCard, json!({"bizUserId": "a", "cardNo": CARD})).await;
    let cards = c.ok(Call::QueryBankCard, json!({"bizUserId": "a"})).await;
    assert_eq!(
        cards["bindCardList"][0]["bankCardNo"], CARD,
        "card numbers decrypted for the caller"
    );
    c.ok(Call::UnbindBankCard, json!({"bizUserId": "a", "cardNo": CARD3}))
        .await;
    c.ok(Call::LockMember, json!({"bizUserId": "b"})).await;
    c.ok(Call::UnlockMember, json!({"bizUserId": "b"})).await;
    let who = |extra: Json| {
        let mut v = json!({"bizUserId": "a", "name": NAME, "identityType": 1, "identityNo": ID_NO});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    c.ok(
        Call::SetNewMobilePayPwd,
        who(json!({"operationType": "set", "newPassword": "135790"})),
    )
    .await;
    let reset = c.ok(Call::ResetNewMobilePayPwdApply, who(json!({}))).await;
    c.ok(
        Call::ResetNewMobilePayPwdAffirm,
        who(json!({"payPassword": "246802", "lastCardNo": CARD2,
        "mobileFlowNO": reset["mobileFlowNO"], "mobileMsCode": "9999"})),
    )
    .await;
    // Orders.
    c.ok(
        Call::DepositApply,
        order(
            "dep-1",
            json!({"bizUserId": "a", "accountSetNo": ESCROW, "amount": 100_000, "fee": 0,
        "payMethod": {"REALNAMEPAY": {"bankCardNo": CARD, "amount": 100_000}}}),
        ),
    )
    .await;
    let confirm =
        |no: &str| json!({"bizUserId": "a", "bizOrderNo": no, "verificationCode": "9999", "consumerIp": "127.0.0.1"});
    c.ok(Call::PayBackendSms, confirm("dep-1")).await;
    c.ok(
        Call::WithdrawApply,
        order(
            "wd-1",
            json!({"bizUserId": "a", "accountSetNo": ESCROW, "bankCardNo": CARD}),
        ),
    )
    .await;
    c.ok(Call::PayBackendSms, confirm("wd-1")).await;
    let balance = json!({"BALANCE": [{"accountSetNo": ESCROW, "amount": 1000}]});
    c.ok(
        Call::ConsumeApply,
        order("c-1", json!({"payerId": "a", "recieverId": "b", "payMethod": balance})),
    )
    .await;
    c.ok(Call::PayBackendSms, confirm("c-1")).await;
    c.ok(
        Call::AgentCollectApplySimplify,
        order(
            "col-1",
            json!({"payerId": "a", "tradeCode": "3001", "payMethod": balance}),
        ),
    )
    .await;
    c.ok(Call::PayBackendSms, confirm("col-1")).await;
    let agent_pay = |no: &str, amount: i64| json!({"bizOrderNo": no, "bizUserId": "b", "accountSetNo": ESCROW, "amount": amount, "fee": 0, "tradeCode": "4001"});
    c.ok(Call::SignalAgentPaySimplify, agent_pay("ap-1", 400)).await;
    c.ok(
        Call::BatchAgentPaySimplify,
        json!({"bizBatchNo": "bt-1", "tradeCode": "4001", "batchPayList": [agent_pay("ap-2", 100)]}),
    )
    .await;
    let nm = c
        .ok(
            Call::ApplyBindBankCard,
            who(json!({"cardNo": QUICK_CARD, "phone": phone_a, "cardCheck": 4})),
        )
        .await;
    c.ok(
        Call::BindBankCard,
        json!({"bizUserId": "a", "tranceNum": nm["tranceNum"], "phone": phone_a, "verificationCode": "9999"}),
    )
    .await;
    c.ok(
        Call::DepositApply,
        order(
            "qp-1",
            json!({"bizUserId": "a", "accountSetNo": ESCROW, "validateType": 0,
        "payMethod": {"QUICKPAY_N": {"bankCardNo": QUICK_CARD, "amount": 1000}}}),
        ),
    )
    .await;
    c.ok(Call::PayBackendNewMobile, json!({"bizUserId": "a", "bizOrderNo": "qp-1", "verificationCode": "9999", "quickNewPwd": "246802", "consumerIp": "1.1.1.1"})).await;
    c.ok(Call::EntryGoods, json!({"bizUserId": "b", "goodsType": 1, "bizGoodsNo": "g-1", "goodsName": "标", "goodsParams": {"amount": 5000,
        "totalAmount": 5500, "annualYield": 0.1, "investmentHorizon": 12, "investmentHorizonScale": 2, "repayType": 1, "guaranteeType": 1}})).await;
    let goods = c
        .ok(
            Call::QueryModifyGoods,
            json!({"bizUserId": "b", "bizGoodsNo": "g-1", "goodsType": 1, "endDate": "2027-01-01"}),
        )
        .await;
    assert_eq!(goods["goodsParams"]["endDate"], "2027-01-01");
    c.ok(
        Call::AgentCollectApplySimplify,
        order(
            "inv-1",
            json!({"payerId": "a", "tradeCode": "1001", "goodsType": 1, "goodsNo": "g-1", "payMethod": balance}),
        ),
    )
    .await;
    c.ok(Call::PayBackendSms, confirm("inv-1")).await;
    c.ok(
        Call::FailureBidRefund,
        json!({"bizBatchNo": "fb-1", "goodsType": 1, "goodsNo": "g-1",
        "batchRefundList": [{"bizOrderNo": "fbr-1", "oriBizOrderNo": "inv-1"}]}),
    )
    .await;
    c.ok(
        Call::FreezeMoney,
        json!({"bizUserId": "a", "bizFreezenNo": "f-1", "accountSetNo": ESCROW, "amount": 100}),
    )
    .await;
    // One freeze may be released in parts (4.2.16 l.2047): each part has a key of its own.
    c.ok_keyed(
        Call::UnfreezeMoney,
        json!({"bizUserId": "a", "bizFreezenNo": "f-1", "accountSetNo": ESCROW, "amount": 100}),
        Some("unfreeze-f-1-all"),
    )
    .await;
    let refund = c
        .ok(
            Call::Refund,
            json!({"bizOrderNo": "r-1", "oriBizOrderNo": "c-1", "bizUserId": "a", "amount": 500}),
        )
        .await;
    assert_eq!(refund["amount"], 500);
    c.ok(
        Call::ApplicationTransfer,
        json!({"bizTransferNo": "t-1", "sourceAccountSetNo": "2000000", "targetBizUserId": "b",
        "targetAccountSetNo": ESCROW, "amount": 5}),
    )
    .await;
    let b = c
        .ok(Call::QueryBalance, json!({"bizUserId": "a", "accountSetNo": ESCROW}))
        .await;
    assert!(b["allAmount"].as_i64().unwrap() > 0);
    let detail = c
        .ok(Call::GetOrderDetail, json!({"bizUserId": "a", "bizOrderNo": "c-1"}))
        .await;
    assert_eq!(detail["orderStatus"], 5);
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let day = format!("{}-{:02}-{:02}", today.year(), u8::from(today.month()), today.day());
    let detail = c
        .ok(
            Call::QueryInExpDetail,
            json!({"bizUserId": "a", "accountSetNo": ESCROW, "dateStart": day, "dateEnd": day,
            "startPosition": 1, "queryNum": 5}),
        )
        .await;
    assert_eq!(detail["inExpDetail"].as_array().unwrap().len(), 5);
    let reserve = c.ok(Call::QueryReserveFundBalance, json!({})).await;
    assert!(reserve["balance"].as_i64().unwrap() > 0, "the gateway filled sysid");
    c.ok(Call::GetCheckAccountFile, json!({"date": "2026-11-25"})).await;
    // Pages: each returns a signed GET link.
    let pages = [
        (Call::SetPayPwd, who(json!({"phone": phone_a, "jumpUrl": "http://x/j"}))),
        (Call::UpdatePayPwd, who(json!({}))),
        (Call::ResetPayPwd, who(json!({"phone": phone_a}))),
        (Call::UpdatePhoneByPayPwd, who(json!({"oldPhone": phone_a}))),
        (
            Call::PayPageSms,
            json!({"bizUserId": "a", "bizOrderNo": "x", "consumerIp": "1.1.1.1"}),
        ),
        (
            Call::PayPagePassword,
            json!({"bizUserId": "a", "bizOrderNo": "x", "consumerIp": "1.1.1.1"}),
        ),
    ];
    for (call, wire) in pages {
        let answer = c.ok(call, wire).await;
        let url = answer["link"]["url"].as_str().unwrap();
        assert!(url.contains(call.page_path(Environment::Test).unwrap()), "{url}");
        assert_eq!(answer["link"]["httpMethod"], "GET");
    }
    // Every backend call reached the sandbox and succeeded at least once.
    let counts: Json = reqwest::get(format!("http://{}/sandbox/calls", running.sandbox_addr().unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for call in Call::ALL.into_iter().filter(|c| c.spec().kind == CallKind::Backend) {
        let s = call.spec();
        assert!(
            counts[s.section]["ok"].as_u64().unwrap_or(0) > 0,
            "{} {}.{} never succeeded through the gateway: {}",
            s.section,
            s.service,
            s.method,
            counts[s.section]
        );
    }
    // And a refusal the gateway catches itself never reaches the provider.
    let err = dynamic_grpc::call(
        &c.channel,
        Call::CreateMember,
        json!({"bizUserId": "", "memberType": 3, "source": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    running.stop().await.unwrap();
}
