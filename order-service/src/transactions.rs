//! The publisher thread: orders committed to Kafka in transactions, many concurrent orders per
//! transaction, so that a 201 means "committed" and an error answer means "never committed".
//!
//! Why a thread and a channel: an idempotent producer cannot tell whether a record whose
//! acknowledgement was lost was appended, so a 503 could still become an order. A transaction
//! settles that: its records become visible to read_committed consumers (the JDBC sink) only
//! once the transaction commits, and an aborted one never does. One transaction per order would
//! cost three broker round trips each; instead the thread takes every order waiting in the
//! channel, `begin` → send them all → `commit`, then answers all of them (the batch grows with
//! the load, as a producer's batches do). librdkafka's transactional calls block, so they run on
//! this thread, never on the async runtime's.
//!
//! What each answer means, and why it holds:
//! - **committed**: `commit_transaction` returned Ok.
//! - **not committed**: the order was never taken into a transaction (its request gave up while
//!   waiting, see [`Request::cancel`]), or `commit_transaction` failed with an abortable error.
//!   librdkafka sends `EndTxn(commit)` only once every record of the transaction was delivered,
//!   and an abortable error means it did not (or the coordinator refused it), so that
//!   transaction can only ever be aborted: by our `abort_transaction`, by the next
//!   `InitProducerId` with this transactional.id, or by the broker's transaction timeout.
//! - a **retriable** commit error (a timeout: `EndTxn` may or may not have been decided) is never
//!   answered; the commit is retried until it succeeds or fails for good.
//! - a **fatal** error (fenced by another producer with our transactional.id) leaves the outcome
//!   unknown: a new producer's `init_transactions` makes the coordinator settle the old
//!   transaction (complete a prepared commit, abort an open one), and a read_committed read of
//!   the first delivered record tells which it was.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};

use crate::publisher::Position;

/// How the publisher thread's producer is configured.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bootstrap servers and security settings.
    pub kafka: kafka_client_config::KafkaConnection,
    pub topic: String,
    pub transactional_id: String,
    /// `message.timeout.ms`, and the bound of each blocking transactional call.
    pub timeout: Duration,
    pub linger_ms: u64,
    /// `transaction.timeout.ms`: how long the broker keeps a transaction of a producer that
    /// vanished open (holding back read_committed consumers) before aborting it.
    pub transaction_timeout: Duration,
    /// The most orders in one transaction.
    pub max_batch: usize,
}

/// The bound of one `commit_transaction` call (the commit is resumed until decided).
const COMMIT_CALL: Duration = Duration::from_millis(200);

const PENDING: u8 = 0;
const TAKEN: u8 = 1;
const CANCELLED: u8 = 2;

/// The answer to one order.
#[derive(Debug)]
pub enum Outcome {
    /// The transaction holding the order committed; where the record is, when known.
    Committed(Option<Position>),
    /// The order is not and never will be committed.
    NotCommitted(String),
}

/// One order waiting for the thread.
pub struct Request {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp_ms: i64,
    state: Arc<AtomicU8>,
    reply: oneshot::Sender<Outcome>,
}

/// The requester's side of a [`Request`].
pub struct Waiting {
    state: Arc<AtomicU8>,
    pub reply: oneshot::Receiver<Outcome>,
}

impl Request {
    pub fn new(key: Vec<u8>, value: Vec<u8>, timestamp_ms: i64) -> (Request, Waiting) {
        let state = Arc::new(AtomicU8::new(PENDING));
        let (reply, receiver) = oneshot::channel();
        (
            Request {
                key,
                value,
                timestamp_ms,
                state: state.clone(),
                reply,
            },
            Waiting {
                state,
                reply: receiver,
            },
        )
    }

    fn take(&self) -> bool {
        self.state
            .compare_exchange(PENDING, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn answer(self, outcome: Outcome) {
        // The requester may have stopped waiting (client gone): nothing to tell then.
        let _ = self.reply.send(outcome);
    }
}

impl Waiting {
    /// Withdraws the order if the thread has not taken it into a transaction yet: true means it
    /// never will be (so "not committed" is the truth); false means it was taken and its
    /// outcome must be awaited.
    pub fn cancel(&self) -> bool {
        self.state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Starts the publisher thread; it ends when every sender of `requests` is gone. `ready` is true
/// while it has an initialised transactional producer.
pub fn spawn(
    settings: Settings,
    requests: mpsc::Receiver<Request>,
    ready: Arc<AtomicBool>,
    current: CurrentProducer,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("order-txn".into())
        .spawn(move || {
            Publisher {
                settings,
                ready,
                current,
            }
            .run(requests)
        })
}

/// The thread's initialised producer, for readiness probes: a metadata request through it
/// checks the connection the orders go through.
pub type CurrentProducer = Arc<Mutex<Option<FutureProducer>>>;

struct Publisher {
    settings: Settings,
    ready: Arc<AtomicBool>,
    current: CurrentProducer,
}

/// Why a transaction did not commit.
enum Failure {
    /// It is aborted or can only ever be aborted.
    Aborted(String),
    /// The producer is unusable; the transaction's outcome is unknown until a new producer has
    /// initialised with the same transactional.id. Holds what was delivered.
    Fatal(String, Vec<Option<Position>>),
}

impl Publisher {
    fn run(self, mut requests: mpsc::Receiver<Request>) {
        let mut producer: Option<FutureProducer> = None;
        // A batch whose outcome is unknown after a fatal error, settled once a new producer is up.
        let mut unsettled: Option<(Vec<Request>, Vec<Option<Position>>)> = None;
        loop {
            let p = match producer.take() {
                Some(p) => p,
                None => match self.init(&requests) {
                    Some(p) => p,
                    None => return,
                },
            };
            if let Some((batch, delivered)) = unsettled.take() {
                self.settle(batch, &delivered);
            }
            let Some(first) = requests.blocking_recv() else {
                return;
            };
            let mut batch = Vec::with_capacity(64);
            if first.take() {
                batch.push(first);
            }
            while batch.len() < self.settings.max_batch {
                match requests.try_recv() {
                    Ok(r) if r.take() => batch.push(r),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                producer = Some(p);
                continue;
            }
            match self.transact(&p, &batch) {
                Ok(positions) => {
                    for (r, pos) in batch.into_iter().zip(positions) {
                        r.answer(Outcome::Committed(pos));
                    }
                    producer = Some(p);
                }
                Err(Failure::Aborted(why)) => {
                    tracing::warn!(orders = batch.len(), reason = %why, "transaction aborted");
                    for r in batch {
                        r.answer(Outcome::NotCommitted(why.clone()));
                    }
                    // The abort must complete before the next transaction can begin: not ready
                    // until then (readiness probes route new orders elsewhere meanwhile).
                    self.ready.store(false, Ordering::Release);
                    if self.abort(&p) {
                        self.ready.store(true, Ordering::Release);
                        producer = Some(p);
                    }
                }
                Err(Failure::Fatal(why, delivered)) => {
                    tracing::error!(orders = batch.len(), reason = %why, "transactional producer failed; settling its last transaction with a new one");
                    self.ready.store(false, Ordering::Release);
                    if let Ok(mut c) = self.current.lock() {
                        *c = None;
                    }
                    drop(p);
                    if delivered.iter().all(Option::is_none) {
                        // Nothing delivered: EndTxn(commit) was never sent, so nothing of it can
                        // commit; no need to wait for a new producer to say so.
                        self.settle(batch, &delivered);
                    } else {
                        unsettled = Some((batch, delivered));
                    }
                }
            }
        }
    }

    fn producer(&self) -> Result<FutureProducer, KafkaError> {
        let s = &self.settings;
        let message_timeout = s.timeout.as_millis().max(1);
        let txn_timeout = s.transaction_timeout.as_millis().max(message_timeout);
        s.kafka
            .client_config()
            .set("transactional.id", &s.transactional_id)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", message_timeout.to_string())
            .set("transaction.timeout.ms", txn_timeout.to_string())
            .set("linger.ms", s.linger_ms.to_string())
            .set("socket.keepalive.enable", "true")
            // Back within a second of a broker's return (librdkafka's default backs off to 10 s).
            .set("reconnect.backoff.max.ms", "1000")
            // A transaction begun while the coordinator still completes the previous one gets
            // CONCURRENT_TRANSACTIONS for its AddPartitionsToTxn, retried after this backoff
            // (librdkafka's 100 ms default would be each such order's latency; Kafka's Java
            // producer retries that error after 20 ms).
            .set("retry.backoff.ms", "10")
            .create()
    }

    /// A new producer with `init_transactions` done (which fences any earlier producer with our
    /// transactional.id and settles its last transaction); retried until it works. `None` if no
    /// producer can be configured at all, or the service is shutting down.
    fn init(&self, requests: &mpsc::Receiver<Request>) -> Option<FutureProducer> {
        let mut backoff = Duration::from_millis(100);
        loop {
            if requests.is_closed() {
                return None;
            }
            let p = match self.producer() {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot create the transactional producer");
                    return None;
                }
            };
            match p.init_transactions(self.settings.timeout) {
                Ok(()) => {
                    tracing::info!(transactional_id = %self.settings.transactional_id, "transactional producer ready");
                    if let Ok(mut c) = self.current.lock() {
                        *c = Some(p.clone());
                    }
                    self.ready.store(true, Ordering::Release);
                    return Some(p);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "init_transactions failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn transact(
        &self,
        p: &FutureProducer,
        batch: &[Request],
    ) -> Result<Vec<Option<Position>>, Failure> {
        if let Err(e) = p.begin_transaction() {
            // Nothing sent in this transaction: whatever the error, nothing can commit.
            return Err(match classify(e) {
                Ok(why) => Failure::Aborted(why),
                Err(why) => Failure::Fatal(why, Vec::new()),
            });
        }
        let mut deliveries = Vec::with_capacity(batch.len());
        for r in batch {
            let record = FutureRecord::to(&self.settings.topic)
                .key(&r.key)
                .payload(&r.value)
                .timestamp(r.timestamp_ms);
            match p.send_result(record) {
                Ok(d) => deliveries.push(d),
                Err((e, _)) => {
                    // Nothing of this transaction is committed yet: abort it.
                    return Err(Failure::Aborted(format!("queueing an order: {e}")));
                }
            }
        }
        // Every delivery report first (bounded by message.timeout.ms): rdkafka's
        // commit_transaction flushes by polling in 100 ms steps, which would add up to 100 ms
        // to every transaction; with nothing outstanding it returns at once. A record not
        // delivered means the transaction can only be aborted (no EndTxn(commit) is sent).
        let delivered = positions(deliveries);
        if delivered.iter().any(Option::is_none) {
            return Err(Failure::Aborted(
                "a record of the transaction was not delivered".into(),
            ));
        }
        // A delivery future resolves inside librdkafka's callback, a moment before the message
        // leaves the out queue; a flush that sees it still there sleeps 100 ms.
        await_out_queue(p, self.settings.timeout);
        loop {
            // Short calls, resumed until decided: an abortable failure (records timed out) is
            // answered as soon as librdkafka knows it.
            match p.commit_transaction(COMMIT_CALL.min(self.settings.timeout)) {
                Ok(()) => return Ok(delivered),
                Err(KafkaError::Transaction(e)) if e.is_retriable() && !e.is_fatal() => {
                    // EndTxn may or may not be decided: only retrying the commit can tell.
                    tracing::debug!(error = %e, "commit_transaction not finished, resuming");
                }
                Err(KafkaError::Flush(e)) => {
                    // rdkafka flushes before committing: records still queued (the broker is
                    // away), no EndTxn sent. Once they are delivered, or fail after
                    // message.timeout.ms (then the commit answers an abortable error), it goes on.
                    tracing::debug!(error = %e, "records not flushed yet, retrying the commit");
                }
                Err(e) => {
                    return Err(match classify(e) {
                        Ok(why) => Failure::Aborted(why),
                        Err(why) => Failure::Fatal(why, delivered),
                    });
                }
            }
        }
    }

    /// Aborts the current transaction, retrying while that is retriable. False when the
    /// producer is unusable (the next `init_transactions` aborts the transaction instead).
    fn abort(&self, p: &FutureProducer) -> bool {
        loop {
            match p.abort_transaction(self.settings.timeout) {
                Ok(()) => return true,
                Err(KafkaError::Transaction(e)) if e.is_retriable() && !e.is_fatal() => {
                    tracing::warn!(error = %e, "abort_transaction failed, retrying");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "abort_transaction failed; replacing the producer");
                    return false;
                }
            }
        }
    }

    /// Answers a batch whose producer failed fatally, now that a new producer's
    /// `init_transactions` has settled its transaction.
    fn settle(&self, batch: Vec<Request>, delivered: &[Option<Position>]) {
        let committed = match delivered.iter().flatten().next() {
            // Nothing delivered: EndTxn(commit) was never sent.
            None => false,
            Some(first) => loop {
                match self.committed(*first) {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::warn!(error = %e, "checking the outcome of a failed transaction");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            },
        };
        tracing::warn!(
            orders = batch.len(),
            committed,
            "settled a transaction of a failed producer"
        );
        for (r, pos) in batch.into_iter().zip(delivered) {
            r.answer(if committed {
                Outcome::Committed(*pos)
            } else {
                Outcome::NotCommitted("the transactional producer failed".into())
            });
        }
    }

    /// Whether the (decided) transaction holding the record at `at` committed: a read_committed
    /// consumer returns that record, or skips past it.
    fn committed(&self, at: Position) -> Result<bool, String> {
        let consumer: BaseConsumer = self
            .settings
            .kafka
            .client_config()
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .set(
                "group.id",
                format!("{}-settle", self.settings.transactional_id),
            )
            .create()
            .map_err(|e| e.to_string())?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(
            &self.settings.topic,
            at.partition,
            Offset::Offset(at.offset),
        )
        .map_err(|e| e.to_string())?;
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => return Ok(m.offset() == at.offset),
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    // At the last stable offset: past the record means it was skipped.
                    let position = consumer.position().ok().and_then(|tpl| {
                        tpl.find_partition(&self.settings.topic, at.partition)
                            .and_then(|e| e.offset().to_raw())
                    });
                    if position.is_some_and(|p| p > at.offset) {
                        return Ok(false);
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => {}
            }
        }
        Err("no answer within 30 s".into())
    }
}

/// Waits (briefly, bounded by `within`) until librdkafka's out queue is empty, so that the
/// flush inside `commit_transaction` finds nothing to wait for.
fn await_out_queue(p: &FutureProducer, within: Duration) {
    let deadline = Instant::now() + within;
    while p.in_flight_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Where each delivered record landed (`None` for a record not delivered).
fn positions(deliveries: Vec<DeliveryFuture>) -> Vec<Option<Position>> {
    deliveries
        .into_iter()
        .map(|d| match futures::executor::block_on(d) {
            Ok(Ok(delivery)) => Some(Position {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            _ => None,
        })
        .collect()
}

/// `Ok` for an abortable error (the transaction can only be aborted), `Err` for any other (the
/// producer is unusable).
fn classify(e: KafkaError) -> Result<String, String> {
    match &e {
        KafkaError::Transaction(t) if t.txn_requires_abort() && !t.is_fatal() => Ok(e.to_string()),
        _ => Err(e.to_string()),
    }
}
