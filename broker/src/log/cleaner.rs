//! Log compaction (`cleanup.policy=compact`): the log cleaner.
//!
//! A compacted log keeps, for every key, at least its latest record. The cleaner works like
//! Kafka's:
//!
//! 1. **Plan** (under the partition lock, cheap): take a [`SegmentView`] (base, size and a shared
//!    handle on the file) of every segment. The *cleanable* segments are the closed segments,
//!    oldest first, entirely below `upper` (the high watermark: only durable records may make
//!    older ones obsolete) and, with `min.compaction.lag.ms`, old enough. A pass runs only when
//!    the *dirty ratio* — bytes of cleanable segments not cleaned since the broker started,
//!    over bytes of all cleanable segments — is at least `min.cleanable.dirty.ratio` (the first
//!    pass after a start therefore cleans every compacted log once).
//! 2. **Offset map** (no lock): read every record below `upper` — closed segments *and* the
//!    active segment — and remember the latest offset of each key, and the last batch of each
//!    producer id. Closed segments are immutable and the active one is only appended to, so
//!    reading through the shared file handles is safe.
//! 3. **Rewrite** (no lock), one cleanable segment at a time, into `<base>.log.cleaned` (+ its
//!    `.index.cleaned` / `.timeindex.cleaned`), then fsync. A record is kept if it is the latest
//!    of its key (or has a null key); a kept tombstone (null value) is dropped once its
//!    timestamp is more than `delete.retention.ms` old (**the delete horizon is based on the
//!    record's timestamp**, or the segment's largest timestamp / mtime if it has none, not on
//!    the time the segment was first cleaned as in Kafka). Control batches are kept as they are.
//!    A batch whose records all survive is copied verbatim. Otherwise the survivors are written
//!    as a new batch with the *original* base offset, `lastOffsetDelta`, base timestamp,
//!    producer id/epoch/base sequence and attributes; record bytes are copied unchanged (their
//!    offset and timestamp deltas stay relative to the unchanged base), re-compressed with the
//!    batch's codec; `batchLength`, `recordCount`, `maxTimestamp` (CreateTime) and the CRC are
//!    recomputed. A batch with no survivor is dropped, except the last batch of a producer id,
//!    which is kept as an empty batch (header only, `recordCount` 0) so that the
//!    idempotent-producer state rebuilt from the log on start still knows its last sequence.
//! 4. **Swap** (under the lock, a few renames): check that the segment is still the one that
//!    was read (retention may have deleted it meanwhile), then rename the `.cleaned` files to
//!    `.swap` (the log file last: that rename is the commit point), fsync the directory,
//!    rename the `.swap` files to the live names (indexes first), fsync again and reopen the
//!    segment. A cleaned segment that ends up empty is deleted instead (its offsets become a
//!    gap at the end of the previous segment), unless it is the first segment, which is kept
//!    (empty) so that the log start offset does not move.
//!
//! Crash safety: [`recover_interrupted_cleaning`](super::swap::recover_interrupted_cleaning)
//! runs when a log is opened. It deletes every
//! `.cleaned` file (a rewrite that was not committed) and, for each `<base>.log.swap`,
//! completes the swap; index `.swap` files without a log `.swap` are deleted.
//!
//! Reading a compacted log: offsets have gaps. A fetch (or the offset index) at an offset that
//! falls in a gap returns the next batch; ListOffsets and `offset_for_timestamp` work on the
//! indexes rebuilt for each cleaned segment. Records are never moved to other offsets.
//!
//! Not implemented: merging small cleaned segments into one, `max.compaction.lag.ms`, and
//! removal of transaction markers/aborted data (the broker does not support transactions).
//! The offset map holds every key of the log in memory (Kafka bounds it with a dedupe buffer
//! of key hashes); it is dropped at the end of each pass.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::ops::DerefMut;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::batch::builder::BatchBuilder;
use super::batch::codec::{self, Codec};
use super::batch::record::{RecordRef, Records};
use super::batch::{BatchHeader, BATCH_HEADER_LEN};
use super::config::CompactionConfig;
use super::error::LogError;
use super::partition_log::PartitionLog;
use super::segment::{Segment, NO_TIMESTAMP};
use super::swap::{remove_cleaned_files, swap_in, CLEANED_SUFFIX};

/// Read size when walking a segment's batches.
const READ_CHUNK: usize = 1 << 20;
/// Cleaned batches are written to the new segment in writes of about this size.
const WRITE_CHUNK: usize = 1 << 20;

/// What one cleaning pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Segments rewritten (including those deleted because nothing survived).
    pub segments_cleaned: usize,
    /// Of those, segments deleted.
    pub segments_deleted: usize,
    /// Bytes of the cleaned segments before the pass.
    pub bytes_before: u64,
    /// Bytes of the same segments after the pass.
    pub bytes_after: u64,
    /// Records read from the cleaned segments.
    pub records_read: u64,
    /// Records removed (superseded records and expired tombstones).
    pub records_removed: u64,
    /// Of those, tombstones past `delete.retention.ms`.
    pub tombstones_removed: u64,
}

/// A segment as the cleaner sees it: immutable below `size`, readable without the lock.
#[derive(Debug, Clone)]
pub struct SegmentView {
    base_offset: i64,
    next_offset: i64,
    size: u64,
    largest_timestamp: i64,
    file: Arc<File>,
}

/// The work of one cleaning pass, decided under the partition lock.
#[derive(Debug)]
pub struct CleanPlan {
    dir: PathBuf,
    config: CompactionConfig,
    index_interval: u32,
    /// `max.message.bytes`: the most a batch's records may decompress to.
    max_batch_bytes: usize,
    /// Closed segments to rewrite, oldest first.
    cleanable: Vec<SegmentView>,
    /// Every segment, read for the offset map up to `upper`.
    all: Vec<SegmentView>,
    upper: i64,
    now_ms: i64,
    /// Where the dirty part ends after this pass.
    clean_end: i64,
    /// Aborted transactions `(producer id, first offset, marker offset)`: their batches are
    /// kept as they are and shadow no other record (see [`clean_log_skipping`]).
    aborted: Vec<(i64, i64, i64)>,
}

impl CleanPlan {
    /// Whether `header` is a data batch of an aborted transaction.
    fn is_aborted(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && !header.is_control()
            && self.aborted.iter().any(|&(pid, first, last)| {
                pid == header.producer_id
                    && first <= header.base_offset
                    && header.base_offset < last
            })
    }

    /// `(base offset, size)` of the segments this pass rewrites.
    pub fn cleanable_segments(&self) -> Vec<(i64, u64)> {
        self.cleanable
            .iter()
            .map(|v| (v.base_offset, v.size))
            .collect()
    }
}

/// Latest offset per key, and last batch per producer id, below the plan's `upper`.
#[derive(Debug, Default)]
pub struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    last_producer_batch: HashMap<i64, i64>,
}

impl OffsetMap {
    fn note_key(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(latest) => *latest = (*latest).max(offset),
            None => {
                self.latest.insert(key.into(), offset);
            }
        }
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether no key was seen.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// A rewritten segment waiting to be swapped in.
#[derive(Debug)]
pub struct CleanedSegment {
    base_offset: i64,
    next_offset: i64,
    /// The file that was read, to check the segment was not replaced or deleted meanwhile.
    source: Arc<File>,
    empty: bool,
}

fn io_error(what: String) -> LogError {
    LogError::Io(io::Error::other(what))
}

impl PartitionLog {
    /// Decides whether this log needs a cleaning pass (see the module docs) and, if so, what
    /// it covers. `upper` is the high watermark; `force` ignores the dirty ratio. `None` when
    /// the log is not compacted or there is nothing to do.
    pub fn plan_cleaning(
        &self,
        upper: i64,
        now_ms: i64,
        force: bool,
    ) -> Result<Option<CleanPlan>, LogError> {
        let Some(config) = self.config.compaction else {
            return Ok(None);
        };
        let upper = upper.min(self.log_end_offset());
        let mut all = Vec::with_capacity(self.segments.len());
        for s in &self.segments {
            all.push(SegmentView {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                size: s.size(),
                largest_timestamp: s.largest_timestamp()?,
                file: s.file(),
            });
        }
        let closed = all.len().saturating_sub(1);
        let lag = config.min_compaction_lag_ms;
        let cleanable: Vec<SegmentView> = all
            .iter()
            .take(closed)
            .take_while(|v| {
                v.next_offset <= upper
                    && (lag <= 0 || now_ms.saturating_sub(v.largest_timestamp) >= lag)
            })
            .cloned()
            .collect();
        let Some(last) = cleanable.last() else {
            return Ok(None);
        };
        let total: u64 = cleanable.iter().map(|v| v.size).sum();
        let dirty: u64 = cleanable
            .iter()
            .filter(|v| v.base_offset >= self.first_dirty_offset)
            .map(|v| v.size)
            .sum();
        let ratio = if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        };
        if !force && (dirty == 0 || ratio < config.min_cleanable_dirty_ratio) {
            return Ok(None);
        }
        Ok(Some(CleanPlan {
            dir: self.dir.clone(),
            config,
            index_interval: self.config.index_interval_bytes,
            max_batch_bytes: self.config.max_batch_bytes,
            clean_end: last.next_offset,
            cleanable,
            all,
            upper,
            now_ms,
            aborted: Vec::new(),
        }))
    }

    /// Swaps a cleaned segment in (see the module docs). Returns `false`, discarding the
    /// cleaned files, if the segment it was made from is no longer in the log.
    pub fn install_cleaned(&mut self, cleaned: CleanedSegment) -> Result<bool, LogError> {
        let base = cleaned.base_offset;
        let closed = self.segments.len().saturating_sub(1);
        let found = self
            .segments
            .iter()
            .take(closed)
            .position(|s| s.base_offset() == base && Arc::ptr_eq(&s.file(), &cleaned.source));
        let Some(i) = found else {
            remove_cleaned_files(&self.dir, base);
            return Ok(false);
        };
        if cleaned.empty && i > 0 {
            remove_cleaned_files(&self.dir, base);
            let segment = self.segments.remove(i);
            if let Some(prev) = self.segments.get_mut(i - 1) {
                prev.extend_to(segment.next_offset());
            }
            segment.delete()?;
            return Ok(true);
        }
        if let Err(e) = swap_in(&self.dir, base) {
            // Nothing is lost: either the old files are still live (and the `.cleaned` or
            // `.swap` leftovers are handled on the next open), or the new ones are.
            remove_cleaned_files(&self.dir, base);
            return Err(e);
        }
        let reopened = Segment::open_closed(
            &self.dir,
            base,
            cleaned.next_offset,
            self.config.index_interval_bytes,
        )?;
        if let Some(slot) = self.segments.get_mut(i) {
            // The old segment's files were renamed over: drop its handles, delete nothing.
            *slot = reopened;
        }
        Ok(true)
    }

    /// Records that the closed segments below `clean_end` have been cleaned.
    pub fn mark_cleaned(&mut self, clean_end: i64) {
        self.first_dirty_offset = self.first_dirty_offset.max(clean_end);
    }
}

/// Runs one cleaning pass over a log behind a lock: `lock()` is called briefly to plan, to swap
/// each cleaned segment in and to finish; everything else runs without it. `upper` is the high
/// watermark. Returns `None` if the log did not need cleaning.
pub fn clean_log<G, L>(
    lock: L,
    upper: i64,
    now_ms: i64,
    force: bool,
) -> Result<Option<CleanStats>, LogError>
where
    G: DerefMut<Target = PartitionLog>,
    L: Fn() -> G,
{
    clean_log_skipping(lock, upper, now_ms, force, Vec::new())
}

/// [`clean_log`] for a log with transactions: `upper` is the last stable offset (every
/// transaction below it is decided), and the batches of the `aborted` transactions
/// `(producer id, first offset, marker offset)` are neither compacted nor allowed to shadow
/// other records, so a `read_committed` consumer reads the same values after cleaning (an
/// aborted write never removes the committed value it would have replaced). Control batches
/// are always kept.
pub fn clean_log_skipping<G, L>(
    lock: L,
    upper: i64,
    now_ms: i64,
    force: bool,
    aborted: Vec<(i64, i64, i64)>,
) -> Result<Option<CleanStats>, LogError>
where
    G: DerefMut<Target = PartitionLog>,
    L: Fn() -> G,
{
    let Some(mut plan) = lock().plan_cleaning(upper, now_ms, force)? else {
        return Ok(None);
    };
    plan.aborted = aborted;
    let map = build_offset_map(&plan)?;
    let mut stats = CleanStats::default();
    for view in &plan.cleanable {
        let Some(cleaned) = clean_segment(&plan, view, &map, &mut stats)? else {
            continue;
        };
        let empty = cleaned.empty;
        let first = view.base_offset == plan.all.first().map_or(0, |v| v.base_offset);
        if lock().install_cleaned(cleaned)? {
            stats.segments_cleaned += 1;
            if empty && !first {
                stats.segments_deleted += 1;
            }
        }
    }
    lock().mark_cleaned(plan.clean_end);
    Ok(Some(stats))
}

/// Walks the complete batches of a file with buffered positioned reads.
struct BatchReader<'a> {
    file: &'a File,
    size: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_pos: u64,
}

impl<'a> BatchReader<'a> {
    fn new(view: &'a SegmentView) -> Self {
        BatchReader {
            file: &view.file,
            size: view.size,
            pos: 0,
            buf: Vec::new(),
            buf_pos: 0,
        }
    }

    /// Makes `buf` hold `len` bytes from `pos`.
    fn fill(&mut self, len: usize) -> Result<(), LogError> {
        let have = self.buf_pos + self.buf.len() as u64;
        if self.pos >= self.buf_pos && self.pos + len as u64 <= have {
            return Ok(());
        }
        let want = (len.max(READ_CHUNK) as u64).min(self.size - self.pos) as usize;
        self.buf.resize(want, 0);
        self.file.read_exact_at(&mut self.buf, self.pos)?;
        self.buf_pos = self.pos;
        Ok(())
    }

    /// The next complete batch, or `None` at the end (or at a batch that cannot be parsed or
    /// extends past the end, which is logged).
    fn next_batch(&mut self) -> Result<Option<(BatchHeader, &[u8])>, LogError> {
        if self.pos + BATCH_HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        self.fill(BATCH_HEADER_LEN)?;
        let off = (self.pos - self.buf_pos) as usize;
        let header = match BatchHeader::parse(self.buf.get(off..).unwrap_or_default()) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(position = self.pos, error = %e, "cleaner: unreadable batch, stopping there");
                return Ok(None);
            }
        };
        let total = header.total_size();
        if self.pos + total as u64 > self.size {
            return Ok(None);
        }
        self.fill(total)?;
        let off = (self.pos - self.buf_pos) as usize;
        self.pos += total as u64;
        let batch = self
            .buf
            .get(off..off + total)
            .ok_or_else(|| io_error("cleaner read buffer".into()))?;
        Ok(Some((header, batch)))
    }
}

/// Splits v2 records data into `count` records; `None` if it does not parse exactly.
fn parse_records(data: &[u8], count: i32) -> Option<Vec<RecordRef<'_>>> {
    let mut records = Vec::with_capacity(usize::try_from(count).ok()?.min(1 << 16));
    let mut iter = Records::new(data);
    for _ in 0..count {
        records.push(iter.next()?.ok()?);
    }
    (iter.remaining() == 0).then_some(records)
}

/// The records of a (non-control) batch, decompressed into `buf` (at most `limit` bytes);
/// `None` (logged) if they cannot be decoded, in which case the batch is left alone.
fn batch_records<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
    limit: usize,
    buf: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    let body = batch.get(BATCH_HEADER_LEN..)?;
    let decoded = Codec::from_id(header.compression()).and_then(|codec| {
        if codec == Codec::None {
            return Ok(body);
        }
        buf.clear();
        codec::decompress(codec, body, limit, buf)?;
        Ok(&buf[..])
    });
    match decoded {
        Ok(data) => Some(data),
        Err(e) => {
            tracing::warn!(base_offset = header.base_offset, error = %e,
                "cleaner: cannot decompress batch, keeping it as is");
            None
        }
    }
}

/// Reads every record below the plan's `upper` into an [`OffsetMap`].
pub fn build_offset_map(plan: &CleanPlan) -> Result<OffsetMap, LogError> {
    let mut map = OffsetMap::default();
    let mut buf = Vec::new();
    'segments: for view in &plan.all {
        let mut reader = BatchReader::new(view);
        while let Some((header, batch)) = reader.next_batch()? {
            if header.base_offset >= plan.upper {
                break 'segments;
            }
            if header.is_control() || plan.is_aborted(&header) {
                continue;
            }
            if header.producer_id >= 0 {
                map.last_producer_batch
                    .insert(header.producer_id, header.base_offset);
            }
            let Some(data) = batch_records(&header, batch, plan.max_batch_bytes, &mut buf) else {
                continue;
            };
            let Some(records) = parse_records(data, header.record_count) else {
                continue;
            };
            for r in records {
                if let Some(key) = r.key {
                    map.note_key(
                        key,
                        header.base_offset.saturating_add(i64::from(r.offset_delta)),
                    );
                }
            }
        }
    }
    Ok(map)
}

/// What happens to one batch of a cleaned segment.
enum Outcome {
    Keep,
    Rewrite(Vec<u8>),
    Drop,
}

/// A batch with `header`'s fields (base offset, lastOffsetDelta, base timestamp, producer
/// metadata, attributes) and the given records copied verbatim, compressed with `codec` (or
/// uncompressed if that fails).
fn rebuild_batch(
    header: &BatchHeader,
    records: &[&RecordRef<'_>],
    codec: Codec,
) -> Option<Vec<u8>> {
    let build = |codec: Codec| {
        let mut builder = BatchBuilder::new()
            .base_offset(header.base_offset)
            .partition_leader_epoch(header.partition_leader_epoch)
            .producer(
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
            )
            .flags(header.attributes)
            .base_timestamp(header.base_timestamp)
            .last_offset_delta(header.last_offset_delta)
            .compression(codec);
        if header.is_log_append_time() || records.is_empty() {
            builder = builder.max_timestamp(header.max_timestamp);
        }
        for r in records {
            builder.push_raw(r);
        }
        builder.build()
    };
    match build(codec) {
        Ok(batch) => Some(batch),
        Err(e) => {
            tracing::warn!(error = %e, "cleaner: cannot rebuild a batch in its codec, writing it uncompressed");
            build(Codec::None)
                .inspect_err(|e| tracing::warn!(error = %e, "cleaner: cannot rebuild a batch"))
                .ok()
        }
    }
}

fn filter_batch(
    plan: &CleanPlan,
    view: &SegmentView,
    map: &OffsetMap,
    header: &BatchHeader,
    batch: &[u8],
    stats: &mut CleanStats,
) -> Outcome {
    if header.is_control() || plan.is_aborted(header) {
        return Outcome::Keep;
    }
    let mut buf = Vec::new();
    let Some(data) = batch_records(header, batch, plan.max_batch_bytes, &mut buf) else {
        return Outcome::Keep;
    };
    let Some(records) = parse_records(data, header.record_count) else {
        tracing::warn!(
            base_offset = header.base_offset,
            "cleaner: cannot parse records, keeping the batch"
        );
        return Outcome::Keep;
    };
    stats.records_read += records.len() as u64;
    let mut kept = Vec::with_capacity(records.len());
    for r in &records {
        let offset = header.base_offset.saturating_add(i64::from(r.offset_delta));
        let Some(key) = r.key else {
            // Kafka refuses null keys on compacted topics; records that got in are kept.
            kept.push(r);
            continue;
        };
        if map.latest.get(key).is_some_and(|latest| *latest > offset) {
            continue;
        }
        if r.value.is_none() {
            let mut ts = if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp.saturating_add(r.timestamp_delta)
            };
            if ts < 0 || header.max_timestamp == NO_TIMESTAMP {
                ts = view.largest_timestamp;
            }
            if plan.now_ms.saturating_sub(ts) > plan.config.delete_retention_ms {
                stats.tombstones_removed += 1;
                continue;
            }
        }
        kept.push(r);
    }
    stats.records_removed += (records.len() - kept.len()) as u64;
    let codec = Codec::from_id(header.compression()).unwrap_or(Codec::None);
    let rebuilt = if kept.len() == records.len() {
        return Outcome::Keep;
    } else if !kept.is_empty() {
        rebuild_batch(header, &kept, codec)
    } else if header.producer_id >= 0
        && map.last_producer_batch.get(&header.producer_id) == Some(&header.base_offset)
    {
        rebuild_batch(header, &[], Codec::None)
    } else {
        return Outcome::Drop;
    };
    rebuilt.map_or(Outcome::Keep, Outcome::Rewrite)
}

/// Rewrites one segment into `.cleaned` files (fsynced). `None` if nothing would change.
pub fn clean_segment(
    plan: &CleanPlan,
    view: &SegmentView,
    map: &OffsetMap,
    stats: &mut CleanStats,
) -> Result<Option<CleanedSegment>, LogError> {
    let result = write_cleaned(plan, view, map, stats);
    if !matches!(result, Ok(Some(_))) {
        remove_cleaned_files(&plan.dir, view.base_offset);
    }
    result
}

fn write_cleaned(
    plan: &CleanPlan,
    view: &SegmentView,
    map: &OffsetMap,
    stats: &mut CleanStats,
) -> Result<Option<CleanedSegment>, LogError> {
    let mut out = Segment::create_with_suffix(
        &plan.dir,
        view.base_offset,
        plan.index_interval,
        CLEANED_SUFFIX,
    )?;
    let mut pending: Vec<u8> = Vec::new();
    let mut headers: Vec<BatchHeader> = Vec::new();
    let mut changed = false;
    let mut pass_stats = CleanStats::default();
    let mut reader = BatchReader::new(view);
    let mut read_bytes = 0u64;
    while let Some((header, batch)) = reader.next_batch()? {
        read_bytes += batch.len() as u64;
        match filter_batch(plan, view, map, &header, batch, &mut pass_stats) {
            Outcome::Keep => {
                pending.extend_from_slice(batch);
                headers.push(header);
            }
            Outcome::Rewrite(new) => {
                changed = true;
                headers.push(BatchHeader::parse(&new)?);
                pending.extend_from_slice(&new);
            }
            Outcome::Drop => changed = true,
        }
        if pending.len() >= WRITE_CHUNK {
            out.append(&pending, &headers)?;
            pending.clear();
            headers.clear();
        }
    }
    if read_bytes != view.size {
        changed = true; // a bad tail is not carried over
    }
    if !changed {
        return Ok(None);
    }
    if !pending.is_empty() {
        out.append(&pending, &headers)?;
    }
    out.seal()?;
    stats.records_read += pass_stats.records_read;
    stats.records_removed += pass_stats.records_removed;
    stats.tombstones_removed += pass_stats.tombstones_removed;
    stats.bytes_before += view.size;
    stats.bytes_after += out.size();
    Ok(Some(CleanedSegment {
        base_offset: view.base_offset,
        next_offset: view.next_offset,
        source: Arc::clone(&view.file),
        empty: out.is_empty(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::validate_batches;
    use crate::log::segment::{INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};
    use crate::log::swap::{suffixed, SWAP_SUFFIX};
    use crate::log::LogConfig;
    use crate::topic::producer_state::{ProducerStates, Sequencing};
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };
    use parking_lot::Mutex;
    use std::fs;

    const NOW: i64 = 10_000_000;

    fn config(segment_bytes: u64, compaction: CompactionConfig) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 128,
            max_batch_bytes: 1 << 20,
            retention_ms: None,
            retention_bytes: None,
            compaction: Some(compaction),
            records: Default::default(),
        }
    }

    fn compaction(delete_retention_ms: i64) -> CompactionConfig {
        CompactionConfig {
            delete_retention_ms,
            ..CompactionConfig::default()
        }
    }

    struct Producer {
        id: i64,
        seq: i32,
    }

    /// A batch of `(key, value, timestamp)` records; `None` is null.
    fn kbatch(
        records: &[(Option<&str>, Option<&str>, i64)],
        producer: Option<&mut Producer>,
        compression: Compression,
    ) -> Vec<u8> {
        let (pid, epoch, seq) = match &producer {
            Some(p) => (p.id, 0, p.seq),
            None => (-1, -1, -1),
        };
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v, ts))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if pid >= 0 { seq + i as i32 } else { -1 },
                timestamp: *ts,
                key: k.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        if let Some(p) = producer {
            p.seq += records.len() as i32;
        }
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.to_vec()
    }

    /// `(offset, key, value)` of every record from `offset` on, checking CRCs and offsets.
    fn records_from(log: &PartitionLog, offset: i64) -> Vec<(i64, Option<String>, Option<String>)> {
        let mut out = Vec::new();
        let mut next = offset;
        let end = log.log_end_offset();
        while next < end {
            let bytes = log.read(next, 1 << 16, i64::MAX).unwrap();
            if bytes.is_empty() {
                break;
            }
            let headers = validate_batches(&bytes, usize::MAX).unwrap();
            let mut buf = bytes.clone();
            let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
            assert_eq!(sets.len(), headers.len());
            for r in sets.into_iter().flat_map(|s| s.records) {
                if r.offset >= offset {
                    out.push((
                        r.offset,
                        r.key.map(|k| String::from_utf8(k.to_vec()).unwrap()),
                        r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                    ));
                }
            }
            next = headers.last().unwrap().next_offset();
        }
        for pair in out.windows(2) {
            assert!(pair[0].0 < pair[1].0, "offsets not increasing: {pair:?}");
        }
        out
    }

    /// The latest value per key, as a consumer reading everything would see it.
    fn latest(
        records: &[(i64, Option<String>, Option<String>)],
    ) -> HashMap<String, Option<String>> {
        let mut map = HashMap::new();
        for (_, k, v) in records {
            if let Some(k) = k {
                map.insert(k.clone(), v.clone());
            }
        }
        map
    }

    fn clean(log: &Mutex<PartitionLog>, force: bool) -> Option<CleanStats> {
        let upper = log.lock().log_end_offset();
        clean_log(|| log.lock(), upper, NOW, force).unwrap()
    }

    /// Appends `rounds` batches of 5 records over keys k0..k9 (value = `v<offset-ish>`), then
    /// tombstones for k8 and k9, then `tail` filler batches on key `f`.
    fn fill(log: &mut PartitionLog, rounds: usize, tail: usize, ts: i64) {
        let mut n = 0;
        for _ in 0..rounds {
            let recs: Vec<(String, String)> = (0..5)
                .map(|_| {
                    n += 1;
                    (format!("k{}", n % 10), format!("v{n}"))
                })
                .collect();
            let recs: Vec<_> = recs
                .iter()
                .map(|(k, v)| (Some(k.as_str()), Some(v.as_str()), ts))
                .collect();
            log.append(&mut kbatch(&recs, None, Compression::None))
                .unwrap();
        }
        let tomb = [(Some("k8"), None, ts), (Some("k9"), None, ts)];
        log.append(&mut kbatch(&tomb, None, Compression::None))
            .unwrap();
        for i in 0..tail {
            let v = format!("f{i}");
            log.append(&mut kbatch(
                &[(Some("f"), Some(&v), ts)],
                None,
                Compression::None,
            ))
            .unwrap();
        }
    }

    #[test]
    fn keeps_latest_per_key_and_drops_expired_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1024, compaction(0))).unwrap();
        fill(&mut log, 200, 40, 1000);
        let before_records = records_from(&log, 0);
        let expected = latest(&before_records);
        let before_size = log.size_bytes();
        let segments_before = log.segments_info().len();
        let end = log.log_end_offset();
        let active_base = log.segments_info().last().unwrap().0;
        let active_before: Vec<_> = records_from(&log, active_base);
        let log = Mutex::new(log);

        let stats = clean(&log, false).expect("a first pass runs");
        assert!(stats.records_removed > 900, "{stats:?}");
        assert_eq!(stats.tombstones_removed, 2);
        let log = log.into_inner();
        assert!(
            log.size_bytes() < before_size / 5,
            "{} -> {}",
            before_size,
            log.size_bytes()
        );
        assert!(log.segments_info().len() < segments_before);
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(log.log_start_offset(), 0);

        let check = |log: &PartitionLog| {
            let after = records_from(log, 0);
            let mut want = expected.clone();
            want.retain(|_, v| v.is_some());
            assert_eq!(latest(&after), want);
            // Every key of k0..k7 once, no k8/k9 at all, the active segment untouched.
            for k in 0..10 {
                let n = after
                    .iter()
                    .filter(|r| r.1.as_deref() == Some(&format!("k{k}")))
                    .count();
                assert_eq!(n, usize::from(k < 8), "k{k}");
            }
            assert_eq!(records_from(log, active_base), active_before);
            // Reading at any offset, gap or not, returns the first record at or after it.
            for offset in 0..end {
                let first = records_from(log, offset).first().map(|r| r.0);
                let want = after.iter().map(|r| r.0).find(|o| *o >= offset);
                assert_eq!(first, want, "read at {offset}");
            }
            assert_eq!(
                log.offset_for_timestamp(0).unwrap().map(|r| r.1),
                Some(1000)
            );
        };
        check(&log);
        drop(log);
        let log = PartitionLog::open(dir.path(), config(1024, compaction(0))).unwrap();
        check(&log);

        // After a restart the whole log counts as dirty: one pass, which changes nothing.
        let log = Mutex::new(log);
        assert_eq!(clean(&log, false).unwrap().segments_cleaned, 0);
        // Nothing new is dirty: no pass.
        assert_eq!(clean(&log, false), None);
    }

    #[test]
    fn tombstones_are_kept_within_delete_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1024, compaction(60_000))).unwrap();
        // Tombstones at NOW - 1000: younger than delete.retention.ms.
        fill(&mut log, 50, 40, NOW - 1000);
        let log = Mutex::new(log);
        let stats = clean(&log, false).unwrap();
        assert_eq!(stats.tombstones_removed, 0);
        let log = log.into_inner();
        let after = records_from(&log, 0);
        for k in ["k8", "k9"] {
            let recs: Vec<_> = after.iter().filter(|r| r.1.as_deref() == Some(k)).collect();
            assert_eq!(recs.len(), 1, "{k}: {recs:?}");
            assert_eq!(recs[0].2, None);
        }
        // Once old enough, they go.
        let log = Mutex::new(log);
        let upper = log.lock().log_end_offset();
        let stats = clean_log(|| log.lock(), upper, NOW + 120_000, true)
            .unwrap()
            .unwrap();
        assert_eq!(stats.tombstones_removed, 2);
        let after = records_from(&log.lock(), 0);
        assert!(after.iter().all(|r| r.2.is_some()));
    }

    #[test]
    fn active_segment_updates_supersede_but_are_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1 << 20, compaction(0))).unwrap();
        log.append(&mut kbatch(
            &[(Some("a"), Some("1"), 5), (Some("b"), Some("1"), 5)],
            None,
            Compression::None,
        ))
        .unwrap();
        log.roll().unwrap();
        log.append(&mut kbatch(
            &[(Some("a"), Some("2"), 6), (Some("a"), Some("3"), 6)],
            None,
            Compression::None,
        ))
        .unwrap();
        let log = Mutex::new(log);
        // Only records below `upper` count: the active segment's are not durable yet.
        assert!(clean_log(|| log.lock(), 2, NOW, true).unwrap().is_some());
        assert_eq!(records_from(&log.lock(), 0).len(), 4);
        clean(&log, true).unwrap();
        let after = records_from(&log.lock(), 0);
        let keys: Vec<_> = after.iter().map(|r| (r.0, r.2.clone().unwrap())).collect();
        assert_eq!(
            keys,
            vec![(1, "1".into()), (2, "2".into()), (3, "3".into())]
        );
    }

    #[test]
    fn compressed_batches_are_recompressed() {
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = PartitionLog::open(dir.path(), config(2048, compaction(0))).unwrap();
            for round in 0..60 {
                let vals: Vec<String> = (0..8)
                    .map(|i| format!("value-{round}-{i}-{}", "x".repeat(50)))
                    .collect();
                let keys: Vec<String> = (0..8)
                    .map(|i| format!("key{}", (round * 8 + i) % 13))
                    .collect();
                let recs: Vec<_> = keys
                    .iter()
                    .zip(&vals)
                    .map(|(k, v)| (Some(k.as_str()), Some(v.as_str()), 1000 + round))
                    .collect();
                log.append(&mut kbatch(&recs, None, compression)).unwrap();
            }
            let before = records_from(&log, 0);
            let expected = latest(&before);
            let size = log.size_bytes();
            let log = Mutex::new(log);
            clean(&log, false).unwrap();
            let log = log.into_inner();
            let after = records_from(&log, 0);
            assert_eq!(latest(&after), expected, "{compression:?}");
            assert!(after.len() < before.len() / 3, "{compression:?}");
            assert!(log.size_bytes() < size / 2, "{compression:?}");
            let bytes = log.read(0, usize::MAX, i64::MAX).unwrap();
            let headers = validate_batches(&bytes, usize::MAX).unwrap();
            assert!(headers
                .iter()
                .all(|h| h.compression() == compression as i16));
        }
    }

    #[test]
    fn producer_state_survives_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1024, compaction(0))).unwrap();
        let mut p = Producer { id: 42, seq: 0 };
        let mut other = Producer { id: 43, seq: 0 };
        log.append(&mut kbatch(
            &[(Some("x"), Some("0"), 1)],
            Some(&mut other),
            Compression::None,
        ))
        .unwrap();
        let mut last = None;
        for i in 0..100 {
            let v = format!("{i}");
            let mut b = kbatch(
                &[(Some("k"), Some(&v), 1), (Some("j"), Some(&v), 1)],
                Some(&mut p),
                Compression::None,
            );
            log.append(&mut b).unwrap();
            last = Some(BatchHeader::parse(&b).unwrap());
        }
        // Another producer overwrites both keys: every batch of producer 42 is obsolete.
        for _ in 0..30 {
            log.append(&mut kbatch(
                &[
                    (Some("k"), Some("z"), 1),
                    (Some("j"), Some("z"), 1),
                    (Some("x"), Some("z"), 1),
                ],
                None,
                Compression::None,
            ))
            .unwrap();
        }
        let mut last = last.unwrap();
        let before = ProducerStates::rebuild(log.batch_headers_from(0).unwrap());
        last.base_offset = 0;
        let dup = before.check(&last).unwrap();
        assert!(matches!(dup, Sequencing::Duplicate { .. }));
        let log = Mutex::new(log);
        clean(&log, false).unwrap();
        let log = log.into_inner();
        let headers = log.batch_headers_from(0).unwrap();
        // The last batch of each producer is kept, as an empty batch.
        let kept: Vec<_> = headers.iter().filter(|h| h.producer_id >= 0).collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.iter().all(|h| h.record_count == 0));
        let after = ProducerStates::rebuild(headers);
        assert_eq!(after.check(&last).unwrap(), dup);
        let mut next = kbatch(
            &[(Some("k"), Some("n"), 1)],
            Some(&mut p),
            Compression::None,
        );
        assert_eq!(
            after.check(&BatchHeader::parse(&next).unwrap()).unwrap(),
            Sequencing::Append
        );
        // Consumers decode the empty batches fine.
        let recs = records_from(&log, 0);
        assert!(recs.iter().all(|r| r.2.as_deref() == Some("z")));
        let mut log = log;
        log.append(&mut next).unwrap();
    }

    #[test]
    fn interrupted_swaps_are_completed_or_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1024, compaction(0))).unwrap();
        fill(&mut log, 100, 30, 1000);
        let expected_before = records_from(&log, 0);
        let first = log.segments_info()[0].0;
        let plan = log.plan_cleaning(i64::MAX, NOW, true).unwrap().unwrap();
        let map = build_offset_map(&plan).unwrap();
        let mut stats = CleanStats::default();
        let cleaned = clean_segment(&plan, &plan.cleanable[0], &map, &mut stats)
            .unwrap()
            .unwrap();
        let path = |ext: &str, suffix: &str| suffixed(dir.path(), first, ext, suffix);
        assert!(path(LOG_EXT, CLEANED_SUFFIX).exists());
        drop(cleaned);
        drop(log);

        // Crash before the commit: the cleaned files go, the log is as it was.
        fs::rename(
            path(INDEX_EXT, CLEANED_SUFFIX),
            path(INDEX_EXT, SWAP_SUFFIX),
        )
        .unwrap();
        let log = PartitionLog::open(dir.path(), config(1024, compaction(0))).unwrap();
        assert!(!path(LOG_EXT, CLEANED_SUFFIX).exists());
        assert!(!path(INDEX_EXT, SWAP_SUFFIX).exists());
        assert_eq!(records_from(&log, 0), expected_before);

        // Crash after the commit, with one index already renamed: the swap is completed.
        let plan = log.plan_cleaning(i64::MAX, NOW, true).unwrap().unwrap();
        let map = build_offset_map(&plan).unwrap();
        let cleaned = clean_segment(&plan, &plan.cleanable[0], &map, &mut stats)
            .unwrap()
            .unwrap();
        // (The first segment is swapped in even if nothing in it survived.)
        let _ = cleaned;
        let new_log = fs::read(path(LOG_EXT, CLEANED_SUFFIX)).unwrap();
        drop(log);
        fs::rename(path(INDEX_EXT, CLEANED_SUFFIX), path(INDEX_EXT, "")).unwrap();
        fs::rename(
            path(TIME_INDEX_EXT, CLEANED_SUFFIX),
            path(TIME_INDEX_EXT, SWAP_SUFFIX),
        )
        .unwrap();
        fs::rename(path(LOG_EXT, CLEANED_SUFFIX), path(LOG_EXT, SWAP_SUFFIX)).unwrap();
        let log = PartitionLog::open(dir.path(), config(1024, compaction(0))).unwrap();
        assert_eq!(fs::read(path(LOG_EXT, "")).unwrap(), new_log);
        for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
            assert!(!path(ext, SWAP_SUFFIX).exists());
        }
        let after = records_from(&log, 0);
        assert!(after.len() < expected_before.len());
        let mut want = latest(&expected_before);
        let got = latest(&after);
        want.retain(|k, _| got.contains_key(k));
        assert_eq!(got, want);
    }

    #[test]
    fn segment_gone_meanwhile_is_not_swapped_in() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1024, compaction(0))).unwrap();
        fill(&mut log, 100, 30, 1000);
        let plan = log.plan_cleaning(i64::MAX, NOW, true).unwrap().unwrap();
        let map = build_offset_map(&plan).unwrap();
        let mut stats = CleanStats::default();
        let view = &plan.cleanable[1];
        let cleaned = clean_segment(&plan, view, &map, &mut stats)
            .unwrap()
            .unwrap();
        // DeleteRecords removes the first two segments meanwhile.
        log.delete_records_before(view.next_offset).unwrap();
        let size = log.size_bytes();
        assert!(!log.install_cleaned(cleaned).unwrap());
        assert_eq!(log.size_bytes(), size);
        assert!(!suffixed(dir.path(), view.base_offset, LOG_EXT, CLEANED_SUFFIX).exists());
    }

    #[test]
    fn dirty_ratio_and_lag_decide_when_to_clean() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1024, compaction(0))).unwrap();
        fill(&mut log, 100, 30, 1000);
        // Not compacted: never.
        let mut plain = log.config().clone();
        plain.compaction = None;
        log.set_config(plain.clone());
        assert!(log.plan_cleaning(i64::MAX, NOW, true).unwrap().is_none());
        // A young log with a compaction lag: nothing cleanable yet.
        log.set_config(LogConfig {
            compaction: Some(CompactionConfig {
                min_compaction_lag_ms: NOW,
                ..compaction(0)
            }),
            ..plain.clone()
        });
        assert!(log.plan_cleaning(i64::MAX, NOW, false).unwrap().is_none());
        // Below the high watermark only.
        log.set_config(config(1024, compaction(0)));
        let first_next = log.segments_info()[1].0;
        let plan = log.plan_cleaning(first_next, NOW, false).unwrap().unwrap();
        assert_eq!(plan.cleanable_segments().len(), 1);

        let log = Mutex::new(log);
        assert!(clean(&log, false).is_some());
        assert!(clean(&log, false).is_none());
        // A little new data: below the default ratio of 0.5 ... then enough.
        let total_cleanable = || -> usize {
            let l = log.lock();
            l.plan_cleaning(i64::MAX, NOW, true)
                .unwrap()
                .map_or(0, |p| p.cleanable_segments().len())
        };
        let before = total_cleanable();
        {
            let mut l = log.lock();
            for i in 0..60 {
                let v = format!("g{i}");
                l.append(&mut kbatch(
                    &[(Some(&v), Some(&v), 1000)],
                    None,
                    Compression::None,
                ))
                .unwrap();
            }
        }
        assert!(total_cleanable() > before);
        assert!(clean(&log, false).is_some());
    }

    /// A committed transaction writes `k`, a later aborted one writes `k` again, then filler
    /// rolls segments. Returns the log and the aborted transaction `(pid, first, marker)`.
    fn transactional_log(dir: &std::path::Path) -> (Mutex<PartitionLog>, (i64, i64, i64)) {
        use crate::topic::txn_index::{marker_batch, ABORT, COMMIT};
        let mut log = PartitionLog::open(dir, config(1024, compaction(0))).unwrap();
        let txn = |pid: i64, value: &[u8]| {
            let mut b = BatchBuilder::new().producer(pid, 0, 0).transactional(true);
            b.record(Some(b"k"), Some(value), NOW);
            b.build().unwrap()
        };
        log.append(&mut txn(1, b"committed")).unwrap();
        log.append(&mut marker_batch(1, 0, COMMIT, 0, NOW).unwrap())
            .unwrap();
        let first = log.append(&mut txn(2, b"aborted")).unwrap().base_offset;
        let marker = log
            .append(&mut marker_batch(2, 0, ABORT, 0, NOW).unwrap())
            .unwrap()
            .base_offset;
        for i in 0..40 {
            let v = format!("filler-{i}");
            log.append(&mut kbatch(
                &[(Some("f"), Some(&v), NOW)],
                None,
                Compression::None,
            ))
            .unwrap();
        }
        (Mutex::new(log), (2, first, marker))
    }

    #[test]
    fn aborted_records_neither_shadow_committed_ones_nor_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (log, aborted) = transactional_log(dir.path());
        let upper = log.lock().log_end_offset();
        let stats = clean_log_skipping(|| log.lock(), upper, NOW, true, vec![aborted])
            .unwrap()
            .unwrap();
        assert!(stats.records_removed > 0, "{stats:?}");
        let records = records_from(&log.lock(), 0);
        let values: Vec<Option<&str>> = records.iter().map(|r| r.2.as_deref()).collect();
        // The committed value survives: the aborted write of the same key does not replace it
        // (a read_committed consumer drops the aborted one), and the aborted batch and both
        // markers are still there for that consumer to recognise it.
        assert!(values.contains(&Some("committed")), "{records:?}");
        assert!(values.contains(&Some("aborted")), "{records:?}");
        let controls = {
            let log = log.lock();
            log.batch_headers_from(0)
                .unwrap()
                .iter()
                .filter(|h| h.is_control())
                .count()
        };
        assert_eq!(controls, 2);
        assert!(!values.contains(&Some("filler-0")), "filler compacted");

        // Without the aborted transaction's range, the aborted write would shadow the
        // committed value: what this guards against.
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = transactional_log(dir.path());
        clean(&log, true).unwrap();
        let records = records_from(&log.lock(), 0);
        assert!(!records.iter().any(|r| r.2.as_deref() == Some("committed")));
    }
}
