//! `yungate serve`: builds the provider client from the configuration and serves the gRPC API with health and reflection.
//!
//! With no `provider.url` it first starts the embedded sandbox on a local
//! port with a throw-away key pair, and says so in its log: the gateway
//! still reaches it over HTTP only (invariant 7).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::{Config, ConfigError};
use crate::grpc::proto::member_pwd_service_server::MemberPwdServiceServer;
use crate::grpc::proto::member_service_server::MemberServiceServer;
use crate::grpc::proto::merchant_service_server::MerchantServiceServer;
use crate::grpc::proto::order_service_server::OrderServiceServer;
use crate::grpc::proto::page_service_server::PageServiceServer;
use crate::grpc::service::{Gateway, GatewaySettings};
use crate::provider::client::{SoaClient, SoaConfig};
use crate::provider::crypto::{
    Keystore, PartyKeys, PrivateKey, Protocol, load_certificate_file, load_private_key_pem, load_public_key_pem,
};
use crate::sandbox::{self, RunningSandbox, SandboxConfig};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the embedded sandbox: {0}")]
    Sandbox(std::io::Error),
    #[error("cannot set up the gRPC server: {0}")]
    Setup(String),
}

/// A gateway serving on a socket.
pub struct RunningGateway {
    addr: SocketAddr,
    sandbox: Option<RunningSandbox>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningGateway {
    /// The gRPC address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The embedded sandbox's address, when the gateway started one.
    pub fn sandbox_addr(&self) -> Option<SocketAddr> {
        self.sandbox.as_ref().map(RunningSandbox::addr)
    }

    /// Stops accepting, lets in-flight calls finish, then stops the embedded sandbox.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = self.task.await.map_err(|e| e.to_string())?;
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.stop().await.map_err(|e| e.to_string())?;
        }
        served.map_err(|e| e.to_string())
    }
}

fn keys_error(e: impl std::fmt::Display) -> ServeError {
    ServeError::Keys(e.to_string())
}

/// The merchant's keys from the configuration.
fn configured_keys(config: &Config) -> Result<PartyKeys, ServeError> {
    let p = &config.provider;
    let (own, own_public) = match (&p.keystore, &p.key) {
        (Some(path), _) => {
            let password = config
                .keystore_password()?
                .ok_or_else(|| keys_error("keystore password missing"))?;
            let store = Keystore::open(path, &password, p.alias.as_deref()).map_err(keys_error)?;
            let public = store.public_key();
            (store.key, public)
        }
        (None, Some(path)) => {
            let key = load_private_key_pem(path).map_err(keys_error)?;
            let public = key.public_key();
            (key, public)
        }
        (None, None) => return Err(keys_error("no provider.keystore or provider.key")),
    };
    // v1: the provider answers with the merchant's own pair unless a certificate says otherwise.
    let peer = if let Some(cert) = &p.cert {
        load_certificate_file(cert).map_err(keys_error)?.public_key().clone()
    } else if let Some(pubkey) = &p.pubkey {
        load_public_key_pem(pubkey).map_err(keys_error)?
    } else {
        own_public
    };
    Ok(PartyKeys {
        protocol: p.protocol,
        own,
        peer,
    })
}

/// Starts the gateway (and, without a provider URL, the embedded sandbox).
pub async fn start(config: Config) -> Result<RunningGateway, ServeError> {
    config.validate()?;
    let (keys, url, sandbox) = match &config.provider.url {
        Some(url) => (configured_keys(&config)?, url.clone(), None),
        None => {
            let key = tokio::task::spawn_blocking(|| PrivateKey::generate(2048))
                .await
                .map_err(keys_error)?
                .map_err(keys_error)?;
            let keys = PartyKeys {
                protocol: Protocol::V1,
                peer: key.public_key(),
                own: key,
            };
            let sandbox_config = SandboxConfig {
                // The embedded sandbox plays the environment the gateway's page links are built for.
                environment: config.environment(),
                ..SandboxConfig::new(config.provider.sysid.clone(), keys.clone())
            };
            let running = sandbox::start(sandbox_config, SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(ServeError::Sandbox)?;
            tracing::info!(
                url = %running.soa_url(),
                "no provider.url configured: started the embedded sandbox with a throw-away key pair"
            );
            (keys, running.soa_url(), Some(running))
        }
    };
    let page_base_url = config.provider.page_base_url.clone().unwrap_or_else(|| origin_of(&url));
    tracing::info!(
        environment = config.environment().name(),
        %page_base_url,
        "page links use this environment's layout"
    );
    let client = SoaClient::new(
        SoaConfig {
            url,
            sysid: config.provider.sysid.clone(),
            connect_timeout: Duration::from_millis(config.provider.connect_timeout_ms),
            request_timeout: Duration::from_millis(config.provider.request_timeout_ms),
            environment: config.environment(),
        },
        keys,
    )
    .map_err(|e| ServeError::Setup(e.to_string()))?;
    let gateway = Gateway::new(
        client,
        GatewaySettings {
            notify_url: config.gateway.notify_url.clone(),
            page_base_url,
            default_front_url: config.gateway.default_front_url.clone(),
            default_jump_url: config.gateway.default_jump_url.clone(),
        },
    );

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<MemberServiceServer<Gateway>>().await;
    reporter.set_serving::<MemberPwdServiceServer<Gateway>>().await;
    reporter.set_serving::<OrderServiceServer<Gateway>>().await;
    reporter.set_serving::<MerchantServiceServer<Gateway>>().await;
    reporter.set_serving::<PageServiceServer<Gateway>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::grpc::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details, so that clients like grpcurl can show ErrorInfo and BadRequest.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Setup(e.to_string()))?;
    // grpcurl and other older clients speak only v1alpha.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::grpc::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Setup(e.to_string()))?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: config.listen,
        source,
    })?;
    let (tx, rx) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(MemberServiceServer::new(gateway.clone()))
        .add_service(MemberPwdServiceServer::new(gateway.clone()))
        .add_service(OrderServiceServer::new(gateway.clone()))
        .add_service(MerchantServiceServer::new(gateway.clone()))
        .add_service(PageServiceServer::new(gateway));
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, "yungate gRPC listening");
    Ok(RunningGateway {
        addr,
        sandbox,
        shutdown: Some(tx),
        task,
    })
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i].to_owned(),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origin() {
        assert_eq!(
            origin_of("https://yun.allinpay.com/service/soa"),
            "https://yun.allinpay.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:9/service/soa"), "http://127.0.0.1:9");
        assert_eq!(origin_of("http://h"), "http://h");
    }
}
