//! X.509 certificates read leniently: the public key, subject, issuer and validity, nothing verified.
//!
//! Some certificates the provider issued carry characters a `PrintableString`
//! may not hold, and strict parsers reject the whole certificate. This reader
//! walks the TLVs of `tbsCertificate` with the `der` crate's reader (`AnyRef`:
//! tag and content, no check of what a string holds), so it finds the
//! `SubjectPublicKeyInfo` whatever the names contain. Names and times are
//! decoded from bytes, never by slicing text. The certificate's own
//! signature and chain are not checked: the key's trust comes from
//! configuration, as with the provider's own SDKs.

use std::fmt;

use der::asn1::AnyRef;
use der::{Reader as _, SliceReader, Tag, Tagged as _};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::{PublicKey, pem};

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("certificate DER is malformed: {0}")]
    Der(&'static str),
    #[error("certificate PEM: {0}")]
    Pem(String),
    #[error("the file holds no CERTIFICATE block")]
    NoCertificate,
    #[error("certificate public key is not RSA or is malformed: {0}")]
    PublicKey(String),
}

/// A certificate: its DER, its RSA public key and the descriptive fields `inspect` shows.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    public_key: PublicKey,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub serial_hex: String,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Reads a certificate from PEM text or DER bytes.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CertError> {
        if pem::is_pem(bytes) {
            let text = String::from_utf8_lossy(bytes);
            let blocks = pem::decode_all(&text).map_err(CertError::Pem)?;
            let block = blocks
                .into_iter()
                .find(|b| b.label == "CERTIFICATE" || b.label == "X509 CERTIFICATE")
                .ok_or(CertError::NoCertificate)?;
            Self::from_der(&block.der)
        } else {
            Self::from_der(bytes)
        }
    }

    /// Reads a DER certificate (bytes after its end are ignored).
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (cert, whole, _) = split(der, Tag::Sequence)?;
        let (tbs, _, _) = split(cert.value(), Tag::Sequence)?;
        let mut rest = tbs.value();
        // version [0] EXPLICIT is optional (absent for v1 certificates).
        if rest.first() == Some(&0xa0) {
            rest = tlv(rest)?.2;
        }
        let (serial, _, r) = split(rest, Tag::Integer)?;
        let (_, _, r) = tlv(r)?; // signature AlgorithmIdentifier
        let (issuer, _, r) = split(r, Tag::Sequence)?;
        let (validity, _, r) = split(r, Tag::Sequence)?;
        let (subject, _, r) = split(r, Tag::Sequence)?;
        let (_, spki, _) = split(r, Tag::Sequence)?;
        let public_key = PublicKey::from_spki_der(spki).map_err(|e| CertError::PublicKey(e.to_string()))?;
        let (not_before, vr) = read_time(validity.value())?;
        let (not_after, _) = read_time(vr)?;
        Ok(Certificate {
            der: whole.to_vec(),
            public_key,
            subject: describe_name(subject.value()),
            issuer: describe_name(issuer.value()),
            not_before,
            not_after,
            serial_hex: hex::encode(serial.value()),
        })
    }

    /// The certificate's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 fingerprint of the DER, colon-separated uppercase hex (as `openssl x509 -fingerprint -sha256`).
    pub fn sha256_fingerprint(&self) -> String {
        colon_hex(&Sha256::digest(&self.der))
    }

    /// SHA-1 fingerprint, which Java keytool and the provider's portal show.
    pub fn sha1_fingerprint(&self) -> String {
        colon_hex(&Sha1::digest(&self.der))
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Splits the first TLV off `input`: (the TLV, its whole encoding, the rest).
fn tlv(input: &[u8]) -> Result<(AnyRef<'_>, &[u8], &[u8]), CertError> {
    let mut reader = SliceReader::new(input).map_err(|_| CertError::Der("input too long"))?;
    let tlv: AnyRef<'_> = reader.decode().map_err(|e| CertError::Der(der_reason(&e)))?;
    let used = usize::try_from(reader.position()).map_err(|_| CertError::Der("length overflow"))?;
    let (whole, rest) = input.split_at_checked(used).ok_or(CertError::Der("length overflow"))?;
    Ok((tlv, whole, rest))
}

/// Like [`tlv`], insisting on the tag.
fn split(input: &[u8], expected: Tag) -> Result<(AnyRef<'_>, &[u8], &[u8]), CertError> {
    let parts = tlv(input)?;
    if parts.0.tag() != expected {
        return Err(CertError::Der("unexpected tag"));
    }
    Ok(parts)
}

fn der_reason(e: &der::Error) -> &'static str {
    match e.kind() {
        der::ErrorKind::Incomplete { .. } => "content runs past the end",
        der::ErrorKind::Length { .. } | der::ErrorKind::Overlength | der::ErrorKind::Overflow => "bad length",
        der::ErrorKind::TagNumberInvalid | der::ErrorKind::TagUnknown { .. } => "unsupported tag",
        _ => "malformed TLV",
    }
}

/// Reads a UTCTime or GeneralizedTime as `YYYY-MM-DD HH:MM:SS UTC`, from its
/// bytes (any byte that is not an ASCII digit where one belongs refuses it).
fn read_time(input: &[u8]) -> Result<(String, &[u8]), CertError> {
    let (time, _, rest) = tlv(input)?;
    let bytes = time.value();
    let digits = |b: &[u8]| b.iter().all(u8::is_ascii_digit);
    let full: Vec<u8> = match time.tag() {
        Tag::UtcTime if bytes.len() >= 12 && digits(&bytes[..12]) => {
            let century: &[u8] = if bytes[0] >= b'5' { b"19" } else { b"20" };
            [century, &bytes[..12]].concat()
        }
        Tag::GeneralizedTime if bytes.len() >= 14 && digits(&bytes[..14]) => bytes[..14].to_vec(),
        _ => return Err(CertError::Der("bad validity time")),
    };
    let s = |a: usize, b: usize| String::from_utf8_lossy(&full[a..b]).into_owned();
    let formatted = format!(
        "{}-{}-{} {}:{}:{} UTC",
        s(0, 4),
        s(4, 6),
        s(6, 8),
        s(8, 10),
        s(10, 12),
        s(12, 14)
    );
    Ok((formatted, rest))
}

/// `CN=..., O=...` from a Name, reading every string type as (lossy) UTF-8
/// or as UTF-16 for BMPString. Unknown attribute types print as their OID.
fn describe_name(name: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let Ok((set, _, rest)) = split(rdns, Tag::Set) else {
            break;
        };
        rdns = rest;
        let mut atvs = set.value();
        while !atvs.is_empty() {
            let Ok((atv, _, rest)) = split(atvs, Tag::Sequence) else {
                break;
            };
            atvs = rest;
            let Ok((oid, _, value)) = split(atv.value(), Tag::ObjectIdentifier) else {
                continue;
            };
            let oid = oid.value();
            // Any tag at all: a PrintableString holding what it may not is still read.
            let Ok((string, _, _)) = tlv(value) else { continue };
            let raw = string.value();
            let text = if string.tag() == Tag::BmpString {
                let units: Vec<u16> = raw
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                    .collect();
                String::from_utf16_lossy(&units)
            } else {
                String::from_utf8_lossy(raw).into_owned()
            };
            parts.push(format!("{}={}", attribute_name(oid), text));
        }
    }
    parts.join(", ")
}

fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        other => format!("OID:{}", hex::encode(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_never_panics() {
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = Certificate::from_der(&bytes);
        }
        let _ = Certificate::from_der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]);
        let _ = Certificate::from_der(&[0x30, 0x03, 0x30, 0x01]);
    }

    #[test]
    fn a_time_with_non_ascii_bytes_is_an_error_not_a_panic() {
        // UTCTime whose content has a multi-byte UTF-8 character where digits belong:
        // slicing it as text at byte 2 would split the character.
        let mut t = vec![0x17, 13];
        t.extend_from_slice("2中60101000000Z".as_bytes().get(..13).unwrap());
        assert_eq!(read_time(&t), Err(CertError::Der("bad validity time")));
        let good = [&[0x17u8, 13][..], b"260101083000Z"].concat();
        assert_eq!(read_time(&good).unwrap().0, "2026-01-01 08:30:00 UTC");
        let old = [&[0x17u8, 13][..], b"991231235959Z"].concat();
        assert_eq!(read_time(&old).unwrap().0, "1999-12-31 23:59:59 UTC");
    }

    mod arbitrary {
        //! Arbitrary bytes never panic the reader (mutated real certificates: tests/crypto_openssl.rs).

        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = Certificate::from_der(&bytes);
                let _ = Certificate::from_pem_or_der(&bytes);
            }
        }
    }
}
