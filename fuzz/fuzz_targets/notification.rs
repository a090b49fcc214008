//! Fuzz target: whatever reaches `POST /notify`, and whatever `rps` a signed notification could carry, is refused or read, never panicked on.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use yungate::grpc::notification::notification_of;
use yungate::provider::crypto::{PrivateKey, Protocol};
use yungate::provider::notify::{Trust, content_id, payload, verify};
use yungate::provider::wire::NotificationBody;
use yungate::store::notifications::{Cursor, Entry, Record};

fn trust() -> &'static Trust {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    TRUST.get_or_init(|| Trust {
        sysid: "1902271423530001".into(),
        protocol: Protocol::V1,
        keys: vec![PrivateKey::generate(1024).unwrap().public_key()],
        window: time::Duration::minutes(10),
    })
}

fuzz_target!(|data: &[u8]| {
    // As a form body: past the parser only a valid signature gets further.
    let _ = verify(data, trust(), time::OffsetDateTime::now_utc());
    // As the `rps` of a notification whose signature verified: what the
    // ingress stores and the fan-out turns into a typed event.
    let Ok(rps) = std::str::from_utf8(data) else { return };
    let id = content_id(rps);
    assert_eq!(id.len(), 64);
    if let Ok(body) = NotificationBody::parse(rps) {
        let _ = payload(&body);
        let entry = Entry {
            cursor: Cursor { ms: 1, seq: 0 },
            record: Record {
                id,
                service: body.service.clone(),
                method: body.method.clone(),
                biz_order_no: None,
                biz_user_id: None,
                timestamp: "2026-12-01 10:00:00".into(),
                version: "1.0".into(),
                rps: rps.to_owned(),
                trace: None,
            },
        };
        let n = notification_of(&entry, 1);
        assert_eq!(n.raw_json, rps);
    }
});
