//! The sandbox's notifications: signed, retried on the spec 3.6 schedule (time-scaled), stopped by the first HTTP 200.

mod support;

use std::time::Duration;

use serde_json::json;
use support::harness::{ESCROW, Harness, Receiver};
use yungate::provider::calls::Call;

/// Starts a harness at `scale`, points a deposit's notification at a
/// receiver failing its first `fail_first` attempts, and completes the order.
async fn notified_deposit(scale: f64, fail_first: usize) -> (Harness, Receiver) {
    let h = Harness::with(|c| c.time_scale = scale).await;
    let receiver = Receiver::start(h.keys.clone(), fail_first).await;
    h.individual("nina").await;
    h.call(
        Call::DepositApply,
        json!({"bizOrderNo": "n-1", "bizUserId": "nina", "accountSetNo": ESCROW, "amount": 100, "fee": 0, "validateType": 0,
               "backUrl": receiver.url, "industryCode": "1010", "industryName": "x", "source": 1,
               "payMethod": {"CODEPAY_W": {"payType": "", "amount": 100, "authcode": "1"}}}),
    )
    .await;
    (h, receiver)
}

#[tokio::test]
async fn retries_follow_the_schedule_and_stop_at_the_first_200() {
    let (h, receiver) = notified_deposit(0.001, 3).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body.return_value["bizOrderNo"], "n-1");
    // "通知频率为 5s, 2m, 10m, 15m, 1h, ..." (3.6 l.266): attempts 2 to 4 come 2m, 10m and 15m
    // after the one before (x 0.001). Nothing after the success: the next would be 1h later (3.6 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let attempts = receiver.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 4, "three failures, then the success");
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, expected_ms) in gaps.iter().zip([120u64, 600, 900]) {
        let expected = Duration::from_millis(expected_ms);
        assert!(*gap >= expected, "gap {gap:?} shorter than {expected:?}");
        assert!(
            *gap < expected + Duration::from_millis(400),
            "gap {gap:?} much longer than {expected:?}"
        );
    }
    // The sandbox's own log agrees.
    let log = h.attempt_log().await;
    let statuses: Vec<Option<i64>> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["url"] == receiver.url.as_str())
        .map(|a| a["httpStatus"].as_i64())
        .collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(500), Some(200)]);
}

#[tokio::test]
async fn a_receiver_that_never_answers_200_gets_eight_attempts() {
    let (_h, receiver) = notified_deposit(0.000_01, usize::MAX).await;
    // The whole schedule (about 24.5 h) scaled by 1e-5 takes under a second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        receiver.attempts.lock().unwrap().len(),
        8,
        "\"最多通知 8 次\" (3.6 l.266): 8 attempts in all"
    );
    assert!(receiver.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn v2_notifications_are_signed_by_the_provider_key_and_retried_four_times() {
    let h = Harness::v2(|c| c.time_scale = 0.000_01).await;
    let receiver = Receiver::start(h.keys.clone(), usize::MAX).await;
    h.individual("vera").await;
    h.call(
        Call::DepositApply,
        json!({"bizOrderNo": "v2-1", "bizUserId": "vera", "accountSetNo": ESCROW, "amount": 100, "fee": 0, "validateType": 0,
               "backUrl": receiver.url, "industryCode": "1010", "industryName": "x", "source": 1,
               "payMethod": {"CODEPAY_W": {"payType": "", "amount": 100, "authcode": "1"}}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The receiver checked each signature with the provider's public key (v2 MD5 pre-hash).
    assert_eq!(
        receiver.attempts.lock().unwrap().len(),
        4,
        "v2 notifies at most 4 times (5s, 10m, 1h, 6h)"
    );
    assert!(
        receiver.rejected.lock().unwrap().is_empty(),
        "{:?}",
        receiver.rejected.lock().unwrap()
    );
}
