//! Shared test fixtures: merchant keys made with the `openssl` command line, and a running sandbox.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use yungate::provider::crypto::{Keystore, PartyKeys, PrivateKey, Protocol, load_private_key_pem};
use yungate::provider::sensitive::Sensitive;

/// Runs `openssl` with `args`, feeding `stdin`; panics with its stderr on failure.
pub fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command must be installed (.ci/run installs it)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A merchant's key material as the provider would issue it, made by openssl.
pub struct MerchantFiles {
    pub dir: tempfile::TempDir,
    pub bits: usize,
}

impl MerchantFiles {
    /// A fresh RSA key of `bits`, a self-signed certificate with a Chinese
    /// subject, and a legacy-encrypted PKCS#12 (`-legacy`: 3DES key bag,
    /// RC2-40 certificate bag, SHA-1 MAC) with alias = sysid and password `secret`.
    pub fn new(bits: usize, sysid: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                &format!("rsa:{bits}"),
                "-nodes",
                "-keyout",
                &p("key.pem"),
                "-out",
                &p("cert.pem"),
                "-days",
                "365",
                "-utf8",
                "-subj",
                &format!("/CN={sysid}/O=云账户测试/C=CN"),
            ],
            b"",
        );
        openssl(
            &["rsa", "-in", &p("key.pem"), "-traditional", "-out", &p("key-pkcs1.pem")],
            b"",
        );
        openssl(
            &["x509", "-in", &p("cert.pem"), "-outform", "DER", "-out", &p("cert.der")],
            b"",
        );
        openssl(&["pkey", "-in", &p("key.pem"), "-pubout", "-out", &p("pub.pem")], b"");
        openssl(
            &[
                "pkcs12",
                "-export",
                "-legacy",
                "-inkey",
                &p("key.pem"),
                "-in",
                &p("cert.pem"),
                "-name",
                sysid,
                "-passout",
                "pass:secret",
                "-out",
                &p("merchant.pfx"),
            ],
            b"",
        );
        MerchantFiles { dir, bits }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn path_str(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    pub fn key(&self) -> PrivateKey {
        load_private_key_pem(&self.path("key.pem")).unwrap()
    }

    /// v1 keys from the legacy keystore: the merchant and the provider share
    /// this one pair, and the keystore's certificate verifies the provider.
    pub fn v1_keys(&self) -> PartyKeys {
        let store = Keystore::open(&self.path("merchant.pfx"), &Sensitive::new("secret".into()), None).unwrap();
        PartyKeys {
            protocol: Protocol::V1,
            peer: store.public_key(),
            own: store.key,
        }
    }
}

/// Writes `contents` to `dir/name`.
pub fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

pub mod dynamic_grpc;
pub mod flow;
pub mod harness;
pub mod redis;
pub mod replica;
pub mod rig;
pub mod sandboxed;
pub mod tls;
