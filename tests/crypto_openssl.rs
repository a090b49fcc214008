//! Cross-checks the provider cryptography byte for byte against the `openssl` command line, RSA-1024 and RSA-2048, on every crypto backend the build has.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use support::{MerchantFiles, openssl, write};
use yungate::provider::crypto::{
    self, Backend, Certificate, KeyError, Keystore, Protocol, load_certificate_file, load_private_key_pem,
    load_public_key_pem,
};
use yungate::provider::sensitive::Sensitive;

const SYSID: &str = "1902271423530001";

const INPUTS: [&str; 3] = [
    r#"1902271423530001{"service":"MemberService","method":"createMember","param":{"bizUserId":"u-1","memberType":3,"source":2}}2026-11-25 10:00:00"#,
    r#"1902271423530001{"service":"MemberService","method":"setRealName","param":{"name":"王小二","identityNo":"x"}}2026-11-25 10:00:00"#,
    "",
];

/// Runs `check` with the merchant's files of each key size and each backend.
fn for_each_key_size(check: impl Fn(&MerchantFiles, Backend)) {
    for bits in [1024, 2048] {
        let files = MerchantFiles::new(bits, SYSID);
        for &backend in Backend::AVAILABLE {
            check(&files, backend);
        }
    }
}

#[test]
fn v1_signatures_equal_openssl_dgst_sha1() {
    for_each_key_size(|m, backend| {
        let key = m.key().with_backend(backend).unwrap();
        for data in INPUTS {
            let ours = crypto::sign(Protocol::V1, &key, data).unwrap();
            let theirs = STANDARD.encode(openssl(
                &["dgst", "-sha1", "-sign", &m.path_str("key.pem")],
                data.as_bytes(),
            ));
            assert_eq!(ours, theirs, "{backend} RSA-{} input {data:?}", m.bits);
            // And openssl accepts ours.
            let sig = write(m.dir.path(), "sig.bin", &STANDARD.decode(&ours).unwrap());
            openssl(
                &[
                    "dgst",
                    "-sha1",
                    "-verify",
                    &m.path_str("pub.pem"),
                    "-signature",
                    sig.to_str().unwrap(),
                ],
                data.as_bytes(),
            );
        }
    });
}

#[test]
fn v2_signatures_equal_openssl_over_base64_md5() {
    for_each_key_size(|m, backend| {
        let key = m.key().with_backend(backend).unwrap();
        for data in INPUTS {
            let md5_b64 = STANDARD.encode(openssl(&["dgst", "-md5", "-binary"], data.as_bytes()));
            let theirs = STANDARD.encode(openssl(
                &["dgst", "-sha1", "-sign", &m.path_str("key.pem")],
                md5_b64.as_bytes(),
            ));
            assert_eq!(
                crypto::sign(Protocol::V2, &key, data).unwrap(),
                theirs,
                "{backend} RSA-{}",
                m.bits
            );
            crypto::verify(Protocol::V2, &key.public_key(), data, &theirs).unwrap();
        }
    });
}

#[test]
fn v1_field_encryption_equals_openssl_type1_and_decrypts_theirs() {
    for_each_key_size(|m, backend| {
        let key = m.key().with_backend(backend).unwrap();
        for value in ["6228480402637874214", "王小二", "610422198600000000"] {
            let ours = crypto::encrypt_v1(&key, value).unwrap();
            let theirs = STANDARD.encode(openssl(
                &["pkeyutl", "-sign", "-inkey", &m.path_str("key.pem")],
                value.as_bytes(),
            ));
            assert_eq!(ours, theirs, "{backend} RSA-{} value {value:?}", m.bits);
            let recovered = openssl(
                &["pkeyutl", "-verifyrecover", "-pubin", "-inkey", &m.path_str("pub.pem")],
                &STANDARD.decode(&ours).unwrap(),
            );
            assert_eq!(recovered, value.as_bytes());
            assert_eq!(crypto::decrypt_v1(&key.public_key(), &theirs).unwrap(), value);
        }
    });
}

#[test]
fn v1_long_values_are_chunked_at_k_minus_11() {
    for_each_key_size(|m, backend| {
        let key = m.key().with_backend(backend).unwrap();
        let k = m.bits / 8;
        let value = "地址：浙江省杭州市西湖区文三路".repeat(12);
        let raw = STANDARD.decode(crypto::encrypt_v1(&key, &value).unwrap()).unwrap();
        assert_eq!(raw.len(), value.len().div_ceil(k - 11) * k);
        let mut recovered = Vec::new();
        for block in raw.chunks(k) {
            recovered.extend(openssl(
                &["pkeyutl", "-verifyrecover", "-pubin", "-inkey", &m.path_str("pub.pem")],
                block,
            ));
        }
        assert_eq!(recovered, value.as_bytes());
    });
}

#[test]
fn v2_field_encryption_interoperates_with_openssl_pkcs1() {
    for_each_key_size(|m, backend| {
        let key = m.key().with_backend(backend).unwrap();
        for value in ["6228480402637874214", "王小二"] {
            let ours = crypto::encrypt_v2(&key.public_key(), value).unwrap();
            assert!(
                ours.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
                "uppercase hex: {ours}"
            );
            let decrypted = openssl(
                &[
                    "pkeyutl",
                    "-decrypt",
                    "-inkey",
                    &m.path_str("key.pem"),
                    "-pkeyopt",
                    "rsa_padding_mode:pkcs1",
                ],
                &hex::decode(&ours).unwrap(),
            );
            assert_eq!(decrypted, value.as_bytes());
            let theirs = openssl(
                &[
                    "pkeyutl",
                    "-encrypt",
                    "-pubin",
                    "-inkey",
                    &m.path_str("pub.pem"),
                    "-pkeyopt",
                    "rsa_padding_mode:pkcs1",
                ],
                value.as_bytes(),
            );
            assert_eq!(crypto::decrypt_v2(&key, &hex::encode_upper(theirs)).unwrap(), value);
        }
    });
}

#[test]
fn legacy_pkcs12_loads_with_alias_and_wrong_password_is_clear() {
    let m = MerchantFiles::new(2048, SYSID);
    let pfx = m.path("merchant.pfx");
    let store = Keystore::open(&pfx, &Sensitive::new("secret".into()), Some(SYSID)).unwrap();
    assert_eq!(store.alias, SYSID);
    assert_eq!(store.key.public_key(), m.key().public_key());
    let cert = store.certificate.as_ref().expect("certificate in the keystore");
    assert!(cert.subject.contains("云账户测试"), "{}", cert.subject);
    assert_eq!(store.public_key(), m.key().public_key());
    // Without an alias the first key is taken.
    assert!(Keystore::open(&pfx, &Sensitive::new("secret".into()), None).is_ok());
    let wrong = Keystore::open(&pfx, &Sensitive::new("nope".into()), None).unwrap_err();
    assert!(matches!(wrong, KeyError::WrongPassword), "{wrong}");
    let alias = Keystore::open(&pfx, &Sensitive::new("secret".into()), Some("other")).unwrap_err();
    assert!(alias.to_string().contains(SYSID), "{alias}");
    let missing = Keystore::open(&m.path("absent.pfx"), &Sensitive::new("secret".into()), None).unwrap_err();
    assert!(missing.to_string().contains("absent.pfx"), "{missing}");
}

#[test]
fn pem_der_and_pkcs1_files_give_the_same_key() {
    let m = MerchantFiles::new(1024, SYSID);
    let public = m.key().public_key();
    assert_eq!(
        load_private_key_pem(&m.path("key-pkcs1.pem")).unwrap().public_key(),
        public
    );
    assert_eq!(load_public_key_pem(&m.path("pub.pem")).unwrap(), public);
    assert_eq!(
        load_certificate_file(&m.path("cert.der")).unwrap().public_key(),
        &public
    );
    assert_eq!(
        load_certificate_file(&m.path("cert.pem")).unwrap().public_key(),
        &public
    );
    let not_a_key = write(m.dir.path(), "x.pem", b"hello");
    assert!(
        load_private_key_pem(&not_a_key)
            .unwrap_err()
            .to_string()
            .contains("no PEM block")
    );
}

#[test]
fn certificate_with_an_invalid_printable_string_still_yields_its_key() {
    let m = MerchantFiles::new(1024, SYSID);
    let der = std::fs::read(m.path("cert.der")).unwrap();
    // Re-tag the subject's CN (a UTF8String here) as a PrintableString holding
    // characters a PrintableString may not hold, as some issued certificates do.
    let cn = SYSID.as_bytes();
    let mut bad = der.clone();
    let at = bad
        .windows(cn.len() + 2)
        .rposition(|w| w[0] == 0x0c && w[1] as usize == cn.len() && &w[2..] == cn)
        .expect("CN in the DER");
    bad[at] = 0x13;
    bad[at + 2] = b'*';
    bad[at + 3] = b'@';
    let cert = Certificate::from_der(&bad).unwrap();
    assert_eq!(cert.public_key(), &m.key().public_key());
    assert!(cert.subject.contains("*@"), "{}", cert.subject);
}

#[test]
fn fingerprint_matches_openssl() {
    let m = MerchantFiles::new(1024, SYSID);
    let cert = load_certificate_file(&m.path("cert.pem")).unwrap();
    let out = String::from_utf8(openssl(
        &[
            "x509",
            "-in",
            &m.path_str("cert.pem"),
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        b"",
    ))
    .unwrap();
    assert!(
        out.trim().ends_with(&cert.sha256_fingerprint()),
        "{out} vs {}",
        cert.sha256_fingerprint()
    );
}

/// Certificates made by openssl, then corrupted at random: read or refused, never a panic.
mod mutated_certificates {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> &'static [u8] {
        static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        DER.get_or_init(|| {
            let m = MerchantFiles::new(1024, SYSID);
            std::fs::read(m.path("cert.der")).unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn flipped_and_cut_certificates_are_errors_or_certificates(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut der = sample().to_vec();
            for (at, byte) in flips {
                let i = at.index(der.len());
                der[i] = byte;
            }
            let len = cut.index(der.len() + 1);
            let _ = Certificate::from_der(&der[..len]);
            let _ = Certificate::from_pem_or_der(&der[..len]);
        }
    }

    #[test]
    fn the_unmutated_certificate_reads() {
        let cert = Certificate::from_der(sample()).unwrap();
        assert!(cert.subject.contains(SYSID), "{}", cert.subject);
        assert!(cert.not_after.ends_with(" UTC"), "{}", cert.not_after);
    }
}
