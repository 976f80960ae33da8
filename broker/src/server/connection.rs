//! One client connection: a reader that takes request frames off the socket within the
//! broker's limits and dispatches them in order, and a writer that sends the answers back in
//! request order while later requests are already being served.
//!
//! Why it is built this way:
//!
//! * **Order.** `dispatch` applies a request's effect before the next frame is read, so requests
//!   take effect in the order they were sent; only the waiting (group commit, long poll,
//!   rebalance) runs concurrently, at most [`MAX_IN_FLIGHT`] answers per connection.
//! * **Memory.** A frame's length is checked against `socket.request.max.bytes`, then its bytes
//!   are reserved from the broker-wide `queued.max.request.bytes` budget before the body is read
//!   (Kafka's memory pool does the same), and released once its answer is ready. The body buffer
//!   grows with the bytes that actually arrive, so a client announcing 100 MB and sending little
//!   costs little memory, and a frame that does not fit waits unread, so the kernel's TCP window
//!   pushes back on its sender.
//! * **Clients that leave.** The reader keeps watching the socket while answers are pending, so a
//!   peer's EOF or reset ends the connection at once, and answers that only wait (a long-poll
//!   Fetch, a JoinGroup: [`Outcome::Wait`]) are dropped with it. Answers whose future must finish
//!   ([`Outcome::Respond`]: the group commit that makes a Produce or OffsetCommit durable and
//!   visible) run as tasks of their own and finish regardless.
//! * **Clients that stall.** A connection with no request read and no answer written for
//!   `connections.max.idle.ms` is closed, as is one whose started frame is not complete within
//!   `--request-read-timeout-ms`. At shutdown, pending answers get [`SHUTDOWN_GRACE`], no more.

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Limits;
use crate::broker::Broker;
use crate::protocol::sasl::{SaslSession, FAILED_LOGIN_DELAY};
use crate::protocol::{dispatch, Outcome, Session};
use crate::security::principal::KafkaPrincipal;
use crate::security::users::Users;

/// Requests of one connection answered concurrently at most; the reader waits beyond that.
pub const MAX_IN_FLIGHT: usize = 64;
/// How long pending answers may still be written once the broker shuts down.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long earlier answers may still be written before a connection closed for a protocol error
/// (whose last answer, if any, goes after them) is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Socket read buffer: enough for the headers of pipelined small requests; larger bodies are read
/// straight into their own buffer.
const READ_BUFFER: usize = 4 * 1024;
/// First allocation for a frame body; it then doubles as bytes arrive, up to the frame length.
const FIRST_CHUNK: usize = 64 * 1024;
/// How long a connection whose SASL authentication failed waits for its client to close it
/// after the failure answer.
const AUTH_FAILURE_LINGER: Duration = Duration::from_secs(1);
/// Answers up to this size are gathered into one write when several are ready.
const COALESCE: usize = 64 * 1024;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("the client closed the connection")]
    Eof,
    #[error("idle for {0:?} (connections.max.idle.ms)")]
    Idle(Duration),
    #[error("a request was not complete within {0:?}")]
    ReadTimeout(Duration),
    #[error("a {len}-byte frame is larger than socket.request.max.bytes ({max})")]
    TooLarge { len: u32, max: u32 },
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the broker is shutting down")]
    Shutdown,
    #[error("writing an answer failed")]
    WriterGone,
    #[error("{0}")]
    Protocol(String),
}

impl End {
    /// Whether this is the client's doing in the ordinary course of things (logged at debug).
    fn is_ordinary(&self) -> bool {
        match self {
            End::Eof | End::Idle(_) | End::Shutdown | End::WriterGone => true,
            End::Io(e) => matches!(
                e.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            ),
            End::ReadTimeout(_) | End::TooLarge { .. } | End::Protocol(_) => false,
        }
    }
}

/// What the writer gets for one request, in request order.
enum Reply {
    Frame(Option<Bytes>),
    /// The connection must be closed (the handler failed).
    Fail(String),
    /// Send this last frame, if any, then close.
    Close(Option<Bytes>),
}

type Queued = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// When the connection last read a whole request or wrote an answer.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }
}

/// Serves one connection until the client leaves, it breaks a rule, or the broker shuts down.
/// Returns only once the socket is closed. With `sasl` (a SASL listener's users), the client
/// must authenticate before anything but ApiVersions.
///
/// Generic over the two halves of the stream, so a plaintext socket keeps its own lock-free
/// owned halves and a TLS stream is split with [`tokio::io::split`].
pub async fn serve<R, W>(
    broker: Arc<Broker>,
    (read, write): (R, W),
    session: Session,
    sasl: Option<Arc<Users>>,
    limits: &Limits,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let peer = session.peer;
    tracing::debug!(%peer, protocol = %session.protocol, principal = %session.principal, "connection opened");
    let activity = Arc::new(Activity::new());
    let (tx, rx) = mpsc::unbounded_channel();
    let writer_done = CancellationToken::new();
    let mut writer = tokio::spawn(write_answers(
        write,
        rx,
        activity.clone(),
        writer_done.clone(),
    ));
    let mut reader = Reader {
        broker: &broker,
        read: BufReader::with_capacity(READ_BUFFER, read),
        budget: limits.budget().cloned(),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        activity,
        idle: Duration::from_millis(broker.config.connections_max_idle_ms),
        read_timeout: Duration::from_millis(broker.config.request_read_timeout_ms),
        shutdown: &shutdown,
        writer_done: &writer_done,
        tx,
        session,
        sasl: sasl.map(SaslSession::new),
    };
    let end = reader.run().await;
    drop(reader);
    if end.is_ordinary() {
        tracing::debug!(%peer, "closing connection: {end}");
    } else {
        tracing::warn!(%peer, "closing connection: {end}");
    }
    // Earlier answers still go out after a protocol error or at shutdown, for a bounded time;
    // otherwise nobody is there to read them.
    let grace = match end {
        End::Protocol(_) => Some(CLOSE_GRACE),
        End::Shutdown => Some(SHUTDOWN_GRACE),
        _ => None,
    };
    if let Some(grace) = grace {
        let finished = tokio::select! {
            _ = &mut writer => true,
            _ = tokio::time::sleep(grace) => false,
            _ = shutdown.cancelled(), if !matches!(end, End::Shutdown) => false,
        };
        if finished {
            tracing::debug!(%peer, "connection closed");
            return;
        }
    }
    writer.abort();
    let _ = writer.await;
    tracing::debug!(%peer, "connection closed");
}

struct Reader<'a, R> {
    broker: &'a Arc<Broker>,
    read: BufReader<R>,
    budget: Option<Arc<Semaphore>>,
    in_flight: Arc<Semaphore>,
    activity: Arc<Activity>,
    idle: Duration,
    read_timeout: Duration,
    shutdown: &'a CancellationToken,
    writer_done: &'a CancellationToken,
    tx: mpsc::UnboundedSender<Queued>,
    /// Who is connected, from where, on which listener: handed to every request.
    session: Session,
    /// On a SASL listener: the authentication, which must succeed before anything else.
    sasl: Option<SaslSession>,
}

/// What bounds a wait: the idle timeout (between requests) or a fixed deadline (within one).
#[derive(Clone, Copy)]
enum Deadline {
    Idle,
    Request(Instant),
}

/// What is held for a request until its answer is ready.
struct Held {
    _slot: OwnedSemaphorePermit,
    _bytes: Option<OwnedSemaphorePermit>,
}

/// What ends any wait of the reader: shutdown, the writer stopping, the request's deadline.
#[derive(Clone, Copy)]
struct Guards<'a> {
    shutdown: &'a CancellationToken,
    writer_done: &'a CancellationToken,
    read_timeout: Duration,
}

/// Runs a read of the socket, to be done by `at`.
async fn within<T>(
    g: Guards<'_>,
    at: Instant,
    read: impl Future<Output = std::io::Result<T>>,
) -> Result<T, End> {
    tokio::select! {
        _ = g.shutdown.cancelled() => Err(End::Shutdown),
        _ = g.writer_done.cancelled() => Err(End::WriterGone),
        _ = tokio::time::sleep_until(at) => Err(End::ReadTimeout(g.read_timeout)),
        result = read => result.map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof { End::Eof } else { End::Io(e) }
        }),
    }
}

impl<'a, R: AsyncRead + Unpin + Send> Reader<'a, R> {
    async fn run(&mut self) -> End {
        loop {
            if let Err(end) = self.serve_one().await {
                return end;
            }
        }
    }

    /// Reads, dispatches and queues one request.
    async fn serve_one(&mut self) -> Result<(), End> {
        // A free place among the answers in flight, watching for the client leaving meanwhile.
        let slot = match self.in_flight.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let wait = self.in_flight.clone().acquire_owned();
                self.watching(wait, Deadline::Idle)
                    .await?
                    .map_err(|_| End::WriterGone)?
            }
        };
        self.frame_start().await?;
        let at = Instant::now() + self.read_timeout;
        let deadline = Deadline::Request(at);
        let len = within(self.guards(), at, self.read.read_u32()).await?;
        let max = self.broker.config.max_request_bytes;
        if len > max {
            return Err(End::TooLarge { len, max });
        }
        let bytes = match self.budget.clone() {
            None => None,
            Some(budget) => match budget.clone().try_acquire_many_owned(len) {
                Ok(permit) => Some(permit),
                Err(_) => Some(
                    self.watching(budget.acquire_many_owned(len), deadline)
                        .await?
                        .map_err(|_| End::Shutdown)?,
                ),
            },
        };
        let frame = self.body(len as usize, at).await?;
        self.activity.touch();
        let held = Held {
            _slot: slot,
            _bytes: bytes,
        };
        let unauthenticated = self.sasl.as_mut().filter(|s| s.principal().is_none());
        let mut auth_failed = false;
        let outcome = match unauthenticated.and_then(|s| s.handle(frame.clone())) {
            Some(outcome) => {
                if let Some(user) = self.sasl.as_ref().and_then(SaslSession::principal) {
                    // As Kafka's default principal builder: a SASL login names the principal.
                    self.session.principal = KafkaPrincipal::user(user);
                }
                if self.sasl.as_ref().is_some_and(SaslSession::failed) {
                    auth_failed = true;
                    // Slows down password guessing; only this connection waits.
                    self.broker
                        .metrics
                        .error("SaslAuthenticate", "SASL_AUTHENTICATION_FAILED");
                    tokio::time::sleep(FAILED_LOGIN_DELAY).await;
                }
                outcome
            }
            None => dispatch(self.broker, &self.session, frame).await,
        };

        let queued: Queued = match outcome {
            Outcome::Respond(pending) => {
                let task = tokio::spawn(pending);
                Box::pin(async move {
                    let reply = match task.await {
                        Ok(Ok(frame)) => Reply::Frame(frame),
                        Ok(Err(reason)) => Reply::Fail(reason),
                        Err(e) => Reply::Fail(format!("request handler failed: {e}")),
                    };
                    drop(held);
                    reply
                })
            }
            Outcome::Wait(pending) => Box::pin(async move {
                let reply = match pending.await {
                    Ok(frame) => Reply::Frame(frame),
                    Err(reason) => Reply::Fail(reason),
                };
                drop(held);
                reply
            }),
            Outcome::Close { last, reason } => {
                let _ = self
                    .tx
                    .send(Box::pin(std::future::ready(Reply::Close(last))));
                if auth_failed {
                    // Some clients (kafka-python) drop an answer that arrives together with the
                    // connection's end: leave closing to the client, for a while.
                    self.until_peer_closes(AUTH_FAILURE_LINGER).await;
                }
                return Err(End::Protocol(reason));
            }
        };
        self.tx.send(queued).map_err(|_| End::WriterGone)
    }

    /// Reads and drops whatever the client still sends until it closes, `at_most` long.
    async fn until_peer_closes(&mut self, at_most: Duration) {
        let mut scratch = [0u8; 512];
        let _ = tokio::time::timeout(at_most, async {
            while matches!(self.read.read(&mut scratch).await, Ok(n) if n > 0) {}
        })
        .await;
    }

    /// Waits until the next frame's first byte is there (or the connection must end).
    async fn frame_start(&mut self) -> Result<(), End> {
        if !self.read.buffer().is_empty() {
            return Ok(());
        }
        loop {
            let idle_at = self.activity.idle_deadline(self.idle);
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err(End::Shutdown),
                _ = self.writer_done.cancelled() => return Err(End::WriterGone),
                _ = tokio::time::sleep_until(idle_at) => {
                    if self.activity.idle_deadline(self.idle) <= Instant::now() {
                        return Err(End::Idle(self.idle));
                    }
                }
                filled = self.read.fill_buf() => {
                    return match filled {
                        Ok([]) => Err(End::Eof),
                        Ok(_) => Ok(()),
                        Err(e) => Err(End::Io(e)),
                    };
                }
            }
        }
    }

    /// Waits for `wait` (a place in flight, budget) while watching the socket for the client
    /// leaving, within `deadline`.
    async fn watching<T>(
        &mut self,
        wait: impl Future<Output = T>,
        deadline: Deadline,
    ) -> Result<T, End> {
        tokio::pin!(wait);
        // Once bytes are known to be waiting, readiness says nothing more about an EOF.
        let mut watch_eof = self.read.buffer().is_empty();
        loop {
            let at = match deadline {
                Deadline::Idle => self.activity.idle_deadline(self.idle),
                Deadline::Request(at) => at,
            };
            tokio::select! {
                got = &mut wait => return Ok(got),
                _ = self.shutdown.cancelled() => return Err(End::Shutdown),
                _ = self.writer_done.cancelled() => return Err(End::WriterGone),
                _ = tokio::time::sleep_until(at) => match deadline {
                    Deadline::Request(_) => return Err(End::ReadTimeout(self.read_timeout)),
                    Deadline::Idle => {
                        if self.activity.idle_deadline(self.idle) <= Instant::now() {
                            return Err(End::Idle(self.idle));
                        }
                    }
                },
                filled = self.read.fill_buf(), if watch_eof => match filled {
                    Ok([]) => return Err(End::Eof),
                    Ok(_) => watch_eof = false,
                    Err(e) => return Err(End::Io(e)),
                },
            }
        }
    }

    fn guards(&self) -> Guards<'a> {
        Guards {
            shutdown: self.shutdown,
            writer_done: self.writer_done,
            read_timeout: self.read_timeout,
        }
    }

    /// Reads a frame body of `len` bytes by `at`, growing its buffer only as bytes arrive.
    async fn body(&mut self, len: usize, at: Instant) -> Result<Bytes, End> {
        let mut buf = BytesMut::with_capacity(len.min(FIRST_CHUNK));
        while buf.len() < len {
            if buf.len() == buf.capacity() {
                let target = (buf.len() * 2).clamp(FIRST_CHUNK, len);
                buf.reserve(target - buf.len());
            }
            let room = buf.capacity().min(len) - buf.len();
            let guards = self.guards();
            let mut limited = (&mut self.read).take(room as u64);
            let n = within(guards, at, limited.read_buf(&mut buf)).await?;
            if n == 0 {
                return Err(End::Eof);
            }
        }
        Ok(buf.freeze())
    }
}

/// Writes the answers in request order, gathering those that are ready into few writes.
/// Cancels `done` when it stops, so the reader stops too.
async fn write_answers<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    activity: Arc<Activity>,
    done: CancellationToken,
) {
    let _done = done.drop_guard();
    let mut queue: FuturesOrdered<Queued> = FuturesOrdered::new();
    let mut open = true;
    loop {
        tokio::select! {
            queued = rx.recv(), if open => match queued {
                Some(q) => queue.push_back(q),
                None => open = false,
            },
            Some(reply) = queue.next(), if !queue.is_empty() => {
                let mut frames = Vec::new();
                let mut close = handle(reply, &mut frames);
                while !close {
                    match queue.next().now_or_never() {
                        Some(Some(reply)) => close = handle(reply, &mut frames),
                        _ => break,
                    }
                }
                if send(&mut write, frames).await.is_err() {
                    return;
                }
                activity.touch();
                if close {
                    let _ = write.shutdown().await;
                    return;
                }
            }
            else => break,
        }
    }
    let _ = write.shutdown().await;
}

/// Adds a reply's frame to `frames`; true when the connection must close after them.
fn handle(reply: Reply, frames: &mut Vec<Bytes>) -> bool {
    match reply {
        Reply::Frame(frame) => {
            frames.extend(frame);
            false
        }
        Reply::Fail(reason) => {
            tracing::error!(%reason, "closing connection");
            true
        }
        Reply::Close(last) => {
            frames.extend(last);
            true
        }
    }
}

async fn send<W: AsyncWrite + Unpin>(write: &mut W, frames: Vec<Bytes>) -> std::io::Result<()> {
    let total: usize = frames.iter().map(Bytes::len).sum();
    if frames.len() > 1 && total <= COALESCE {
        let mut joined = BytesMut::with_capacity(total);
        for f in &frames {
            joined.extend_from_slice(f);
        }
        write.write_all(&joined).await?;
    } else {
        for f in frames {
            write.write_all(&f).await?;
        }
    }
    // A no-op on a socket; TLS may still hold the last record.
    write.flush().await
}
