//! Reconciliation through the real gateway and the real sandbox: a day of mixed orders with injected file faults gives exactly the expected report, a transfer left unknown is resolved by the file, a malformed, oversized or foreign-host file changes nothing, and a re-run changes nothing.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::dynamic_grpc::call_answered;
use support::harness::{CARD, ESCROW, china_today};
use support::rig::{Backend, Rig, confirm_request, deposit_request, member};
use tonic::Code;
use tonic_types::StatusExt;
use yungate::grpc::proto::notification_service_client::NotificationServiceClient;
use yungate::grpc::proto::order_service_client::OrderServiceClient;
use yungate::grpc::proto::outcome_service_client::OutcomeServiceClient;
use yungate::grpc::proto::reconciliation_service_client::ReconciliationServiceClient;
use yungate::grpc::proto::{
    GetReconciliationReportRequest, GetTimelineRequest, ListNotificationsRequest, NotificationFilter, ReconcileRequest,
    ReconciliationRow, ReconciliationVerdict, notification::Event,
};
use yungate::provider::calls::Call;

/// The provider commits the call, then its answer is lost.
const LOST: u64 = 1_500;

/// A rig whose sandbox runs on the real clock and serves today's file at
/// once (`checkFile.early`), so that the gateway's days and the file's agree.
async fn rig(
    backend: Backend,
    adjust: impl FnOnce(&mut yungate::config::Config),
) -> (Rig, Option<support::redis::RedisServer>) {
    wait_past_midnight().await;
    let redis = (backend == Backend::Redis).then(support::redis::RedisServer::start);
    let url = redis.as_ref().map(support::redis::RedisServer::url);
    let rig = Rig::start(
        |s| s.time_scale = 1.0,
        |c| {
            if let Some(url) = url {
                c.store.redis_url = Some(url.into());
                c.store.initialise_empty = true;
                c.idempotency.fingerprint_key = Some(support::rig::FINGERPRINT_KEY.into());
            }
            c.provider.request_timeout_ms = 400;
            c.idempotency.settle_ms = 500;
            adjust(c);
        },
    )
    .await;
    rig.set_faults(json!({"checkFile": {"early": true}})).await;
    (rig, redis)
}

/// The test's orders and the file must share a China day.
async fn wait_past_midnight() {
    let now = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8));
    let left = 86_400 - i64::from(now.hour()) * 3600 - i64::from(now.minute()) * 60 - i64::from(now.second());
    if left < 90 {
        tokio::time::sleep(Duration::from_secs(u64::try_from(left).unwrap_or(0) + 2)).await;
    }
}

/// A deposit through the gateway, confirmed by SMS there (4.2.2, 4.2.8).
async fn deposit(rig: &Rig, user: &str, order: &str, amount: i64) {
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

/// An ApplicationTransfer (4.2.19) whose answer is lost after the provider committed it.
async fn lost_transfer(rig: &Rig, user: &str, no: &str, amount: i64) -> Json {
    let wire = json!({"bizTransferNo": no, "sourceAccountSetNo": "2000000", "targetBizUserId": user,
                      "targetAccountSetNo": ESCROW, "amount": amount});
    rig.set_faults(
        json!({"timeoutAfterCommit": {"OrderService.applicationTransfer": 1.0}, "hangMs": LOST,
                          "checkFile": {"early": true}}),
    )
    .await;
    let lost = call_answered(&rig.channel, Call::ApplicationTransfer, wire.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(
        lost.get_details_error_info().map(|i| i.reason),
        Some("OUTCOME_UNKNOWN".to_owned()),
        "{lost:?}"
    );
    rig.set_faults(json!({"checkFile": {"early": true}})).await;
    wire
}

fn reconcile(date: &str, dry_run: bool) -> ReconcileRequest {
    ReconcileRequest {
        date: date.into(),
        dry_run,
    }
}

async fn all_rows(
    client: &mut ReconciliationServiceClient<tonic::transport::Channel>,
    date: &str,
) -> Vec<ReconciliationRow> {
    let mut rows = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .get_reconciliation_report(GetReconciliationReportRequest {
                date: date.into(),
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.rows.len() <= 2);
        rows.extend(page.rows);
        if page.next_page_token.is_empty() {
            return rows;
        }
        token = page.next_page_token;
    }
}

fn verdicts(rows: &[ReconciliationRow]) -> BTreeMap<String, ReconciliationVerdict> {
    rows.iter().map(|r| (r.biz_order_no.clone(), r.verdict())).collect()
}

async fn reconciliation_events(rig: &Rig, number: &str) -> usize {
    OutcomeServiceClient::new(rig.channel.clone())
        .get_timeline(GetTimelineRequest { number: number.into() })
        .await
        .unwrap()
        .into_inner()
        .events
        .iter()
        .filter(|e| e.kind == "reconciliation")
        .count()
}

/// 4.3.2: "含所有订单及平台转账成功的交易" (l.2333), one row per transaction
/// "通联订单号|订单类型|交易金额(单位:分)|渠道手续费金额(单位:分)|交易时间|商户订单编号" (l.2335).
async fn a_day_of_mixed_orders(backend: Backend) {
    let (rig, redis_server) = rig(backend, |_| {}).await;
    let p = if backend == Backend::Redis { "r" } else { "m" };
    let no = |n: &str| format!("rc-{p}-{n}");
    let user = no("u");
    member(&rig, &user).await;
    // Through the gateway: matched, booked with another amount, left out of the file.
    deposit(&rig, &user, &no("d1"), 1_000).await;
    deposit(&rig, &user, &no("d2"), 2_000).await;
    deposit(&rig, &user, &no("d3"), 3_000).await;
    // Straight at the provider: the gateway never saw it.
    rig.direct().deposit(&user, &no("d4"), 4_000, CARD).await;
    // A transfer whose answer was lost: its outcome is unknown here, and nobody retries.
    let transfer = lost_transfer(&rig, &user, &no("t1"), 300).await;
    // A deposit the provider refused with a verified 10000 参数错误 (section 7: a refusal).
    rig.set_faults(
        json!({"errorRate": {"OrderService.depositApply": 1.0}, "errorCode": "10000",
                          "v1ErrorSignature": "codeAndMessage", "checkFile": {"early": true}}),
    )
    .await;
    let refused = OrderServiceClient::new(rig.channel.clone())
        .deposit_apply(deposit_request(&no("d5"), &user, 5_000))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let today = china_today();
    let traded = format!("{}-{}-{} 12:00:00", &today[..4], &today[4..6], &today[6..]);
    rig.set_faults(json!({"checkFile": {
        "early": true,
        "drop": [no("d3")],
        "amounts": {no("d2"): 2_100},
        // The file books d5 although the gateway told its caller it was refused.
        "add": [format!("X{p}5|充值|5000|0|{traded}|{}", no("d5"))],
    }}))
    .await;
    let mut client = ReconciliationServiceClient::new(rig.channel.clone());

    // A dry run classifies and changes nothing.
    let dry = client.reconcile(reconcile(&today, true)).await.unwrap().into_inner();
    let summary = dry.summary.unwrap();
    assert!(summary.dry_run);
    assert_eq!((summary.resolved_by_file, summary.applied), (1, 0), "{summary:?}");
    let missing = client
        .get_reconciliation_report(GetReconciliationReportRequest {
            date: today.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "a dry run stores no report");
    assert_eq!(reconciliation_events(&rig, &no("t1")).await, 0);

    let run = client.reconcile(reconcile(&today, false)).await.unwrap().into_inner();
    let summary = run.summary.unwrap();
    assert_eq!(summary.date, today);
    assert_eq!(summary.file_rows, 5, "d1, d2, d4, t1 and the added d5: {summary:?}");
    assert_eq!(summary.file_amount, 1_000 + 2_100 + 4_000 + 300 + 5_000);
    assert_eq!(
        (
            summary.matched,
            summary.amount_differs,
            summary.provider_only,
            summary.gateway_only,
            summary.resolved_by_file,
            summary.conflict,
            summary.applied
        ),
        (1, 1, 1, 1, 1, 1, 1),
        "{summary:?}"
    );
    // Those that need a look come back at once, conflicts first.
    assert_eq!(run.rows.len(), 5);
    assert_eq!(run.rows[0].verdict(), ReconciliationVerdict::Conflict);
    let rows = all_rows(&mut client, &today).await;
    let expected: BTreeMap<String, ReconciliationVerdict> = [
        (no("d1"), ReconciliationVerdict::Matched),
        (no("d2"), ReconciliationVerdict::AmountDiffers),
        (no("d3"), ReconciliationVerdict::GatewayOnly),
        (no("d4"), ReconciliationVerdict::ProviderOnly),
        (no("t1"), ReconciliationVerdict::ResolvedByFile),
        (no("d5"), ReconciliationVerdict::Conflict),
    ]
    .into_iter()
    .collect();
    assert_eq!(verdicts(&rows), expected);
    let row = |n: &str| rows.iter().find(|r| r.biz_order_no == no(n)).unwrap().clone();
    assert_eq!((row("d2").amount, row("d2").gateway_amount), (2_100, Some(2_000)));
    assert_eq!((row("d3").line, row("d3").gateway_amount), (0, Some(3_000)));
    assert_eq!((row("t1").order_type.as_str(), row("t1").applied), ("平台转账", true));
    let only_conflicts = client
        .get_reconciliation_report(GetReconciliationReportRequest {
            date: today.clone(),
            verdict: ReconciliationVerdict::Conflict as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only_conflicts.rows.len(), 1);
    assert!(
        only_conflicts.rows[0].detail.contains("10000"),
        "{:?}",
        only_conflicts.rows[0]
    );

    // The transfer's record was completed: its retry replays it, nothing sent or asked.
    let sent = rig.sent_for("applicationTransfer");
    let asked = rig.sent_for("queryInExpDetail");
    let (metadata, answer) = call_answered(&rig.channel, Call::ApplicationTransfer, transfer, None)
        .await
        .unwrap();
    assert_eq!(
        metadata.get("idempotent-recovered").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(answer["bizTransferNo"], no("t1").as_str());
    assert_eq!(answer["amount"], 300);
    assert_eq!(
        (rig.sent_for("applicationTransfer"), rig.sent_for("queryInExpDetail")),
        (sent, asked)
    );
    assert_eq!(reconciliation_events(&rig, &no("t1")).await, 1);

    // A re-run changes nothing: the same verdicts, no new timeline events, one event on the stream.
    let again = client.reconcile(reconcile(&today, false)).await.unwrap().into_inner();
    let mut second = again.summary.unwrap();
    let mut first = summary.clone();
    (first.ran_at_ms, second.ran_at_ms) = (0, 0);
    assert_eq!(second, first);
    assert_eq!(verdicts(&all_rows(&mut client, &today).await), expected);
    for n in ["d1", "d2", "d3", "t1", "d5"] {
        assert_eq!(reconciliation_events(&rig, &no(n)).await, 1, "{n}");
    }
    // A number the gateway never saw gets no timeline of the file's making.
    assert_eq!(reconciliation_events(&rig, &no("d4")).await, 0);
    let events = NotificationServiceClient::new(rig.channel.clone())
        .list_notifications(ListNotificationsRequest {
            filter: Some(NotificationFilter {
                services: vec!["yungate".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert_eq!(events.len(), 1, "{events:?}");
    let notification = events[0].notification.clone().unwrap();
    assert_eq!(notification.method, "reconciled");
    let Some(Event::Reconciliation(event)) = notification.event else {
        panic!("{notification:?}")
    };
    assert_eq!(event.summary.map(|s| (s.conflict, s.file_rows)), Some((1, 5)));

    // A run cut short after its completions stores nothing: the next run
    // still knows the file completed the transfer (its timeline says so).
    if let Some(redis) = &redis_server {
        let mut connection = redis.client().get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("yg:recon:*").query(&mut connection).unwrap();
        assert!(!keys.is_empty());
        let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut connection).unwrap();
        let rerun = client.reconcile(reconcile(&today, false)).await.unwrap().into_inner();
        assert_eq!(verdicts(&all_rows(&mut client, &today).await), expected);
        assert_eq!(rerun.summary.map(|s| s.applied), Some(1));
        assert_eq!(reconciliation_events(&rig, &no("t1")).await, 1);
    }
}

#[tokio::test]
async fn a_day_of_mixed_orders_in_memory() {
    a_day_of_mixed_orders(Backend::Memory).await;
}

#[tokio::test]
async fn a_day_of_mixed_orders_on_redis() {
    a_day_of_mixed_orders(Backend::Redis).await;
}

/// A file the gateway must not take changes nothing: the unknown transfer
/// stays unknown (the run after the fault is gone still completes it).
#[tokio::test]
async fn malformed_oversized_and_foreign_files_are_refused_and_change_nothing() {
    let (rig, _redis) = rig(Backend::Memory, |c| c.reconciliation.max_file_bytes = 1_024).await;
    member(&rig, "rc-f-u").await;
    lost_transfer(&rig, "rc-f-u", "rc-f-t1", 300).await;
    let today = china_today();
    let mut client = ReconciliationServiceClient::new(rig.channel.clone());
    let refused = |faults: Json| {
        let rig = &rig;
        let mut client = client.clone();
        let today = today.clone();
        async move {
            rig.set_faults(faults).await;
            let e = client.reconcile(reconcile(&today, false)).await.unwrap_err();
            let reason = e.get_details_error_info().map(|i| i.reason).unwrap_or_default();
            (e.code(), reason, e.message().to_owned())
        }
    };
    // A row that breaks 4.3.2's six columns, named by its line.
    let (code, reason, message) = refused(json!({"checkFile": {"early": true, "add": ["not|a|row"]}})).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::FailedPrecondition, "FILE_MALFORMED"),
        "{message}"
    );
    assert!(message.contains("line 2"), "{message}");
    // A spreadsheet formula in the one free-text column.
    let (_, reason, message) = refused(json!({"checkFile": {"early": true,
        "add": ["O9|=cmd|1|0|2026-12-07 10:00:00|x"]}}))
    .await;
    assert_eq!(reason, "FILE_MALFORMED", "{message}");
    assert!(message.contains("spreadsheet formula"), "{message}");
    // Larger than reconciliation.max_file_bytes (1 KiB here).
    let long: Vec<String> = (0..3)
        .map(|i| format!("L{i}|充值|1|0|2026-12-07 10:00:00|{}", "x".repeat(60)))
        .collect();
    let many: Vec<String> = (0..12).flat_map(|_| long.clone()).collect();
    let (_, reason, message) = refused(json!({"checkFile": {"early": true, "add": many}})).await;
    assert_eq!(reason, "FILE_TOO_LARGE", "{message}");
    assert!(message.contains("larger than 1024 bytes"), "{message}");
    assert_eq!(reconciliation_events(&rig, "rc-f-t1").await, 0);
    let none = client
        .get_reconciliation_report(GetReconciliationReportRequest {
            date: today.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::NotFound);
    // A date to come, or not a date.
    for date in ["20991231", "2026-12-07"] {
        let e = client.reconcile(reconcile(date, false)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{date}");
    }
    // With the file whole, the transfer is still unknown here and the file settles it.
    rig.set_faults(json!({"checkFile": {"early": true}})).await;
    let summary = client
        .reconcile(reconcile(&today, false))
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert_eq!((summary.resolved_by_file, summary.applied), (1, 1), "{summary:?}");
}

/// The file is taken only from the provider's host: a URL elsewhere is refused unfetched.
#[tokio::test]
async fn a_file_on_another_host_is_not_fetched() {
    wait_past_midnight().await;
    let rig = Rig::start(
        |s| {
            s.time_scale = 1.0;
            // The provider is reached at 127.0.0.1; its answer names another host.
            s.public_url = Some("http://localhost:9".into());
        },
        |_| {},
    )
    .await;
    rig.set_faults(json!({"checkFile": {"early": true}})).await;
    let e = ReconciliationServiceClient::new(rig.channel.clone())
        .reconcile(reconcile(&china_today(), false))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.get_details_error_info().map(|i| i.reason)),
        (Code::FailedPrecondition, Some("FILE_URL_REFUSED".to_owned())),
        "{e:?}"
    );
    assert!(e.message().contains("\"localhost\""), "{}", e.message());
}

/// Before 11:00 China time the next day there is no file (4.3.2 l.2329:
/// "云账户每天上午 11:00 生成前一天的商户对账文件"): the provider's refusal, said as such.
#[tokio::test]
async fn a_day_whose_file_is_not_generated_yet_is_refused_as_such() {
    // On the real clock: today's file comes tomorrow.
    let rig = Rig::start(|s| s.time_scale = 1.0, |_| {}).await;
    let e = ReconciliationServiceClient::new(rig.channel.clone())
        .reconcile(reconcile(&china_today(), false))
        .await
        .unwrap_err();
    let info = e.get_details_error_info().unwrap();
    assert_eq!(
        (
            e.code(),
            info.reason.as_str(),
            info.metadata.get("code").map(String::as_str)
        ),
        (Code::FailedPrecondition, "PROVIDER_REFUSED", Some("10000")),
        "{e:?}"
    );
    assert!(e.message().contains("11:00"), "{}", e.message());
}

/// The daily run reconciles the previous China day by itself once past
/// `reconciliation.at`, one replica at a time: of two replicas on one Redis,
/// checking every second, exactly one runs it.
#[tokio::test]
async fn the_daily_run_reconciles_yesterday_once_across_replicas() {
    wait_past_midnight().await;
    let redis = support::redis::RedisServer::start();
    let url = redis.url();
    // Yesterday's file (made at 11:00 today, 4.3.2 l.2329) is served at once.
    let rig = Rig::start(
        |s| s.faults.check_file.early = true,
        |c| {
            c.store.redis_url = Some(url.into());
            c.store.initialise_empty = true;
            c.idempotency.fingerprint_key = Some(support::rig::FINGERPRINT_KEY.into());
            c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
            c.reconciliation.daily = Some(true);
            c.reconciliation.at = "00:00".into();
            c.reconciliation.check_interval_secs = 1;
            c.reconciliation.catch_up_days = 1;
        },
    )
    .await;
    let (second, _channel) = rig.replica().await;
    let yesterday = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .previous_day()
        .unwrap();
    let day = format!(
        "{}{:02}{:02}",
        yesterday.year(),
        u8::from(yesterday.month()),
        yesterday.day()
    );
    let mut client = ReconciliationServiceClient::new(rig.channel.clone());
    let mut report = None;
    for _ in 0..200 {
        match client
            .get_reconciliation_report(GetReconciliationReportRequest {
                date: day.clone(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => {
                report = Some(r.into_inner());
                break;
            }
            Err(e) => assert_eq!(e.code(), Code::NotFound, "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = report
        .expect("the daily run stored yesterday's report")
        .summary
        .unwrap();
    assert_eq!(
        (summary.date.as_str(), summary.dry_run, summary.file_rows),
        (day.as_str(), false, 0)
    );
    // Both replicas look again every second: the stored report is the day's mark.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let mut runs = 0.0;
    for addr in [rig.gateway.metrics_addr(), second.metrics_addr()] {
        let text = reqwest::get(format!("http://{}/metrics", addr.unwrap()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        runs += text
            .lines()
            .filter(|l| l.starts_with("yungate_reconciliation_runs_total{") && l.contains("result=\"ok\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        // Every replica reports the day's verdicts, whichever ran it.
        assert!(
            text.lines()
                .any(|l| l.starts_with("yungate_reconciliation_rows{") && l.contains("matched")),
            "{text}"
        );
    }
    assert_eq!(runs, 1.0, "one run of the day across both replicas");
}

/// Only a row that can be only this order's proves its success: a type
/// 4.3.2 does not list ("充值|消费|提现|平台转账|代收|代付|退款 等", l.2338:
/// a reversal, say) or a number on two rows completes nothing.
#[tokio::test]
async fn rows_that_cannot_prove_a_success_complete_nothing() {
    let (rig, _redis) = rig(Backend::Memory, |_| {}).await;
    member(&rig, "rc-o-u").await;
    lost_transfer(&rig, "rc-o-u", "rc-o-t3", 300).await;
    lost_transfer(&rig, "rc-o-u", "rc-o-t4", 400).await;
    let today = china_today();
    let traded = format!("{}-{}-{} 12:00:00", &today[..4], &today[4..6], &today[6..]);
    rig.set_faults(json!({"checkFile": {
        "early": true,
        "drop": ["rc-o-t3"],
        "add": [format!("Y3|冲正|300|0|{traded}|rc-o-t3"), format!("Y4|平台转账|400|0|{traded}|rc-o-t4")],
    }}))
    .await;
    let mut client = ReconciliationServiceClient::new(rig.channel.clone());
    let run = client.reconcile(reconcile(&today, false)).await.unwrap().into_inner();
    let summary = run.summary.unwrap();
    assert_eq!(
        (summary.conflict, summary.applied, summary.resolved_by_file),
        (3, 0, 0),
        "{summary:?}"
    );
    let rows = all_rows(&mut client, &today).await;
    let t3 = rows.iter().find(|r| r.biz_order_no == "rc-o-t3").unwrap();
    assert!(t3.detail.contains("not one 4.3.2 lists"), "{t3:?}");
    let t4: Vec<_> = rows.iter().filter(|r| r.biz_order_no == "rc-o-t4").collect();
    assert_eq!(t4.len(), 2);
    assert!(
        t4.iter()
            .all(|r| r.verdict() == ReconciliationVerdict::Conflict && !r.applied),
        "{t4:?}"
    );
    assert!(t4[0].detail.contains("2 rows"), "{t4:?}");
}
