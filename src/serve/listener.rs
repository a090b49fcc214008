//! The gRPC listener: an accept loop that holds a connection limit and backs off when file descriptors run out, TLS (reloaded when its files change) with optional client certificates, and connections that close when idle.
//!
//! tonic's own `TcpIncoming` hands every accept error to the server, which
//! retries at once: with the descriptors exhausted (EMFILE) that loop spins
//! on a CPU and serves no one. Here the loop waits for a connection slot
//! before it accepts (so the kernel's backlog, not this process, holds
//! what exceeds `max_connections`), sleeps with a doubling backoff when the
//! process or system is out of descriptors or memory, and runs each TLS
//! handshake in its own task under a timeout, so a client that never
//! finishes its handshake holds one slot, for a bounded time.
//!
//! A connection's identity is read once, at the handshake, from its verified
//! client certificate (`Peer::certificate_identity`); the access layer
//! (`serve/access.rs`) decides what it may call.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_stream::Stream as _;
use tokio_stream::wrappers::{ReceiverStream, WatchStream};

/// How the listener treats its connections.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Connections open at once; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// A connection with no request in progress for this long is closed.
    pub idle_timeout: Duration,
    /// Request bytes one connection may hold in memory at once.
    pub connection_request_bytes: usize,
}

/// The TLS files of the gRPC listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to (mTLS).
    /// Clients without a certificate still connect; the access layer
    /// decides whether an anonymous caller may call anything.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.{key}: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tls.{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The listener's TLS configuration, rebuilt when its files change.
#[derive(Debug)]
pub struct ReloadingTls {
    files: TlsFiles,
    current: RwLock<(Digest, Arc<ServerConfig>)>,
    reloads: AtomicU64,
}

type Digest = [u8; 32];

impl ReloadingTls {
    /// Reads the files; an error here stops the start.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let (digest, config) = build_config(&files)?;
        Ok(ReloadingTls {
            files,
            current: RwLock::new((digest, Arc::new(config))),
            reloads: AtomicU64::new(0),
        })
    }

    fn acceptor(&self) -> TlsAcceptor {
        let current = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        TlsAcceptor::from(Arc::clone(&current.1))
    }

    /// How many times new files were taken into use.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Re-reads the files; takes them into use when they changed and are
    /// valid together. A broken update keeps the configuration in use (a
    /// certificate half-written by a secret rotation must not stop the
    /// listener) and says why.
    pub fn reload(&self) {
        let digest = match files_digest(&self.files) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "TLS files unreadable: keeping the certificate in use");
                return;
            }
        };
        if self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).0 == digest {
            return;
        }
        match build_config(&self.files) {
            Ok((digest, config)) => {
                *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = (digest, Arc::new(config));
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!("TLS certificate, key or client CA changed: new connections use them");
            }
            Err(e) => tracing::warn!(error = %e, "TLS files changed but are not usable: keeping the ones in use"),
        }
    }

    /// Checks the files every `every` until `stop` changes.
    pub async fn watch(self: Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let this = Arc::clone(&self);
            // File reads and key parsing are blocking work.
            let _ = tokio::task::spawn_blocking(move || this.reload()).await;
        }
    }
}

fn read(key: &'static str, path: &PathBuf) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.clone(),
        source,
    })
}

fn files_digest(files: &TlsFiles) -> Result<Digest, TlsError> {
    let mut hash = Sha256::new();
    for (key, path) in [
        ("cert", Some(&files.cert)),
        ("key", Some(&files.key)),
        ("client_ca", files.client_ca.as_ref()),
    ] {
        if let Some(path) = path {
            let bytes = read(key, path)?;
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(&bytes);
        }
    }
    Ok(hash.finalize().into())
}

fn certificates(key: &'static str, path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            key,
            reason: format!("{}: not PEM certificates: {e}", path.display()),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            key,
            reason: format!("{}: holds no CERTIFICATE block", path.display()),
        });
    }
    Ok(certs)
}

fn build_config(files: &TlsFiles) -> Result<(Digest, ServerConfig), TlsError> {
    let digest = files_digest(files)?;
    let chain = certificates("cert", &files.cert)?;
    let key_pem = read("key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Invalid {
        key: "key",
        reason: format!("{}: not a PEM private key: {e}", files.key.display()),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            key: "cert",
            reason: e.to_string(),
        })?;
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("client_ca", path)? {
                roots.add(cert).map_err(|e| TlsError::Invalid {
                    key: "client_ca",
                    reason: format!("{}: {e}", path.display()),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Invalid {
                    key: "client_ca",
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| TlsError::Invalid {
        key: "key",
        reason: format!("does not fit the certificate: {e}"),
    })?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((digest, config))
}

/// What the listener knows of a connection; tonic puts it in every request's extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    pub remote: SocketAddr,
    /// The identity in the client certificate the TLS handshake verified
    /// (its first URI SAN, else first DNS SAN, else subject CN), when it
    /// presented one and the identity is usable (see `access::identity_ok`).
    pub certificate_identity: Option<Arc<str>>,
    pub state: Arc<ConnectionState>,
}

/// What the requests of one connection share: how many are in progress
/// (for the idle timeout) and the bytes they may buffer.
#[derive(Debug)]
pub struct ConnectionState {
    active: AtomicUsize,
    /// Requests ever begun: a connection that had none is not one hyper's
    /// graceful shutdown can end (it may not even have sent its preface).
    begun: AtomicU64,
    /// When the last request ended: idleness counts from there.
    last_end: std::sync::Mutex<Instant>,
    /// The connection's reader, woken when its last request ends so that
    /// the idle timer is armed even if nothing else wakes it.
    idle_waker: std::sync::Mutex<Option<std::task::Waker>>,
    /// Request bytes this connection may hold at once (a share of the global budget).
    pub request_bytes: Arc<Semaphore>,
}

impl ConnectionState {
    pub(crate) fn new(request_bytes: usize) -> Self {
        ConnectionState {
            active: AtomicUsize::new(0),
            begun: AtomicU64::new(0),
            last_end: std::sync::Mutex::new(Instant::now()),
            idle_waker: std::sync::Mutex::new(None),
            request_bytes: Arc::new(Semaphore::new(request_bytes.max(1))),
        }
    }

    /// Requests in progress.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Marks a request in progress until the guard drops.
    pub fn begin(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.begun.fetch_add(1, Ordering::AcqRel);
        ActiveRequest(Arc::clone(self))
    }
}

/// A request in progress on a connection (see [`ConnectionState::begin`]).
#[derive(Debug)]
pub struct ActiveRequest(Arc<ConnectionState>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        let state = &self.0;
        *state.last_end.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        if state.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waker = state
                .idle_waker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// One accepted connection: plain or TLS, holding its slot until it closes.
pub struct Connection {
    io: Io,
    peer: Peer,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    /// The gateway's phase as last seen, and its changes (`None` once the
    /// sender is gone, which counts as `Closing`).
    phase: Phase,
    phases: Option<WatchStream<Phase>>,
    /// When the client last sent bytes: a request hyper has read but whose
    /// task has not yet begun it (`ConnectionState::begin` runs in the
    /// stream's own task) must not find its connection closed under it.
    last_data: Instant,
    counters: Arc<ListenerCounters>,
    /// Ended (EOF or an error given): everything after is EOF.
    ended: bool,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a connection must have been quiet (no bytes from the client)
/// before it may be closed as idle or, stopping, as one that never had a
/// request: long enough for a request hyper has read to be begun.
const QUIET: Duration = Duration::from_millis(500);

impl Connection {
    /// Takes in the phase changes that happened since the last poll.
    fn poll_phase(&mut self, cx: &mut Context<'_>) -> Phase {
        while let Some(phases) = self.phases.as_mut() {
            match Pin::new(phases).poll_next(cx) {
                Poll::Ready(Some(p)) => self.phase = p,
                Poll::Ready(None) => {
                    self.phase = Phase::Closing;
                    self.phases = None;
                }
                Poll::Pending => break,
            }
        }
        self.phase
    }

    /// Whether the connection should end now (as if the client had closed
    /// it): at the drain deadline; stopping, when it never had a request;
    /// or when it has had no request in progress for the idle timeout.
    /// Checked whenever the connection waits on the client, and by the
    /// timer when nothing else happens.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> bool {
        let phase = self.poll_phase(cx);
        if phase == Phase::Closing {
            return true;
        }
        let state = &self.peer.state;
        if state.active.load(Ordering::Acquire) > 0 {
            // The timer waits while busy; the last request's end wakes this reader to arm it.
            *state
                .idle_waker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cx.waker().clone());
            // The request may have ended between the check and the registration.
            if state.active.load(Ordering::Acquire) > 0 {
                return false;
            }
        }
        let quiet_at = self.last_data + QUIET;
        // Stopping, a connection that served requests is left to hyper's
        // graceful shutdown (GOAWAY, then close once its answers are
        // flushed: an EOF here could cut a stream's final status); one that
        // never had a request would hold the drain until its deadline.
        let deadline = if phase == Phase::Stopping && state.begun.load(Ordering::Acquire) == 0 {
            quiet_at
        } else {
            let last_end = *state.last_end.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (last_end + self.idle_timeout).max(quiet_at)
        };
        if self.idle.deadline() != deadline {
            self.idle.as_mut().reset(deadline);
        }
        self.idle.as_mut().poll(cx).is_ready()
    }

    /// After a write or flush that must wait: a client that stops reading
    /// still loses its connection at the drain deadline.
    fn check_write<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_pending() && self.poll_phase(cx) == Phase::Closing {
            self.ended = true;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the drain deadline passed with the client not reading",
            )));
        }
        result
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(Ok(()));
        }
        // At the deadline even a client that keeps sending is cut.
        if this.poll_phase(cx) == Phase::Closing {
            this.ended = true;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.last_data = Instant::now();
        }
        if read.is_pending() && this.poll_end(cx) {
            this.ended = true;
            tracing::debug!(remote = %this.peer.remote, "closing an idle connection (or the drain ended)");
            // End of stream: hyper closes the connection.
            return Poll::Ready(Ok(()));
        }
        read
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let written = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, data),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        };
        this.check_write(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(Ok(()));
        }
        let flushed = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        this.check_write(cx, flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let closed = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        };
        // A TLS close_notify to a client that stopped reading must not hold the drain either.
        this.check_write(cx, closed)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let written = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        this.check_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Where the gateway is in its life, as the listener's connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    /// No more accepts; connections with nothing in progress end.
    Stopping,
    /// The drain deadline passed: every connection ends, busy or not.
    Closing,
}

/// What the accept loop has seen, for metrics and tests.
#[derive(Debug, Default)]
pub struct ListenerCounters {
    pub accepted: AtomicU64,
    /// Accepts refused for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).
    pub resource_errors: AtomicU64,
    pub handshake_failures: AtomicU64,
    /// Connections accepted and not yet closed.
    pub open: AtomicU64,
}

/// The connections of a listener, as the stream tonic serves.
pub type Incoming = ReceiverStream<Result<Connection, io::Error>>;

/// Starts the accept loop on `listener`; it ends when `stop` changes or tonic stops reading.
pub fn incoming(
    listener: TcpListener,
    settings: ListenerSettings,
    tls: Option<Arc<ReloadingTls>>,
    counters: Arc<ListenerCounters>,
    phase: watch::Receiver<Phase>,
) -> Incoming {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, settings, tls, counters, tx, phase));
    ReceiverStream::new(rx)
}

/// Errors that a later accept can outlive once descriptors or memory are freed.
fn out_of_resources(e: &io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

const BACKOFF_FIRST: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What a plain HTTP server (the ingress, /metrics) lets one client hold.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections at once; the rest wait in the kernel's backlog.
    pub max_connections: usize,
    /// A connection quiet (no byte from the client) this long is closed.
    pub idle: Duration,
    /// A request's head must arrive within this, however it trickles in:
    /// the quiet timer restarts on every byte, this one does not. hyper
    /// also starts it when a kept-alive connection goes idle, so an idle
    /// connection is closed (silently) after it too.
    pub header_timeout: Duration,
}

/// An HTTP/1.1 server (hyper) on a [`BoundedListener`], stopped gracefully.
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl HttpServer {
    /// Serves `app` on `listener` within `limits`.
    pub fn start(listener: TcpListener, app: axum::Router, limits: HttpLimits) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let listener = BoundedListener::new(listener, limits.max_connections, limits.idle);
        let task = tokio::spawn(serve_http(listener, app, limits.header_timeout, rx));
        Ok(HttpServer {
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and lets the requests in progress finish.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.map_err(io::Error::other)?
    }
}

/// The accept loop of an [`HttpServer`]: each connection served by hyper's
/// HTTP/1.1 with a header-read deadline (axum's own `serve` sets none),
/// and at `stop` told to finish its request in progress and close.
async fn serve_http(
    mut listener: BoundedListener,
    app: axum::Router,
    header_timeout: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> io::Result<()> {
    use axum::serve::Listener as _;
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (io, _remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut closed = closed.clone();
        connections.spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let connection = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "an HTTP connection ended with an error");
                    }
                }
                // Sent once, after the last connection was accepted.
                _ = closed.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    // Closed first: new clients are refused at once (and retry elsewhere)
    // rather than wait in the backlog for a server that is leaving.
    drop(listener);
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// The listener of the plain HTTP servers (the notification ingress and
/// `/metrics`, under axum): at most `max` connections at once (the rest
/// wait in the kernel's backlog), the same back-off on EMFILE as the gRPC
/// listener, and connections closed after `idle` without a byte from the
/// client, so that clients that connect and say nothing cannot hold the
/// slots for ever.
pub struct BoundedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl BoundedListener {
    pub fn new(listener: TcpListener, max: usize, idle: Duration) -> Self {
        BoundedListener {
            listener,
            slots: Arc::new(Semaphore::new(max.max(1))),
            idle,
        }
    }
}

impl axum::serve::Listener for BoundedListener {
    type Io = SlotStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SlotStream, SocketAddr) {
        // The semaphore is never closed: the error arm is unreachable, and
        // waiting for ever is the honest answer if it were.
        let slot = match Arc::clone(&self.slots).acquire_owned().await {
            Ok(slot) => slot,
            Err(_) => std::future::pending().await,
        };
        let mut backoff = BACKOFF_FIRST;
        loop {
            match self.listener.accept().await {
                Ok((tcp, remote)) => {
                    // Without TCP_NODELAY a small answer waits for the peer's delayed ACK (~40 ms).
                    let _ = tcp.set_nodelay(true);
                    let stream = SlotStream {
                        tcp,
                        idle: self.idle,
                        quiet: Box::pin(tokio::time::sleep(self.idle)),
                        _slot: slot,
                    };
                    return (stream, remote);
                }
                Err(e) if out_of_resources(&e) => {
                    tracing::warn!(error = %e, "cannot accept connections (out of file descriptors or memory): backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(BACKOFF_FIRST).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection of a [`BoundedListener`]: it holds its slot, and reads end
/// (EOF) once the client has been quiet for the idle time.
pub struct SlotStream {
    tcp: TcpStream,
    idle: Duration,
    quiet: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for SlotStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + this.idle;
                    this.quiet.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.quiet.as_mut().poll(cx).is_ready() => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl AsyncWrite for SlotStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

async fn accept_loop(
    listener: TcpListener,
    settings: ListenerSettings,
    tls: Option<Arc<ReloadingTls>>,
    counters: Arc<ListenerCounters>,
    tx: mpsc::Sender<Result<Connection, io::Error>>,
    phase: watch::Receiver<Phase>,
) {
    let mut stop = phase.clone();
    let stopping = |p: &Phase| *p >= Phase::Stopping;
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut backoff = BACKOFF_FIRST;
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot { Ok(s) => s, Err(_) => return },
            _ = stop.wait_for(stopping) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(stopping) => return,
        };
        let (tcp, remote) = match accepted {
            Ok(a) => {
                backoff = BACKOFF_FIRST;
                a
            }
            Err(e) if out_of_resources(&e) => {
                if counters
                    .resource_errors
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    tracing::warn!(error = %e, "cannot accept connections (out of file descriptors or memory): backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            // The client went away before the accept (ECONNABORTED) and the like: nothing to wait for.
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(BACKOFF_FIRST).await;
                continue;
            }
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        // Counted down when the Connection (made below) drops, or its handshake fails.
        counters.open.fetch_add(1, Ordering::Relaxed);
        // Without TCP_NODELAY a stream's message waits for the client's delayed ACK (~40 ms).
        let _ = tcp.set_nodelay(true);
        let state = Arc::new(ConnectionState::new(settings.connection_request_bytes));
        let idle_timeout = settings.idle_timeout;
        let counted = Arc::clone(&counters);
        let phases = WatchStream::new(phase.clone());
        let connection = move |io, certificate_identity| Connection {
            io,
            peer: Peer {
                remote,
                certificate_identity,
                state,
            },
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            phase: Phase::Serving,
            phases: Some(phases),
            last_data: Instant::now(),
            counters: counted,
            ended: false,
            _slot: slot,
        };
        match &tls {
            None => {
                if tx.send(Ok(connection(Io::Plain(tcp), None))).await.is_err() {
                    return;
                }
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let tx = tx.clone();
                let counters = Arc::clone(&counters);
                let timeout = settings.handshake_timeout;
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let identity = certificate_identity(stream.get_ref().1);
                            let _ = tx.send(Ok(connection(Io::Tls(Box::new(stream)), identity))).await;
                        }
                        Ok(Err(e)) => {
                            counters.open.fetch_sub(1, Ordering::Relaxed);
                            counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            counters.open.fetch_sub(1, Ordering::Relaxed);
                            counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%remote, "TLS handshake timed out");
                        }
                    }
                });
            }
        }
    }
}

/// The identity in the client's (verified) certificate, when it presented one.
fn certificate_identity(session: &rustls::ServerConnection) -> Option<Arc<str>> {
    let leaf = session.peer_certificates().and_then(|c| c.first())?;
    identity_of_certificate(leaf.as_ref()).map(Arc::from)
}

/// The first URI SAN, else the first DNS SAN, else the subject's CN.
pub fn identity_of_certificate(der: &[u8]) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut uri = None;
    let mut dns = None;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(u) if uri.is_none() => uri = Some((*u).to_owned()),
                GeneralName::DNSName(d) if dns.is_none() => dns = Some((*d).to_owned()),
                _ => {}
            }
        }
    }
    let cn = || {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
    };
    // A CN is a name, not a URI: one spelled like a SPIFFE ID must not pass for a URI SAN.
    let plain_cn = || cn().filter(|name| !name.contains("://"));
    uri.or(dns)
        .or_else(plain_cn)
        .filter(|id| super::access::identity_ok(id))
}
