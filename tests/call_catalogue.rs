//! Checks the call catalogue and the error-code table against the machine-readable spec in `shared/spec/`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use yungate::provider::calls::{Call, CallKind};
use yungate::provider::errors::{ERROR_CODES, lookup};

/// `shared/spec/` beside the checkout (as on developer machines and in CI),
/// or `YUNGATE_SPEC_DIR`. A missing spec fails the test: it never skips.
fn spec(name: &str) -> Value {
    let dir = std::env::var_os("YUNGATE_SPEC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec"));
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} (set YUNGATE_SPEC_DIR): {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_call_of_calls_json_is_in_the_catalogue_in_order() {
    let calls = spec("calls.json");
    let calls = calls.as_array().unwrap();
    assert_eq!(calls.len(), Call::ALL.len());
    for (json, call) in calls.iter().zip(Call::ALL) {
        let s = call.spec();
        assert_eq!(json["section"], s.section);
        assert_eq!(json["service"], s.service, "{}", s.section);
        assert_eq!(json["method"], s.method, "{}", s.section);
        let kind = match s.kind {
            CallKind::Backend => "backend",
            CallKind::Page => "page",
            CallKind::Notification => "notification",
        };
        assert_eq!(json["kind"], kind, "{}", s.section);
        // Every top-level encrypted field is listed (nested ones come from section 5).
        for (list, declared) in [("request", s.encrypted_request), ("response", s.encrypted_response)] {
            let top: BTreeSet<&str> = json[list]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["encrypted"] == true)
                .map(|f| f["name"].as_str().unwrap())
                .collect();
            for name in top {
                assert!(declared.contains(&name), "{} {list}.{name} is encrypted", s.section);
            }
        }
    }
    let kinds = |k| Call::ALL.iter().filter(|c| c.spec().kind == k).count();
    assert_eq!(
        (
            kinds(CallKind::Backend),
            kinds(CallKind::Page),
            kinds(CallKind::Notification)
        ),
        (41, 6, 2)
    );
}

#[test]
fn backend_lookup_resolves_every_backend_call_but_pay() {
    for call in Call::ALL {
        let s = call.spec();
        if s.kind != CallKind::Backend {
            continue;
        }
        let found = Call::backend(s.service, s.method).unwrap();
        if s.method == "pay" {
            assert_eq!(found, Call::PayBackendSms);
        } else {
            assert_eq!(found, call);
        }
    }
    assert_eq!(Call::backend("MemberService", "nope"), None);
}

#[test]
fn error_codes_match_section_7() {
    let dict = spec("dictionaries.json");
    let codes = dict["error_codes"].as_object().unwrap();
    assert_eq!(codes.len(), ERROR_CODES.len());
    for (code, row) in codes {
        let ours = lookup(code).unwrap_or_else(|| panic!("{code} missing"));
        assert_eq!(row["message_zh"], ours.message_zh);
        assert_eq!(row["message_en"], ours.message_en);
    }
}
