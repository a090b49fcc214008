//! Unit and property tests of the crypto primitives (openssl cross-checks live in tests/crypto_openssl.rs).

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

fn key_1024() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(1024).unwrap())
}

fn party(protocol: Protocol) -> (PartyKeys, PartyKeys) {
    let merchant = key_1024().clone();
    let provider = match protocol {
        Protocol::V1 => merchant.clone(),
        Protocol::V2 => {
            static P: OnceLock<PrivateKey> = OnceLock::new();
            P.get_or_init(|| PrivateKey::generate(1024).unwrap()).clone()
        }
    };
    (
        PartyKeys {
            protocol,
            own: merchant.clone(),
            peer: provider.public_key(),
        },
        PartyKeys {
            protocol,
            own: provider,
            peer: merchant.public_key(),
        },
    )
}

#[test]
fn debug_never_shows_key_material() {
    let key = key_1024();
    let shown = format!("{key:?}");
    assert_eq!(shown, "PrivateKey(RSA-1024, ***)");
    let party = party(Protocol::V1).0;
    assert!(!format!("{party:?}").contains(&key.to_pkcs8_pem().unwrap()[30..60]));
}

#[test]
fn v1_type1_blocks_are_deterministic_and_chunked() {
    let key = key_1024();
    let long = "身份证".repeat(50); // 450 bytes: four 117-byte chunks
    let a = encrypt_v1(key, &long).unwrap();
    assert_eq!(a, encrypt_v1(key, &long).unwrap());
    assert_eq!(STANDARD.decode(&a).unwrap().len(), 4 * 128);
    assert_eq!(decrypt_v1(&key.public_key(), &a).unwrap(), long);
}

#[test]
fn v1_decrypt_accepts_unpadded_blocks() {
    let key = key_1024();
    // A raw private-key operation over a zero-prefixed value (no padding),
    // as some old SDKs produced.
    let value = b"610422198600000000";
    let mut block = vec![0u8; 128 - value.len()];
    block.extend_from_slice(value);
    let c = BoxedUint::from_be_slice(&block, key.inner.n_bits_precision()).unwrap();
    let raw = rsa::hazmat::rsa_decrypt_and_check(&key.inner, None::<&mut getrandom::SysRng>, &c).unwrap();
    let ct = STANDARD.encode(raw.to_be_bytes());
    assert_eq!(decrypt_v1(&key.public_key(), &ct).unwrap(), "610422198600000000");
}

#[test]
fn wrong_key_and_garbage_are_errors_not_panics() {
    let other = PrivateKey::generate(1024).unwrap();
    let ct = encrypt_v1(key_1024(), "6228480402637874214").unwrap();
    assert!(
        decrypt_v1(&other.public_key(), &ct).is_err()
            || decrypt_v1(&other.public_key(), &ct).unwrap() != "6228480402637874214"
    );
    assert_eq!(
        decrypt_v1(&other.public_key(), "!!"),
        Err(CryptoError::CiphertextEncoding("Base64"))
    );
    assert!(matches!(
        decrypt_v1(&other.public_key(), "AAAA"),
        Err(CryptoError::CiphertextLength { .. })
    ));
    assert_eq!(decrypt_v2(&other, "XYZ"), Err(CryptoError::CiphertextEncoding("hex")));
    // A ciphertext of 2 MB would be some 12 000 RSA operations: refused before the first.
    let (merchant, _) = party(Protocol::V2);
    let huge = "A".repeat(MAX_CIPHERTEXT_CHARS + 1);
    assert_eq!(
        merchant.decrypt_field(&huge),
        Err(CryptoError::CiphertextTooLong { len: huge.len() })
    );
    assert_eq!(
        verify(Protocol::V1, &other.public_key(), "x", "%%%"),
        Err(CryptoError::SignatureEncoding)
    );
    let sig = sign(Protocol::V1, key_1024(), "x").unwrap();
    assert_eq!(
        verify(Protocol::V1, &other.public_key(), "x", &sig),
        Err(CryptoError::BadSignature)
    );
}

#[test]
fn v1_and_v2_signatures_differ_and_do_not_cross_verify() {
    let key = key_1024();
    let data = "1902271423530001{\"service\":\"MemberService\"}2026-11-25 10:00:00";
    let s1 = sign(Protocol::V1, key, data).unwrap();
    let s2 = sign(Protocol::V2, key, data).unwrap();
    assert_ne!(s1, s2);
    assert!(verify(Protocol::V1, &key.public_key(), data, &s1).is_ok());
    assert!(verify(Protocol::V2, &key.public_key(), data, &s2).is_ok());
    assert!(verify(Protocol::V1, &key.public_key(), data, &s2).is_err());
    assert!(verify(Protocol::V2, &key.public_key(), data, &s1).is_err());
}

#[test]
fn signature_with_line_breaks_still_verifies() {
    let key = key_1024();
    let sig = sign(Protocol::V1, key, "abc").unwrap();
    let wrapped = format!("{}\r\n{}", &sig[..76], &sig[76..]);
    assert!(verify(Protocol::V1, &key.public_key(), "abc", &wrapped).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sign_verify_round_trip(data in ".{0,300}", v2 in any::<bool>()) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let (merchant, provider) = party(protocol);
        let sig = merchant.sign(&data).unwrap();
        prop_assert!(provider.verify(&data, &sig).is_ok());
    }

    #[test]
    fn any_flipped_bit_fails_verification(data in ".{1,100}", bit in 0usize..1024, in_data in any::<bool>(), v2 in any::<bool>()) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let key = key_1024();
        let sig = sign(protocol, key, &data).unwrap();
        if in_data {
            let mut bytes = data.clone().into_bytes();
            let i = bit % (bytes.len() * 8);
            bytes[i / 8] ^= 1 << (i % 8);
            // A flip that breaks UTF-8 is compared as lossy text; it still differs.
            let tampered = String::from_utf8_lossy(&bytes).into_owned();
            prop_assume!(tampered != data);
            prop_assert!(verify(protocol, &key.public_key(), &tampered, &sig).is_err());
        } else {
            let mut raw = STANDARD.decode(&sig).unwrap();
            raw[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(verify(protocol, &key.public_key(), &data, &STANDARD.encode(raw)), Err(CryptoError::BadSignature));
        }
    }

    #[test]
    fn field_round_trip(plain in ".{0,400}", v2 in any::<bool>()) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let (merchant, provider) = party(protocol);
        let to_provider = merchant.encrypt_field(&plain).unwrap();
        let to_merchant = provider.encrypt_field(&plain).unwrap();
        // v1 trims spaces at the ends, as the provider's SDK does.
        let expect = if v2 { plain.clone() } else { plain.trim_matches(' ').to_owned() };
        prop_assert_eq!(provider.decrypt_field(&to_provider).unwrap(), expect.clone());
        prop_assert_eq!(merchant.decrypt_field(&to_merchant).unwrap(), expect);
    }

    #[test]
    fn decrypt_never_panics(text in ".{0,600}", v2 in any::<bool>()) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let (merchant, _) = party(protocol);
        let _ = merchant.decrypt_field(&text);
        let _ = merchant.verify("x", &text);
    }
}
