//! The REST API over HTTPS, as Kafka Connect's `listeners=https://...` with
//! `listeners.https.ssl.*`: a PEM certificate chain and key, and optionally client certificates
//! checked against a CA (`ssl.client.authentication=requested|required`).
//!
//! [`TlsListener`] wraps the bound `TcpListener` given to `run` (which still binds nothing
//! itself) as an `axum::serve::Listener`. Handshakes run in their own tasks, so one slow or
//! silent client never holds up the others; a connection whose handshake fails (plain HTTP on
//! the TLS port, an untrusted client certificate) is logged and closed, nothing else happens.
//!
//! The same settings make the client a follower forwards writes with ([`forward_client`]): it
//! trusts the CA (or the worker's own certificate's issuer, given as the CA) and presents the
//! worker's certificate, so forwarding works when the leader requires client certificates.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's `ssl.client.authentication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientAuth {
    /// No client certificate asked for.
    #[default]
    None,
    /// Asked for; checked against the CA when presented.
    Requested,
    /// Required and checked against the CA.
    Required,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what} {path}: {detail}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("{what} {path} holds no PEM {what}")]
    Empty { what: &'static str, path: PathBuf },
    #[error("--rest-ssl-certificate-location and --rest-ssl-key-location go together")]
    CertWithoutKey,
    #[error("--rest-ssl-client-auth {0:?} needs --rest-ssl-ca-location (the CA client certificates are checked against)")]
    ClientAuthWithoutCa(ClientAuth),
    #[error("the REST TLS settings are invalid: {0}")]
    Rustls(String),
    #[error("the forwarding HTTP client: {0}")]
    Client(String),
}

/// The REST API's TLS settings, read from the worker's flags.
#[derive(Debug, Clone)]
pub struct RestTls {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

fn certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl RestTls {
    /// From the optional flags: `None` without a certificate (plain HTTP).
    pub fn from_flags(
        certificate: Option<&Path>,
        key: Option<&Path>,
        ca: Option<&Path>,
        client_auth: ClientAuth,
    ) -> Result<Option<RestTls>, TlsError> {
        match (certificate, key) {
            (None, None) => Ok(None),
            (Some(c), Some(k)) => {
                if client_auth != ClientAuth::None && ca.is_none() {
                    return Err(TlsError::ClientAuthWithoutCa(client_auth));
                }
                Ok(Some(RestTls {
                    certificate: c.to_path_buf(),
                    key: k.to_path_buf(),
                    ca: ca.map(Path::to_path_buf),
                    client_auth,
                }))
            }
            _ => Err(TlsError::CertWithoutKey),
        }
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::Pem {
            what: "private key",
            path: self.key.clone(),
            detail: e.to_string(),
        })
    }

    fn roots(&self) -> Result<Option<RootCertStore>, TlsError> {
        let Some(ca) = &self.ca else { return Ok(None) };
        let mut roots = RootCertStore::empty();
        for c in certs(ca, "CA certificate")? {
            roots
                .add(c)
                .map_err(|e| TlsError::Rustls(format!("CA {}: {e}", ca.display())))?;
        }
        Ok(Some(roots))
    }

    /// The server side: certificate, key, client certificate policy; HTTP/1.1 and h2.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let builder = match (self.client_auth, self.roots()?) {
            (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
            (auth, Some(roots)) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| TlsError::Rustls(e.to_string()))?,
                )
            }
        };
        let mut config = builder
            .with_single_cert(certs(&self.certificate, "certificate")?, self.key()?)
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        // HTTP/1.1 only: the server speaks no HTTP/2 (axum without `http2`), so offering h2 would
        // make clients that prefer it (curl, browsers) fail mid-stream.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The client a follower forwards writes to the leader with: with TLS it trusts the CA and
/// presents the worker's own certificate (the leader may require one).
pub fn forward_client(tls: Option<&RestTls>) -> Result<reqwest::Client, TlsError> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(tls) = tls {
        if let Some(ca) = &tls.ca {
            for c in certs(ca, "CA certificate")? {
                let cert = reqwest::Certificate::from_der(&c)
                    .map_err(|e| TlsError::Client(e.to_string()))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        let mut pem = std::fs::read(&tls.certificate).map_err(|e| TlsError::Pem {
            what: "certificate",
            path: tls.certificate.clone(),
            detail: e.to_string(),
        })?;
        pem.push(b'\n');
        pem.extend(std::fs::read(&tls.key).map_err(|e| TlsError::Pem {
            what: "private key",
            path: tls.key.clone(),
            detail: e.to_string(),
        })?);
        let identity =
            reqwest::Identity::from_pem(&pem).map_err(|e| TlsError::Client(e.to_string()))?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| TlsError::Client(e.to_string()))
}

/// A bound listener whose connections are TLS sessions (see the module docs).
pub struct TlsListener {
    local: std::net::SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    _accept: AbortOnDrop,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "REST accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "REST TLS handshake failed")
                        }
                        Err(_) => tracing::info!(%peer, "REST TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            _accept: AbortOnDrop(task),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task ends only with the listener; serve until shutdown anyway.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Stops the accept loop (and so closes the socket) when the listener goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
