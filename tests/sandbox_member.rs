//! The sandbox on port 0 driven by `SoaClient` over HTTP: the member flow, and the ways a call is refused.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Value, json};
use support::MerchantFiles;
use time::OffsetDateTime;
use yungate::provider::calls::Call;
use yungate::provider::client::{CallError, SoaClient, SoaConfig, sign_request};
use yungate::provider::codes::{IdentityType, MemberType, Source, VerificationCodeType};
use yungate::provider::crypto::{CryptoError, PartyKeys, PrivateKey, Protocol};
use yungate::provider::member::{
    BindPhone, CreateMember, GetMemberInfo, MemberInfo, SendVerificationCode, SetRealName,
};
use yungate::provider::wire;
use yungate::sandbox::{self, RunningSandbox, SandboxConfig};

const SYSID: &str = "1902271423530001";

async fn start_sandbox(keys: PartyKeys) -> RunningSandbox {
    sandbox::start(SandboxConfig::new(SYSID, keys), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client(url: String, keys: PartyKeys) -> SoaClient {
    SoaClient::new(
        SoaConfig {
            url,
            sysid: SYSID.into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            environment: yungate::provider::calls::Environment::Test,
        },
        keys,
    )
    .unwrap()
}

fn business_code(e: CallError) -> String {
    match e {
        CallError::Business { code, message, .. } => {
            assert!(!message.is_empty());
            code
        }
        other => panic!("expected a provider business error, got {other:?}"),
    }
}

/// create member -> set real name -> send code -> bind phone -> get member info.
async fn member_flow(client: &SoaClient) {
    let created = client
        .call(&CreateMember {
            biz_user_id: "member-1".into(),
            member_type: MemberType::Individual,
            source: Source::Mobile,
        })
        .await
        .unwrap();
    assert_eq!(created.biz_user_id, "member-1");
    assert!(!created.user_id.is_empty());

    let real = client
        .call(&SetRealName {
            biz_user_id: "member-1".into(),
            is_auth: Some(true),
            name: "王小二".into(),
            identity_type: IdentityType::IdCard,
            identity_no: "610422198600000000".into(),
        })
        .await
        .unwrap();
    // identityNo travelled encrypted both ways and came back in clear.
    assert_eq!(real.identity_no.expose(), "610422198600000000");

    client
        .call(&SendVerificationCode {
            biz_user_id: "member-1".into(),
            phone: "13800138000".into(),
            verification_code_type: VerificationCodeType::BindPhone,
        })
        .await
        .unwrap();
    let wrong = client
        .call(&BindPhone {
            biz_user_id: "member-1".into(),
            phone: "13800138000".into(),
            verification_code: "1234".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(business_code(wrong), "50001");
    let bound = client
        .call(&BindPhone {
            biz_user_id: "member-1".into(),
            phone: "13800138000".into(),
            verification_code: "9999".into(),
        })
        .await
        .unwrap();
    assert_eq!(bound.phone.expose(), "13800138000");

    let info = client
        .call(&GetMemberInfo {
            biz_user_id: "member-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(info.member_type, MemberType::Individual);
    let MemberInfo::Individual(person) = info.member_info else {
        panic!("individual info expected");
    };
    assert_eq!(person.user_id.as_deref(), Some(created.user_id.as_str()));
    assert_eq!(person.phone.as_ref().map(|p| p.expose().as_str()), Some("13800138000"));
    assert_eq!(person.is_phone_checked, Some(true));
    assert_eq!(person.is_identity_checked, Some(true));
    assert_eq!(
        person.identity_card_no.as_ref().map(|p| p.expose().as_str()),
        Some("610422198600000000")
    );

    // A provider refusal surfaces as the typed business error.
    let again = client
        .call(&CreateMember {
            biz_user_id: "member-1".into(),
            member_type: MemberType::Individual,
            source: Source::Mobile,
        })
        .await
        .unwrap_err();
    assert_eq!(business_code(again), "30000");
    let missing = client
        .call(&GetMemberInfo {
            biz_user_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(business_code(missing), "30001");
}

#[tokio::test]
async fn v1_member_flow_with_a_legacy_keystore() {
    let files = MerchantFiles::new(1024, SYSID);
    let keys = files.v1_keys();
    let sandbox = start_sandbox(keys.clone()).await;
    member_flow(&client(sandbox.soa_url(), keys)).await;
    sandbox.stop().await.unwrap();
}

#[tokio::test]
async fn v2_member_flow_with_separate_provider_keys() {
    let merchant = PrivateKey::generate(2048).unwrap();
    let provider = PrivateKey::generate(2048).unwrap();
    let sandbox = start_sandbox(PartyKeys {
        protocol: Protocol::V2,
        own: provider.clone(),
        peer: merchant.public_key(),
    })
    .await;
    let client = client(
        sandbox.soa_url(),
        PartyKeys {
            protocol: Protocol::V2,
            own: merchant,
            peer: provider.public_key(),
        },
    );
    member_flow(&client).await;
    sandbox.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_signed_with_another_key_is_refused_51003() {
    let files = MerchantFiles::new(1024, SYSID);
    let sandbox = start_sandbox(files.v1_keys()).await;
    let stranger = PrivateKey::generate(1024).unwrap();
    let client = client(
        sandbox.soa_url(),
        PartyKeys {
            protocol: Protocol::V1,
            peer: files.key().public_key(),
            own: stranger,
        },
    );
    let err = client
        .call(&GetMemberInfo {
            biz_user_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(business_code(err), "51003");
    sandbox.stop().await.unwrap();
}

/// Posts a hand-built form and returns the decoded answer.
async fn post_form(url: &str, form: String, content_type: Option<&str>) -> Value {
    let mut req = reqwest::Client::new().post(url).body(form);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap().json().await.unwrap()
}

fn signed_form(key: &PrivateKey, req: &Value, timestamp: &str) -> String {
    let keys = PartyKeys {
        protocol: Protocol::V1,
        own: key.clone(),
        peer: key.public_key(),
    };
    sign_request(&keys, SYSID.into(), req.to_string(), timestamp.into())
        .unwrap()
        .to_form()
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused() {
    let files = MerchantFiles::new(1024, SYSID);
    let sandbox = start_sandbox(files.v1_keys()).await;
    let req = json!({"service":"MemberService","method":"getMemberInfo","param":{"bizUserId":"x"}});
    for skew in [-11, 11] {
        let ts = wire::format_timestamp(OffsetDateTime::now_utc() + time::Duration::minutes(skew));
        let answer = post_form(&sandbox.soa_url(), signed_form(&files.key(), &req, &ts), None).await;
        assert_eq!(answer["status"], "error");
        assert_eq!(answer["errorCode"], "10000", "{answer}");
        assert!(answer["message"].as_str().unwrap().contains("timestamp"), "{answer}");
    }
    // A host clock on UTC formatting local time is 8 hours off: refused too.
    let utc_local = OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap();
    let answer = post_form(&sandbox.soa_url(), signed_form(&files.key(), &req, &utc_local), None).await;
    assert_eq!(answer["errorCode"], "10000");
    sandbox.stop().await.unwrap();
}

#[tokio::test]
async fn the_sandbox_parses_leniently() {
    let files = MerchantFiles::new(1024, SYSID);
    let sandbox = start_sandbox(files.v1_keys()).await;
    let ts = wire::format_timestamp(OffsetDateTime::now_utc());
    let req = json!({"service":"MemberService","method":"createMember","param":{"bizUserId":"lenient","memberType":"3","source":1}});
    let form = signed_form(&files.key(), &req, &ts);
    // Reversed order, lowercase %xx, an extra parameter, a trailing &\r\n, no Content-Type.
    let mut pairs: Vec<&str> = form.split('&').collect();
    pairs.reverse();
    let odd = format!("ssoid=1&{}&\r\n", pairs.join("&"))
        .replace("%2B", "%2b")
        .replace("%3D", "%3d");
    let answer = post_form(&sandbox.soa_url(), odd, None).await;
    assert_eq!(answer["status"], "OK", "{answer}");
    // The same by GET with a text/xml label on an empty body.
    let req = json!({"service":"MemberService","method":"getMemberInfo","param":{"bizUserId":"lenient"}});
    let query = signed_form(&files.key(), &req, &ts);
    let answer: Value = reqwest::Client::new()
        .get(format!("{}?{query}", sandbox.soa_url()))
        .header("content-type", "text/xml")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "OK", "{answer}");
    sandbox.stop().await.unwrap();
}

#[tokio::test]
async fn bad_parameters_get_spec_error_codes() {
    let files = MerchantFiles::new(1024, SYSID);
    let sandbox = start_sandbox(files.v1_keys()).await;
    let client = client(sandbox.soa_url(), files.v1_keys());
    let cases = [
        (json!({"memberType": 3, "source": 1}), "10001"),
        (json!({"bizUserId": "a", "memberType": 4, "source": 1}), "10000"),
        (json!({"bizUserId": "a", "memberType": 3, "source": 9}), "50004"),
        (
            json!({"bizUserId": "#yunBizUserId_B2C#", "memberType": 3, "source": 1}),
            "10000",
        ),
    ];
    for (param, code) in cases {
        let err = client.call_value(Call::CreateMember, param.clone()).await.unwrap_err();
        assert_eq!(business_code(err), code, "{param}");
    }
    let err = client
        .call_value(
            Call::SetRealName,
            json!({"bizUserId": "nobody", "name": "n", "identityType": 1, "identityNo": "610422198600000000"}),
        )
        .await
        .unwrap_err();
    assert_eq!(business_code(err), "30001");
    let err = client
        .call_value(Call::LockMember, json!({"bizUserId": "a"}))
        .await
        .unwrap_err();
    assert_eq!(business_code(err), "30001");
    sandbox.stop().await.unwrap();
}

/// A proxy that alters every `signedValue` on its way back to the client.
async fn tampering_proxy(upstream: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/service/soa",
        axum::routing::post(move |body: Bytes| {
            let upstream = upstream.clone();
            async move {
                let answer: Value = reqwest::Client::new()
                    .post(&upstream)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let mut answer = answer;
                if let Some(sv) = answer["signedValue"].as_str() {
                    answer["signedValue"] = Value::String(sv.replace("member-2", "member-3"));
                }
                answer.to_string()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_tampered_response_is_rejected_by_the_client() {
    let files = MerchantFiles::new(1024, SYSID);
    let sandbox = start_sandbox(files.v1_keys()).await;
    let proxy = tampering_proxy(sandbox.soa_url()).await;
    let client = client(format!("http://{proxy}/service/soa"), files.v1_keys());
    let err = client
        .call(&CreateMember {
            biz_user_id: "member-2".into(),
            member_type: MemberType::Individual,
            source: Source::Pc,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::BadSignature(CryptoError::BadSignature)),
        "{err:?}"
    );
    sandbox.stop().await.unwrap();
}
