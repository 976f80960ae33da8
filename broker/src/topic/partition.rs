//! One partition: its log behind a lock, and the high watermark, the end of what is durable and
//! therefore visible to consumers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use kafka_protocol::error::ResponseError;

use super::producer_state::{ProducerStates, Sequencing};
use crate::log::batch::validator::{self, ValidationError};
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

/// The log and the idempotent-producer state, changed together under one lock.
struct Inner {
    log: PartitionLog,
    producers: ProducerStates,
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
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `dir`. Everything that survived
    /// recovery is on disk, so it is all visible.
    pub fn open(topic: &str, index: i32, dir: &Path, config: LogConfig) -> Result<Self, LogError> {
        let log = PartitionLog::open(dir, config)?;
        let hw = log.log_end_offset();
        let producers = ProducerStates::rebuild(log.batch_headers_from(log.log_start_offset())?);
        Ok(Partition {
            topic: topic.to_string(),
            index,
            dir: dir.to_path_buf(),
            log: Mutex::new(Inner { log, producers }),
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
        // Decompressing and checking every record happens outside the partition lock, with a
        // copy of the config taken under it.
        let config = self.log.lock().config().clone();
        let validated = validator::validate(records, &config, crate::now_ms())?;
        let mut inner = self.log.lock();
        let headers = validated.headers();
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
        }
        Ok(Appended {
            base_offset: info.base_offset,
            duplicate: false,
        })
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
        let log = self.log.lock();
        let hw = self.high_watermark();
        let log_start_offset = log.log_start_offset();
        if offset > hw && offset <= log.log_end_offset() {
            // Appended but not yet durable: nothing to show yet, and not out of range.
            return Ok(ReadResult {
                records: Bytes::new(),
                high_watermark: hw,
                log_start_offset,
            });
        }
        let records = log.read(offset, max_bytes, hw)?;
        Ok(ReadResult {
            records,
            high_watermark: hw,
            log_start_offset,
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
        self.log.lock().delete_records_before(offset)
    }

    /// Deletes closed segments past the retention limits.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        self.log.lock().enforce_retention(now_ms)
    }

    /// One log cleaner pass if the log is compacted and dirty enough (see [`cleaner`]). Only
    /// records below the high watermark are considered; the lock is taken only briefly.
    pub fn clean(&self, now_ms: i64) -> Result<Option<CleanStats>, LogError> {
        let upper = self.high_watermark();
        cleaner::clean_log(
            || parking_lot::MutexGuard::map(self.log.lock(), |inner| &mut inner.log),
            upper,
            now_ms,
            false,
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
