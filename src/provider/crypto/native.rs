//! The OpenSSL backend: the RSA primitives of [`super::PrivateKey`] and [`super::PublicKey`] done by the system's libcrypto.
//!
//! Only the operations live here; parsing, encodings and fingerprints stay
//! with the `rsa` crate's copy of the key, so both backends read the same
//! files the same way and print the same fingerprints. A key is handed to
//! OpenSSL as its PKCS#1 DER once, when it is loaded.
//!
//! The low-level `RSA_*` calls are used on purpose: the v1 field encryption
//! is a raw type-1 private-key operation and its decryption a raw public
//! one, which the EVP signing API does not express; OpenSSL blinds every
//! private-key operation made this way.

use std::sync::Arc;

use openssl::pkey::{Private, Public};
use openssl::rsa::{Padding, Rsa};

use super::CryptoError;

/// `DigestInfo` for SHA-1 (RFC 8017 §9.2 note 1): what precedes the hash in an RSASSA-PKCS1-v1_5 signature.
const SHA1_DIGEST_INFO: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];

fn openssl_error(e: openssl::error::ErrorStack) -> CryptoError {
    // The stack names OpenSSL's reason ("data too large for modulus"); it never holds key material.
    CryptoError::Rsa(e.to_string())
}

/// The first `n` bytes of `out` moved to its end, zeros before: NO_PADDING
/// answers k bytes, but a shorter answer must read as the same number.
fn right_align(out: &mut [u8], n: usize) {
    let k = out.len();
    if n < k {
        out.copy_within(..n, k - n);
        out[..k - n].fill(0);
    }
}

/// A private key as OpenSSL holds it; shared, since libcrypto's key is immutable once loaded.
#[derive(Clone)]
pub(super) struct NativePrivate(Arc<Rsa<Private>>);

impl NativePrivate {
    /// From a PKCS#1 `RSAPrivateKey` DER.
    pub(super) fn from_pkcs1_der(der: &[u8]) -> Result<Self, CryptoError> {
        Rsa::private_key_from_der(der)
            .map(|k| NativePrivate(Arc::new(k)))
            .map_err(openssl_error)
    }

    /// A fresh key, as PKCS#1 DER (OpenSSL's key generation takes tens of
    /// milliseconds where the `rsa` crate's takes seconds).
    pub(super) fn generate_pkcs1_der(bits: usize) -> Result<Vec<u8>, CryptoError> {
        let bits = u32::try_from(bits).map_err(|_| CryptoError::Rsa(format!("{bits} bits is not a key size")))?;
        let key = Rsa::generate(bits).map_err(openssl_error)?;
        key.private_key_to_der().map_err(openssl_error)
    }

    pub(super) fn public(&self) -> Result<NativePublic, CryptoError> {
        let n = self.0.n().to_owned().map_err(openssl_error)?;
        let e = self.0.e().to_owned().map_err(openssl_error)?;
        Rsa::from_public_components(n, e)
            .map(|k| NativePublic(Arc::new(k)))
            .map_err(openssl_error)
    }

    fn size(&self) -> usize {
        self.0.size() as usize
    }

    /// Type-1 padding and the private-key operation over `block` (at most k - 11 bytes).
    pub(super) fn encrypt_block_type1(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0u8; self.size()];
        let n = self
            .0
            .private_encrypt(block, &mut out, Padding::PKCS1)
            .map_err(openssl_error)?;
        out.truncate(n);
        Ok(out)
    }

    /// RSASSA-PKCS1-v1_5 over a SHA-1 digest already computed.
    pub(super) fn sign_sha1_digest(&self, digest: &[u8; 20]) -> Result<Vec<u8>, CryptoError> {
        let mut info = [0u8; 35];
        info[..15].copy_from_slice(&SHA1_DIGEST_INFO);
        info[15..].copy_from_slice(digest);
        self.encrypt_block_type1(&info)
    }

    /// `c^d mod n` (blinded) for one block of k bytes below the modulus
    /// (checked by the caller), k bytes out; the caller checks the padding.
    pub(super) fn private_operation(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let k = self.size();
        let mut out = vec![0u8; k];
        let n = self
            .0
            .private_decrypt(block, &mut out, Padding::NONE)
            .map_err(openssl_error)?;
        right_align(&mut out, n);
        Ok(out)
    }
}

/// A public key as OpenSSL holds it.
#[derive(Clone)]
pub(super) struct NativePublic(Arc<Rsa<Public>>);

impl NativePublic {
    /// From a PKCS#1 `RSAPublicKey` DER.
    pub(super) fn from_pkcs1_der(der: &[u8]) -> Result<Self, CryptoError> {
        Rsa::public_key_from_der_pkcs1(der)
            .map(|k| NativePublic(Arc::new(k)))
            .map_err(openssl_error)
    }

    fn size(&self) -> usize {
        self.0.size() as usize
    }

    /// Whether `sig` (exactly k bytes, checked by the caller) is a
    /// RSASSA-PKCS1-v1_5 SHA-1 signature of `digest`: the recovered block
    /// must be exactly the `DigestInfo` and the digest.
    pub(super) fn verify_sha1_digest(&self, digest: &[u8; 20], sig: &[u8]) -> bool {
        let mut out = vec![0u8; self.size()];
        match self.0.public_decrypt(sig, &mut out, Padding::PKCS1) {
            Ok(35) => out[..15] == SHA1_DIGEST_INFO && out[15..35] == digest[..],
            _ => false,
        }
    }

    /// `c^e mod n` for one block of k bytes below the modulus (checked by
    /// the caller), left-padded to k bytes.
    pub(super) fn public_operation(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let k = self.size();
        let mut out = vec![0u8; k];
        let n = self
            .0
            .public_decrypt(block, &mut out, Padding::NONE)
            .map_err(openssl_error)?;
        right_align(&mut out, n);
        Ok(out)
    }

    /// PKCS#1 v1.5 type-2 encryption of one block (at most k - 11 bytes).
    pub(super) fn encrypt_block_type2(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0u8; self.size()];
        let n = self
            .0
            .public_encrypt(block, &mut out, Padding::PKCS1)
            .map_err(openssl_error)?;
        out.truncate(n);
        Ok(out)
    }
}
