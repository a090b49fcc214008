//! Tests of the envelope: exact strings, lenient parsing, and parsers that never panic.

use proptest::prelude::*;
use time::macros::datetime;

use super::*;

#[test]
fn timestamp_is_china_time_whatever_the_input_offset() {
    let utc = datetime!(2026-11-25 18:30:05 UTC);
    assert_eq!(format_timestamp(utc), "2026-11-26 02:30:05");
    let la = utc.to_offset(time::macros::offset!(-8));
    assert_eq!(format_timestamp(la), "2026-11-26 02:30:05");
    assert_eq!(parse_timestamp("2026-11-26 02:30:05"), Some(utc));
    assert_eq!(parse_timestamp("2026-11-2602:30:05"), Some(utc));
    assert_eq!(parse_timestamp("2026-11-26T02:30:05"), None);
}

#[test]
fn freshness_window_is_ten_minutes_both_ways() {
    let now = datetime!(2026-11-25 10:00:00 +8);
    assert!(timestamp_is_fresh("2026-11-25 09:50:00", now));
    assert!(timestamp_is_fresh("2026-11-25 10:10:00", now));
    assert!(!timestamp_is_fresh("2026-11-25 09:49:59", now));
    assert!(!timestamp_is_fresh("2026-11-25 10:10:01", now));
    assert!(!timestamp_is_fresh("yesterday", now));
}

#[test]
fn form_percent_encodes_base64_and_round_trips() {
    let req = SignedRequest {
        sysid: "1902271423530001".into(),
        sign: "ab+/cd==".into(),
        timestamp: "2026-11-25 10:00:00".into(),
        v: "1.0".into(),
        req: request_json(
            "MemberService",
            "createMember",
            &serde_json::json!({"bizUserId": "张三 1"}),
        ),
    };
    let form = req.to_form();
    assert!(form.contains("sign=ab%2B%2Fcd%3D%3D"), "{form}");
    assert!(form.contains("timestamp=2026-11-25+10%3A00%3A00"), "{form}");
    assert_eq!(SignedRequest::from_form(form.as_bytes()).unwrap(), req);
}

#[test]
fn request_form_is_read_leniently() {
    let body = b"v=1.0&ssoid=x&req=%7b%22service%22%3a%22MemberService%22%2c%22method%22%3a%22createMember%22%2c%22param%22%3a%7b%7d%7d&timestamp=2026-11-25%2010:00:00&sign=YQ%3d%3d&sysid=1&\r\n";
    let req = SignedRequest::from_form(body).unwrap();
    assert_eq!(req.sysid, "1");
    assert_eq!(req.sign, "YQ==");
    assert_eq!(req.timestamp, "2026-11-25 10:00:00");
    let parsed = RequestBody::parse(&req.req).unwrap();
    assert_eq!(
        (parsed.service.as_str(), parsed.method.as_str()),
        ("MemberService", "createMember")
    );
    assert_eq!(
        SignedRequest::from_form(b"sysid=1&sign=x"),
        Err(WireError::Missing("timestamp"))
    );
}

#[test]
fn request_body_accepts_php_escapes_and_capitalised_keys() {
    let php = r#"{"Service":"MemberService","Method":"createMember","param":{"url":"http:\/\/x","name":"\u5f20"}}"#;
    let body = RequestBody::parse(php).unwrap();
    assert_eq!(body.param["url"], "http://x");
    assert_eq!(body.param["name"], "张");
    assert!(RequestBody::parse("[1]").is_err());
    assert_eq!(
        RequestBody::parse(r#"{"service":"a"}"#),
        Err(WireError::Missing("req.method"))
    );
}

#[test]
fn response_signed_value_is_the_decoded_string() {
    let inner = r#"{"userId":"u-1","bizUserId":"b\/1"}"#;
    let body = ResponseEnvelope::ok_body(inner, "c2ln");
    let env = ResponseEnvelope::parse(body.as_bytes()).unwrap();
    assert_eq!(env.status, ResponseStatus::Ok);
    assert_eq!(env.signed_value.as_deref(), Some(inner));
    assert_eq!(env.sign.as_deref(), Some("c2ln"));
}

#[test]
fn response_variants_from_the_field() {
    // 3.3's example: signedValue as an object, errorCode as text.
    let env =
        ResponseEnvelope::parse(br#"{ "status" : "OK", "signedValue" : { "amount" : 0 }, "sign" : "x" }"#).unwrap();
    assert_eq!(env.signed_value.as_deref(), Some(r#"{ "amount" : 0 }"#));
    let env = ResponseEnvelope::parse(
        br#"{"status":"error","signedValue":"error","sign":"","errorCode":30001,"message":"no"}"#,
    )
    .unwrap();
    assert_eq!(env.status, ResponseStatus::Error);
    assert_eq!(env.error_code.as_deref(), Some("30001"));
    assert_eq!(env.sign, None);
    assert!(matches!(
        ResponseEnvelope::parse(br#"{"status":"maybe"}"#),
        Err(WireError::Malformed { field: "status", .. })
    ));
    assert!(matches!(ResponseEnvelope::parse(b"<html>"), Err(WireError::NotJson(_))));
}

#[test]
fn primitive_return_is_unwrapped() {
    assert_eq!(
        parse_signed_value(r#"{"$PrimitiveReturn$":42}"#).unwrap(),
        serde_json::json!(42)
    );
    assert_eq!(parse_signed_value(r#"{"a":1}"#).unwrap(), serde_json::json!({"a":1}));
}

#[test]
fn notification_parses_form_and_string_return_value() {
    let rps = r#"{"service":"OrderService","method":"pay","status":"OK","returnValue":"{\"bizOrderNo\":\"o1\",\"amount\":100}"}"#;
    let env = NotificationEnvelope {
        sysid: "1".into(),
        sign: "s+/=".into(),
        timestamp: "2026-11-25 10:00:00".into(),
        v: "1.0".into(),
        rps: rps.into(),
    };
    let parsed = NotificationEnvelope::parse(env.to_form().as_bytes()).unwrap();
    assert_eq!(parsed, env);
    assert_eq!(parsed.signing_string(), format!("1{rps}2026-11-25 10:00:00"));
    let body = NotificationBody::parse(&parsed.rps).unwrap();
    assert_eq!(body.return_value["amount"], 100);
    assert_eq!(body.status.as_deref(), Some("OK"));
    let obj =
        NotificationBody::parse(r#"{"service":"MemberService","method":"verifyResult","returnValue":{"result":2}}"#)
            .unwrap();
    assert_eq!(obj.return_value["result"], 2);
    assert_eq!(obj.status, None);
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedRequest::from_form(&bytes);
        let _ = ResponseEnvelope::parse(&bytes);
        let _ = NotificationEnvelope::parse(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = RequestBody::parse(&text);
        let _ = NotificationBody::parse(&text);
        let _ = parse_signed_value(&text);
        let _ = parse_timestamp(&text);
    }

    #[test]
    fn json_shaped_inputs_never_panic(status in "(OK|error|x)", sv in ".{0,40}", code in any::<i64>()) {
        let body = format!(r#"{{"status":"{status}","signedValue":{},"errorCode":{code}}}"#, serde_json::to_string(&sv).unwrap());
        let _ = ResponseEnvelope::parse(body.as_bytes());
        let rps = format!(r#"{{"service":"s","method":"m","returnValue":{}}}"#, serde_json::to_string(&sv).unwrap());
        let _ = NotificationBody::parse(&rps);
    }
}
