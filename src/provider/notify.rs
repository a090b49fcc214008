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
use super::wire::{self, NotificationBody, NotificationEnvelope, WireError};

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
    #[error("body of {0} bytes is larger than {MAX_BODY_BYTES}")]
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
    /// The same for every retry of one notification (which is signed afresh
    /// with a new timestamp each time): hex SHA-256 of `rps` in canonical form.
    pub id: String,
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
    let body = NotificationBody::parse(&envelope.rps).map_err(|e: WireError| Rejection::Malformed(e.to_string()))?;
    let kind = Kind::of(&body.service, &body.method);
    let field = |name: &str| text_of(body.return_value.get(name));
    let biz_order_no = field("bizOrderNo");
    let biz_user_id = match kind {
        Kind::OrderResult => field("buyerBizUserId").or_else(|| field("bizUserId")),
        _ => field("bizUserId"),
    };
    Ok(Verified {
        id: content_id(&envelope.rps),
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
mod tests {
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
}
