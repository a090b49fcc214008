//! Fault injection: refused calls, latency, timeouts after commit, bad signatures, and misbehaving notifications.

mod support;

use std::time::Duration;

use serde_json::json;
use support::harness::{ESCROW, Harness, Receiver};
use yungate::provider::calls::Call;
use yungate::provider::client::CallError;
use yungate::provider::wire::WireError;

fn code_deposit(no: &str, who: &str, url: &str) -> serde_json::Value {
    json!({"bizOrderNo": no, "bizUserId": who, "accountSetNo": ESCROW, "amount": 100, "fee": 0, "validateType": 0,
           "backUrl": url, "industryCode": "1010", "industryName": "x", "source": 1,
           "payMethod": {"CODEPAY_W": {"payType": "", "amount": 100, "authcode": "1"}}})
}

#[tokio::test]
async fn injected_errors_hit_only_the_named_call() {
    let h = Harness::start().await;
    assert_eq!(
        h.set_faults(json!({"errorRate": {"MemberService.createMember": 1.0}, "errorCode": "9100"}))
            .await,
        200
    );
    assert_eq!(
        h.refused(
            Call::CreateMember,
            json!({"bizUserId": "a", "memberType": 3, "source": 1})
        )
        .await,
        "9100"
    );
    assert_eq!(
        h.refused(Call::GetMemberInfo, json!({"bizUserId": "a"})).await,
        "30001",
        "nothing was created"
    );
    assert_eq!(h.set_faults(json!({})).await, 200);
    h.call(
        Call::CreateMember,
        json!({"bizUserId": "a", "memberType": 3, "source": 1}),
    )
    .await;
    // Bad settings are refused with a reason, and change nothing.
    assert_eq!(h.set_faults(json!({"unsignedRate": 1.5})).await, 400);
    assert_eq!(h.set_faults(json!({"noSuchKnob": 1})).await, 400);
    assert_eq!(h.set_faults(json!({"errorCode": "12345"})).await, 400);
    // Absurd durations would hang the sandbox: refused, and the sandbox still answers at once.
    assert_eq!(h.set_faults(json!({"latencyMs": u64::MAX})).await, 400);
    assert_eq!(h.set_faults(json!({"hangMs": 600_001})).await, 400);
    assert_eq!(h.set_faults(json!({"payouts": {"pendingMs": u64::MAX}})).await, 400);
    let started = std::time::Instant::now();
    h.call(Call::GetMemberInfo, json!({"bizUserId": "a"})).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn latency_beyond_the_client_timeout_makes_the_outcome_unknown() {
    let h = Harness::start().await;
    h.set_faults(json!({"latencyMs": 600})).await;
    let client = h.impatient_client(Duration::from_millis(200));
    let err = client
        .call_value(
            Call::CreateMember,
            json!({"bizUserId": "slow", "memberType": 3, "source": 1}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::OutcomeUnknown(_)), "{err:?}");
    h.set_faults(json!({})).await;
    // The call was processed: the member exists.
    assert_eq!(
        h.refused(
            Call::CreateMember,
            json!({"bizUserId": "slow", "memberType": 3, "source": 1})
        )
        .await,
        "30000"
    );
}

#[tokio::test]
async fn a_timeout_after_commit_leaves_the_order_in_place() {
    let h = Harness::start().await;
    h.individual("tim").await;
    h.set_faults(json!({"timeoutAfterCommit": {"OrderService.depositApply": 1.0}, "hangMs": 2000}))
        .await;
    let client = h.impatient_client(Duration::from_millis(300));
    let err = client
        .call_value(Call::DepositApply, code_deposit("t-1", "tim", &h.receiver.url))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::OutcomeUnknown(_)), "{err:?}");
    h.set_faults(json!({})).await;
    // The hard case for idempotency: the money moved although the caller saw a timeout.
    assert_eq!(h.status("tim", "t-1").await, 4);
    assert_eq!(h.balance("tim").await.0, 100);
    assert_eq!(
        h.refused(Call::DepositApply, code_deposit("t-1", "tim", &h.receiver.url))
            .await,
        "40017"
    );
}

#[tokio::test]
async fn unsigned_and_badly_signed_answers_are_rejected_by_the_client() {
    let h = Harness::start().await;
    h.set_faults(json!({"unsignedRate": 1.0})).await;
    let err = h
        .client
        .call_value(
            Call::CreateMember,
            json!({"bizUserId": "u1", "memberType": 3, "source": 1}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Malformed(WireError::Missing("sign"))),
        "{err:?}"
    );
    h.set_faults(json!({"badSignatureRate": 1.0})).await;
    let err = h
        .client
        .call_value(
            Call::CreateMember,
            json!({"bizUserId": "u2", "memberType": 3, "source": 1}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::BadSignature(_)), "{err:?}");
}

#[tokio::test]
async fn notifications_dropped_duplicated_and_reordered_only_when_asked() {
    let h = Harness::start().await;
    h.individual("nia").await;
    // Normal: exactly one notification per order.
    let plain = Receiver::start(h.keys.clone(), 0).await;
    h.call(Call::DepositApply, code_deposit("p-1", "nia", &plain.url)).await;
    plain.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(plain.got.lock().unwrap().len(), 1);
    // Dropped.
    h.set_faults(json!({"notifications": {"dropRate": 1.0}})).await;
    let dropped = Receiver::start(h.keys.clone(), 0).await;
    h.call(Call::DepositApply, code_deposit("d-1", "nia", &dropped.url))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(dropped.attempts.lock().unwrap().is_empty());
    // Duplicated.
    h.set_faults(json!({"notifications": {"duplicateRate": 1.0}})).await;
    let twice = Receiver::start(h.keys.clone(), 0).await;
    h.call(Call::DepositApply, code_deposit("dup-1", "nia", &twice.url))
        .await;
    let got = twice.wait_for(2).await;
    assert_eq!(got[0].body.return_value, got[1].body.return_value);
    // Reordered: two orders in quick succession arrive newest first.
    h.set_faults(json!({"notifications": {"reorder": true, "reorderWindowMs": 300}}))
        .await;
    let reordered = Receiver::start(h.keys.clone(), 0).await;
    h.call(Call::DepositApply, code_deposit("r-1", "nia", &reordered.url))
        .await;
    h.call(Call::DepositApply, code_deposit("r-2", "nia", &reordered.url))
        .await;
    let got = reordered.wait_for(2).await;
    let order: Vec<&str> = got
        .iter()
        .map(|r| r.body.return_value["bizOrderNo"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["r-2", "r-1"]);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_ids() {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let h = Harness::with(|c| c.seed = Some(42)).await;
        let created = h
            .call(
                Call::CreateMember,
                json!({"bizUserId": "s", "memberType": 3, "source": 1}),
            )
            .await;
        ids.push(created["userId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], ids[1]);
    let h = Harness::with(|c| c.seed = Some(43)).await;
    let other = h
        .call(
            Call::CreateMember,
            json!({"bizUserId": "s", "memberType": 3, "source": 1}),
        )
        .await;
    assert_ne!(other["userId"].as_str().unwrap(), ids[0]);
}

#[tokio::test]
async fn the_reconciliation_file_comes_at_11_the_next_day_and_can_be_wrong_on_purpose() {
    // "云账户每天上午 11:00 生成前一天的商户对账文件" (4.3.2 l.2329): at real speed the
    // file of today is not there yet; the refusal says when it will be.
    let slow = Harness::with(|c| c.time_scale = 1.0).await;
    let today = support::harness::china_today();
    let code = slow.refused(Call::GetCheckAccountFile, json!({"date": today})).await;
    assert_eq!(code, "10000");
    slow.call(Call::GetCheckAccountFile, json!({"date": "20261125"})).await;

    // A sandbox day that passes in a moment, and a file with one row dropped, one altered, one added.
    let h = Harness::with(|c| c.time_scale = 1e-6).await;
    h.individual("rf").await;
    h.bind_card("rf", support::harness::CARD).await;
    for no in ["rf-1", "rf-2", "rf-3"] {
        h.deposit("rf", no, 1_000, support::harness::CARD).await;
    }
    let ghost = "O999|消费|5|0|2026-12-07 10:00:00|ghost";
    assert_eq!(
        h.set_faults(json!({"checkFile": {"drop": ["rf-1"], "amounts": {"rf-2": 999}, "add": [ghost]}}))
            .await,
        200
    );
    let url = h.check_file_url(&today).await;
    let file = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let rows: Vec<Vec<&str>> = file.lines().map(|l| l.split('|').collect()).collect();
    let row = |no: &str| rows.iter().find(|r| r[5] == no).cloned();
    assert_eq!(row("rf-1"), None, "{file}");
    assert_eq!(row("rf-2").unwrap()[2], "999", "{file}");
    assert_eq!(row("rf-3").unwrap()[2], "1000", "{file}");
    assert_eq!(row("ghost").unwrap()[1], "消费", "{file}");
    // The gateway's strict reader takes the sandbox's file whole.
    let read = yungate::provider::checkfile::parse(file.as_bytes()).unwrap();
    assert_eq!(read.len(), rows.len());
    assert!(read.iter().all(|r| r.channel_fee == 0 && r.amount > 0), "{read:?}");
    // The fault knobs are bounded.
    let many: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
    assert_eq!(h.set_faults(json!({"checkFile": {"drop": many}})).await, 400);
}

#[tokio::test]
async fn an_audit_exempt_platform_answers_the_audit_status_directly() {
    // 4.1.6 l.502 "免审平台：调用设置企业会员信息后，直接返回企业审核状态，没有异步通知";
    // the status in 4.1.7's words: result 2 审核成功 (l.551).
    let h = Harness::start().await;
    h.call(
        Call::CreateMember,
        json!({"bizUserId": "ex-1", "memberType": 2, "source": 2}),
    )
    .await;
    let answer = h
        .call(
            Call::SetCompanyInfo,
            json!({"bizUserId": "ex-1", "companyBasicInfo": support::harness::company_info("ACME", "1234567890")}),
        )
        .await;
    assert_eq!(answer["result"], 2, "{answer}");
    assert!(answer["checkTime"].as_str().is_some(), "{answer}");
}
