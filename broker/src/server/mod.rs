//! The TCP server: accepts Kafka clients and runs one connection task each, until shutdown.

mod connection;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{Advertised, Broker};

/// Accepts connections until `shutdown` is cancelled, then waits (a bounded time) for the
/// connections to finish their in-flight requests.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    advertised: Arc<Advertised>,
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
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    let advertised = advertised.clone();
                    tracker.spawn(async move {
                        connection::serve(broker, socket, peer, advertised, shutdown).await;
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
