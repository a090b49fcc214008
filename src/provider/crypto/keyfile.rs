//! Loading keys from the files merchants hold: PKCS#12 keystores, PEM private and public keys, certificates.
//!
//! Errors say which file and what is wrong with it (wrong password, no such
//! alias, not RSA, not a key at all) and never include key bytes or passwords.

use std::fmt;
use std::path::Path;

use p12_keystore::Pkcs12Archive;

use super::certificate::{CertError, Certificate};
use super::{PrivateKey, PublicKey, pem};
use crate::provider::sensitive::Sensitive;

/// Why a key or certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("wrong keystore password (the PKCS#12 MAC does not verify)")]
    WrongPassword,
    #[error("the keystore has no private key under alias {alias:?}; aliases present: {available}")]
    NoSuchAlias { alias: String, available: String },
    #[error("the keystore holds no private key")]
    NoPrivateKey,
    #[error("not a PKCS#12 keystore or damaged: {0}")]
    Keystore(String),
    #[error("the key is not an RSA key")]
    NotRsa,
    #[error("encrypted PEM keys are not supported: give the PKCS#12 keystore, or decrypt with `openssl pkey`")]
    EncryptedPem,
    #[error("{0}")]
    Malformed(String),
    #[error("the PEM file holds no {wanted} (found: {found})")]
    WrongPemBlock { wanted: &'static str, found: String },
    #[error(transparent)]
    Certificate(#[from] CertError),
}

fn read_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The merchant's PKCS#12 keystore: its private key and, when present, the
/// certificate that goes with it.
#[derive(Clone)]
pub struct Keystore {
    pub alias: String,
    pub key: PrivateKey,
    pub certificate: Option<Certificate>,
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("alias", &self.alias)
            .field("key", &self.key)
            .field("certificate", &self.certificate)
            .finish()
    }
}

impl Keystore {
    /// Opens a keystore file. `alias` selects the key (the provider uses the
    /// sysid); without it the first private key is taken.
    pub fn open(path: &Path, password: &Sensitive<String>, alias: Option<&str>) -> Result<Self, KeyError> {
        let bytes = read_file(path)?;
        Self::from_pkcs12(&bytes, password, alias)
    }

    /// Reads a keystore from its bytes; handles legacy (3DES/RC2-40, SHA-1 MAC) encryption.
    pub fn from_pkcs12(bytes: &[u8], password: &Sensitive<String>, alias: Option<&str>) -> Result<Self, KeyError> {
        let archive = Pkcs12Archive::from_pkcs12(bytes, password.expose()).map_err(|e| match e {
            p12_keystore::error::Error::MacError(_) => KeyError::WrongPassword,
            // A wrong password with no MAC shows up as a padding failure.
            p12_keystore::error::Error::UnpadError => KeyError::WrongPassword,
            other => KeyError::Keystore(other.to_string()),
        })?;
        if archive.keys.is_empty() {
            return Err(KeyError::NoPrivateKey);
        }
        let bag = match alias {
            None => &archive.keys[0],
            Some(wanted) => archive
                .keys
                .iter()
                .find(|k| k.friendly_name.as_deref() == Some(wanted))
                .or_else(|| {
                    // The alias may sit on the certificate bag only; follow its local key id.
                    let id = archive
                        .certs
                        .iter()
                        .find(|c| c.friendly_name.as_deref() == Some(wanted))?
                        .local_key_id
                        .clone()?;
                    archive
                        .keys
                        .iter()
                        .find(|k| k.local_key_id.as_ref().map(|l| l.0.as_slice()) == Some(id.as_slice()))
                })
                .ok_or_else(|| KeyError::NoSuchAlias {
                    alias: wanted.to_owned(),
                    available: archive
                        .keys
                        .iter()
                        .map(|k| format!("{:?}", k.friendly_name.as_deref().unwrap_or("(none)")))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?,
        };
        let key = PrivateKey::from_pkcs8_der(bag.key.as_der()).map_err(|_| KeyError::NotRsa)?;
        let public = key.public_key();
        // The certificate that belongs to this key: same local key id, or else
        // any certificate whose public key matches.
        let cert_bag = archive
            .certs
            .iter()
            .find(|c| {
                matches!((&c.local_key_id, &bag.local_key_id), (Some(a), Some(b)) if a.as_slice() == b.0.as_slice())
            })
            .or_else(|| archive.certs.first());
        let certificate = cert_bag
            .and_then(|c| Certificate::from_der(c.cert.as_der()).ok())
            .filter(|c| *c.public_key() == public);
        let alias = bag
            .friendly_name
            .clone()
            .or_else(|| alias.map(str::to_owned))
            .unwrap_or_default();
        Ok(Keystore {
            alias,
            key,
            certificate,
        })
    }

    /// The public key of the keystore's certificate, or of the key itself when
    /// the keystore carries no certificate: in v1 this verifies the provider.
    pub fn public_key(&self) -> PublicKey {
        match &self.certificate {
            Some(cert) => cert.public_key().clone(),
            None => self.key.public_key(),
        }
    }
}

/// Reads a PEM private key file: PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
pub fn load_private_key_pem(path: &Path) -> Result<PrivateKey, KeyError> {
    let bytes = read_file(path)?;
    private_key_from_pem(&String::from_utf8_lossy(&bytes))
}

/// Parses PEM text holding a private key.
pub fn private_key_from_pem(text: &str) -> Result<PrivateKey, KeyError> {
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(KeyError::EncryptedPem);
    }
    let blocks = pem::decode_all(text).map_err(KeyError::Malformed)?;
    let labels = block_labels(&blocks);
    for block in blocks {
        match block.label.as_str() {
            "PRIVATE KEY" => return PrivateKey::from_pkcs8_der(&block.der).map_err(|_| KeyError::NotRsa),
            "RSA PRIVATE KEY" => return PrivateKey::from_pkcs1_der(&block.der),
            "ENCRYPTED PRIVATE KEY" => return Err(KeyError::EncryptedPem),
            _ => {}
        }
    }
    Err(KeyError::WrongPemBlock {
        wanted: "PRIVATE KEY or RSA PRIVATE KEY",
        found: labels,
    })
}

/// Reads a PEM public key file: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1),
/// or a `CERTIFICATE`, whose key is taken.
pub fn load_public_key_pem(path: &Path) -> Result<PublicKey, KeyError> {
    let bytes = read_file(path)?;
    public_key_from_pem(&String::from_utf8_lossy(&bytes))
}

/// Parses PEM text holding a public key or a certificate.
pub fn public_key_from_pem(text: &str) -> Result<PublicKey, KeyError> {
    let blocks = pem::decode_all(text).map_err(KeyError::Malformed)?;
    let labels = block_labels(&blocks);
    for block in blocks {
        match block.label.as_str() {
            "PUBLIC KEY" => return PublicKey::from_spki_der(&block.der),
            "RSA PUBLIC KEY" => return PublicKey::from_pkcs1_der(&block.der),
            "CERTIFICATE" => return Ok(Certificate::from_der(&block.der)?.public_key().clone()),
            _ => {}
        }
    }
    Err(KeyError::WrongPemBlock {
        wanted: "PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE",
        found: labels,
    })
}

/// Reads a certificate file (`.cer`/`.crt`/`.pem`), PEM or DER.
pub fn load_certificate_file(path: &Path) -> Result<Certificate, KeyError> {
    let bytes = read_file(path)?;
    Ok(Certificate::from_pem_or_der(&bytes)?)
}

fn block_labels(blocks: &[pem::Block]) -> String {
    if blocks.is_empty() {
        "no PEM block".to_owned()
    } else {
        blocks.iter().map(|b| b.label.as_str()).collect::<Vec<_>>().join(", ")
    }
}
