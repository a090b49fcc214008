//! Tests of the sandbox's gate, driven with raw forms (the HTTP path is covered in tests/sandbox_member.rs).

use std::sync::OnceLock;

use serde_json::json;

use super::*;
use crate::provider::crypto::PrivateKey;

const SYSID: &str = "1902271423530001";

fn merchant_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(1024).unwrap())
}

fn shared() -> Shared {
    let key = merchant_key().clone();
    Shared {
        config: SandboxConfig::new(
            SYSID,
            PartyKeys {
                protocol: Protocol::V1,
                peer: key.public_key(),
                own: key,
            },
        ),
        state: Mutex::new(SandboxState::default()),
        notifier: notifier::Notifier::default(),
    }
}

fn form(req: &Value, timestamp: &str, key: &PrivateKey) -> Vec<u8> {
    let keys = PartyKeys {
        protocol: Protocol::V1,
        own: key.clone(),
        peer: key.public_key(),
    };
    crate::provider::client::sign_request(&keys, SYSID.into(), req.to_string(), timestamp.into())
        .unwrap()
        .to_form()
        .into_bytes()
}

fn now() -> String {
    wire::format_timestamp(OffsetDateTime::now_utc())
}

fn answer(shared: &Shared, form: &[u8]) -> Value {
    serde_json::from_str(&handle(shared, form)).unwrap()
}

#[test]
fn missing_parameters_are_10001() {
    let a = answer(&shared(), b"sysid=1");
    assert_eq!(a["status"], "error");
    assert_eq!(a["errorCode"], "10001");
}

#[test]
fn unknown_method_is_refused_with_its_name() {
    let f = form(
        &json!({"service":"MemberService","method":"nope","param":{}}),
        &now(),
        merchant_key(),
    );
    let a = answer(&shared(), &f);
    assert_eq!(a["errorCode"], "10000");
    assert!(a["message"].as_str().unwrap().contains("MemberService.nope"));
}

#[test]
fn wrong_sysid_and_version_are_refused() {
    let s = shared();
    let f = String::from_utf8(form(
        &json!({"service":"MemberService","method":"createMember","param":{}}),
        &now(),
        merchant_key(),
    ))
    .unwrap();
    let a = answer(&s, f.replace(SYSID, "42").as_bytes());
    assert_eq!(a["errorCode"], "20000");
    let a = answer(&s, f.replace("v=1.0", "v=2.0").as_bytes());
    assert_eq!(a["errorCode"], "10000");
}

#[test]
fn success_is_signed_over_signed_value() {
    let s = shared();
    let f = form(
        &json!({"service":"MemberService","method":"createMember","param":{"bizUserId":"u1","memberType":3,"source":"2"}}),
        &now(),
        merchant_key(),
    );
    let a = answer(&s, &f);
    assert_eq!(a["status"], "OK", "{a}");
    let sv = a["signedValue"].as_str().unwrap();
    s.config.keys.verify(sv, a["sign"].as_str().unwrap()).unwrap();
    let v: Value = serde_json::from_str(sv).unwrap();
    assert_eq!(v["bizUserId"], "u1");
}
