//! An inbound notification (spec 3.4, 3.6, 4.1.7, 4.2.12, 4.1.20-4.1.23) verified and classified: pure functions, no I/O.
//!
//! Order of checks, cheapest first, so that junk costs no RSA work: sizes,
//! the form, the sysid, the timestamp window (UTC+8), then the signature
//! over `sysid + rps + timestamp` with each trusted key (two during a key
//! rotation), then `rps`. The algorithm is the configured profile's, never
//! the one the envelope's `v` names: a forger must not choose it.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::crypto::{self, Protocol, PublicKey};
use super::wire::{self, NotificationBody, NotificationEnvelope};

/// The largest notification body read, in bytes. The biggest payload the
/// spec defines (4.2.12) is a few hundred bytes; this leaves room for long
/// `extendInfo` values without letting a sender make us buffer megabytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest signature accepted, in characters (an RSA-4096 signature is 684 Base64).
const MAX_SIGNATURE_CHARS: usize = 1024;

/// What the receiver trusts.
#[derive(Debug, Clone)]
pub struct Trust {
    /// Our sysid: the provider signs notifications for it.
    pub sysid: String,
    /// The configured profile (v1: SHA1WithRSA over the string; v2: over Base64(MD5(string))).
    pub protocol: Protocol,
    /// The provider's public keys: the current one, and during a rotation the other.
    pub keys: Vec<PublicKey>,
    /// How far the timestamp may be from our clock: 10 minutes in the spec
    /// (3.1, for requests; it does not say whether a retry is signed afresh).
    pub window: time::Duration,
}

/// Why a notification was refused. Carries no payload data (it may hold phones).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("body of at least {0} bytes is larger than {MAX_BODY_BYTES}")]
    TooLarge(usize),
    #[error("not a notification form: {0}")]
    Malformed(String),
    #[error("sysid is not ours")]
    ForeignSysid,
    #[error("timestamp is missing, unreadable or further from our clock than the window allows")]
    Stale,
    #[error("signature does not verify with any trusted provider key")]
    BadSignature,
}

impl Rejection {
    /// A short label for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::TooLarge(_) => "too_large",
            Rejection::Malformed(_) => "malformed",
            Rejection::ForeignSysid => "foreign_sysid",
            Rejection::Stale => "stale",
            Rejection::BadSignature => "bad_signature",
        }
    }

    /// Every label, for counters that start at zero.
    pub const REASONS: [&'static str; 5] = ["too_large", "malformed", "foreign_sysid", "stale", "bad_signature"];
}

/// What a notification is about, by `rps.service` and `rps.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 4.2.12: `OrderService.pay` for every order type, refunds and batch items.
    OrderResult,
    /// 4.1.7: `MemberService.verifyResult`.
    CompanyAudit,
    /// 4.1.20-4.1.23: `MemberPwdService.{setPayPwd, updatePayPwd, resetPayPwd, updatePhoneByPayPwd}`.
    PayPassword,
    /// Verified, but of no kind this gateway types; delivered with its raw JSON.
    Other,
}

impl Kind {
    pub fn of(service: &str, method: &str) -> Kind {
        match (service, method) {
            ("OrderService", "pay") => Kind::OrderResult,
            ("MemberService", "verifyResult") => Kind::CompanyAudit,
            ("MemberPwdService", "setPayPwd" | "updatePayPwd" | "resetPayPwd" | "updatePhoneByPayPwd") => {
                Kind::PayPassword
            }
            _ => Kind::Other,
        }
    }
}

/// A verified notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// What the log deduplicates on (see [`event_id`]).
    pub id: String,
    /// Why `rps` could not be read, when it could not: then the kind is
    /// `Other` and `body` holds what could be picked out of it.
    pub unreadable: Option<String>,
    pub kind: Kind,
    /// The provider's timestamp, as sent (UTC+8).
    pub timestamp: String,
    /// The envelope's `v`, as sent.
    pub version: String,
    /// `rps` exactly as received.
    pub rps: String,
    pub body: NotificationBody,
    /// The merchant order number, when the payload has one.
    pub biz_order_no: Option<String>,
    /// The member it concerns: `bizUserId`, or for orders the payer (`buyerBizUserId`).
    pub biz_user_id: Option<String>,
}

/// Verifies a notification body received at `now`.
pub fn verify(body: &[u8], trust: &Trust, now: OffsetDateTime) -> Result<Verified, Rejection> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection::TooLarge(body.len()));
    }
    let envelope = NotificationEnvelope::parse(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
    verify_envelope(&envelope, trust, now)
}

/// Verifies a parsed envelope (see [`verify`]).
pub fn verify_envelope(
    envelope: &NotificationEnvelope,
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<Verified, Rejection> {
    if envelope.sysid.trim() != trust.sysid {
        return Err(Rejection::ForeignSysid);
    }
    let fresh = wire::parse_timestamp(&envelope.timestamp).is_some_and(|t| (t - now).abs() <= trust.window);
    if !fresh {
        return Err(Rejection::Stale);
    }
    if envelope.sign.len() > MAX_SIGNATURE_CHARS {
        return Err(Rejection::BadSignature);
    }
    let signed = envelope.signing_string();
    if !trust
        .keys
        .iter()
        .any(|key| crypto::verify(trust.protocol, key, &signed, &envelope.sign).is_ok())
    {
        return Err(Rejection::BadSignature);
    }
    // Authentic from here on: whatever `rps` holds is stored (untyped if it
    // cannot be read), since a refusal would make the provider retry it
    // into oblivion.
    let (body, unreadable) = match NotificationBody::parse(&envelope.rps) {
        Ok(body) => (body, None),
        Err(e) => (NotificationBody::untyped(&envelope.rps), Some(e.to_string())),
    };
    let kind = match unreadable {
        None => Kind::of(&body.service, &body.method),
        Some(_) => Kind::Other,
    };
    let field = |name: &str| text_of(body.return_value.get(name));
    let biz_order_no = field("bizOrderNo");
    let biz_user_id = match kind {
        Kind::OrderResult => field("buyerBizUserId").or_else(|| field("bizUserId")),
        _ => field("bizUserId"),
    };
    Ok(Verified {
        id: event_id(kind, &envelope.rps, &envelope.timestamp),
        unreadable,
        kind,
        timestamp: envelope.timestamp.clone(),
        version: envelope.v.clone(),
        rps: envelope.rps.clone(),
        body,
        biz_order_no,
        biz_user_id,
    })
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The id a notification is deduplicated on. Order results (one per order
/// and status) and company audits (4.1.7: `checkTime` is required) are
/// unique by content, so a retry is recognised however it is signed. A
/// password page's result (4.1.20-4.1.23: often just `bizUserId`) repeats
/// when a member changes the password twice, and an unknown kind may too:
/// for those the timestamp is part of the id, so a second change is never
/// taken for a retry (a retry signed afresh is then delivered twice: at
/// least once, never lost).
pub fn event_id(kind: Kind, rps: &str, timestamp: &str) -> String {
    match kind {
        Kind::OrderResult | Kind::CompanyAudit => content_id(rps),
        Kind::PayPassword | Kind::Other => content_id(&format!("{}\n{}", content_id(rps), timestamp.trim())),
    }
}

/// Hex SHA-256 of `rps` with its keys sorted and its whitespace dropped (and
/// a `returnValue` sent as a JSON string read as the object it holds), so
/// that a retry serialised differently still has the same id.
pub fn content_id(rps: &str) -> String {
    let canonical = match serde_json::from_str::<Value>(rps) {
        Ok(Value::Object(mut obj)) => {
            if let Some(Value::String(inner)) = obj.get("returnValue")
                && let Ok(parsed) = serde_json::from_str::<Value>(inner)
            {
                obj.insert("returnValue".into(), parsed);
            }
            // serde_json's map is ordered by key (no preserve_order feature): printing sorts.
            Value::Object(obj).to_string()
        }
        Ok(other) => other.to_string(),
        Err(_) => rps.to_owned(),
    };
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The payload of a typed event as the provider's JSON: `returnValue` with
/// the rps-level `status`, `errorCode` and `message` beside it (4.2.12 puts
/// them in `rps`, the typed order result carries them).
pub fn payload(body: &NotificationBody) -> Map<String, Value> {
    let mut out = body.return_value.as_object().cloned().unwrap_or_default();
    for (name, value) in [
        ("status", &body.status),
        ("errorCode", &body.error_code),
        ("message", &body.message),
    ] {
        if let Some(v) = value {
            out.entry(name.to_owned()).or_insert_with(|| Value::String(v.clone()));
        }
    }
    if Kind::of(&body.service, &body.method) == Kind::PayPassword {
        out.insert("method".into(), Value::String(body.method.clone()));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::provider::crypto::{PrivateKey, sign};

    fn key() -> &'static PrivateKey {
        static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate(1024).unwrap())
    }

    fn trust(protocol: Protocol) -> Trust {
        Trust {
            sysid: "1902271423530001".into(),
            protocol,
            keys: vec![key().public_key()],
            window: wire::TIMESTAMP_WINDOW,
        }
    }

    fn form(protocol: Protocol, sysid: &str, rps: &str, at: OffsetDateTime) -> Vec<u8> {
        let timestamp = wire::format_timestamp(at);
        let sign = sign(protocol, key(), &format!("{sysid}{rps}{timestamp}")).unwrap();
        NotificationEnvelope {
            sysid: sysid.into(),
            sign,
            timestamp,
            v: protocol.version().into(),
            rps: rps.into(),
        }
        .to_form()
        .into_bytes()
    }

    // 4.2.12: rps{service=OrderService, method=pay, returnValue{orderNo, bizOrderNo, amount, ...}, status}.
    const ORDER: &str = r#"{"service":"OrderService","method":"pay","status":"OK","returnValue":{"orderNo":"1","bizOrderNo":"B1","amount":100,"buyerBizUserId":"u1"}}"#;

    #[test]
    fn both_profiles_verify_and_classify() {
        let now = OffsetDateTime::now_utc();
        for protocol in [Protocol::V1, Protocol::V2] {
            let v = verify(&form(protocol, "1902271423530001", ORDER, now), &trust(protocol), now).unwrap();
            assert_eq!(v.kind, Kind::OrderResult);
            assert_eq!(v.biz_order_no.as_deref(), Some("B1"));
            assert_eq!(v.biz_user_id.as_deref(), Some("u1"));
            assert_eq!(v.rps, ORDER);
            // The other profile's algorithm does not verify it.
            let other = if protocol == Protocol::V1 {
                Protocol::V2
            } else {
                Protocol::V1
            };
            assert_eq!(
                verify(&form(protocol, "1902271423530001", ORDER, now), &trust(other), now),
                Err(Rejection::BadSignature)
            );
        }
    }

    #[test]
    fn refusals_are_named() {
        let now = OffsetDateTime::now_utc();
        let t = trust(Protocol::V1);
        assert_eq!(
            verify(&form(Protocol::V1, "999", ORDER, now), &t, now),
            Err(Rejection::ForeignSysid)
        );
        let old = now - time::Duration::minutes(11);
        assert_eq!(
            verify(&form(Protocol::V1, "1902271423530001", ORDER, old), &t, now),
            Err(Rejection::Stale)
        );
        let tampered = String::from_utf8(form(Protocol::V1, "1902271423530001", ORDER, now))
            .unwrap()
            .replace("B1", "B2");
        assert_eq!(verify(tampered.as_bytes(), &t, now), Err(Rejection::BadSignature));
        assert!(matches!(verify(b"sysid=1", &t, now), Err(Rejection::Malformed(_))));
        assert!(matches!(
            verify(&vec![b'a'; MAX_BODY_BYTES + 1], &t, now),
            Err(Rejection::TooLarge(_))
        ));
    }

    #[test]
    fn a_second_key_verifies_during_rotation() {
        let now = OffsetDateTime::now_utc();
        let mut t = trust(Protocol::V1);
        t.keys.insert(0, PrivateKey::generate(1024).unwrap().public_key());
        assert!(verify(&form(Protocol::V1, "1902271423530001", ORDER, now), &t, now).is_ok());
    }

    #[test]
    fn the_id_ignores_serialisation() {
        let as_string = json!({
            "method": "pay",
            "service": "OrderService",
            "status": "OK",
            "returnValue": json!({"bizOrderNo":"B1","orderNo":"1","amount":100,"buyerBizUserId":"u1"}).to_string(),
        })
        .to_string();
        assert_eq!(content_id(ORDER), content_id(&as_string));
        assert_ne!(content_id(ORDER), content_id(&ORDER.replace("OK", "error")));
    }

    #[test]
    fn payloads_carry_the_rps_status() {
        let body = NotificationBody::parse(
            r#"{"service":"OrderService","method":"pay","status":"error","errorCode":"40009","message":"m","returnValue":{"bizOrderNo":"B"}}"#,
        )
        .unwrap();
        let p = payload(&body);
        assert_eq!(p["status"], "error");
        assert_eq!(p["errorCode"], "40009");
        let pwd = NotificationBody::parse(
            r#"{"service":"MemberPwdService","method":"updatePhoneByPayPwd","status":"OK","returnValue":{"bizUserId":"u","newPhone":"13800000000"}}"#,
        )
        .unwrap();
        assert_eq!(payload(&pwd)["method"], "updatePhoneByPayPwd");
    }

    /// Any JSON value, nested a few levels: the shapes a provider (or a
    /// forger holding a stolen key) could put in `rps`.
    pub(crate) fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
            "(-?[0-9]{1,25}(\\.[0-9]{0,3})?)".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("bizOrderNo".to_owned()),
                        Just("amount".to_owned()),
                        Just("buyerBizUserId".to_owned()),
                        Just("bizUserId".to_owned()),
                        Just("status".to_owned()),
                        Just("payDatetime".to_owned()),
                        Just("extendInfo".to_owned()),
                        "[a-zA-Z]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An `rps` with the service and method of a known kind (or not), whose
    /// `returnValue` is any value, sent as an object or as a JSON string.
    pub(crate) fn any_rps() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (
            prop_oneof![
                Just(("OrderService", "pay")),
                Just(("MemberService", "verifyResult")),
                Just(("MemberPwdService", "updatePhoneByPayPwd")),
                Just(("MemberPwdService", "setPayPwd")),
                Just(("Other", "x")),
            ],
            any_json(),
            any::<bool>(),
            any_json(),
        )
            .prop_map(|((service, method), value, as_string, status)| {
                let value = if as_string {
                    Value::String(value.to_string())
                } else {
                    value
                };
                json!({"service": service, "method": method, "status": status, "returnValue": value}).to_string()
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bodies_are_refused_not_panicked_on(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let now = OffsetDateTime::now_utc();
            proptest::prop_assert!(verify(&body, &trust(Protocol::V1), now).is_err());
        }

        #[test]
        fn any_signed_rps_is_accepted_and_kept_as_sent(rps in any_rps(), free in ".{0,64}") {
            let now = OffsetDateTime::now_utc();
            for rps in [rps, free] {
                let verified = verify(&form(Protocol::V1, "1902271423530001", &rps, now), &trust(Protocol::V1), now);
                if rps.is_empty() {
                    // No rps at all: the envelope itself is incomplete.
                    proptest::prop_assert!(matches!(verified, Err(Rejection::Malformed(_))));
                    continue;
                }
                proptest::prop_assert!(verified.is_ok(), "{verified:?} for {rps}");
                let v = verified.unwrap();
                proptest::prop_assert_eq!(&v.rps, &rps);
                proptest::prop_assert_eq!(v.id.len(), 64);
                if v.unreadable.is_some() {
                    proptest::prop_assert_eq!(v.kind, Kind::Other);
                }
                let _ = payload(&v.body);
            }
        }
    }
}
