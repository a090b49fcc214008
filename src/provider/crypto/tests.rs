//! Unit and property tests of the crypto primitives, each on every backend the build has (openssl cross-checks live in tests/crypto_openssl.rs).

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

fn base_1024() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(1024).unwrap())
}

fn provider_1024() -> &'static PrivateKey {
    static P: OnceLock<PrivateKey> = OnceLock::new();
    P.get_or_init(|| PrivateKey::generate(1024).unwrap())
}

/// The merchant's test key, computed by `backend`.
fn key_on(backend: Backend) -> PrivateKey {
    base_1024().with_backend(backend).unwrap()
}

fn party(protocol: Protocol, backend: Backend) -> (PartyKeys, PartyKeys) {
    let merchant = key_on(backend);
    let provider = match protocol {
        Protocol::V1 => merchant.clone(),
        Protocol::V2 => provider_1024().with_backend(backend).unwrap(),
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

fn backends() -> impl Strategy<Value = Backend> {
    prop::sample::select(Backend::AVAILABLE)
}

#[test]
fn debug_never_shows_key_material() {
    for &backend in Backend::AVAILABLE {
        let key = key_on(backend);
        let shown = format!("{key:?}");
        assert_eq!(shown, "PrivateKey(RSA-1024, ***)");
        let party = party(Protocol::V1, backend).0;
        assert!(!format!("{party:?}").contains(&key.to_pkcs8_pem().unwrap()[30..60]));
    }
}

#[test]
fn v1_type1_blocks_are_deterministic_and_chunked() {
    for &backend in Backend::AVAILABLE {
        let key = &key_on(backend);
        let long = "身份证".repeat(50); // 450 bytes: four 117-byte chunks
        let a = encrypt_v1(key, &long).unwrap();
        assert_eq!(a, encrypt_v1(key, &long).unwrap());
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 4 * 128);
        assert_eq!(decrypt_v1(&key.public_key(), &a).unwrap(), long);
    }
}

#[test]
fn v1_decrypt_accepts_unpadded_blocks() {
    let key = base_1024();
    // A raw private-key operation over a zero-prefixed value (no padding),
    // as some old SDKs produced.
    let value = b"610422198600000000";
    let mut block = vec![0u8; 128 - value.len()];
    block.extend_from_slice(value);
    let c = BoxedUint::from_be_slice(&block, key.inner.n_bits_precision()).unwrap();
    let raw = rsa::hazmat::rsa_decrypt_and_check(&key.inner, None::<&mut getrandom::SysRng>, &c).unwrap();
    let ct = STANDARD.encode(raw.to_be_bytes());
    for &backend in Backend::AVAILABLE {
        let public = key.public_key().with_backend(backend).unwrap();
        assert_eq!(decrypt_v1(&public, &ct).unwrap(), "610422198600000000", "{backend}");
    }
}

#[test]
fn wrong_key_and_garbage_are_errors_not_panics() {
    for &backend in Backend::AVAILABLE {
        let other = provider_1024().with_backend(backend).unwrap();
        let ct = encrypt_v1(&key_on(backend), "6228480402637874214").unwrap();
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
        let (merchant, _) = party(Protocol::V2, backend);
        let huge = "A".repeat(MAX_CIPHERTEXT_CHARS + 1);
        assert_eq!(
            merchant.decrypt_field(&huge),
            Err(CryptoError::CiphertextTooLong { len: huge.len() })
        );
        assert_eq!(
            verify(Protocol::V1, &other.public_key(), "x", "%%%"),
            Err(CryptoError::SignatureEncoding)
        );
        let sig = sign(Protocol::V1, &key_on(backend), "x").unwrap();
        assert_eq!(
            verify(Protocol::V1, &other.public_key(), "x", &sig),
            Err(CryptoError::BadSignature)
        );
    }
}

#[test]
fn v1_and_v2_signatures_differ_and_do_not_cross_verify() {
    for &backend in Backend::AVAILABLE {
        let key = &key_on(backend);
        let data = "1902271423530001{\"service\":\"MemberService\"}2026-11-25 10:00:00";
        let s1 = sign(Protocol::V1, key, data).unwrap();
        let s2 = sign(Protocol::V2, key, data).unwrap();
        assert_ne!(s1, s2);
        assert!(verify(Protocol::V1, &key.public_key(), data, &s1).is_ok());
        assert!(verify(Protocol::V2, &key.public_key(), data, &s2).is_ok());
        assert!(verify(Protocol::V1, &key.public_key(), data, &s2).is_err());
        assert!(verify(Protocol::V2, &key.public_key(), data, &s1).is_err());
    }
}

#[test]
fn signature_with_line_breaks_still_verifies() {
    for &backend in Backend::AVAILABLE {
        let key = &key_on(backend);
        let sig = sign(Protocol::V1, key, "abc").unwrap();
        let wrapped = format!("{}\r\n{}", &sig[..76], &sig[76..]);
        assert!(verify(Protocol::V1, &key.public_key(), "abc", &wrapped).is_ok());
    }
}

/// What one backend produces, the other reads; deterministic outputs are
/// byte-identical; encodings and derived secrets do not depend on the backend.
#[test]
fn backends_agree_byte_for_byte() {
    let data = "1902271423530001{\"service\":\"OrderService\"}2026-11-25 10:00:00";
    let card = "6228480402637874214";
    let reference = key_on(Backend::Rust);
    for &backend in Backend::AVAILABLE {
        let key = key_on(backend);
        assert_eq!(key.backend(), backend);
        assert_eq!(key.public_key().backend(), backend);
        for protocol in [Protocol::V1, Protocol::V2] {
            let sig = sign(protocol, &key, data).unwrap();
            assert_eq!(sig, sign(protocol, &reference, data).unwrap(), "{backend} {protocol}");
            verify(protocol, &reference.public_key(), data, &sig).unwrap();
        }
        let ct1 = encrypt_v1(&key, card).unwrap();
        assert_eq!(ct1, encrypt_v1(&reference, card).unwrap());
        assert_eq!(decrypt_v1(&reference.public_key(), &ct1).unwrap(), card);
        let ct2 = encrypt_v2(&key.public_key(), card).unwrap();
        assert_eq!(decrypt_v2(&reference, &ct2).unwrap(), card);
        let ct2 = encrypt_v2(&reference.public_key(), card).unwrap();
        assert_eq!(decrypt_v2(&key, &ct2).unwrap(), card);
        assert_eq!(key.public_key(), reference.public_key());
        assert_eq!(key.public_key().to_spki_der(), reference.public_key().to_spki_der());
        assert_eq!(key.to_pkcs8_pem().unwrap(), reference.to_pkcs8_pem().unwrap());
        assert_eq!(key.derived_secret("l").unwrap(), reference.derived_secret("l").unwrap());
        // A signature one byte short, or one byte long, is refused alike.
        let raw = STANDARD.decode(sign(Protocol::V1, &key, data).unwrap()).unwrap();
        for bad in [&raw[1..], &[&[0u8][..], &raw[..]].concat()[..]] {
            assert_eq!(
                verify(Protocol::V1, &key.public_key(), data, &STANDARD.encode(bad)),
                Err(CryptoError::BadSignature),
                "{backend}"
            );
        }
        // A block not below the modulus: the same error from both.
        let ff = STANDARD.encode(vec![0xffu8; 128]);
        assert_eq!(
            decrypt_v1(&key.public_key(), &ff),
            Err(CryptoError::CiphertextRange),
            "{backend}"
        );
    }
}

/// A v2 block whose plaintext is `m` (`m^e mod n`), for padding a real encryption never makes.
fn raw_v2_ciphertext(key: &PrivateKey, m: &[u8]) -> String {
    hex::encode_upper(key.public_key().public_operation(m).unwrap())
}

#[test]
fn v2_decryption_rejects_bad_padding_alike_on_both_backends() {
    let k = 128;
    let nonzero = |n: usize| vec![0x5au8; n];
    let block = |parts: &[&[u8]]| {
        let m = parts.concat();
        assert_eq!(m.len(), k);
        m
    };
    let good = block(&[&[0, 2], &nonzero(k - 6), &[0], b"abc"]);
    let cases = [
        // No zero after the padding string.
        block(&[&[0, 2], &nonzero(k - 2)]),
        // A padding string of 5 bytes: RFC 8017 wants at least 8.
        block(&[&[0, 2], &nonzero(5), &[0], &nonzero(k - 8)]),
        // Type 1, as a v1 field is padded.
        block(&[&[0, 1], &[0xff; 8], &[0], &nonzero(k - 11)]),
    ];
    for &backend in Backend::AVAILABLE {
        let key = key_on(backend);
        assert_eq!(
            decrypt_v2(&key, &raw_v2_ciphertext(&key, &good)).unwrap(),
            "abc",
            "{backend}"
        );
        for m in &cases {
            assert_eq!(
                decrypt_v2(&key, &raw_v2_ciphertext(&key, m)),
                Err(CryptoError::Padding),
                "{backend}"
            );
        }
        // A block not below the modulus.
        assert_eq!(
            decrypt_v2(&key, &"FF".repeat(k)),
            Err(CryptoError::CiphertextRange),
            "{backend}"
        );
    }
    // The wrong key: whatever it yields, both backends yield the same, and never the card.
    let ciphertext = encrypt_v2(&provider_1024().public_key(), "6228480402637874214").unwrap();
    let results: Vec<_> = Backend::AVAILABLE
        .iter()
        .map(|&b| decrypt_v2(&key_on(b), &ciphertext))
        .collect();
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    assert_ne!(results[0], Ok("6228480402637874214".to_owned()));
}

#[test]
fn selecting_a_backend_the_build_lacks_is_refused() {
    assert_eq!("OpenSSL".parse::<Backend>(), Ok(Backend::OpenSsl));
    assert_eq!("rust".parse::<Backend>(), Ok(Backend::Rust));
    assert!("ring".parse::<Backend>().unwrap_err().contains("openssl or rust"));
    if !Backend::AVAILABLE.contains(&Backend::OpenSsl) {
        assert!(
            Backend::OpenSsl
                .select()
                .unwrap_err()
                .to_string()
                .contains("no openssl")
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sign_verify_round_trip(data in ".{0,300}", v2 in any::<bool>(), backend in backends()) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let (merchant, provider) = party(protocol, backend);
        let sig = merchant.sign(&data).unwrap();
        prop_assert!(provider.verify(&data, &sig).is_ok());
    }

    #[test]
    fn any_flipped_bit_fails_verification(data in ".{1,100}", bit in 0usize..1024, in_data in any::<bool>(), v2 in any::<bool>(), backend in backends()) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let key = &key_on(backend);
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
    fn field_round_trip(plain in ".{0,400}", v2 in any::<bool>(), backend in backends()) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let (merchant, provider) = party(protocol, backend);
        let to_provider = merchant.encrypt_field(&plain).unwrap();
        let to_merchant = provider.encrypt_field(&plain).unwrap();
        // v1 trims spaces at the ends, as the provider's SDK does.
        let expect = if v2 { plain.clone() } else { plain.trim_matches(' ').to_owned() };
        prop_assert_eq!(provider.decrypt_field(&to_provider).unwrap(), expect.clone());
        prop_assert_eq!(merchant.decrypt_field(&to_merchant).unwrap(), expect);
    }

    #[test]
    fn decrypt_never_panics(text in ".{0,600}", v2 in any::<bool>(), backend in backends()) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let (merchant, _) = party(protocol, backend);
        let _ = merchant.decrypt_field(&text);
        let _ = merchant.verify("x", &text);
    }
}
