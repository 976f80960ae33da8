//! One client connection: a reader that decodes frames and dispatches them in order, and a writer
//! that sends the answers back in request order while later requests are already being served.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::broker::{Advertised, Broker};
use crate::protocol::{dispatch, Outcome};

/// Requests of one connection answered concurrently at most; the reader waits beyond that.
const MAX_IN_FLIGHT: usize = 64;

enum Queued {
    Response(JoinHandle<Result<Option<Bytes>, String>>),
    Close(Option<Bytes>),
}

pub async fn serve(
    broker: Arc<Broker>,
    socket: TcpStream,
    peer: SocketAddr,
    advertised: Arc<Advertised>,
    shutdown: CancellationToken,
) {
    let _ = socket.set_nodelay(true);
    tracing::debug!(%peer, "connection opened");
    let (read, write) = socket.into_split();
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(broker.config.max_request_bytes)
        .new_codec();
    let mut frames = FramedRead::new(read, codec);
    let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_responses(write, rx, peer));

    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => break,
            frame = frames.next() => frame,
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame.freeze(),
            Some(Err(e)) => {
                use std::io::ErrorKind::{
                    BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof,
                };
                if matches!(
                    e.kind(),
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
                ) {
                    tracing::debug!(%peer, error = %e, "client went away");
                } else {
                    // Oversized frames and the like: worth a line in the log.
                    tracing::warn!(%peer, error = %e, "closing connection: unreadable frame");
                }
                break;
            }
        };
        let queued = match dispatch(&broker, peer, &advertised, frame).await {
            Outcome::Respond(pending) => Queued::Response(tokio::spawn(pending)),
            Outcome::Close { last, reason } => {
                tracing::warn!(%peer, %reason, "closing connection");
                let _ = tx.send(Queued::Close(last)).await;
                break;
            }
        };
        if tx.send(queued).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
    tracing::debug!(%peer, "connection closed");
}

async fn write_responses(
    write: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Queued>,
    peer: SocketAddr,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, write);
    while let Some(item) = rx.recv().await {
        let frame = match item {
            Queued::Response(handle) => match handle.await {
                Ok(Ok(frame)) => frame,
                Ok(Err(reason)) => {
                    tracing::error!(%peer, %reason, "closing connection");
                    break;
                }
                Err(e) => {
                    tracing::error!(%peer, error = %e, "request handler failed; closing connection");
                    break;
                }
            },
            Queued::Close(last) => {
                if let Some(last) = last {
                    let _ = out.write_all(&last).await;
                }
                break;
            }
        };
        if let Some(frame) = frame {
            if out.write_all(&frame).await.is_err() {
                return;
            }
        }
        if rx.is_empty() && out.flush().await.is_err() {
            return;
        }
    }
    let _ = out.flush().await;
    let _ = out.shutdown().await;
}
