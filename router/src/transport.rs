//! How parties reach each other: gRPC over mutual TLS, or plain text behind `--insecure-dev`.
//!
//! Servers (the router, ledger nodes) accept connections through [`incoming`]: each TCP connection
//! does its TLS handshake in its own task (a slow or silent peer holds up nobody), the client must
//! present a certificate from the network's CA that its CRL does not revoke (see
//! [`crate::tls::ReloadingClientVerifier`]), and the identity in that certificate travels with
//! every request on the connection as the [`Peer`] request extension, where [`crate::authz`] reads
//! it. Clients build their channels with [`ClientSecurity::endpoint`], presenting their own
//! certificate and trusting only servers whose certificate chains to the same CA.
//!
//! Plain text ([`ServerSecurity::InsecureDev`], [`ClientSecurity::InsecureDev`]) exists for
//! development and for tests of other things; a server in that mode says so in its log, and its
//! callers' identities are what their requests claim.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::tls::{self, PartyIdentity, ReloadingClientVerifier, TlsError};

/// A handshake not finished after this long is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait to start theirs.
pub const HANDSHAKES_IN_PROGRESS_MAX: usize = 256;
/// Accepted connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 1_024;

/// The certificate files of one party, as `corridor pki issue` writes them, and the CA's files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The network CA's certificate (`ca.pem` of `corridor pki init`).
    pub ca: PathBuf,
    /// This party's certificate chain (`PREFIX.pem` of `corridor pki issue`).
    pub cert: PathBuf,
    /// This party's private key (`PREFIX.key`).
    pub key: PathBuf,
    /// The CA's revocation list (`crl.pem`), re-read while serving. Servers only.
    #[serde(default)]
    pub crl: Option<PathBuf>,
}

/// The same files from the command line, for commands that take them as flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// The network CA's certificate (ca.pem).
    #[arg(long = "tls-ca")]
    pub ca: Option<PathBuf>,
    /// This party's certificate (PREFIX.pem of `corridor pki issue`).
    #[arg(long = "tls-cert")]
    pub cert: Option<PathBuf>,
    /// This party's private key (PREFIX.key).
    #[arg(long = "tls-key")]
    pub key: Option<PathBuf>,
    /// The CA's revocation list (crl.pem); servers only, re-read while serving.
    #[arg(long = "tls-crl")]
    pub crl: Option<PathBuf>,
    /// Plain-text gRPC with no certificates: identities are whatever requests claim. For
    /// development only; logged as a warning.
    #[arg(long)]
    pub insecure_dev: bool,
}

impl TlsArgs {
    /// The files given, `None` for `--insecure-dev`, or an error naming the missing flag.
    pub fn files(&self, server: bool) -> anyhow::Result<Option<TlsFiles>> {
        if self.insecure_dev {
            anyhow::ensure!(
                self.ca.is_none() && self.cert.is_none() && self.key.is_none() && self.crl.is_none(),
                "--insecure-dev takes no --tls-* files"
            );
            return Ok(None);
        }
        let need = |value: &Option<PathBuf>, flag: &str| {
            value.clone().ok_or_else(|| anyhow::anyhow!("{flag} is required (or --insecure-dev for plain text)"))
        };
        let files = TlsFiles {
            ca: need(&self.ca, "--tls-ca")?,
            cert: need(&self.cert, "--tls-cert")?,
            key: need(&self.key, "--tls-key")?,
            crl: if server { Some(need(&self.crl, "--tls-crl")?) } else { self.crl.clone() },
        };
        Ok(Some(files))
    }
}

/// How a server takes connections.
pub enum ServerSecurity {
    /// Mutual TLS; the verifier's CRL is re-read while serving.
    Mtls { acceptor: TlsAcceptor, verifier: Arc<ReloadingClientVerifier> },
    /// Plain text, for development.
    InsecureDev,
}

impl ServerSecurity {
    /// Mutual TLS with the files of `files` (its `crl` is required).
    pub fn mtls(files: &TlsFiles) -> Result<Self, TlsError> {
        let crl = files.crl.as_deref().ok_or(TlsError::NoCrl)?;
        let verifier = ReloadingClientVerifier::open(&tls::read_file(&files.ca)?, crl)?;
        let config = tls::server_config_with_verifier(
            &tls::read_file(&files.cert)?,
            &tls::read_file(&files.key)?,
            verifier.clone(),
        )?;
        Ok(ServerSecurity::Mtls { acceptor: TlsAcceptor::from(Arc::new(config)), verifier })
    }

    /// From optional files: `None` means `--insecure-dev`.
    pub fn from_files(files: Option<&TlsFiles>) -> Result<Self, TlsError> {
        files.map_or(Ok(ServerSecurity::InsecureDev), Self::mtls)
    }

    pub fn is_mtls(&self) -> bool {
        matches!(self, ServerSecurity::Mtls { .. })
    }

    /// Starts re-reading the CRL every [`tls::CRL_RELOAD_INTERVAL`] (nothing in plain text).
    pub fn spawn_crl_reloader(&self) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            ServerSecurity::Mtls { verifier, .. } => Some(verifier.spawn_reloader(tls::CRL_RELOAD_INTERVAL)),
            ServerSecurity::InsecureDev => None,
        }
    }
}

/// Who is at the other end of a connection: its address and, over mTLS, the identity its
/// certificate names. Every request carries it as an extension.
#[derive(Debug, Clone)]
pub struct Peer {
    pub address: Option<SocketAddr>,
    /// `None` only on a plain-text (`--insecure-dev`) connection. Shared: every request on the
    /// connection carries a copy of the `Peer`.
    pub identity: Option<Arc<PartyIdentity>>,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// One accepted connection, after its handshake.
pub struct PeerStream {
    io: Io,
    peer: Peer,
}

impl Connected for PeerStream {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(self: Pin<&mut Self>, context: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_write(context, bytes),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, bytes),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_write_vectored(context, buffers),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(context, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(stream) => stream.is_write_vectored(),
            Io::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_flush(context),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

/// The connections of `listener`, handshaken as `security` says, for
/// `Server::serve_with_incoming_shutdown`. A failed handshake (no certificate, another CA, a
/// revoked certificate, no Corridor identity, a timeout) closes that connection and is logged;
/// it never ends the stream. Accepting stops when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    security: Arc<ServerSecurity>,
) -> impl Stream<Item = Result<PeerStream, io::Error>> + Send + 'static {
    let (accepted, receiver) = mpsc::channel::<PeerStream>(ACCEPTED_QUEUE);
    tokio::spawn(accept_loop(listener, security, accepted));
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|stream| (Ok(stream), receiver))
    })
}

async fn accept_loop(listener: TcpListener, security: Arc<ServerSecurity>, accepted: mpsc::Sender<PeerStream>) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_IN_PROGRESS_MAX));
    loop {
        let (stream, address) = tokio::select! {
            () = accepted.closed() => return,
            result = listener.accept() => match result {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _nagle_off = stream.set_nodelay(true);
        match security.as_ref() {
            ServerSecurity::InsecureDev => {
                let peer = Peer { address: Some(address), identity: None };
                if accepted.send(PeerStream { io: Io::Plain(stream), peer }).await.is_err() {
                    return;
                }
            }
            ServerSecurity::Mtls { acceptor, .. } => {
                let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
                let acceptor = acceptor.clone();
                let accepted = accepted.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match handshake(&acceptor, stream, address).await {
                        Ok(stream) => {
                            let _server_gone = accepted.send(stream).await;
                        }
                        Err(reason) => tracing::info!(peer = %address, %reason, "TLS connection refused"),
                    }
                });
            }
        }
    }
}

async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream, address: SocketAddr) -> Result<PeerStream, String> {
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| format!("no handshake within {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|error| error.to_string())?;
    // The verifier already refused certificates without a Corridor identity; read it once here
    // rather than on every request.
    let identity = tls::peer_identity(tls.get_ref().1).map_err(|error| error.to_string())?;
    let peer = Peer { address: Some(address), identity: Some(Arc::new(identity)) };
    Ok(PeerStream { io: Io::Tls(Box::new(tls)), peer })
}

/// How a client reaches a server.
#[derive(Clone)]
pub enum ClientSecurity {
    /// Presents this party's certificate, trusts only servers from the network's CA.
    Mtls(ClientTlsConfig),
    /// Plain text, for development.
    InsecureDev,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientSecurity::Mtls(_) => "ClientSecurity::Mtls",
            ClientSecurity::InsecureDev => "ClientSecurity::InsecureDev",
        })
    }
}

impl ClientSecurity {
    /// Mutual TLS as the party whose certificate and key are in `files`.
    pub fn mtls(files: &TlsFiles) -> Result<Self, TlsError> {
        Ok(Self::mtls_from_pem(
            &tls::read_file(&files.ca)?,
            &tls::read_file(&files.cert)?,
            &tls::read_file(&files.key)?,
        ))
    }

    /// Mutual TLS from PEM texts already in memory.
    pub fn mtls_from_pem(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Self {
        ClientSecurity::Mtls(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca_pem))
                .identity(Identity::from_pem(cert_pem, key_pem)),
        )
    }

    /// From optional files: `None` means `--insecure-dev`.
    pub fn from_files(files: Option<&TlsFiles>) -> Result<Self, TlsError> {
        files.map_or(Ok(ClientSecurity::InsecureDev), Self::mtls)
    }

    /// An endpoint for `address` (`host:port`, or a URL whose scheme is replaced: `https` over
    /// mTLS, `http` in plain text). The server's certificate must name the host (DNS name or IP
    /// address) and chain to the CA.
    pub fn endpoint(&self, address: &str) -> Result<Endpoint, tonic::transport::Error> {
        let authority = address.split_once("://").map_or(address, |(_, rest)| rest);
        match self {
            ClientSecurity::Mtls(config) => {
                Endpoint::from_shared(format!("https://{authority}"))?.tls_config(config.clone())
            }
            ClientSecurity::InsecureDev => Endpoint::from_shared(format!("http://{authority}")),
        }
    }
}
