//! The request fingerprint and the record key: a keyed hash (HMAC-SHA256), because the request holds card, identity and phone numbers.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

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

/// The longest key used verbatim in a record key.
const MAX_VERBATIM: usize = 64;

/// The store key of a record: `yg:idem:{sysid:section:key}`. The braces are
/// Redis Cluster's hash tag. A key with characters outside `[A-Za-z0-9._-]`
/// or longer than 64 is replaced by its SHA-256, so that no caller text can
/// shape the store key.
pub fn record_key(sysid: &str, call: Call, key: &str) -> String {
    let verbatim = key.len() <= MAX_VERBATIM
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let key = if verbatim {
        key.to_owned()
    } else {
        format!("sha256-{}", hex::encode(Sha256::digest(key.as_bytes())))
    };
    format!("yg:idem:{{{sysid}:{}:{key}}}", call.spec().section)
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
    fn record_keys_are_scoped_and_caller_text_cannot_shape_them() {
        assert_eq!(
            record_key("1902", Call::PayBackendSms, "ORDER-1"),
            "yg:idem:{1902:4.2.8:ORDER-1}"
        );
        // Each pay confirmation has its own scope.
        assert_ne!(
            record_key("1902", Call::PayBackendSms, "O"),
            record_key("1902", Call::PayBackendNewMobile, "O")
        );
        let odd = record_key("1902", Call::DepositApply, "a}b{c");
        assert!(
            odd.starts_with("yg:idem:{1902:4.2.2:sha256-") && odd.ends_with('}'),
            "{odd}"
        );
        assert_eq!(odd.matches('{').count(), 1);
    }
}
