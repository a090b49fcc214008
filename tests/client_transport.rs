//! `SoaClient` against misbehaving servers: each failure is classified so the caller knows whether a retry is safe.

mod support;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use yungate::provider::client::{CallError, SoaClient, SoaConfig};
use yungate::provider::crypto::{PartyKeys, PrivateKey, Protocol};
use yungate::provider::member::GetMemberInfo;
use yungate::provider::wire::WireError;

fn keys(protocol: Protocol) -> PartyKeys {
    let key = PrivateKey::generate(1024).unwrap();
    PartyKeys {
        protocol,
        peer: key.public_key(),
        own: key,
    }
}

fn client(url: String, protocol: Protocol) -> SoaClient {
    SoaClient::new(
        SoaConfig {
            url,
            sysid: "1".into(),
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(800),
        },
        keys(protocol),
    )
    .unwrap()
}

/// Serves `app` on a free port and returns the SOA URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/service/soa")
}

async fn call(client: &SoaClient) -> CallError {
    client
        .call(&GetMemberInfo {
            biz_user_id: "u".into(),
        })
        .await
        .unwrap_err()
}

#[tokio::test]
async fn refused_connection_is_not_sent() {
    // Bind then drop: nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = call(&client(format!("http://127.0.0.1:{port}/service/soa"), Protocol::V1)).await;
    assert!(err.is_not_sent(), "{err:?}");
}

#[tokio::test]
async fn timeout_after_sending_is_outcome_unknown() {
    let url = serve(Router::new().route(
        "/service/soa",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "{}"
        }),
    ))
    .await;
    let err = call(&client(url, Protocol::V1)).await;
    assert!(matches!(err, CallError::OutcomeUnknown(_)), "{err:?}");
}

#[tokio::test]
async fn http_failure_keeps_status_and_a_snippet() {
    let url = serve(Router::new().route(
        "/service/soa",
        post(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }),
    ))
    .await;
    match call(&client(url, Protocol::V1)).await {
        CallError::Http { status, body_snippet } => {
            assert_eq!(status, 502);
            assert_eq!(body_snippet, "upstream down");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn malformed_answers_are_malformed() {
    let url = serve(Router::new().route("/service/soa", post(|| async { "<html>maintenance</html>" }))).await;
    assert!(matches!(
        call(&client(url, Protocol::V1)).await,
        CallError::Malformed(WireError::NotJson(_))
    ));
    let url = serve(Router::new().route(
        "/service/soa",
        post(|| async { r#"{"status":"OK","signedValue":"{}"}"# }),
    ))
    .await;
    assert!(matches!(
        call(&client(url, Protocol::V1)).await,
        CallError::Malformed(WireError::Missing("sign"))
    ));
}

#[tokio::test]
async fn unsigned_errors_are_accepted_in_v1_only() {
    let body = r#"{"status":"error","errorCode":"30001","message":"用户不存在"}"#;
    let url = serve(Router::new().route("/service/soa", post(move || async move { body }))).await;
    match call(&client(url.clone(), Protocol::V1)).await {
        CallError::Business { code, message } => {
            assert_eq!(code, "30001");
            assert_eq!(message, "用户不存在");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        call(&client(url, Protocol::V2)).await,
        CallError::Malformed(WireError::Missing("sign"))
    ));
}

#[tokio::test]
async fn a_signed_error_with_a_bad_signature_is_rejected() {
    let body = r#"{"status":"error","errorCode":"30001","message":"x","signedValue":"errorCode=30001&message=x","sign":"AAAA"}"#;
    let url = serve(Router::new().route("/service/soa", post(move || async move { body }))).await;
    assert!(matches!(
        call(&client(url, Protocol::V1)).await,
        CallError::BadSignature(_)
    ));
}
