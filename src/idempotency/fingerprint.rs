//! The request fingerprint and the record key: a keyed hash (HMAC-SHA256), because the request holds card, identity and phone numbers.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::provider::calls::Call;

/// HMAC-SHA256 of the call's section and the caller-supplied request, hex.
/// Unkeyed, a hash of a card number would be a dictionary lookup away from it.
pub fn fingerprint(secret: &[u8; 32], call: Call, supplied: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(call.spec().section.as_bytes());
    mac.update(&[0]);
    mac.update(supplied);
    hex::encode(mac.finalize().into_bytes())
}

/// The store key of a record: `yg:idem:{sysid:section:HMAC(key)}`. The
/// braces are Redis Cluster's hash tag (one per record). The key itself is
/// replaced by a keyed hash: natural numbers are often phone or card
/// numbers, and store keys show up in monitoring.
pub fn record_key(secret: &[u8; 32], sysid: &str, call: Call, key: &str) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(b"record key\0");
    mac.update(key.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!(
        "yg:idem:{{{sysid}:{}:{}}}",
        call.spec().section,
        hex::encode(&digest[..16])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_keyed_and_bound_to_the_call() {
        let a = fingerprint(&[1; 32], Call::DepositApply, b"{\"amount\":1}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint(&[1; 32], Call::DepositApply, b"{\"amount\":1}"));
        assert_ne!(a, fingerprint(&[2; 32], Call::DepositApply, b"{\"amount\":1}"));
        assert_ne!(a, fingerprint(&[1; 32], Call::ConsumeApply, b"{\"amount\":1}"));
        assert_ne!(a, fingerprint(&[1; 32], Call::DepositApply, b"{\"amount\":2}"));
    }

    #[test]
    fn record_keys_are_scoped_and_hide_the_key() {
        let key = record_key(&[1; 32], "1902", Call::PayBackendSms, "13900001111");
        assert!(key.starts_with("yg:idem:{1902:4.2.8:") && key.ends_with('}'), "{key}");
        assert!(!key.contains("13900001111"));
        assert_eq!(key.matches('{').count(), 1);
        assert_eq!(key, record_key(&[1; 32], "1902", Call::PayBackendSms, "13900001111"));
        // Each pay confirmation has its own scope; sysids and secrets separate too.
        assert_ne!(
            key,
            record_key(&[1; 32], "1902", Call::PayBackendNewMobile, "13900001111")
        );
        assert_ne!(key, record_key(&[1; 32], "1903", Call::PayBackendSms, "13900001111"));
        assert_ne!(key, record_key(&[2; 32], "1902", Call::PayBackendSms, "13900001111"));
    }
}
