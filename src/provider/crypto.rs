//! Keys and the provider's cryptography: SHA1WithRSA signatures and RSA field encryption, both protocol profiles.
//!
//! Every RSA operation of the crate goes through [`PrivateKey`] and
//! [`PublicKey`] below; nothing else touches the `rsa` or `openssl` crates.
//! Two backends do the operations: the pure-Rust `rsa` crate, always built,
//! and OpenSSL (cargo feature `openssl`, on by default, about 4x faster for
//! private-key operations), in `native.rs`. Both read keys through the `rsa`
//! crate, so loading, encodings and fingerprints are the same whichever
//! backend computes; a process picks its backend once ([`Backend::select`]).
//!
//! Profiles (see `shared/design/PROTOCOL.md`):
//! - `v1` (the spec): sign `SHA1WithRSA(utf8(data))`; fields are encrypted
//!   with the *sender's private key* (PKCS#1 v1.5 block type 1, chunked at
//!   `k - 11` bytes, Base64) and decrypted with its public key.
//! - `v2`: sign `SHA1WithRSA(Base64(MD5(utf8(data))))`; fields are encrypted
//!   with the *receiver's public key* (PKCS#1 v1.5 type 2, uppercase hex) and
//!   decrypted with the receiver's private key.

mod certificate;
mod keyfile;
#[cfg(feature = "openssl")]
mod native;
mod pem;
pub mod pool;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest as _, Md5};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Pkcs1v15Sign};
use sha1::Sha1;
use sha2::Sha256;

pub use certificate::{CertError, Certificate};
pub use keyfile::{KeyError, Keystore, load_certificate_file, load_private_key_pem, load_public_key_pem};

/// The two protocol profiles; they differ in the signing input and in field encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// The v1.36 specification: `v=1.0`.
    #[default]
    V1,
    /// The later revision: `v=2.0`, MD5 pre-hash, public-key field encryption.
    V2,
}

impl Protocol {
    /// Whether a field the other party encrypted is decrypted with our
    /// private key (v2), rather than with its public key (v1): what decides
    /// whether decryption is heavy enough for the crypto pool.
    pub fn decrypts_with_private_key(self) -> bool {
        matches!(self, Protocol::V2)
    }

    /// The envelope's `v` parameter.
    pub fn version(self) -> &'static str {
        match self {
            Protocol::V1 => "1.0",
            Protocol::V2 => "2.0",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::V1 => "v1",
            Protocol::V2 => "v2",
        })
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "v1" | "1.0" | "1" => Ok(Protocol::V1),
            "v2" | "2.0" | "2" => Ok(Protocol::V2),
            other => Err(format!("unknown protocol {other:?}: expected v1 or v2")),
        }
    }
}

/// What computes the RSA operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The `rsa` crate: pure Rust, constant-time big integers.
    Rust,
    /// The system's OpenSSL 3 (cargo feature `openssl`).
    OpenSsl,
}

/// The process's backend: 0 unset (the build's default), else `Backend as u8 + 1`.
static SELECTED: AtomicU8 = AtomicU8::new(0);

impl Backend {
    /// The backends this build has, the default first.
    pub const AVAILABLE: &'static [Backend] = &[
        #[cfg(feature = "openssl")]
        Backend::OpenSsl,
        Backend::Rust,
    ];

    /// The name the command line and the environment use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Rust => "rust",
            Backend::OpenSsl => "openssl",
        }
    }

    /// The backend keys are loaded for: the one selected, else the build's default (OpenSSL when built).
    pub fn current() -> Backend {
        match SELECTED.load(Ordering::Relaxed) {
            1 => Backend::Rust,
            2 => Backend::OpenSsl,
            _ => Backend::AVAILABLE[0],
        }
    }

    /// Makes `self` the backend of every key loaded from now on; refused
    /// when this build does not have it. Called once, at start.
    pub fn select(self) -> Result<(), CryptoError> {
        if !Backend::AVAILABLE.contains(&self) {
            return Err(self.unavailable());
        }
        SELECTED.store(self as u8 + 1, Ordering::Relaxed);
        Ok(())
    }
}

impl Backend {
    fn unavailable(self) -> CryptoError {
        CryptoError::Rsa(format!(
            "this build has no {} crypto backend (built without its cargo feature)",
            self.name()
        ))
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rust" | "rsa" => Ok(Backend::Rust),
            "openssl" => Ok(Backend::OpenSsl),
            other => Err(format!("unknown crypto backend {other:?}: expected openssl or rust")),
        }
    }
}

/// Why a cryptographic operation failed. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("signature is not valid Base64")]
    SignatureEncoding,
    #[error("signature does not match the data and the public key")]
    BadSignature,
    #[error("ciphertext is not valid {0}")]
    CiphertextEncoding(&'static str),
    #[error("ciphertext length {len} is not a multiple of the key's {block} byte block")]
    CiphertextLength { len: usize, block: usize },
    #[error("ciphertext block is not smaller than the key's modulus (wrong key?)")]
    CiphertextRange,
    #[error("ciphertext block does not decrypt to PKCS#1 v1.5 type-2 padding (wrong key?)")]
    Padding,
    #[error("decrypted field is not UTF-8 (wrong key?)")]
    PlaintextNotUtf8,
    #[error("ciphertext of {len} characters is longer than any field's ({MAX_CIPHERTEXT_CHARS})")]
    CiphertextTooLong { len: usize },
    #[error("RSA operation failed: {0}")]
    Rsa(String),
}

/// The longest encrypted field read, in characters: a few blocks of the
/// largest keys in use (an RSA-4096 block is 684 Base64 or 1024 hex
/// characters), far more than any sensitive value of the spec needs, so
/// that one field cannot buy thousands of RSA operations.
pub const MAX_CIPHERTEXT_CHARS: usize = 4096;

fn rsa_error(e: rsa::Error) -> CryptoError {
    CryptoError::Rsa(e.to_string())
}

/// An RSA private key. Its `Debug` shows the size only.
#[derive(Clone)]
pub struct PrivateKey {
    /// The key as read: encodings, the derived secret, and the Rust backend's operations.
    inner: rsa::PrivateKey,
    /// The OpenSSL copy that computes instead, when that is the key's backend.
    #[cfg(feature = "openssl")]
    native: Option<native::NativePrivate>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(RSA-{}, ***)", self.bits())
    }
}

impl PrivateKey {
    /// Parses an unencrypted PKCS#8 `PrivateKeyInfo` (DER), for the current backend.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let inner = rsa::PrivateKey::from_pkcs8_der(der)
            .map_err(|e| KeyError::Malformed(format!("PKCS#8 private key: {e}")))?;
        Self::for_backend(inner, Backend::current()).map_err(|e| KeyError::Malformed(format!("private key: {e}")))
    }

    /// Parses a PKCS#1 `RSAPrivateKey` (DER), for the current backend.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let inner = rsa::PrivateKey::from_pkcs1_der(der)
            .map_err(|e| KeyError::Malformed(format!("PKCS#1 private key: {e}")))?;
        Self::for_backend(inner, Backend::current()).map_err(|e| KeyError::Malformed(format!("private key: {e}")))
    }

    fn for_backend(inner: rsa::PrivateKey, backend: Backend) -> Result<Self, CryptoError> {
        match backend {
            Backend::Rust => Ok(PrivateKey {
                inner,
                #[cfg(feature = "openssl")]
                native: None,
            }),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let der = inner.to_pkcs1_der().map_err(|e| CryptoError::Rsa(e.to_string()))?;
                let native = native::NativePrivate::from_pkcs1_der(der.as_bytes())?;
                Ok(PrivateKey {
                    inner,
                    native: Some(native),
                })
            }
            #[cfg(not(feature = "openssl"))]
            Backend::OpenSsl => Err(Backend::OpenSsl.unavailable()),
        }
    }

    /// The same key computed by `backend` (the benchmarks and the tests run both).
    pub fn with_backend(&self, backend: Backend) -> Result<Self, CryptoError> {
        Self::for_backend(self.inner.clone(), backend)
    }

    /// The backend that computes with this key.
    pub fn backend(&self) -> Backend {
        #[cfg(feature = "openssl")]
        if self.native.is_some() {
            return Backend::OpenSsl;
        }
        Backend::Rust
    }

    /// Generates a fresh key (for the sandbox's throw-away pair and tests),
    /// for the current backend; OpenSSL generates it when it is built.
    pub fn generate(bits: usize) -> Result<Self, CryptoError> {
        #[cfg(feature = "openssl")]
        {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let der = native::NativePrivate::generate_pkcs1_der(bits)?;
            let inner = rsa::PrivateKey::from_pkcs1_der(&der).map_err(|e| CryptoError::Rsa(e.to_string()))?;
            Self::for_backend(inner, Backend::current())
        }
        #[cfg(not(feature = "openssl"))]
        {
            let mut rng = getrandom::SysRng;
            let inner = rsa::PrivateKey::new(&mut rng, bits).map_err(rsa_error)?;
            Self::for_backend(inner, Backend::current())
        }
    }

    /// The matching public key, computed by the same backend.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.to_public_key(),
            // Built from the key's own numbers; a failure (allocation) leaves the Rust path.
            #[cfg(feature = "openssl")]
            native: self.native.as_ref().and_then(|n| n.public().ok()),
        }
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.inner.size() * 8
    }

    /// PKCS#8 PEM, for writing a generated key to a file the merchant side loads.
    pub fn to_pkcs8_pem(&self) -> Result<String, CryptoError> {
        let der = self.inner.to_pkcs8_der().map_err(|e| CryptoError::Rsa(e.to_string()))?;
        Ok(pem::encode("PRIVATE KEY", der.as_bytes()))
    }

    /// A 32-byte secret bound to this key and `label`: SHA-256 over the label
    /// and the key's PKCS#8 encoding. Every replica holding the merchant key
    /// derives the same secret, and it reveals nothing about the key.
    pub fn derived_secret(&self, label: &str) -> Result<[u8; 32], CryptoError> {
        use sha2::Digest;
        let der = self.inner.to_pkcs8_der().map_err(|e| CryptoError::Rsa(e.to_string()))?;
        let mut hash = sha2::Sha256::new();
        hash.update(label.as_bytes());
        hash.update([0u8]);
        hash.update(der.as_bytes());
        Ok(hash.finalize().into())
    }

    /// RSASSA-PKCS1-v1_5 with SHA-1 over `msg`.
    fn sign_sha1(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        #[cfg(feature = "openssl")]
        if let Some(native) = &self.native {
            return native.sign_sha1_digest(&Sha1::digest(msg).into());
        }
        self.inner.pkcs1v15_sign::<Sha1>(msg).map_err(rsa_error)
    }

    /// Type-1 padding then the private-key operation: the v1 "encrypt with the
    /// private key". This is an unprefixed PKCS#1 v1.5 signature of `block`.
    fn encrypt_block_type1(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        #[cfg(feature = "openssl")]
        if let Some(native) = &self.native {
            return native.encrypt_block_type1(block);
        }
        self.inner
            .sign(Pkcs1v15Sign::new_unprefixed(), block)
            .map_err(rsa_error)
    }

    /// PKCS#1 v1.5 type-2 decryption of one k-byte block, padding checked
    /// here, the same for both backends: the raw (blinded) private-key
    /// operation, then `00 02 PS(>= 8 non-zero) 00 M` -> `M`, or an error.
    ///
    /// Explicit rejection, on purpose: the `rsa` crate rejects implicitly
    /// (a bad block yields a made-up plaintext) and OpenSSL 3.0 explicitly,
    /// so the backends would disagree on a wrong key. Every ciphertext this
    /// decrypts arrived inside a message whose signature was checked first,
    /// so no one can use the error as a padding oracle; a made-up card
    /// number passed on as the provider's would be worse than an error.
    fn decrypt_block_type2(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let m = self.private_operation(block)?;
        strip_type2_padding(&m).map(<[u8]>::to_vec)
    }

    /// `m = c^d mod n` (blinded) for one block of exactly k bytes below the
    /// modulus, left-padded to k bytes.
    fn private_operation(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let k = self.inner.size();
        let c =
            BoxedUint::from_be_slice(block, self.inner.n_bits_precision()).map_err(|_| CryptoError::CiphertextRange)?;
        if block.len() != k || c >= *self.inner.n().as_ref() {
            return Err(CryptoError::CiphertextRange);
        }
        #[cfg(feature = "openssl")]
        if let Some(native) = &self.native {
            return native.private_operation(block);
        }
        let m = rsa::hazmat::rsa_decrypt_and_check(&self.inner, Some(&mut getrandom::SysRng), &c).map_err(rsa_error)?;
        Ok(left_padded(&m.to_be_bytes(), k))
    }
}

/// `bytes` as exactly `k` bytes: leading zeros added or dropped.
fn left_padded(bytes: &[u8], k: usize) -> Vec<u8> {
    let mut out = vec![0u8; k];
    let take = bytes.len().min(k);
    out[k - take..].copy_from_slice(&bytes[bytes.len() - take..]);
    out
}

/// `00 02 PS 00 M` -> `M`, where PS is at least 8 non-zero bytes (RFC 8017 §7.2.2 step 3).
fn strip_type2_padding(m: &[u8]) -> Result<&[u8], CryptoError> {
    if m.len() < 11 || m[0] != 0 || m[1] != 2 {
        return Err(CryptoError::Padding);
    }
    match m[2..].iter().position(|&b| b == 0) {
        Some(ps) if ps >= 8 => Ok(&m[2 + ps + 1..]),
        _ => Err(CryptoError::Padding),
    }
}

/// An RSA public key; two are equal when their numbers are, whichever backend computes.
#[derive(Clone)]
pub struct PublicKey {
    inner: rsa::PublicKey,
    #[cfg(feature = "openssl")]
    native: Option<native::NativePublic>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey(RSA-{}, sha256:{})",
            self.bits(),
            &self.fingerprint()[..16]
        )
    }
}

impl PublicKey {
    /// Parses a DER `SubjectPublicKeyInfo`, for the current backend.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let inner =
            rsa::PublicKey::from_public_key_der(der).map_err(|e| KeyError::Malformed(format!("public key: {e}")))?;
        Self::for_backend(inner, Backend::current()).map_err(|e| KeyError::Malformed(format!("public key: {e}")))
    }

    /// Parses a DER PKCS#1 `RSAPublicKey`, for the current backend.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        let inner =
            rsa::PublicKey::from_pkcs1_der(der).map_err(|e| KeyError::Malformed(format!("PKCS#1 public key: {e}")))?;
        Self::for_backend(inner, Backend::current()).map_err(|e| KeyError::Malformed(format!("public key: {e}")))
    }

    fn for_backend(inner: rsa::PublicKey, backend: Backend) -> Result<Self, CryptoError> {
        match backend {
            Backend::Rust => Ok(PublicKey {
                inner,
                #[cfg(feature = "openssl")]
                native: None,
            }),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl => {
                use rsa::pkcs1::EncodeRsaPublicKey;
                let der = inner.to_pkcs1_der().map_err(|e| CryptoError::Rsa(e.to_string()))?;
                let native = native::NativePublic::from_pkcs1_der(der.as_bytes())?;
                Ok(PublicKey {
                    inner,
                    native: Some(native),
                })
            }
            #[cfg(not(feature = "openssl"))]
            Backend::OpenSsl => Err(Backend::OpenSsl.unavailable()),
        }
    }

    /// The same key computed by `backend`.
    pub fn with_backend(&self, backend: Backend) -> Result<Self, CryptoError> {
        Self::for_backend(self.inner.clone(), backend)
    }

    /// The backend that computes with this key.
    pub fn backend(&self) -> Backend {
        #[cfg(feature = "openssl")]
        if self.native.is_some() {
            return Backend::OpenSsl;
        }
        Backend::Rust
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.inner.size() * 8
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn to_spki_der(&self) -> Vec<u8> {
        self.inner
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// PEM `PUBLIC KEY`.
    pub fn to_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.to_spki_der())
    }

    /// Lowercase hex SHA-256 of the DER `SubjectPublicKeyInfo`; safe to print.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.to_spki_der()))
    }

    fn block_len(&self) -> usize {
        self.inner.size()
    }

    /// Whether `sig` is a SHA1WithRSA signature of `msg`; a signature of
    /// any length but the modulus's is refused by both backends alike.
    fn verify_sha1(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != self.block_len() {
            return false;
        }
        #[cfg(feature = "openssl")]
        if let Some(native) = &self.native {
            return native.verify_sha1_digest(&Sha1::digest(msg).into(), sig);
        }
        self.inner.pkcs1v15_verify::<Sha1>(msg, sig).is_ok()
    }

    /// `m = c^e mod n` for one block of exactly k bytes below the modulus,
    /// left-padded to the modulus length.
    fn public_operation(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let k = self.block_len();
        let c =
            BoxedUint::from_be_slice(block, self.inner.n_bits_precision()).map_err(|_| CryptoError::CiphertextRange)?;
        if block.len() != k || c >= *self.inner.n().as_ref() {
            return Err(CryptoError::CiphertextRange);
        }
        #[cfg(feature = "openssl")]
        if let Some(native) = &self.native {
            return native.public_operation(block);
        }
        let m = rsa::hazmat::rsa_encrypt(&self.inner, &c).map_err(rsa_error)?;
        Ok(left_padded(&m.to_be_bytes(), k))
    }

    fn encrypt_block_type2(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        #[cfg(feature = "openssl")]
        if let Some(native) = &self.native {
            return native.encrypt_block_type2(block);
        }
        self.inner.pkcs1v15_encrypt(block).map_err(rsa_error)
    }
}

/// The bytes that are signed for `data` under `protocol`.
fn signing_input(protocol: Protocol, data: &str) -> Vec<u8> {
    match protocol {
        Protocol::V1 => data.as_bytes().to_vec(),
        Protocol::V2 => STANDARD.encode(Md5::digest(data.as_bytes())).into_bytes(),
    }
}

/// Decodes standard Base64, ignoring whitespace and missing padding, since
/// some SDKs wrap their Base64 at 76 columns or drop the `=`.
fn decode_base64_lenient(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed = compact.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed).ok()
}

/// Signs `data` (already the concatenated string, e.g. `sysid + req + timestamp`):
/// padded standard Base64 without line breaks.
pub fn sign(protocol: Protocol, key: &PrivateKey, data: &str) -> Result<String, CryptoError> {
    let sig = key.sign_sha1(&signing_input(protocol, data))?;
    Ok(STANDARD.encode(sig))
}

/// Verifies a Base64 signature over `data`.
pub fn verify(protocol: Protocol, key: &PublicKey, data: &str, signature_b64: &str) -> Result<(), CryptoError> {
    let sig = decode_base64_lenient(signature_b64).ok_or(CryptoError::SignatureEncoding)?;
    if key.verify_sha1(&signing_input(protocol, data), &sig) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

/// v1 field encryption with the sender's private key: type-1 blocks, Base64.
pub fn encrypt_v1(key: &PrivateKey, plaintext: &str) -> Result<String, CryptoError> {
    let chunk = key.inner.size() - 11;
    let mut out = Vec::new();
    for part in plaintext.as_bytes().chunks(chunk) {
        out.extend(key.encrypt_block_type1(part)?);
    }
    // An empty value still yields one block so that the receiver sees a field.
    if plaintext.is_empty() {
        out.extend(key.encrypt_block_type1(&[])?);
    }
    Ok(STANDARD.encode(out))
}

/// v1 field decryption with the sender's public key. Accepts type-1 padded
/// blocks and, leniently, unpadded ones (leading zero bytes are stripped).
pub fn decrypt_v1(key: &PublicKey, ciphertext: &str) -> Result<String, CryptoError> {
    let raw = decode_base64_lenient(ciphertext).ok_or(CryptoError::CiphertextEncoding("Base64"))?;
    let block = key.block_len();
    if raw.is_empty() || raw.len() % block != 0 {
        return Err(CryptoError::CiphertextLength { len: raw.len(), block });
    }
    let mut out = Vec::with_capacity(raw.len());
    for c in raw.chunks(block) {
        let m = key.public_operation(c)?;
        out.extend_from_slice(strip_type1_padding(&m));
    }
    let text = String::from_utf8(out).map_err(|_| CryptoError::PlaintextNotUtf8)?;
    Ok(text.trim_matches(' ').to_owned())
}

/// `00 01 FF..FF 00 data` -> `data`; anything else is taken as unpadded and
/// loses its leading zero bytes only.
fn strip_type1_padding(m: &[u8]) -> &[u8] {
    if m.len() > 2 && m[0] == 0 && m[1] == 1 {
        let rest = &m[2..];
        let ff = rest.iter().take_while(|&&b| b == 0xff).count();
        if ff >= 8 && rest.get(ff) == Some(&0) {
            return &rest[ff + 1..];
        }
    }
    let zeros = m.iter().take_while(|&&b| b == 0).count();
    &m[zeros..]
}

/// v2 field encryption with the receiver's public key: type-2 blocks, uppercase hex.
pub fn encrypt_v2(key: &PublicKey, plaintext: &str) -> Result<String, CryptoError> {
    let chunk = key.block_len() - 11;
    let mut out = Vec::new();
    for part in plaintext.as_bytes().chunks(chunk) {
        out.extend(key.encrypt_block_type2(part)?);
    }
    if plaintext.is_empty() {
        out.extend(key.encrypt_block_type2(&[])?);
    }
    Ok(hex::encode_upper(out))
}

/// v2 field decryption with the receiver's private key.
pub fn decrypt_v2(key: &PrivateKey, ciphertext: &str) -> Result<String, CryptoError> {
    let raw = hex::decode(ciphertext.trim()).map_err(|_| CryptoError::CiphertextEncoding("hex"))?;
    let block = key.inner.size();
    if raw.is_empty() || raw.len() % block != 0 {
        return Err(CryptoError::CiphertextLength { len: raw.len(), block });
    }
    let mut out = Vec::with_capacity(raw.len());
    for c in raw.chunks(block) {
        out.extend(key.decrypt_block_type2(c)?);
    }
    String::from_utf8(out).map_err(|_| CryptoError::PlaintextNotUtf8)
}

/// The keys one party of the protocol holds: its own private key and the
/// other party's public key. The merchant (our client) and the provider (the
/// sandbox) use the same type with the roles swapped; in v1 both halves come
/// from the one key pair the provider issued.
#[derive(Clone, Debug)]
pub struct PartyKeys {
    pub protocol: Protocol,
    pub own: PrivateKey,
    pub peer: PublicKey,
}

impl PartyKeys {
    /// Signs what this party sends.
    pub fn sign(&self, data: &str) -> Result<String, CryptoError> {
        sign(self.protocol, &self.own, data)
    }

    /// Verifies what the other party signed.
    pub fn verify(&self, data: &str, signature_b64: &str) -> Result<(), CryptoError> {
        verify(self.protocol, &self.peer, data, signature_b64)
    }

    /// Encrypts a sensitive field this party sends.
    pub fn encrypt_field(&self, plaintext: &str) -> Result<String, CryptoError> {
        match self.protocol {
            Protocol::V1 => encrypt_v1(&self.own, plaintext),
            Protocol::V2 => encrypt_v2(&self.peer, plaintext),
        }
    }

    /// Decrypts a sensitive field the other party sent; one longer than
    /// [`MAX_CIPHERTEXT_CHARS`] is refused before any RSA work.
    pub fn decrypt_field(&self, ciphertext: &str) -> Result<String, CryptoError> {
        if ciphertext.len() > MAX_CIPHERTEXT_CHARS {
            return Err(CryptoError::CiphertextTooLong { len: ciphertext.len() });
        }
        match self.protocol {
            Protocol::V1 => decrypt_v1(&self.peer, ciphertext),
            Protocol::V2 => decrypt_v2(&self.own, ciphertext),
        }
    }
}

#[cfg(test)]
mod tests;
