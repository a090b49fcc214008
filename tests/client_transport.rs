//! `SoaClient` against misbehaving servers: each failure is classified so the caller knows whether a retry is safe.

mod support;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use yungate::provider::client::{CallError, Outcome, SoaClient, SoaConfig};
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
    client_with(url, keys(protocol))
}

fn client_with(url: String, keys: PartyKeys) -> SoaClient {
    SoaClient::new(
        SoaConfig {
            url,
            sysid: "1".into(),
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(800),
            environment: yungate::provider::calls::Environment::Test,
        },
        keys,
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
        CallError::Business {
            code,
            message,
            verified,
        } => {
            assert_eq!(code, "30001");
            assert_eq!(message, "用户不存在");
            assert!(!verified, "an unsigned refusal is passed on, marked unverified");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        call(&client(url, Protocol::V2)).await,
        CallError::Malformed(WireError::Missing("sign"))
    ));
}

#[tokio::test]
async fn a_v1_error_whose_signature_does_not_verify_is_still_the_refusal_unverified() {
    // Spec 3.3 l.228: `{ "status" : "error", "signedValue" : "error", "sign" : "...", "errorCode" ...}`;
    // what that sign covers is not documented, so a v1 refusal is passed on either way.
    let body = r#"{"status":"error","errorCode":"30001","message":"x","signedValue":"error","sign":"AAAA"}"#;
    let url = serve(Router::new().route("/service/soa", post(move || async move { body }))).await;
    let err = call(&client(url.clone(), Protocol::V1)).await;
    match &err {
        CallError::Business { code, verified, .. } => {
            assert_eq!(code, "30001");
            assert!(!verified);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.outcome(),
        Outcome::Unknown,
        "an unverified refusal is never definite"
    );
    // v2 signs every error over errorCode=..&message=..: a bad one is a bad signature.
    assert!(matches!(
        call(&client(url, Protocol::V2)).await,
        CallError::BadSignature(_)
    ));
}

#[tokio::test]
async fn a_v1_error_signed_over_its_code_and_message_is_verified() {
    let keys = keys(Protocol::V1);
    let signed_value = "errorCode=40014&message=账户余额不足";
    let sign = keys.sign(signed_value).unwrap();
    let body = format!(
        r#"{{"status":"error","errorCode":"40014","message":"账户余额不足","signedValue":"{signed_value}","sign":"{sign}"}}"#
    );
    let url = serve(Router::new().route("/service/soa", post(move || async move { body }))).await;
    let client = client_with(url, keys);
    let err = call(&client).await;
    assert!(
        matches!(&err, CallError::Business { code, verified: true, .. } if code == "40014"),
        "{err:?}"
    );
    assert_eq!(err.outcome(), Outcome::Definite);
}

#[tokio::test]
async fn a_signature_proves_only_the_code_it_covers() {
    // A genuine signature over "error" (the spec example, l.228), or over another code, proves nothing about this one.
    let v1 = keys(Protocol::V1);
    let over_error = v1.sign("error").unwrap();
    let other = "errorCode=30001&message=x";
    let over_other = v1.sign(other).unwrap();
    for (value, sign) in [("error", over_error), (other, over_other)] {
        let body = format!(
            r#"{{"status":"error","errorCode":"40014","message":"x","signedValue":"{value}","sign":"{sign}"}}"#
        );
        let url = serve(Router::new().route("/service/soa", post(move || async move { body }))).await;
        let err = call(&client_with(url, v1.clone())).await;
        assert!(
            matches!(&err, CallError::Business { verified: false, .. }),
            "{value}: {err:?}"
        );
        assert_eq!(err.outcome(), Outcome::Unknown);
    }
    // v2: a valid signature over errorCode=..&message=.. with another errorCode beside it is an altered answer.
    let v2 = keys(Protocol::V2);
    let sign = v2.sign(other).unwrap();
    let body =
        format!(r#"{{"status":"error","errorCode":"40014","message":"x","signedValue":"{other}","sign":"{sign}"}}"#);
    let url = serve(Router::new().route("/service/soa", post(move || async move { body }))).await;
    let err = call(&client_with(url, v2)).await;
    assert!(matches!(err, CallError::Malformed(_)), "{err:?}");
    assert_eq!(err.outcome(), Outcome::Unknown);
}

#[tokio::test]
async fn what_may_have_been_processed_is_outcome_unknown() {
    // 5xx after sending: the provider may have processed it.
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
        StatusCode::GATEWAY_TIMEOUT,
    ] {
        assert_eq!(answered_with(status).await.outcome(), Outcome::Unknown, "HTTP {status}");
    }
    // Unsigned, badly signed and non-JSON answers.
    for body in [
        r#"{"status":"OK","signedValue":"{}"}"#,
        r#"{"status":"OK","signedValue":"{}","sign":"AAAA"}"#,
        "<html>maintenance</html>",
    ] {
        let url = serve(Router::new().route("/service/soa", post(move || async move { body }))).await;
        let err = call(&client(url, Protocol::V1)).await;
        assert_eq!(err.outcome(), Outcome::Unknown, "{body}: {err:?}");
    }
    // 40007 支付超时: the payment may still go through.
    let body = r#"{"status":"error","errorCode":"40007","message":"支付超时"}"#;
    let url = serve(Router::new().route("/service/soa", post(move || async move { body }))).await;
    assert_eq!(call(&client(url, Protocol::V1)).await.outcome(), Outcome::Unknown);
}

#[tokio::test]
async fn refused_unread_is_not_sent() {
    for status in [
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::URI_TOO_LONG,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    ] {
        let err = answered_with(status).await;
        assert!(err.is_not_sent(), "HTTP {status}: {err:?}");
        assert_eq!(err.outcome(), Outcome::NotSent);
    }
}

/// The error of a v1 call to a server that answers every request with `status`.
async fn answered_with(status: StatusCode) -> CallError {
    let url = serve(Router::new().route("/service/soa", post(move || async move { (status, "x") }))).await;
    call(&client(url, Protocol::V1)).await
}

#[tokio::test]
async fn a_truncated_or_oversized_body_is_outcome_unknown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Promises 1000 bytes, sends 10, hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{\"status\":")
                .await;
        }
    });
    let err = call(&client(format!("http://{addr}/service/soa"), Protocol::V1)).await;
    assert!(matches!(err, CallError::OutcomeUnknown(_)), "{err:?}");
    let huge = "x".repeat(yungate::provider::client::MAX_RESPONSE_BYTES + 1);
    let url = serve(Router::new().route("/service/soa", post(move || async move { huge }))).await;
    let err = call(&client(url, Protocol::V1)).await;
    assert!(matches!(err, CallError::OutcomeUnknown(_)), "{err:?}");
}
