//! The transaction coordinator (KIP-98, with KIP-360/KIP-588 epoch bumps), as Kafka's
//! `TransactionCoordinator` runs it, for the one broker there is:
//!
//! ```text
//! Empty/Complete* ──AddPartitions/AddOffsets──▶ Ongoing ──EndTxn──▶ PrepareCommit|PrepareAbort
//!        ▲                                        │ InitProducerId,        │ markers written
//!        │                                        │ timeout (epoch bump)   ▼ and durable
//!        └────────────────────────────────────────┴──────────────▶ CompleteCommit|CompleteAbort
//! ```
//!
//! Every state a client was told about is durable first: each change is appended to the
//! compacted internal topic `__transaction_state` (see [`record`]) and answered only once the
//! flusher has made it durable. Ending a transaction writes `Prepare*` (the decision), then a
//! commit or abort marker to every partition of the transaction (made durable), applies the
//! transaction's consumer-group offsets (on commit), then `Complete*`. A restarted broker replays
//! the topic and finishes what was cut short: a prepared transaction is completed as decided, an
//! ongoing one is aborted (with the epoch bumped, fencing its producer).
//!
//! `Complete*` is the one record nobody waits for: it is appended once the markers are durable,
//! and the id's next request goes ahead at once, so a producer's next transaction waits for one
//! fdatasync after EndTxn (the markers'), not two. It becomes durable with the next fdatasync of
//! `__transaction_state` (typically that next transaction's AddPartitionsToTxn, whose record
//! follows it in the log), or on its own after [`COMPLETE_FLUSH_DELAY`] if none came. Why a crash
//! before then is harmless: the restarted coordinator finds `Prepare*` and completes the
//! transaction again, writing the same markers once more and applying the same offsets. Those
//! markers close nothing else: a later transaction of the same producer can put records in a
//! partition only once its AddPartitionsToTxn is durable, and that record comes after
//! `Complete*` in the log, so then `Complete*` is durable too and nothing is completed again.
//! (Offsets a plain OffsetCommit stored for the same group in that window would be set back to
//! the transaction's, as they already could be between the offsets and a durable `Complete*`.)
//!
//! Produce checks a transactional batch against the coordinator under the partition lock (see
//! [`TxnCoordinator::verify_produce`]): only the producer's current epoch, and only partitions
//! added to its ongoing transaction, so no data can land after a transaction's marker (a
//! "hanging" transaction would hold the last stable offset back for ever).
//!
//! Requests of one transactional id are serialised by its own async lock; different ids run
//! concurrently.

pub mod record;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use crate::broker::Broker;
use crate::flush::Flusher;
use crate::group::offsets::Committed;
use crate::log::BatchHeader;
use crate::topic::internal::{append_state_records, open_state_partition, replay_state};
use crate::topic::txn_index::{ABORT, COMMIT};
use crate::topic::{Partition, TopicError, TopicRegistry};

/// The internal topic holding transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// How long a `Complete*` record waits for another change of `__transaction_state` to make it
/// durable before it is flushed on its own (see the module docs).
pub const COMPLETE_FLUSH_DELAY: Duration = Duration::from_millis(20);

/// A transaction's state (Kafka's `TransactionState`, with its ids and names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
        }
    }

    pub fn from_id(id: i8) -> Option<Self> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    pub const ALL: [TxnState; 6] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ];
}

/// Everything the coordinator knows about one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMeta {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions of the current (or last) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Consumer groups added with AddOffsetsToTxn.
    pub groups: BTreeSet<String>,
    /// Offsets sent with TxnOffsetCommit, committed with the transaction.
    pub offsets: GroupOffsets,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl TxnMeta {
    /// A new id: epoch -1, so the first InitProducerId gives epoch 0.
    pub fn new(producer_id: i64, timeout_ms: i32) -> Self {
        TxnMeta {
            producer_id,
            producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            offsets: BTreeMap::new(),
            start_ms: -1,
            last_update_ms: crate::now_ms(),
        }
    }
}

type Shared = Arc<tokio::sync::Mutex<TxnMeta>>;

/// Offsets to commit per consumer group.
pub type GroupOffsets = BTreeMap<String, Vec<((String, i32), Committed)>>;

/// What the coordinator has published (made durable) about every id, read without waiting.
#[derive(Default)]
struct Published {
    by_id: HashMap<String, TxnMeta>,
    /// Producer id → transactional id.
    by_pid: HashMap<i64, String>,
}

/// The transaction coordinator.
pub struct TxnCoordinator {
    partition: Arc<Partition>,
    flusher: Flusher,
    max_timeout_ms: i32,
    txns: Mutex<HashMap<String, Shared>>,
    published: Mutex<Published>,
}

/// `PRODUCER_FENCED` for request versions that know it, `INVALID_PRODUCER_EPOCH` before
/// (Kafka's responses do this translation for old clients).
pub fn fenced(version: i16, knows_fenced_from: i16) -> ResponseError {
    if version >= knows_fenced_from {
        ResponseError::ProducerFenced
    } else {
        ResponseError::InvalidProducerEpoch
    }
}

fn check_producer(meta: &TxnMeta, producer_id: i64, epoch: i16) -> Result<(), ResponseError> {
    if meta.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != epoch {
        return Err(ResponseError::ProducerFenced);
    }
    Ok(())
}

impl TxnCoordinator {
    /// Creates the internal topic if needed and replays it. Unfinished transactions are
    /// finished by [`TxnCoordinator::recover`] once the broker is up.
    pub async fn open(
        topics: &TopicRegistry,
        flusher: Flusher,
        max_timeout_ms: i32,
    ) -> Result<Self, TopicError> {
        let partition = open_state_partition(topics, TXN_TOPIC).await?;
        let states = replay(&partition)?;
        tracing::info!(transactional_ids = states.len(), "loaded transaction state");
        let mut published = Published::default();
        let mut txns = HashMap::new();
        for (id, meta) in states {
            published.by_pid.insert(meta.producer_id, id.clone());
            txns.insert(id.clone(), Arc::new(tokio::sync::Mutex::new(meta.clone())));
            published.by_id.insert(id, meta);
        }
        Ok(TxnCoordinator {
            partition,
            flusher,
            max_timeout_ms,
            txns: Mutex::new(txns),
            published: Mutex::new(published),
        })
    }

    /// Finishes what a crash cut short: prepared transactions are completed as decided, ongoing
    /// ones aborted with the epoch bumped.
    pub async fn recover(&self, broker: &Broker) {
        let all: Vec<(String, Shared)> = self
            .txns
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, shared) in all {
            let mut meta = shared.lock().await;
            let result = match meta.state {
                TxnState::PrepareCommit => self.complete(broker, &id, &mut meta).await,
                TxnState::PrepareAbort => self.complete(broker, &id, &mut meta).await,
                TxnState::Ongoing => self.abort_fencing(broker, &id, &mut meta).await,
                _ => Ok(()),
            };
            match result {
                Ok(()) => tracing::info!(transactional_id = %id, state = meta.state.name(),
                    "recovered transaction"),
                Err(e) => tracing::error!(transactional_id = %id, error = %e,
                    "could not finish a transaction after the restart"),
            }
        }
        // Now no transaction is open for the coordinator, so a transaction still open in a
        // partition belongs to no one (none is expected: states are durable before produce may
        // use them, markers before Complete): abort it there, or it would hold that partition's
        // last stable offset back for good.
        for topic in broker.topics.all() {
            for partition in topic.partitions() {
                for (producer_id, epoch) in partition.open_transactions() {
                    if self.undecided_owner(producer_id, &topic.name, partition.index) {
                        // Decided but not completed (its completion failed above): a later
                        // EndTxn, InitProducerId or the timeout task completes it as decided.
                        continue;
                    }
                    tracing::warn!(topic = %topic.name, partition = partition.index, producer_id,
                        "aborting a transaction its coordinator does not know");
                    let marker = partition.append_marker(producer_id, epoch, ABORT, 0);
                    let synced = match marker {
                        Ok(_) => self.flusher.commit(partition.clone()).await,
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = synced {
                        tracing::error!(topic = %topic.name, partition = partition.index,
                            error = %e, "could not abort an orphaned transaction");
                    }
                }
            }
        }
    }

    /// Whether `producer_id`'s transactional id has an undecided or uncompleted transaction
    /// including `topic`-`partition`.
    fn undecided_owner(&self, producer_id: i64, topic: &str, partition: i32) -> bool {
        let p = self.published.lock();
        p.by_pid
            .get(&producer_id)
            .and_then(|id| p.by_id.get(id))
            .is_some_and(|m| {
                m.state != TxnState::Empty
                    && !matches!(m.state, TxnState::CompleteCommit | TxnState::CompleteAbort)
                    && m.partitions.contains(&(topic.to_string(), partition))
            })
    }

    fn shared(&self, id: &str) -> Option<Shared> {
        self.txns.lock().get(id).cloned()
    }

    /// Appends `meta` for `id` to `__transaction_state` (not waiting for it to be durable);
    /// returns the record's offset.
    fn append_state(&self, id: &str, meta: &mut TxnMeta) -> Result<i64, ResponseError> {
        meta.last_update_ms = crate::now_ms();
        let records = [(record::encode_key(id), Some(record::encode_value(meta)))];
        let stored = append_state_records(&self.partition, "transaction state", &records);
        stored.map_err(|e| {
            tracing::error!(transactional_id = id, error = %e, "could not store transaction state");
            ResponseError::KafkaStorageError
        })
    }

    /// Appends `meta` for `id` to `__transaction_state`, waits until it is durable, then
    /// publishes it.
    async fn persist(&self, id: &str, meta: &mut TxnMeta) -> Result<(), ResponseError> {
        self.append_state(id, meta)?;
        if let Err(e) = self.flusher.commit(self.partition.clone()).await {
            tracing::error!(transactional_id = id, error = %e, "could not sync transaction state");
            return Err(ResponseError::KafkaStorageError);
        }
        // Published (and so checked by produce) only once durable: a partition never gets
        // transactional records of a transaction that a crash could make the coordinator forget.
        self.publish(id, meta);
        Ok(())
    }

    fn publish(&self, id: &str, meta: &TxnMeta) {
        let mut p = self.published.lock();
        let old_pid = p.by_id.get(id).map(|old| old.producer_id);
        if let Some(old_pid) = old_pid.filter(|pid| *pid != meta.producer_id) {
            p.by_pid.remove(&old_pid);
        }
        p.by_pid.insert(meta.producer_id, id.to_string());
        p.by_id.insert(id.to_string(), meta.clone());
    }

    /// Whether a transactional batch may be appended to `topic`-`partition`: its producer's
    /// current epoch, with the partition in its ongoing transaction. Called under the
    /// partition's lock, so a marker cannot come between this check and the append.
    pub fn verify_produce(
        &self,
        h: &BatchHeader,
        topic: &str,
        partition: i32,
    ) -> Result<(), ResponseError> {
        if !h.is_transactional() {
            return Ok(());
        }
        let p = self.published.lock();
        let meta = p
            .by_pid
            .get(&h.producer_id)
            .and_then(|id| p.by_id.get(id))
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if h.producer_epoch < meta.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if h.producer_epoch != meta.producer_epoch
            || meta.state != TxnState::Ongoing
            || !meta.partitions.contains(&(topic.to_string(), partition))
        {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(())
    }

    /// InitProducerId with a transactional id: the producer id and a bumped epoch, after
    /// aborting any transaction the previous instance left open (fencing it).
    pub async fn init_producer_id(
        &self,
        broker: &Broker,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let shared = match self.shared(id) {
            Some(s) => s,
            None => {
                let pid = broker.producer_ids.next().map_err(|e| {
                    tracing::error!(error = %e, "could not reserve producer ids");
                    ResponseError::KafkaStorageError
                })?;
                self.txns
                    .lock()
                    .entry(id.to_string())
                    .or_insert_with(|| {
                        Arc::new(tokio::sync::Mutex::new(TxnMeta::new(pid, timeout_ms)))
                    })
                    .clone()
            }
        };
        let mut meta = shared.lock().await;
        if let Some((pid, epoch)) = expected {
            // KIP-360: a producer bumping its own epoch must still be the current one.
            if pid != meta.producer_id || epoch != meta.producer_epoch {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                self.complete(broker, id, &mut meta).await?
            }
            TxnState::Ongoing => self.abort_fencing(broker, id, &mut meta).await?,
            _ => {}
        }
        bump_epoch(broker, &mut meta)?;
        meta.timeout_ms = timeout_ms;
        meta.state = TxnState::Empty;
        meta.partitions.clear();
        meta.groups.clear();
        meta.offsets.clear();
        meta.start_ms = -1;
        self.persist(id, &mut meta).await?;
        Ok((meta.producer_id, meta.producer_epoch))
    }

    /// The checks AddPartitionsToTxn, AddOffsetsToTxn and TxnOffsetCommit share.
    async fn ongoing(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<tokio::sync::OwnedMutexGuard<TxnMeta>, ResponseError> {
        let shared = self
            .shared(id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let meta = shared.lock_owned().await;
        check_producer(&meta, producer_id, epoch)?;
        if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(meta)
    }

    /// Starts the transaction if it is not ongoing yet.
    fn begin(meta: &mut TxnMeta) {
        if meta.state != TxnState::Ongoing {
            meta.state = TxnState::Ongoing;
            meta.start_ms = crate::now_ms();
            meta.partitions.clear();
            meta.groups.clear();
            meta.offsets.clear();
        }
    }

    /// AddPartitionsToTxn (the partitions are known to exist).
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), ResponseError> {
        let mut meta = self.ongoing(id, producer_id, epoch).await?;
        if meta.state == TxnState::Ongoing && partitions.iter().all(|p| meta.partitions.contains(p))
        {
            return Ok(());
        }
        Self::begin(&mut meta);
        meta.partitions.extend(partitions);
        self.persist(id, &mut meta).await
    }

    /// AddOffsetsToTxn.
    pub async fn add_offsets(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
    ) -> Result<(), ResponseError> {
        let mut meta = self.ongoing(id, producer_id, epoch).await?;
        if meta.state == TxnState::Ongoing && meta.groups.contains(group) {
            return Ok(());
        }
        Self::begin(&mut meta);
        meta.groups.insert(group.to_string());
        self.persist(id, &mut meta).await
    }

    /// TxnOffsetCommit: remembers offsets to commit for `group` with the transaction (they
    /// become durable with its decision, see [`record`]).
    pub async fn txn_offset_commit(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
        offsets: Vec<((String, i32), Committed)>,
    ) -> Result<(), ResponseError> {
        let mut meta = self.ongoing(id, producer_id, epoch).await?;
        if meta.state != TxnState::Ongoing || !meta.groups.contains(group) {
            return Err(ResponseError::InvalidTxnState);
        }
        let pending = meta.offsets.entry(group.to_string()).or_default();
        for (key, value) in offsets {
            pending.retain(|(k, _)| *k != key);
            pending.push((key, value));
        }
        let snapshot = meta.clone();
        self.publish(id, &snapshot);
        Ok(())
    }

    /// EndTxn: commits or aborts the ongoing transaction; a retry of a finished one succeeds.
    ///
    /// The answer goes out once the decision (`Prepare*`) is durable, as Kafka's coordinator
    /// answers before its markers are written: from then on the transaction commits (or aborts)
    /// whatever happens, a restart included. The markers (durable), the group offsets and
    /// `Complete*` (appended, not waited for) follow in the background, holding the id's lock,
    /// so the producer's next request waits for them (where Kafka answers
    /// CONCURRENT_TRANSACTIONS and the client retries).
    pub async fn end_txn(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let shared = self
            .shared(id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let mut meta = shared.lock_owned().await;
        check_producer(&meta, producer_id, epoch)?;
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                meta.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                if !commit {
                    meta.offsets.clear();
                }
                self.persist(id, &mut meta).await?;
                let broker = broker.clone();
                let id = id.to_string();
                tokio::spawn(async move {
                    if let Err(e) = broker.txns.complete(&broker, &id, &mut meta).await {
                        // Finished later: by a retried EndTxn, the next InitProducerId, the
                        // timeout task or a restart.
                        tracing::error!(transactional_id = %id, error = %e,
                            "could not complete a decided transaction");
                    }
                });
                Ok(())
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            // Left prepared by a failed write: finish it now.
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                self.complete(broker, id, &mut meta).await
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Aborts an ongoing transaction with the epoch bumped first, so its producer is fenced
    /// (InitProducerId by a new instance, the transaction timeout, recovery).
    async fn abort_fencing(
        &self,
        broker: &Broker,
        id: &str,
        meta: &mut TxnMeta,
    ) -> Result<(), ResponseError> {
        bump_epoch(broker, meta)?;
        meta.state = TxnState::PrepareAbort;
        meta.offsets.clear();
        self.persist(id, meta).await?;
        self.complete(broker, id, meta).await
    }

    /// From `Prepare*`: writes the markers (durably), applies the offsets on commit, and appends
    /// `Complete*` (made durable later, see the module docs).
    async fn complete(
        &self,
        broker: &Broker,
        id: &str,
        meta: &mut TxnMeta,
    ) -> Result<(), ResponseError> {
        let commit = match meta.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return Ok(()),
        };
        let kind = if commit { COMMIT } else { ABORT };
        let mut written = Vec::new();
        for (topic, index) in &meta.partitions {
            let Some(partition) = broker.topics.get(topic).and_then(|t| t.partition(*index)) else {
                // Deleted since: nothing left to mark.
                continue;
            };
            if let Err(e) = partition.append_marker(meta.producer_id, meta.producer_epoch, kind, 0)
            {
                tracing::error!(transactional_id = id, topic, partition = index, error = %e,
                    "could not write a transaction marker");
                return Err(ResponseError::KafkaStorageError);
            }
            written.push(partition);
        }
        let synced = join_all(
            written
                .into_iter()
                .map(|p| self.flusher.commit(p))
                .collect::<Vec<_>>(),
        )
        .await;
        if let Some(Err(e)) = synced.into_iter().find(|r| r.is_err()) {
            tracing::error!(transactional_id = id, error = %e, "could not sync transaction markers");
            return Err(ResponseError::KafkaStorageError);
        }
        if commit {
            for (group, offsets) in std::mem::take(&mut meta.offsets) {
                if let Err(e) = broker.offsets.commit(&group, offsets).await {
                    tracing::error!(transactional_id = id, group, error = %e,
                        "could not commit the transaction's offsets");
                    return Err(ResponseError::KafkaStorageError);
                }
            }
        }
        meta.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        meta.offsets.clear();
        // Not waited for (see the module docs): the next record of the log makes it durable, or
        // the flush below if none comes first.
        let offset = self.append_state(id, meta)?;
        self.publish(id, meta);
        let (partition, flusher) = (self.partition.clone(), self.flusher.clone());
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(COMPLETE_FLUSH_DELAY).await;
            if partition.high_watermark() > offset {
                return;
            }
            if let Err(e) = flusher.commit(partition).await {
                tracing::error!(transactional_id = %id, error = %e,
                    "could not sync a completed transaction's state");
            }
        });
        Ok(())
    }

    /// Aborts (fencing their producers) the ongoing transactions older than their timeout, and
    /// completes decided ones whose completion failed.
    pub async fn abort_timed_out(&self, broker: &Broker) {
        let now = crate::now_ms();
        let due: Vec<String> = self
            .published
            .lock()
            .by_id
            .iter()
            .filter(|(_, m)| {
                matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
                    || (m.state == TxnState::Ongoing
                        && now.saturating_sub(m.start_ms) > i64::from(m.timeout_ms))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(shared) = self.shared(&id) else {
                continue;
            };
            // A transaction being worked on right now (or being completed) is left alone.
            let Ok(mut meta) = shared.try_lock() else {
                continue;
            };
            if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                // A decided transaction whose completion failed: try again.
                if let Err(e) = self.complete(broker, &id, &mut meta).await {
                    tracing::error!(transactional_id = %id, error = %e, "could not complete a decided transaction");
                }
                continue;
            }
            if meta.state != TxnState::Ongoing
                || now.saturating_sub(meta.start_ms) <= i64::from(meta.timeout_ms)
            {
                continue;
            }
            tracing::info!(transactional_id = %id, producer_id = meta.producer_id,
                timeout_ms = meta.timeout_ms, "aborting a transaction past its timeout");
            if let Err(e) = self.abort_fencing(broker, &id, &mut meta).await {
                tracing::error!(transactional_id = %id, error = %e, "could not abort a timed-out transaction");
            }
        }
    }

    /// Whether an undecided (ongoing or prepared-to-commit) transaction holds offsets for
    /// `group` on `topic`-`partition` (OffsetFetch with `require_stable`).
    pub fn has_pending_offsets(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.published.lock().by_id.values().any(|m| {
            matches!(m.state, TxnState::Ongoing | TxnState::PrepareCommit)
                && m.offsets.get(group).is_some_and(|offsets| {
                    offsets
                        .iter()
                        .any(|((t, p), _)| t == topic && *p == partition)
                })
        })
    }

    /// The published state of one id.
    pub fn describe(&self, id: &str) -> Option<TxnMeta> {
        self.published.lock().by_id.get(id).cloned()
    }

    /// The published state of every id, sorted by id.
    pub fn list(&self) -> Vec<(String, TxnMeta)> {
        let mut all: Vec<(String, TxnMeta)> = self
            .published
            .lock()
            .by_id
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The next epoch, or a new producer id at epoch 0 when the epoch is exhausted.
fn bump_epoch(broker: &Broker, meta: &mut TxnMeta) -> Result<(), ResponseError> {
    if meta.producer_epoch >= i16::MAX - 1 {
        meta.producer_id = broker.producer_ids.next().map_err(|e| {
            tracing::error!(error = %e, "could not reserve producer ids");
            ResponseError::KafkaStorageError
        })?;
        meta.producer_epoch = 0;
    } else {
        meta.producer_epoch += 1;
    }
    Ok(())
}

fn replay(partition: &Partition) -> Result<HashMap<String, TxnMeta>, TopicError> {
    let mut states = HashMap::new();
    replay_state(partition, |key, value| {
        let Some(id) = record::decode_key(key) else {
            return;
        };
        match value {
            None => {
                states.remove(&id);
            }
            Some(v) => match record::decode_value(v) {
                Some(meta) => {
                    states.insert(id, meta);
                }
                None => {
                    tracing::warn!(transactional_id = %id, "unreadable transaction state record")
                }
            },
        }
    })?;
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Advertised;
    use crate::config::Config;
    use crate::log::batch::builder::BatchBuilder;
    use crate::topic::{Isolation, TopicConfigs};

    fn advertised() -> Advertised {
        Advertised {
            host: "127.0.0.1".into(),
            port: 9092,
        }
    }

    /// Appends one transactional record of `pid`/`epoch` at `seq` through the coordinator's
    /// produce check.
    fn produce(
        broker: &Broker,
        topic: &str,
        pid: i64,
        epoch: i16,
        seq: i32,
    ) -> Result<i64, crate::topic::AppendError> {
        let partition = broker
            .topics
            .get(topic)
            .and_then(|t| t.partition(0))
            .expect("partition");
        let mut builder = BatchBuilder::new()
            .producer(pid, epoch, seq)
            .transactional(true);
        builder.record(Some(b"k"), Some(b"v"), crate::now_ms());
        let mut batch = builder.build().expect("batch");
        partition
            .append_verified(&mut batch, |h| broker.txns.verify_produce(h, topic, 0))
            .map(|a| a.base_offset)
    }

    /// Leaves `id`'s transaction in `state` with its record durable and nothing else done:
    /// what a crash right after the decision (or during the transaction) leaves behind.
    async fn leave_in(broker: &Broker, id: &str, state: TxnState) {
        let shared = broker.txns.shared(id).expect("txn");
        let mut meta = shared.lock().await;
        meta.state = state;
        broker.txns.persist(id, &mut meta).await.expect("persist");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unfinished_transactions_are_finished_after_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::for_data_dir(dir.path());
        let broker = Broker::open(config.clone(), advertised())
            .await
            .expect("open");
        let mut producers = Vec::new();
        for (id, topic, state) in [
            ("commit", "t-commit", TxnState::PrepareCommit),
            ("abort", "t-abort", TxnState::PrepareAbort),
            ("open", "t-open", TxnState::Ongoing),
        ] {
            broker
                .topics
                .create(topic, 1, 1, TopicConfigs::default())
                .await
                .expect("create");
            let (pid, epoch) = broker
                .txns
                .init_producer_id(&broker, id, 60_000, None)
                .await
                .expect("init");
            // Not added to the transaction yet: refused.
            assert!(matches!(
                produce(&broker, topic, pid, epoch, 0),
                Err(crate::topic::AppendError::Transaction(
                    ResponseError::InvalidTxnState
                ))
            ));
            broker
                .txns
                .add_partitions(id, pid, epoch, vec![(topic.to_string(), 0)])
                .await
                .expect("add partitions");
            assert_eq!(produce(&broker, topic, pid, epoch, 0).expect("append"), 0);
            let partition = broker.topics.get(topic).and_then(|t| t.partition(0));
            let partition = partition.expect("partition");
            broker
                .flusher
                .commit(partition.clone())
                .await
                .expect("sync");
            assert_eq!(partition.high_watermark(), 1);
            assert_eq!(partition.last_stable_offset(), 0);
            leave_in(&broker, id, state).await;
            producers.push((id, topic, pid, epoch));
        }
        // No graceful shutdown: only what is durable is there for the next run.
        drop(broker);

        let broker = Arc::new(Broker::open(config, advertised()).await.expect("reopen"));
        for (id, topic, pid, epoch) in producers {
            let partition = broker.topics.get(topic).and_then(|t| t.partition(0));
            let partition = partition.expect("partition");
            // Data and marker, and nothing held back any more.
            assert_eq!(partition.high_watermark(), 2, "{id}");
            assert_eq!(partition.last_stable_offset(), 2, "{id}");
            let read = partition
                .read_isolated(0, 1 << 20, Isolation::ReadCommitted)
                .expect("read");
            let meta = broker.txns.describe(id).expect("state");
            if id == "commit" {
                assert!(read.aborted.is_empty());
                assert_eq!(meta.state, TxnState::CompleteCommit);
                assert_eq!(meta.producer_epoch, epoch);
            } else {
                assert_eq!(read.aborted.len(), 1, "{id}");
                assert_eq!(read.aborted[0].producer_id, pid);
                assert_eq!(read.aborted[0].first_offset, 0);
                assert_eq!(meta.state, TxnState::CompleteAbort);
            }
            if id == "open" {
                // Aborted by the coordinator, not its producer: the epoch was bumped, so the
                // old instance is fenced.
                assert_eq!(meta.producer_epoch, epoch + 1);
                assert!(matches!(
                    produce(&broker, topic, pid, epoch, 1),
                    Err(crate::topic::AppendError::Transaction(
                        ResponseError::InvalidProducerEpoch
                    ))
                ));
                assert_eq!(
                    broker.txns.end_txn(&broker, id, pid, epoch, true).await,
                    Err(ResponseError::ProducerFenced)
                );
            }
            // After completion nothing more may be written in that transaction.
            assert!(produce(&broker, topic, pid, meta.producer_epoch, 1).is_err());
        }
    }

    /// `Complete*` is not waited for: a crash right after a commit completes it again at most,
    /// and a crash during the producer's next transaction (begun once the markers were durable)
    /// aborts that one without committing any of its records with the first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_before_complete_is_durable_commits_nothing_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::for_data_dir(dir.path());
        let broker = Arc::new(
            Broker::open(config.clone(), advertised())
                .await
                .expect("open"),
        );
        let mut epochs = Vec::new();
        for (id, topic) in [("next", "t-next"), ("idle", "t-idle")] {
            broker
                .topics
                .create(topic, 1, 1, TopicConfigs::default())
                .await
                .expect("create");
            let (pid, epoch) = broker
                .txns
                .init_producer_id(&broker, id, 60_000, None)
                .await
                .expect("init");
            let partitions = vec![(topic.to_string(), 0)];
            broker
                .txns
                .add_partitions(id, pid, epoch, partitions.clone())
                .await
                .expect("add partitions");
            assert_eq!(produce(&broker, topic, pid, epoch, 0).expect("append"), 0);
            let partition = broker.topics.get(topic).and_then(|t| t.partition(0));
            let partition = partition.expect("partition");
            broker
                .flusher
                .commit(partition.clone())
                .await
                .expect("sync");
            broker
                .txns
                .end_txn(&broker, id, pid, epoch, true)
                .await
                .expect("commit");
            if id == "next" {
                // Waits for the markers (offset 1), then begins the next transaction.
                broker
                    .txns
                    .add_partitions(id, pid, epoch, partitions)
                    .await
                    .expect("add partitions again");
                assert_eq!(produce(&broker, topic, pid, epoch, 1).expect("append"), 2);
                broker
                    .flusher
                    .commit(partition.clone())
                    .await
                    .expect("sync");
            } else {
                // Only the completion (the id's lock), not `Complete*` being durable.
                let shared = broker.txns.shared(id).expect("txn");
                drop(shared.lock().await);
                assert_eq!(
                    broker.txns.describe(id).map(|m| m.state),
                    Some(TxnState::CompleteCommit)
                );
            }
            epochs.push((id, topic, epoch));
        }
        // No graceful shutdown: only what is durable is there for the next run.
        drop(broker);

        let broker = Arc::new(Broker::open(config, advertised()).await.expect("reopen"));
        for (id, topic, epoch) in epochs {
            let partition = broker.topics.get(topic).and_then(|t| t.partition(0));
            let partition = partition.expect("partition");
            assert_eq!(
                partition.last_stable_offset(),
                partition.high_watermark(),
                "{id}"
            );
            let read = partition
                .read_isolated(0, 1 << 20, Isolation::ReadCommitted)
                .expect("read");
            let meta = broker.txns.describe(id).expect("state");
            if id == "next" {
                // The first transaction's record (offset 0) committed, the second's aborted.
                assert_eq!(read.aborted.len(), 1);
                assert_eq!(read.aborted[0].first_offset, 2);
                assert_eq!(meta.state, TxnState::CompleteAbort);
                assert_eq!(meta.producer_epoch, epoch + 1);
            } else {
                // Committed; its marker written once more if `Complete*` was not durable yet.
                assert!(read.aborted.is_empty());
                assert!((2..=3).contains(&partition.high_watermark()));
                assert_eq!(meta.state, TxnState::CompleteCommit);
                assert_eq!(meta.producer_epoch, epoch);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_no_coordinator_knows_is_aborted_at_startup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::for_data_dir(dir.path());
        let broker = Broker::open(config.clone(), advertised())
            .await
            .expect("open");
        broker
            .topics
            .create("t", 1, 1, TopicConfigs::default())
            .await
            .expect("create");
        let partition = broker.topics.get("t").and_then(|t| t.partition(0));
        let partition = partition.expect("partition");
        // Transactional records of a producer the coordinator never heard of (written past
        // the produce check, as only a bug or a lost state could).
        let mut builder = BatchBuilder::new().producer(999, 3, 0).transactional(true);
        builder.record(Some(b"k"), Some(b"v"), crate::now_ms());
        partition
            .append(&mut builder.build().expect("batch"))
            .expect("append");
        broker
            .flusher
            .commit(partition.clone())
            .await
            .expect("sync");
        assert_eq!(partition.last_stable_offset(), 0);
        drop((partition, broker));

        let broker = Broker::open(config, advertised()).await.expect("reopen");
        let partition = broker.topics.get("t").and_then(|t| t.partition(0));
        let partition = partition.expect("partition");
        assert_eq!(partition.high_watermark(), 2);
        assert_eq!(partition.last_stable_offset(), 2);
        let read = partition
            .read_isolated(0, 1 << 20, Isolation::ReadCommitted)
            .expect("read");
        assert_eq!(read.aborted.len(), 1);
        assert_eq!(read.aborted[0].producer_id, 999);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn end_txn_follows_kafkas_state_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Arc::new(
            Broker::open(Config::for_data_dir(dir.path()), advertised())
                .await
                .expect("open"),
        );
        broker
            .topics
            .create("t", 1, 1, TopicConfigs::default())
            .await
            .expect("create");
        let txns = &broker.txns;
        assert_eq!(
            txns.init_producer_id(&broker, "x", 0, None).await,
            Err(ResponseError::InvalidTransactionTimeout)
        );
        assert_eq!(
            txns.init_producer_id(&broker, "x", 900_001, None).await,
            Err(ResponseError::InvalidTransactionTimeout)
        );
        let (pid, epoch) = txns
            .init_producer_id(&broker, "x", 60_000, None)
            .await
            .expect("init");
        // Nothing begun: EndTxn is invalid.
        assert_eq!(
            txns.end_txn(&broker, "x", pid, epoch, true).await,
            Err(ResponseError::InvalidTxnState)
        );
        assert_eq!(
            txns.add_partitions("x", pid + 1, epoch, vec![("t".into(), 0)])
                .await,
            Err(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(
            txns.add_partitions("x", pid, epoch + 1, vec![("t".into(), 0)])
                .await,
            Err(ResponseError::ProducerFenced)
        );
        txns.add_partitions("x", pid, epoch, vec![("t".into(), 0)])
            .await
            .expect("add");
        assert_eq!(
            txns.txn_offset_commit("x", pid, epoch, "g", Vec::new())
                .await,
            Err(ResponseError::InvalidTxnState),
            "offsets need AddOffsetsToTxn first"
        );
        txns.end_txn(&broker, "x", pid, epoch, true)
            .await
            .expect("commit");
        // A retried commit succeeds; an abort of the committed transaction does not.
        txns.end_txn(&broker, "x", pid, epoch, true)
            .await
            .expect("retried commit");
        assert_eq!(
            txns.end_txn(&broker, "x", pid, epoch, false).await,
            Err(ResponseError::InvalidTxnState)
        );
        // KIP-360: bumping with the current id and epoch works, with a stale one it is fenced.
        let (pid2, epoch2) = txns
            .init_producer_id(&broker, "x", 60_000, Some((pid, epoch)))
            .await
            .expect("bump");
        assert_eq!((pid2, epoch2), (pid, epoch + 1));
        assert_eq!(
            txns.init_producer_id(&broker, "x", 60_000, Some((pid, epoch)))
                .await,
            Err(ResponseError::ProducerFenced)
        );
    }
}
