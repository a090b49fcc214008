//! The sandbox's member calls beyond the basic flow: cards, companies and their audit, locking, phones, quick-pay passwords.

mod support;

use serde_json::json;
use support::harness::{CARD, Harness, ID_NO, NAME, phone_of};
use yungate::provider::calls::Call;

const CARD2: &str = "6228490000000000017";
const CARD3: &str = "6228480000000000025";

#[tokio::test]
async fn card_binding_three_ways_safe_card_query_and_unbind() {
    let h = Harness::start().await;
    h.individual("ann").await;
    let bin = h.call(Call::GetBankCardBin, json!({"cardNo": CARD})).await;
    assert_eq!(bin["cardBinInfo"]["cardBin"], "622848");
    assert_eq!(
        h.refused(Call::GetBankCardBin, json!({"cardNo": "6222021234567890123"}))
            .await,
        "10000"
    );
    // Three-element: direct.
    let three = json!({"bizUserId": "ann", "name": NAME, "identityType": 1, "identityNo": ID_NO, "cardNo": CARD});
    let bound = h.call(Call::ThreeElementsBindBankCard, three.clone()).await;
    assert_eq!(bound["cardType"], 1);
    assert_eq!(h.refused(Call::ThreeElementsBindBankCard, three).await, "30017");
    // Four-element: apply, then confirm with the SMS code.
    let apply = json!({"bizUserId": "ann", "cardNo": CARD2, "phone": phone_of("ann"), "name": NAME, "cardCheck": 2,
                       "identityType": 1, "identityNo": ID_NO});
    let applied = h.call(Call::ApplyBindBankCard, apply).await;
    assert!(applied["transDate"].as_str().unwrap().len() == 8);
    let confirm = |code: &str| {
        json!({"bizUserId": "ann", "tranceNum": applied["tranceNum"], "transDate": applied["transDate"],
               "phone": phone_of("ann"), "verificationCode": code})
    };
    assert_eq!(h.refused(Call::BindBankCard, confirm("1234")).await, "50001");
    h.call(Call::BindBankCard, confirm("9999")).await;
    // Real-name pay (the superseded pair of calls).
    let vp = h
        .call(
            Call::ApplyVerifyPayBindBankCard,
            json!({"bizUserId": "ann", "cardNo": CARD3, "phone": phone_of("ann"), "name": NAME, "identityType": 1, "identityNo": ID_NO}),
        )
        .await;
    h.call(
        Call::AffirmVerifyPayBindCard,
        json!({"bizUserId": "ann", "tranceNum": vp["tranceNum"], "verificationCode": "9999"}),
    )
    .await;
    let all = h.call(Call::QueryBankCard, json!({"bizUserId": "ann"})).await;
    let list = all["bindCardList"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    // Card numbers travelled encrypted and came back in clear.
    assert_eq!(list[0]["bankCardNo"], CARD);
    assert_eq!(list[1]["bindMethod"], 2);
    assert_eq!(list[2]["isVerifyPayChecked"], true);
    let one = h
        .call(Call::QueryBankCard, json!({"bizUserId": "ann", "cardNo": CARD2}))
        .await;
    assert_eq!(one["bindCardList"].as_array().unwrap().len(), 1);
    h.call(Call::SetSafeCard, json!({"bizUserId": "ann", "cardNo": CARD}))
        .await;
    assert_eq!(
        h.refused(Call::SetSafeCard, json!({"bizUserId": "ann", "cardNo": CARD2}))
            .await,
        "30026"
    );
    assert_eq!(
        h.refused(Call::UnbindBankCard, json!({"bizUserId": "ann", "cardNo": CARD}))
            .await,
        "30027"
    );
    let unbound = h
        .call(Call::UnbindBankCard, json!({"bizUserId": "ann", "cardNo": CARD2}))
        .await;
    assert_eq!(unbound["cardNo"], CARD2);
    assert_eq!(
        h.refused(Call::UnbindBankCard, json!({"bizUserId": "ann", "cardNo": CARD2}))
            .await,
        "30016"
    );
    // Name must match the real-name record; special test phones are refused by the bank.
    let wrong_name =
        json!({"bizUserId": "ann", "name": "李四", "identityType": 1, "identityNo": ID_NO, "cardNo": CARD2});
    assert_eq!(h.refused(Call::ThreeElementsBindBankCard, wrong_name).await, "30009");
    let special = json!({"bizUserId": "ann", "cardNo": CARD2, "phone": "15100000000", "name": NAME, "identityType": 1, "identityNo": ID_NO});
    assert_eq!(h.refused(Call::ApplyBindBankCard, special).await, "30014");
    h.call(
        Call::CreateMember,
        json!({"bizUserId": "unverified", "memberType": 3, "source": 1}),
    )
    .await;
    let unverified =
        json!({"bizUserId": "unverified", "name": NAME, "identityType": 1, "identityNo": ID_NO, "cardNo": CARD});
    assert_eq!(h.refused(Call::ThreeElementsBindBankCard, unverified).await, "30008");
}

fn company_info(name: &str) -> serde_json::Value {
    support::harness::company_info(name, "1234567890123")
}

#[tokio::test]
async fn company_audit_is_notified_when_delayed() {
    let h = Harness::with(|c| c.company_audit_delay = Some(std::time::Duration::from_secs(60))).await;
    for (id, name) in [("acme", "ACME 科技"), ("bad", "FAIL 公司")] {
        h.call(
            Call::CreateMember,
            json!({"bizUserId": id, "memberType": 2, "source": 2}),
        )
        .await;
        h.call(
            Call::SetCompanyInfo,
            json!({"bizUserId": id, "backUrl": h.receiver.url, "companyBasicInfo": company_info(name)}),
        )
        .await;
    }
    // 60 s scaled by 0.001: the audits end within a moment.
    let got = h.receiver.wait_for(2).await;
    let mut results: Vec<(String, i64)> = got
        .iter()
        .map(|r| {
            assert_eq!(
                (r.body.service.as_str(), r.body.method.as_str()),
                ("MemberService", "verifyResult")
            );
            (
                r.body.return_value["bizUserId"].as_str().unwrap().to_owned(),
                r.body.return_value["result"].as_i64().unwrap(),
            )
        })
        .collect();
    results.sort();
    assert_eq!(results, [("acme".to_owned(), 2), ("bad".to_owned(), 3)]);
    let info = h.call(Call::GetMemberInfo, json!({"bizUserId": "acme"})).await;
    assert_eq!(info["memberInfo"]["status"], 2);
    // Encrypted fields of 5.6 came back decrypted.
    assert_eq!(info["memberInfo"]["legalIds"], ID_NO);
    assert_eq!(info["memberInfo"]["accountNo"], "1234567890123");
    let again = json!({"bizUserId": "acme", "companyBasicInfo": company_info("ACME")});
    assert_eq!(h.refused(Call::SetCompanyInfo, again).await, "30023");
    // A company phone binds only after a passed audit: refused while the information failed
    // audit (30022 用户不可用), and 30030 "未设置企业信息" (l.3265) when none was set.
    let code = json!({"bizUserId": "bad", "phone": "13900000001", "verificationCodeType": 9});
    assert_eq!(h.refused(Call::SendVerificationCode, code).await, "30022");
    h.call(
        Call::CreateMember,
        json!({"bizUserId": "bare", "memberType": 2, "source": 2}),
    )
    .await;
    let code = json!({"bizUserId": "bare", "phone": "13900000009", "verificationCodeType": 9});
    assert_eq!(h.refused(Call::SendVerificationCode, code).await, "30030");
    h.call(
        Call::SendVerificationCode,
        json!({"bizUserId": "acme", "phone": "13900000002", "verificationCodeType": 9}),
    )
    .await;
    let missing = json!({"bizUserId": "acme", "companyBasicInfo": {"companyName": "x"}});
    assert_eq!(h.refused(Call::SetCompanyInfo, missing).await, "10001");
    h.individual("person").await;
    let person = json!({"bizUserId": "person", "companyBasicInfo": company_info("x")});
    assert_eq!(h.refused(Call::SetCompanyInfo, person).await, "30006");
}

#[tokio::test]
async fn a_locked_member_can_only_be_unlocked() {
    let h = Harness::start().await;
    h.individual("lee").await;
    h.call(Call::LockMember, json!({"bizUserId": "lee"})).await;
    assert_eq!(h.refused(Call::LockMember, json!({"bizUserId": "lee"})).await, "30002");
    let code = json!({"bizUserId": "lee", "phone": "13900000003", "verificationCodeType": 9});
    assert_eq!(h.refused(Call::SendVerificationCode, code.clone()).await, "30002");
    assert_eq!(
        h.refused(Call::QueryBankCard, json!({"bizUserId": "lee"})).await,
        "30002"
    );
    // "除解锁会员之外，其它接口都将返回错误信息“会员已锁定”" (4.1.18 l.980): queries too.
    assert_eq!(
        h.refused(Call::GetMemberInfo, json!({"bizUserId": "lee"})).await,
        "30002"
    );
    h.call(Call::UnlockMember, json!({"bizUserId": "lee"})).await;
    h.call(Call::SendVerificationCode, code).await;
    assert_eq!(
        h.refused(Call::UnlockMember, json!({"bizUserId": "ghost"})).await,
        "30001"
    );
}

#[tokio::test]
async fn change_bound_phone_with_the_new_numbers_code() {
    let h = Harness::start().await;
    h.individual("max").await;
    let old = phone_of("max");
    h.call(
        Call::SendVerificationCode,
        json!({"bizUserId": "max", "phone": "13700000000", "verificationCodeType": 9}),
    )
    .await;
    let change = |old_phone: &str, code: &str| json!({"bizUserId": "max", "oldPhone": old_phone, "newPhone": "13700000000", "newVerificationCode": code});
    assert_eq!(
        h.refused(Call::ChangeBindPhone, change("13000000000", "9999")).await,
        "10000"
    );
    assert_eq!(h.refused(Call::ChangeBindPhone, change(&old, "0000")).await, "50001");
    let changed = h.call(Call::ChangeBindPhone, change(&old, "9999")).await;
    assert_eq!(changed["newPhone"], "13700000000");
    let info = h.call(Call::GetMemberInfo, json!({"bizUserId": "max"})).await;
    assert_eq!(info["memberInfo"]["phone"], "13700000000");
    assert_eq!(
        h.refused(
            Call::SendVerificationCode,
            json!({"bizUserId": "max", "phone": "13700000000", "verificationCodeType": 9})
        )
        .await,
        "30024"
    );
}

#[tokio::test]
async fn quick_pay_passwords_and_a_quickpay_n_order() {
    let h = Harness::start().await;
    h.individual("qp").await;
    let who = json!({"bizUserId": "qp", "name": NAME, "identityType": 1, "identityNo": ID_NO});
    let with = |extra: serde_json::Value| {
        let mut v = who.clone();
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    assert_eq!(
        h.refused(
            Call::SetNewMobilePayPwd,
            with(json!({"operationType": "set", "newPassword": "123456"}))
        )
        .await,
        "10000"
    );
    let set = h
        .call(
            Call::SetNewMobilePayPwd,
            with(json!({"operationType": "set", "newPassword": "135790"})),
        )
        .await;
    assert_eq!(set["result"], "OK");
    assert_eq!(
        h.refused(
            Call::SetNewMobilePayPwd,
            with(json!({"operationType": "set", "newPassword": "246802"}))
        )
        .await,
        "30031"
    );
    let edit = with(json!({"operationType": "edit", "oldPassword": "000000", "newPassword": "246802"}));
    assert_eq!(h.refused(Call::SetNewMobilePayPwd, edit).await, "10000");
    h.call(
        Call::SetNewMobilePayPwd,
        with(json!({"operationType": "edit", "oldPassword": "135790", "newPassword": "246802"})),
    )
    .await;
    // New-mobile binding (cardCheck 4), then a QUICKPAY_N deposit confirmed by 4.2.11.
    let applied = h
        .call(
            Call::ApplyBindBankCard,
            with(json!({"cardNo": CARD, "phone": phone_of("qp"), "cardCheck": 4})),
        )
        .await;
    h.call(
        Call::BindBankCard,
        json!({"bizUserId": "qp", "tranceNum": applied["tranceNum"], "phone": phone_of("qp"), "verificationCode": "9999"}),
    )
    .await;
    let apply = h
        .call(
            Call::DepositApply,
            json!({"bizOrderNo": "qp-1", "bizUserId": "qp", "accountSetNo": "100000", "amount": 300, "fee": 0, "validateType": 0,
                   "backUrl": h.receiver.url, "industryCode": "1010", "industryName": "x", "source": 1,
                   "payMethod": {"QUICKPAY_N": {"bankCardNo": CARD, "amount": 300}}}),
        )
        .await;
    assert_eq!(
        (apply["isNeedPassword"].as_i64(), apply["mobileFlag"].as_i64()),
        (Some(1), Some(1))
    );
    let pay = |pwd: Option<&str>| {
        let mut v =
            json!({"bizUserId": "qp", "bizOrderNo": "qp-1", "verificationCode": "9999", "consumerIp": "1.1.1.1"});
        if let Some(p) = pwd {
            v["quickNewPwd"] = json!(p);
        }
        v
    };
    assert_eq!(h.refused(Call::PayBackendNewMobile, pay(None)).await, "50001");
    assert_eq!(h.refused(Call::PayBackendNewMobile, pay(Some("135790"))).await, "40006");
    h.call(Call::PayBackendNewMobile, pay(Some("246802"))).await;
    assert_eq!(h.balance("qp").await.0, 300);
    // Reset: apply shows the masked last card; affirm needs its full number and the code.
    let reset = h.call(Call::ResetNewMobilePayPwdApply, who.clone()).await;
    assert_eq!(reset["lastCardNoMask"], "622848*********4214");
    let affirm = |card: &str| {
        with(
            json!({"payPassword": "975310", "lastCardNo": card, "mobileFlowNO": reset["mobileFlowNO"], "mobileMsCode": "9999"}),
        )
    };
    assert_eq!(
        h.refused(Call::ResetNewMobilePayPwdAffirm, affirm(CARD2)).await,
        "30016"
    );
    assert_eq!(
        h.call(Call::ResetNewMobilePayPwdAffirm, affirm(CARD)).await["result"],
        "OK"
    );
}
