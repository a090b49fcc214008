//! Rate limits through the real gateway: the provider quota shared by replicas (GCRA on Redis, governor in memory), per-caller limits, shadow mode, and replays that cost no quota.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::redis::RedisServer;
use support::rig::Rig;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use yungate::config::Config;
use yungate::grpc::proto::{self, member_service_client::MemberServiceClient};
use yungate::store::Limit;

async fn rig(redis: Option<&RedisServer>, adjust: impl FnOnce(&mut Config)) -> Rig {
    Rig::on_store(redis, adjust).await
}

fn info_request(caller: Option<&str>) -> tonic::Request<proto::GetMemberInfoRequest> {
    let mut r = tonic::Request::new(proto::GetMemberInfoRequest {
        biz_user_id: "nobody".into(),
    });
    if let Some(c) = caller {
        r.metadata_mut().insert("x-yungate-caller", c.parse().unwrap());
    }
    r
}

/// Calls GetMemberInfo from `loops` concurrent loops per channel for
/// `window`; returns (accepted, rate-limited). Every refusal must be
/// RESOURCE_EXHAUSTED with RetryInfo and ErrorInfo RATE_LIMITED.
async fn hammer(channels: &[Channel], loops: usize, window: Duration, scope: &str) -> (usize, usize) {
    let until = Instant::now() + window;
    let mut tasks = tokio::task::JoinSet::new();
    for channel in channels {
        for _ in 0..loops {
            let mut client = MemberServiceClient::new(channel.clone());
            let scope = scope.to_owned();
            tasks.spawn(async move {
                let (mut ok, mut limited) = (0, 0);
                while Instant::now() < until {
                    match client.get_member_info(info_request(Some("load"))).await {
                        Err(e) if e.code() == Code::ResourceExhausted => {
                            let info = e.get_details_error_info().unwrap();
                            assert_eq!(info.reason, "RATE_LIMITED");
                            assert_eq!(info.metadata["scope"], scope);
                            assert_eq!(info.metadata["class"], "query");
                            let after = e.get_details_retry_info().unwrap().retry_delay.unwrap();
                            assert!(after <= Duration::from_millis(100), "{after:?}");
                            limited += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        // The member does not exist: the provider answered, so the call was accepted.
                        Err(e) if e.code() == Code::NotFound => ok += 1,
                        other => panic!("{other:?}"),
                    }
                }
                (ok, limited)
            });
        }
    }
    let (mut ok, mut limited) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (o, l) = r.unwrap();
        ok += o;
        limited += l;
    }
    (ok, limited)
}

const QUOTA: Limit = Limit {
    per_second: 20,
    burst: 10,
};
const WINDOW: Duration = Duration::from_millis(1500);

/// Accepted over the window: burst + rate x time. The tolerance covers
/// the requests in flight when the window closes and timer slack: 20% of
/// a second's rate plus two.
fn assert_quota(accepted: usize) {
    let expected = QUOTA.burst as f64 + QUOTA.per_second as f64 * WINDOW.as_secs_f64();
    let tolerance = QUOTA.per_second as f64 * 0.2 + 2.0;
    eprintln!("accepted {accepted} over {WINDOW:?}, expected {expected} +- {tolerance}");
    assert!(
        (accepted as f64 - expected).abs() <= tolerance,
        "accepted {accepted}, expected {expected} +- {tolerance}"
    );
}

fn with_quota(c: &mut Config) {
    c.rate_limit.provider.insert("query".into(), QUOTA);
}

#[tokio::test]
async fn two_replicas_share_the_provider_quota_on_redis() {
    let redis = RedisServer::start();
    let rig = rig(Some(&redis), with_quota).await;
    let (second, channel) = rig.replica().await;
    let (accepted, limited) = hammer(&[rig.channel.clone(), channel], 4, WINDOW, "provider").await;
    assert_quota(accepted);
    assert!(limited > 0);
    // What was accepted is what reached the provider; refusals never did.
    assert_eq!(rig.sent_for("getMemberInfo"), accepted);
    second.stop().await.unwrap();
}

#[tokio::test]
async fn the_provider_quota_holds_in_memory() {
    let rig = rig(None, with_quota).await;
    let (accepted, limited) = hammer(std::slice::from_ref(&rig.channel), 8, WINDOW, "provider").await;
    assert_quota(accepted);
    assert!(limited > 0);
    assert_eq!(rig.sent_for("getMemberInfo"), accepted);
}

fn with_callers(c: &mut Config) {
    c.rate_limit.callers = BTreeMap::from([
        (
            "billing".to_owned(),
            BTreeMap::from([(
                "query".to_owned(),
                Limit {
                    per_second: 1,
                    burst: 2,
                },
            )]),
        ),
        (
            "*".to_owned(),
            BTreeMap::from([(
                "query".to_owned(),
                Limit {
                    per_second: 1,
                    burst: 3,
                },
            )]),
        ),
    ]);
}

async fn per_caller(redis: Option<&RedisServer>) {
    let rig = rig(redis, with_callers).await;
    let mut members = MemberServiceClient::new(rig.channel.clone());
    for _ in 0..2 {
        assert_eq!(
            members
                .get_member_info(info_request(Some("billing")))
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
    }
    let limited = members
        .get_member_info(info_request(Some("billing")))
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    let info = limited.get_details_error_info().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.metadata["scope"].as_str()),
        ("RATE_LIMITED", "caller")
    );
    assert!(limited.get_details_retry_info().is_some());
    // Callers without an entry of their own get the default, each their own bucket.
    for caller in ["reports", "search"] {
        for _ in 0..3 {
            let e = members.get_member_info(info_request(Some(caller))).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{caller}: {e:?}");
        }
        let e = members.get_member_info(info_request(Some(caller))).await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{caller}");
    }
    // A refusal of the per-caller limit never reached the provider.
    assert_eq!(rig.sent_for("getMemberInfo"), 2 + 3 + 3);
}

#[tokio::test]
async fn per_caller_limits_in_memory() {
    per_caller(None).await;
}

#[tokio::test]
async fn per_caller_limits_on_redis() {
    let redis = RedisServer::start();
    per_caller(Some(&redis)).await;
}

#[tokio::test]
async fn shadow_mode_refuses_nothing() {
    let rig = rig(None, |c| {
        with_callers(c);
        c.rate_limit.provider.insert(
            "query".into(),
            Limit {
                per_second: 1,
                burst: 1,
            },
        );
        c.rate_limit.shadow = true;
    })
    .await;
    let mut members = MemberServiceClient::new(rig.channel.clone());
    for _ in 0..6 {
        let e = members
            .get_member_info(info_request(Some("billing")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    assert_eq!(rig.sent_for("getMemberInfo"), 6);
}

#[tokio::test]
async fn replays_cost_no_provider_quota() {
    let rig = rig(None, |c| {
        c.rate_limit.provider.insert(
            "member".into(),
            Limit {
                per_second: 1,
                burst: 1,
            },
        );
    })
    .await;
    let mut members = MemberServiceClient::new(rig.channel.clone());
    let create = |id: &str| proto::CreateMemberRequest {
        biz_user_id: id.into(),
        member_type: proto::MemberType::Individual as i32,
        source: proto::Source::Mobile as i32,
    };
    members.create_member(create("quota-1")).await.unwrap();
    for _ in 0..5 {
        let replay = members.create_member(create("quota-1")).await.unwrap();
        assert_eq!(replay.metadata().get("idempotent-replayed").unwrap(), "true");
    }
    let limited = members.create_member(create("quota-2")).await.unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    assert_eq!(limited.get_details_error_info().unwrap().metadata["scope"], "provider");
    // The refusal was not stored: once the bucket refills, the same request passes.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    members.create_member(create("quota-2")).await.unwrap();
    assert_eq!(rig.sent_for("createMember"), 2);
}
