//! The TCP server: accepts Kafka clients and runs one connection task each, until shutdown.
//!
//! Every resource a client can make the broker hold is bounded here, with Kafka's setting
//! names, because a broker that trusts its clients runs out of file descriptors or memory: each
//! connection is a socket (`max.connections`, `max.connections.per.ip`; one more is accepted and
//! closed at once, and counted), each request being read or served holds its bytes
//! (`queued.max.request.bytes`, see [`Limits`]), and [`connection`] closes idle connections,
//! half-sent frames and connections whose client has gone. On SSL and SASL_SSL listeners the
//! TLS handshake runs inside the connection's slot and within `--ssl-handshake-timeout-ms`, so
//! clients that never finish one hold no more than a plaintext client that never sends a frame;
//! a failed handshake (garbage, plaintext Kafka on a TLS port, a client certificate the
//! truststore does not vouch for) closes that connection with a warning.

mod connection;
mod limits;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use limits::{Limits, Refused};

use crate::broker::{Advertised, Broker};
use crate::protocol::Session;
use crate::security::principal::KafkaPrincipal;
use crate::security::tls_principal;
use crate::security::users::Users;
use crate::security::SecurityProtocol;

/// What a listener asks of its clients: its protocol, the users a SASL login is checked
/// against, and the TLS configuration of an SSL or SASL_SSL listener.
#[derive(Clone)]
pub struct Security {
    pub protocol: SecurityProtocol,
    pub sasl: Option<Arc<Users>>,
    pub tls: Option<TlsAcceptor>,
    pub handshake_timeout: Duration,
}

impl Security {
    /// A PLAINTEXT listener.
    pub fn plaintext() -> Self {
        Security {
            protocol: SecurityProtocol::Plaintext,
            sasl: None,
            tls: None,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Accepts connections until `shutdown` is cancelled, then waits (a bounded time) for the
/// connections to finish their in-flight requests. `limits` is shared by every listener;
/// `security.sasl` (a SASL listener's users) makes every connection authenticate first, and
/// `security.tls` makes it a TLS listener.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    advertised: Arc<Advertised>,
    security: Security,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    backoff = Duration::from_millis(10);
                    let slot = match limits.admit(peer.ip()) {
                        Ok(slot) => slot,
                        Err(refused) => {
                            // As Kafka does: accepted, then closed at once (dropping the socket).
                            limits.note_refused(peer, &refused);
                            continue;
                        }
                    };
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    let advertised = advertised.clone();
                    let limits = limits.clone();
                    let security = security.clone();
                    tracker.spawn(async move {
                        accepted_connection(broker, socket, peer, advertised, security, &limits, shutdown)
                            .await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait and try again rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; shutting down anyway");
    }
}

/// Runs the TLS handshake if the listener has one, then serves the connection.
async fn accepted_connection(
    broker: Arc<Broker>,
    socket: TcpStream,
    peer: SocketAddr,
    advertised: Arc<Advertised>,
    security: Security,
    limits: &Limits,
    shutdown: CancellationToken,
) {
    let _ = socket.set_nodelay(true);
    let mut session = Session {
        peer,
        advertised,
        principal: KafkaPrincipal::anonymous(),
        protocol: security.protocol,
    };
    let Some(acceptor) = &security.tls else {
        let halves = socket.into_split();
        connection::serve(broker, halves, session, security.sasl, limits, shutdown).await;
        return;
    };
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        done = tokio::time::timeout(security.handshake_timeout, acceptor.accept(socket)) => done,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::warn!(%peer, protocol = %security.protocol, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, protocol = %security.protocol,
                "TLS handshake not complete within {:?} (--ssl-handshake-timeout-ms)",
                security.handshake_timeout);
            return;
        }
    };
    // As Kafka's default principal builder: a verified client certificate names the principal
    // (a SASL login on SASL_SSL names it again).
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first());
    if let Some(leaf) = leaf {
        match tls_principal::subject_dn(leaf) {
            Ok(dn) => {
                session.principal = KafkaPrincipal::user(dn);
                tracing::info!(%peer, principal = %session.principal, "TLS client certificate verified");
            }
            Err(e) => {
                tracing::warn!(%peer, "closing connection: client certificate: {e}");
                return;
            }
        }
    }
    let halves = tokio::io::split(stream);
    connection::serve(broker, halves, session, security.sasl, limits, shutdown).await;
}
