//! Test certificates made by the `openssl` command line (a CA, a server, clients with SPIFFE URIs) and a TLS gRPC channel that presents them.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tonic::transport::{Channel, Endpoint};

use super::openssl;

/// A certificate authority in a temporary directory.
pub struct Ca {
    pub dir: tempfile::TempDir,
    name: String,
}

impl Ca {
    /// A fresh P-256 CA named `name`.
    pub fn new(name: &str) -> Ca {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca {
            dir,
            name: name.to_owned(),
        };
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &ca.file("ca.key"),
                "-out",
                &ca.file("ca.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
            ],
            b"",
        );
        ca
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The CA certificate.
    pub fn pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues `{stem}.pem` and `{stem}.key` with `san` (openssl syntax, e.g.
    /// `URI:spiffe://a/b` or `DNS:localhost,IP:127.0.0.1`) for `usage`
    /// (`serverAuth` or `clientAuth`); returns (certificate, key).
    pub fn issue(&self, stem: &str, cn: &str, san: Option<&str>, usage: &str) -> (PathBuf, PathBuf) {
        let ext = self.dir.path().join(format!("{stem}.ext"));
        let mut lines = format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n");
        if let Some(san) = san {
            lines.push_str(&format!("subjectAltName={san}\n"));
        }
        std::fs::write(&ext, lines).unwrap();
        let (key, csr, pem) = (
            self.file(&format!("{stem}.key")),
            self.file(&format!("{stem}.csr")),
            self.file(&format!("{stem}.pem")),
        );
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={cn}/O={}", self.name),
            ],
            b"",
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &self.file("ca.pem"),
                "-CAkey",
                &self.file("ca.key"),
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext.display().to_string(),
            ],
            b"",
        );
        (PathBuf::from(pem), PathBuf::from(key))
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self, stem: &str) -> (PathBuf, PathBuf) {
        self.issue(stem, "localhost", Some("DNS:localhost,IP:127.0.0.1"), "serverAuth")
    }
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A client TLS configuration trusting `ca`, presenting `identity` (certificate, key) if given.
pub fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca) {
        roots.add(cert).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(certs(cert), PrivateKeyDer::from_pem_file(key).unwrap())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

/// A gRPC channel to `addr` over TLS (server name `localhost`).
pub async fn channel(addr: SocketAddr, config: ClientConfig) -> Result<Channel, tonic::transport::Error> {
    let connector = TlsConnector::from(Arc::new(config));
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}
