//! `yungate serve` end to end: the real gRPC server on port 0 in front of the real sandbox over HTTP.

mod support;

use std::time::Duration;

use support::rig::{confirm_request, deposit_request};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use yungate::config::Config;
use yungate::grpc::proto::{
    self, member_service_client::MemberServiceClient, order_service_client::OrderServiceClient,
};
use yungate::serve::{self, RunningGateway};

async fn start() -> (RunningGateway, Channel) {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        notify: yungate::config::NotifyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        ..Config::default()
    };
    let running = serve::start(config).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.addr()))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    (running, channel)
}

#[tokio::test]
async fn embedded_defaults_take_a_payment_end_to_end() {
    let (running, channel) = start().await;
    assert!(
        running.sandbox_addr().is_some(),
        "no provider.url: the embedded sandbox runs"
    );
    let mut members = MemberServiceClient::new(channel.clone());
    let mut orders = OrderServiceClient::new(channel.clone());
    let created = support::flow::onboard(&channel, "grpc-1", "13800138000").await;
    assert_eq!(created.biz_user_id, "grpc-1");
    assert!(!created.user_id.is_empty());
    let deposit = orders
        .deposit_apply(deposit_request("grpc-dep-1", "grpc-1", 10_000))
        .await
        .unwrap()
        .into_inner();
    assert!(!deposit.order_no.is_empty());
    let confirmed = orders
        .confirm_pay_sms(confirm_request("grpc-1", "grpc-dep-1", "9999"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.pay_status, "success");
    let balance = orders
        .query_balance(proto::QueryBalanceRequest {
            biz_user_id: "grpc-1".into(),
            account_set_no: "100000".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.all_amount, 10_000);
    let info = members
        .get_member_info(proto::GetMemberInfoRequest {
            biz_user_id: "grpc-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(proto::get_member_info_response::MemberInfo::Individual(person)) = info.member_info else {
        panic!("individual info expected");
    };
    assert_eq!(
        person.identity_card_no.as_deref(),
        Some("610422198600000000"),
        "decrypted for the caller"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn validation_and_provider_errors_carry_details() {
    let (running, channel) = start().await;
    let mut orders = OrderServiceClient::new(channel.clone());
    let err = orders
        .consume_apply(proto::ConsumeApplyRequest {
            biz_order_no: "bad-1".into(),
            amount: 100,
            fee: 200,
            summary: Some("一二三四五六七八九十一二三四五六七八九十一".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let bad = err.get_details_bad_request().expect("BadRequest details");
    let fields: Vec<&str> = bad.field_violations.iter().map(|v| v.field.as_str()).collect();
    for expected in [
        "payer_id",
        "receiver_id",
        "fee",
        "summary",
        "pay_method",
        "industry_code",
    ] {
        assert!(fields.contains(&expected), "{expected} not in {fields:?}");
    }
    let mut members = MemberServiceClient::new(channel);
    let err = members
        .get_member_info(proto::GetMemberInfoRequest {
            biz_user_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let info = err.get_details_error_info().expect("ErrorInfo details");
    assert_eq!((info.domain.as_str(), info.reason.as_str()), ("allinpay", "30001"));
    assert!(info.metadata.contains_key("message"));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let (running, channel) = start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "yungate.v1.OrderService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_the_services_in_v1_and_v1alpha() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let (running, channel) = start().await;
    let mut client = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "yungate.v1.MemberService",
        "yungate.v1.MemberPwdService",
        "yungate.v1.OrderService",
        "yungate.v1.MerchantService",
        "yungate.v1.PageService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
    }
    // The v1 protocol answers too.
    use tonic_reflection::pb::v1 as r1;
    let mut v1 = r1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = v1
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    running.stop().await.unwrap();
}

/// Sets the embedded sandbox's faults.
async fn set_faults(running: &RunningGateway, faults: serde_json::Value) {
    let status = reqwest::Client::new()
        .put(format!("http://{}/sandbox/faults", running.sandbox_addr().unwrap()))
        .body(faults.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn provider_failures_map_to_statuses_that_say_what_to_do() {
    let (running, channel) = start().await;
    let mut members = MemberServiceClient::new(channel);
    let create = |id: &str| proto::CreateMemberRequest {
        biz_user_id: id.into(),
        member_type: proto::MemberType::Individual as i32,
        source: proto::Source::Mobile as i32,
    };
    // A bad provider signature: the member may have been created, so the
    // outcome is unknown (UNKNOWN, never UNAVAILABLE), caused by the signature.
    set_faults(&running, serde_json::json!({"badSignatureRate": 1.0})).await;
    let err = members.create_member(create("f-1")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unknown);
    let info = err.get_details_error_info().unwrap();
    assert_eq!(info.reason, "OUTCOME_UNKNOWN");
    assert_eq!(info.metadata["cause"], "BAD_PROVIDER_SIGNATURE");
    // The caller's deadline bounds the provider call: the sandbox answers after 3 s.
    set_faults(&running, serde_json::json!({"latencyMs": 3000})).await;
    let mut request = tonic::Request::new(create("f-2"));
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = members.create_member(request).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the deadline was not applied"
    );
    // An injected provider refusal keeps its code...
    set_faults(
        &running,
        serde_json::json!({"errorRate": {"*": 1.0}, "errorCode": "40014"}),
    )
    .await;
    let err = members.create_member(create("f-3")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let info = err.get_details_error_info().unwrap();
    assert_eq!((info.domain.as_str(), info.reason.as_str()), ("allinpay", "40014"));
    // ...but 9000 其他错误 says nothing of what happened: outcome unknown.
    set_faults(
        &running,
        serde_json::json!({"errorRate": {"*": 1.0}, "errorCode": "9000"}),
    )
    .await;
    let err = members.create_member(create("f-4")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unknown);
    let info = err.get_details_error_info().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.metadata["providerCode"].as_str()),
        ("OUTCOME_UNKNOWN", "9000")
    );
    set_faults(&running, serde_json::json!({})).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn page_rpcs_return_signed_links_the_sandbox_accepts() {
    let (running, channel) = start().await;
    let mut members = MemberServiceClient::new(channel.clone());
    members
        .create_member(proto::CreateMemberRequest {
            biz_user_id: "page-1".into(),
            member_type: proto::MemberType::Individual as i32,
            source: proto::Source::Mobile as i32,
        })
        .await
        .unwrap();
    support::flow::verify_and_bind_phone(&mut members, "page-1", "13800138001").await;
    let mut pages = proto::page_service_client::PageServiceClient::new(channel);
    let link = pages
        .set_pay_password_page(proto::SetPayPasswordPageRequest {
            biz_user_id: "page-1".into(),
            phone: "13800138001".into(),
            name: "王小二".into(),
            identity_type: proto::IdentityType::IdCard as i32,
            identity_no: "610422198600000000".into(),
            jump_url: "http://shop.example/done".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .link
        .unwrap();
    assert_eq!(link.http_method, "GET");
    // The embedded sandbox plays the test environment: "/pwd/setPayPwd.html" (l.1037).
    assert!(
        link.url.contains("/pwd/setPayPwd.html?") && !link.url.contains("/yungateway/"),
        "{}",
        link.url
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser
        .get(format!("{}&password=135790", link.url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert!(
        answer.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("http://shop.example/done?")
    );
    let info = members
        .get_member_info(proto::GetMemberInfoRequest {
            biz_user_id: "page-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(proto::get_member_info_response::MemberInfo::Individual(person)) = info.member_info else {
        panic!("individual expected");
    };
    assert_eq!(person.is_set_pay_pwd, Some(true));
    // A page request missing what the page needs is refused before signing.
    let err = pages
        .set_pay_password_page(proto::SetPayPasswordPageRequest {
            biz_user_id: "page-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_provider_timeout_is_reported_as_outcome_unknown() {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        notify: yungate::config::NotifyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        provider: yungate::config::ProviderConfig {
            request_timeout_ms: 300,
            ..Default::default()
        },
        ..Config::default()
    };
    let running = serve::start(config).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut members = MemberServiceClient::new(channel);
    let create = || proto::CreateMemberRequest {
        biz_user_id: "slow-1".into(),
        member_type: proto::MemberType::Individual as i32,
        source: proto::Source::Mobile as i32,
    };
    set_faults(&running, serde_json::json!({"latencyMs": 1500})).await;
    let err = members.create_member(create()).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    let info = err.get_details_error_info().unwrap();
    assert_eq!(
        (info.domain.as_str(), info.reason.as_str()),
        ("yungate", "OUTCOME_UNKNOWN")
    );
    // It was processed all the same: the outcome really was unknown, not
    // failed. The retry with the same bizUserId learns it from getMemberInfo
    // instead of creating the member again.
    set_faults(&running, serde_json::json!({})).await;
    let again = members.create_member(create()).await.unwrap();
    assert_eq!(again.metadata().get("idempotent-recovered").unwrap(), "true");
    assert_eq!(again.get_ref().biz_user_id, "slow-1");
    assert!(!again.get_ref().user_id.is_empty(), "{again:?}");
    running.stop().await.unwrap();
}
