//! One partition: its log behind a lock, and the high watermark, the end of what is durable and
//! therefore visible to consumers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use kafka_protocol::error::ResponseError;

use super::producer_state::{ProducerStates, Sequencing};
use super::txn_index::{self, AbortedTxn, PartitionTxns};
use crate::log::batch::validator::{self, ValidationError};
use crate::log::batch::BatchIter;
use crate::log::{cleaner, CleanStats, LogConfig, LogError, PartitionLog, SyncHandle};

/// A partition of a topic on this broker.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    dir: PathBuf,
    log: Mutex<Inner>,
    /// Offsets below this are durable under the flush policy; consumers read only below it, so
    /// nothing they see can be lost by a crash.
    high_watermark: AtomicI64,
}

/// The log, the idempotent-producer state and the partition's transactions, changed together
/// under one lock.
struct Inner {
    log: PartitionLog,
    producers: ProducerStates,
    txns: PartitionTxns,
}

impl std::ops::Deref for Inner {
    type Target = PartitionLog;
    fn deref(&self) -> &PartitionLog {
        &self.log
    }
}

impl std::ops::DerefMut for Inner {
    fn deref_mut(&mut self) -> &mut PartitionLog {
        &mut self.log
    }
}

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("idempotent producer: {}", .0)]
    Sequence(ResponseError),
    #[error("transactional producer: {}", .0)]
    Transaction(ResponseError),
    #[error("could not build a transaction marker: {0}")]
    Marker(#[from] crate::log::batch::builder::BuildError),
}

/// Where an append landed.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub base_offset: i64,
    /// A retry of batches already in the log: nothing was appended.
    pub duplicate: bool,
}

/// What a read returns besides the records.
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The last stable offset (see [`txn_index`]).
    pub last_stable_offset: i64,
    /// For a `read_committed` read: the aborted transactions with records in what was read.
    pub aborted: Vec<AbortedTxn>,
}

/// Which records a read may return (Fetch's `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything below the high watermark.
    ReadUncommitted,
    /// Only below the last stable offset, with the aborted transactions listed.
    ReadCommitted,
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `dir`. Everything that survived
    /// recovery is on disk, so it is all visible.
    pub fn open(topic: &str, index: i32, dir: &Path, config: LogConfig) -> Result<Self, LogError> {
        let log = PartitionLog::open(dir, config)?;
        let hw = log.log_end_offset();
        let headers = log.batch_headers_from(log.log_start_offset())?;
        let mut txns = PartitionTxns::default();
        for h in &headers {
            if h.is_control() {
                let batch = log.read(h.base_offset, 1, h.next_offset())?;
                match txn_index::marker_kind(&batch) {
                    Some(kind) => txns.on_marker(h.producer_id, kind, h.base_offset),
                    None => tracing::warn!(
                        topic,
                        partition = index,
                        offset = h.base_offset,
                        "control batch without a readable marker"
                    ),
                }
            } else {
                txns.on_data(h);
            }
        }
        let producers = ProducerStates::rebuild(headers);
        Ok(Partition {
            topic: topic.to_string(),
            index,
            dir: dir.to_path_buf(),
            log: Mutex::new(Inner {
                log,
                producers,
                txns,
            }),
            high_watermark: AtomicI64::new(hw),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Validates `records` (every record, see [`validator`]; they may be rewritten there) and
    /// appends them, assigning offsets, unless they are an idempotent producer's retry of
    /// batches already in the log. Nothing is appended if anything is invalid. Not yet durable:
    /// see [`Partition::sync`].
    pub fn append(&self, records: &mut Vec<u8>) -> Result<Appended, AppendError> {
        self.append_verified(records, |_| Ok(()))
    }

    /// [`Partition::append`], with `verify` called for every batch under the partition lock
    /// before anything is appended (the transaction coordinator's check of transactional
    /// batches, so that no marker can be written between the check and the append).
    pub fn append_verified(
        &self,
        records: &mut Vec<u8>,
        verify: impl Fn(&crate::log::BatchHeader) -> Result<(), ResponseError>,
    ) -> Result<Appended, AppendError> {
        // Decompressing and checking every record happens outside the partition lock, with a
        // copy of the config taken under it.
        let config = self.log.lock().config().clone();
        let validated = validator::validate(records, &config, crate::now_ms())?;
        let mut inner = self.log.lock();
        let headers = validated.headers();
        for h in headers {
            verify(h).map_err(AppendError::Transaction)?;
        }
        if let [first, rest @ ..] = headers {
            match inner
                .producers
                .check(first)
                .map_err(AppendError::Sequence)?
            {
                Sequencing::Duplicate { base_offset } if rest.is_empty() => {
                    return Ok(Appended {
                        base_offset,
                        duplicate: true,
                    })
                }
                Sequencing::Duplicate { .. } => {
                    return Err(AppendError::Sequence(
                        ResponseError::DuplicateSequenceNumber,
                    ))
                }
                Sequencing::Append => {}
            }
            // Further batches of one request must follow each other in sequence.
            for pair in headers.windows(2) {
                if let [a, b] = pair {
                    let follows = a.producer_id == b.producer_id
                        && a.producer_epoch == b.producer_epoch
                        && i64::from(b.base_sequence)
                            == (i64::from(a.base_sequence) + i64::from(a.last_offset_delta) + 1)
                                % (i64::from(i32::MAX) + 1);
                    if b.producer_id >= 0 && !follows {
                        return Err(AppendError::Sequence(
                            ResponseError::OutOfOrderSequenceNumber,
                        ));
                    }
                }
            }
        }
        let info = inner.log.append_validated(records, validated)?;
        for h in &info.batches {
            inner.producers.record(h, h.base_offset);
            inner.txns.on_data(h);
        }
        Ok(Appended {
            base_offset: info.base_offset,
            duplicate: false,
        })
    }

    /// Appends a commit or abort marker ([`txn_index::COMMIT`] / [`txn_index::ABORT`]) for
    /// `producer_id` at `epoch`, closing its transaction here; batches of that producer with an
    /// older epoch are refused from now on. Not yet durable: see [`Partition::sync`].
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        kind: i16,
        coordinator_epoch: i32,
    ) -> Result<i64, AppendError> {
        let mut batch =
            txn_index::marker_batch(producer_id, epoch, kind, coordinator_epoch, crate::now_ms())?;
        let mut inner = self.log.lock();
        let info = inner.log.append(&mut batch)?;
        inner.txns.on_marker(producer_id, kind, info.base_offset);
        inner.producers.fence(producer_id, epoch);
        Ok(info.base_offset)
    }

    /// Whether `producer_id` has a transaction open in this partition.
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        self.log.lock().txns.is_open(producer_id)
    }

    /// `(producer id, epoch)` of every transaction open in this partition.
    pub fn open_transactions(&self) -> Vec<(i64, i16)> {
        self.log.lock().txns.open()
    }

    /// The last stable offset: `read_committed` consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        let inner = self.log.lock();
        inner.txns.last_stable_offset(self.high_watermark())
    }

    /// Makes everything appended so far durable and visible.
    pub fn sync(&self) -> std::io::Result<i64> {
        let handle: SyncHandle = self.log.lock().sync_handle();
        let durable = handle.sync()?;
        self.advance_high_watermark(durable);
        Ok(durable)
    }

    /// Makes everything appended so far visible without an fsync (the `os` flush policy).
    pub fn publish_unsynced(&self) {
        let end = self.log.lock().log_end_offset();
        self.advance_high_watermark(end);
    }

    fn advance_high_watermark(&self, offset: i64) {
        self.high_watermark.fetch_max(offset, Ordering::AcqRel);
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.lock().log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.lock().log_end_offset()
    }

    /// Bytes of the partition's log segments.
    pub fn size_bytes(&self) -> u64 {
        self.log.lock().size_bytes()
    }

    /// Reads whole batches from `offset`, at most `max_bytes` (but at least one batch), below the
    /// high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_isolated(offset, max_bytes, Isolation::ReadUncommitted)
    }

    /// [`Partition::read`] with an isolation level: `ReadCommitted` reads below the last stable
    /// offset and lists the aborted transactions with records in what it returns.
    pub fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult, LogError> {
        let log = self.log.lock();
        let hw = self.high_watermark();
        let lso = log.txns.last_stable_offset(hw);
        let upper = match isolation {
            Isolation::ReadUncommitted => hw,
            Isolation::ReadCommitted => lso,
        };
        let log_start_offset = log.log_start_offset();
        let empty = |log_start_offset| ReadResult {
            records: Bytes::new(),
            high_watermark: hw,
            log_start_offset,
            last_stable_offset: lso,
            aborted: Vec::new(),
        };
        if offset > upper && offset <= log.log_end_offset() {
            // Appended but not yet durable (or not yet decided): nothing to show yet, and not
            // out of range.
            return Ok(empty(log_start_offset));
        }
        let records = log.read(offset, max_bytes, upper)?;
        let aborted = match isolation {
            Isolation::ReadCommitted if !records.is_empty() => {
                let end = BatchIter::new(&records)
                    .map(|(_, h)| h.next_offset())
                    .max()
                    .unwrap_or(offset);
                log.txns.aborted_in(offset, end)
            }
            _ => Vec::new(),
        };
        Ok(ReadResult {
            records,
            high_watermark: hw,
            log_start_offset,
            last_stable_offset: lso,
            aborted,
        })
    }

    /// The first offset whose batch has a timestamp at or after `ts`, with that timestamp.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let found = self.log.lock().offset_for_timestamp(ts)?;
        let hw = self.high_watermark();
        Ok(found.filter(|(offset, _)| *offset < hw))
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp_offset(&self) -> Option<(i64, i64)> {
        self.log.lock().max_timestamp_offset()
    }

    /// DeleteRecords: moves the log start offset forward.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let mut inner = self.log.lock();
        let start = inner.log.delete_records_before(offset)?;
        inner.txns.trim(start);
        Ok(start)
    }

    /// Deletes closed segments past the retention limits.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        let mut inner = self.log.lock();
        let deleted = inner.log.enforce_retention(now_ms)?;
        let start = inner.log.log_start_offset();
        inner.txns.trim(start);
        Ok(deleted)
    }

    /// One log cleaner pass if the log is compacted and dirty enough (see [`cleaner`]). Only
    /// records below the last stable offset are considered (every transaction there is decided),
    /// and records of aborted transactions neither shadow other records nor are removed (their
    /// markers stay too), so `read_committed` reads are the same after cleaning; the lock is
    /// taken only briefly.
    pub fn clean(&self, now_ms: i64) -> Result<Option<CleanStats>, LogError> {
        let (upper, aborted) = {
            let inner = self.log.lock();
            (
                inner.txns.last_stable_offset(self.high_watermark()),
                inner.txns.aborted().to_vec(),
            )
        };
        cleaner::clean_log_skipping(
            || parking_lot::MutexGuard::map(self.log.lock(), |inner| &mut inner.log),
            upper,
            now_ms,
            false,
            aborted
                .iter()
                .map(|a| (a.producer_id, a.first_offset, a.last_offset))
                .collect(),
        )
    }

    pub fn set_config(&self, config: LogConfig) {
        self.log.lock().set_config(config);
    }

    /// Flushes the log to disk (shutdown, deletion).
    pub fn flush(&self) -> Result<(), LogError> {
        let mut log = self.log.lock();
        log.flush()?;
        let end = log.log_end_offset();
        drop(log);
        self.advance_high_watermark(end);
        Ok(())
    }
}
