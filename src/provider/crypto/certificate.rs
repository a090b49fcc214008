//! X.509 certificates read leniently: the public key, subject, issuer and validity, nothing verified.
//!
//! Some certificates the provider issued carry characters a `PrintableString`
//! may not hold, and strict parsers reject the whole certificate. This reader
//! walks the DER tags of `tbsCertificate` without validating string types, so
//! it finds the `SubjectPublicKeyInfo` whatever the names contain. The
//! certificate's own signature and chain are not checked: the key's trust
//! comes from configuration, as with the provider's own SDKs.

use std::fmt;

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

    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (cert, _) = read_tlv(der, SEQUENCE)?;
        let (tbs, _) = read_tlv(cert, SEQUENCE)?;
        let mut rest = tbs;
        // version [0] EXPLICIT is optional (absent for v1 certificates).
        if rest.first() == Some(&0xa0) {
            rest = skip_tlv(rest)?;
        }
        let (serial, r) = read_tlv(rest, INTEGER)?;
        let r = skip_tlv(r)?; // signature AlgorithmIdentifier
        let (issuer, r) = read_tlv(r, SEQUENCE)?;
        let (validity, r) = read_tlv(r, SEQUENCE)?;
        let (subject, r) = read_tlv(r, SEQUENCE)?;
        let spki_len = tlv_len(r)?;
        let public_key = PublicKey::from_spki_der(&r[..spki_len]).map_err(|e| CertError::PublicKey(e.to_string()))?;
        let (not_before, vr) = read_time(validity)?;
        let (not_after, _) = read_time(vr)?;
        Ok(Certificate {
            der: der[..tlv_len(der)?].to_vec(),
            public_key,
            subject: describe_name(subject),
            issuer: describe_name(issuer),
            not_before,
            not_after,
            serial_hex: hex::encode(serial),
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

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Splits one TLV off `input`: (tag, header length, content length).
fn header(input: &[u8]) -> Result<(u8, usize, usize), CertError> {
    let tag = *input.first().ok_or(CertError::Der("truncated tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(CertError::Der("multi-byte tags are not used in certificates"));
    }
    let first = *input.get(1).ok_or(CertError::Der("truncated length"))?;
    if first < 0x80 {
        return Ok((tag, 2, first as usize));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return Err(CertError::Der("unsupported length encoding"));
    }
    let bytes = input.get(2..2 + n).ok_or(CertError::Der("truncated length"))?;
    let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
    Ok((tag, 2 + n, len))
}

/// Total length (header + content) of the TLV at the start of `input`.
fn tlv_len(input: &[u8]) -> Result<usize, CertError> {
    let (_, h, len) = header(input)?;
    let total = h.checked_add(len).ok_or(CertError::Der("length overflow"))?;
    if total > input.len() {
        return Err(CertError::Der("content runs past the end"));
    }
    Ok(total)
}

/// Reads a TLV with the expected tag: (content, rest).
fn read_tlv(input: &[u8], expected: u8) -> Result<(&[u8], &[u8]), CertError> {
    let (tag, h, _) = header(input)?;
    if tag != expected {
        return Err(CertError::Der("unexpected tag"));
    }
    let total = tlv_len(input)?;
    Ok((&input[h..total], &input[total..]))
}

fn skip_tlv(input: &[u8]) -> Result<&[u8], CertError> {
    Ok(&input[tlv_len(input)?..])
}

/// Reads a UTCTime or GeneralizedTime as `YYYY-MM-DD HH:MM:SS UTC`.
fn read_time(input: &[u8]) -> Result<(String, &[u8]), CertError> {
    let (tag, h, _) = header(input)?;
    let total = tlv_len(input)?;
    let text = String::from_utf8_lossy(&input[h..total]);
    let digits = text.trim_end_matches('Z');
    let full = match tag {
        UTC_TIME if digits.len() >= 12 => {
            let yy: u32 = digits[..2].parse().map_err(|_| CertError::Der("bad UTCTime"))?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{digits}")
        }
        GENERALIZED_TIME if digits.len() >= 14 => digits.to_owned(),
        _ => return Err(CertError::Der("bad validity time")),
    };
    let d = full.as_bytes();
    if !d[..14].iter().all(u8::is_ascii_digit) {
        return Err(CertError::Der("bad validity time"));
    }
    let s = |a: usize, b: usize| &full[a..b];
    let formatted = format!(
        "{}-{}-{} {}:{}:{} UTC",
        s(0, 4),
        s(4, 6),
        s(6, 8),
        s(8, 10),
        s(10, 12),
        s(12, 14)
    );
    Ok((formatted, &input[total..]))
}

/// `CN=..., O=...` from a Name, reading every string type as (lossy) UTF-8
/// or as UTF-16 for BMPString. Unknown attribute types print as their OID.
fn describe_name(name: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let Ok((set, rest)) = read_tlv(rdns, SET) else { break };
        rdns = rest;
        let mut atvs = set;
        while !atvs.is_empty() {
            let Ok((atv, rest)) = read_tlv(atvs, SEQUENCE) else {
                break;
            };
            atvs = rest;
            let Ok((oid, value)) = read_tlv(atv, OID) else { continue };
            let Ok((tag, h, _)) = header(value) else { continue };
            let Ok(total) = tlv_len(value) else { continue };
            let raw = &value[h..total];
            let text = if tag == 0x1e {
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
}
