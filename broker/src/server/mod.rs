//! The TCP server: accepts Kafka clients and runs one connection task each, until shutdown.
//!
//! Every resource a client can make the broker hold is bounded here, with Kafka's setting
//! names, because a broker that trusts its clients runs out of file descriptors or memory: each
//! connection is a socket (`max.connections`, `max.connections.per.ip`; one more is accepted and
//! closed at once, and counted), each request being read or served holds its bytes
//! (`queued.max.request.bytes`, see [`Limits`]), and [`connection`] closes idle connections,
//! half-sent frames and connections whose client has gone.

mod connection;
mod limits;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use limits::{Limits, Refused};

use crate::broker::{Advertised, Broker};
use crate::security::users::Users;

/// Accepts connections until `shutdown` is cancelled, then waits (a bounded time) for the
/// connections to finish their in-flight requests. `limits` is shared by every listener; `sasl`
/// (a SASL_PLAINTEXT listener's users) makes every connection authenticate first.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    advertised: Arc<Advertised>,
    sasl: Option<Arc<Users>>,
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
                    let sasl = sasl.clone();
                    tracker.spawn(async move {
                        connection::serve(broker, socket, peer, advertised, sasl, &limits, shutdown)
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
