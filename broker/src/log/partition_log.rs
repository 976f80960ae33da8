//! The log of one partition: an ordered list of segments in one directory.
//!
//! This is where offsets are assigned, segments are rolled, fetches are served across segment
//! boundaries, old data is deleted (retention and DeleteRecords), and a crashed log is repaired
//! on startup. `PartitionLog` is not internally synchronized: the broker wraps it in a lock, and
//! uses [`SyncHandle`] to fsync outside that lock so that many produce requests share one
//! fdatasync (group commit).

use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::batch::validator::Validated;
use super::batch::{set_base_offset, validate_batches, BatchHeader, BATCH_HEADER_LEN};
use super::config::LogConfig;
use super::error::LogError;
use super::segment::{
    parse_base_offset, sync_dir, ReadCursor, Segment, INDEX_EXT, LOG_EXT, MAX_SEGMENT_SIZE,
    NO_TIMESTAMP, TIME_INDEX_EXT,
};
use super::swap;

/// Name of the file holding the log start offset.
pub const LOG_START_CHECKPOINT: &str = "log-start-offset";

/// Result of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset assigned to the last record.
    pub last_offset: i64,
    /// Largest batch max-timestamp of the append (-1 if none).
    pub max_timestamp: i64,
    /// Headers of the appended batches, with their assigned base offsets.
    pub batches: Vec<BatchHeader>,
}

/// What is needed to fsync the active segment without holding the partition lock.
#[derive(Debug, Clone)]
pub struct SyncHandle {
    /// `None` only if the log had no segment, which `PartitionLog` never allows.
    file: Option<Arc<File>>,
    offset: i64,
}

impl SyncHandle {
    /// Fdatasyncs the segment file; returns the offset up to which (exclusive) data is durable.
    ///
    /// If the segment was rolled meanwhile, the roll already fsynced it and this is cheap.
    pub fn sync(&self) -> io::Result<i64> {
        if let Some(file) = &self.file {
            file.sync_data()?;
        }
        Ok(self.offset)
    }

    /// The log end offset this handle covers.
    pub fn offset(&self) -> i64 {
        self.offset
    }
}

/// The log of one partition.
pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    /// Sorted by base offset, never empty; the last one is the active segment.
    pub(super) segments: Vec<Segment>,
    pub(super) log_start_offset: i64,
    /// The log cleaner's "first dirty offset": closed segments starting at or after it have not
    /// been compacted yet. In memory only: after a restart the whole log counts as dirty.
    pub(super) first_dirty_offset: i64,
}

fn read_checkpoint(dir: &Path) -> Result<Option<i64>, LogError> {
    let path = dir.join(LOG_START_CHECKPOINT);
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(v) if v >= 0 => Ok(Some(v)),
            _ => {
                tracing::warn!(path = %path.display(), "ignoring unreadable log start offset checkpoint");
                Ok(None)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_checkpoint(dir: &Path, offset: i64) -> Result<(), LogError> {
    let tmp = dir.join(format!("{LOG_START_CHECKPOINT}.tmp"));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(format!("{offset}\n").as_bytes())?;
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(LOG_START_CHECKPOINT))?;
    sync_dir(dir)?;
    Ok(())
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering from a crash if needed.
    ///
    /// The active (last) segment is scanned and validated batch by batch and truncated at the
    /// first torn or corrupt batch; closed segments are trusted, their indexes rebuilt only if
    /// missing or inconsistent. Segments entirely below the checkpointed log start offset are
    /// deleted (a crash between checkpoint and deletion).
    pub fn open(dir: &Path, config: LogConfig) -> Result<Self, LogError> {
        fs::create_dir_all(dir)?;
        swap::recover_interrupted_cleaning(dir)?;
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(base) = parse_base_offset(name, LOG_EXT) {
                bases.push(base);
            } else if let Some(base) = parse_base_offset(name, INDEX_EXT)
                .or_else(|| parse_base_offset(name, TIME_INDEX_EXT))
            {
                index_files.push((base, entry.path()));
            } else if name == format!("{LOG_START_CHECKPOINT}.tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        bases.sort_unstable();
        bases.dedup();
        for (base, path) in index_files {
            if bases.binary_search(&base).is_err() {
                tracing::info!(path = %path.display(), "removing orphaned index file");
                let _ = fs::remove_file(path);
            }
        }

        let checkpoint = read_checkpoint(dir)?;
        let interval = config.index_interval_bytes;
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for pair in bases.windows(2) {
            if let [base, next] = *pair {
                segments.push(Segment::open_closed(dir, base, next, interval)?);
            }
        }
        match bases.last() {
            Some(&last) => {
                let (active, _cut) = Segment::recover_active(dir, last, interval)?;
                segments.push(active);
            }
            None => {
                let start = checkpoint.unwrap_or(0);
                segments.push(Segment::create(dir, start, interval)?);
                sync_dir(dir)?;
            }
        }

        let first_base = segments.first().map_or(0, Segment::base_offset);
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: checkpoint.unwrap_or(first_base).max(first_base),
            first_dirty_offset: 0,
        };
        let log_end = log.log_end_offset();
        if log.log_start_offset > log_end {
            // The checkpoint is ahead of the data (the tail was lost): everything left is below
            // the log start, so start afresh there.
            tracing::warn!(dir = %dir.display(), log_start = log.log_start_offset, log_end,
                "log start offset checkpoint is beyond the log end; discarding all segments");
            let fresh = Segment::create(dir, log.log_start_offset, interval)?;
            sync_dir(dir)?;
            let old = std::mem::replace(&mut log.segments, vec![fresh]);
            for seg in old {
                if seg.base_offset() != log.log_start_offset {
                    seg.delete()?;
                }
            }
        } else {
            log.delete_segments_below(log.log_start_offset)?;
        }
        Ok(log)
    }

    fn active(&self) -> Result<&Segment, LogError> {
        self.segments
            .last()
            .ok_or_else(|| LogError::Io(io::Error::other("log has no segments")))
    }

    fn active_mut(&mut self) -> Result<&mut Segment, LogError> {
        self.segments
            .last_mut()
            .ok_or_else(|| LogError::Io(io::Error::other("log has no segments")))
    }

    fn max_segment_size(&self) -> u64 {
        self.config
            .segment_bytes
            .clamp(BATCH_HEADER_LEN as u64, MAX_SEGMENT_SIZE)
    }

    /// Index of the segment that contains `offset` (the last one whose base is `<= offset`).
    fn segment_index(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// Seals the active segment (fsyncing it and its indexes) and starts a new one at the log end.
    pub(super) fn roll(&mut self) -> Result<(), LogError> {
        let next = self.log_end_offset();
        self.active_mut()?.seal()?;
        let segment = Segment::create(&self.dir, next, self.config.index_interval_bytes)?;
        sync_dir(&self.dir)?;
        tracing::debug!(dir = %self.dir.display(), base_offset = next, "rolled new segment");
        self.segments.push(segment);
        Ok(())
    }

    /// Validates `records` (one or more v2 batches), assigns them consecutive offsets starting
    /// at the log end (rewriting each `baseOffset` in place), rolls the segment if needed, and
    /// writes them with a single write. Nothing is written if any batch is invalid.
    ///
    /// This checks the batches' framing and CRCs only; records from clients go through
    /// [`validate`](super::batch::validator::validate) and [`PartitionLog::append_validated`].
    pub fn append(&mut self, records: &mut [u8]) -> Result<AppendInfo, LogError> {
        let headers = validate_batches(records, self.config.max_batch_bytes)?;
        self.append_checked(records, headers)
    }

    /// Appends batches that passed [`validate`](super::batch::validator::validate) (with this log's config), like
    /// [`PartitionLog::append`] but without checking them again.
    pub fn append_validated(
        &mut self,
        records: &mut [u8],
        validated: Validated,
    ) -> Result<AppendInfo, LogError> {
        self.append_checked(records, validated.into_headers())
    }

    fn append_checked(
        &mut self,
        records: &mut [u8],
        mut headers: Vec<BatchHeader>,
    ) -> Result<AppendInfo, LogError> {
        if headers.is_empty() {
            return Err(LogError::CorruptMessage("no record batches".to_string()));
        }
        let max_segment = self.max_segment_size();
        if records.len() as u64 > max_segment {
            return Err(LogError::RecordListTooLarge {
                size: records.len(),
                max: max_segment,
            });
        }

        let base_offset = self.log_end_offset();
        let mut next = base_offset;
        let mut max_timestamp = NO_TIMESTAMP;
        for header in headers.iter_mut() {
            header.base_offset = next;
            next = next
                .checked_add(i64::from(header.last_offset_delta) + 1)
                .ok_or_else(|| LogError::OffsetOverflow(format!("offset {next} overflows")))?;
            max_timestamp = max_timestamp.max(header.max_timestamp);
        }
        let last_offset = next - 1;

        let active = self.active()?;
        let too_big = active.size() + records.len() as u64 > max_segment;
        let too_many_offsets = last_offset - active.base_offset() > i64::from(i32::MAX);
        if !active.is_empty() && (too_big || too_many_offsets) {
            self.roll()?;
        }
        if last_offset - self.active()?.base_offset() > i64::from(i32::MAX) {
            return Err(LogError::OffsetOverflow(format!(
                "append spans offsets {base_offset}..={last_offset}, too many for one segment"
            )));
        }

        let mut pos = 0usize;
        for header in &headers {
            if let Some(batch) = records.get_mut(pos..) {
                set_base_offset(batch, header.base_offset);
            }
            pos += header.total_size();
        }
        self.active_mut()?.append(records, &headers)?;
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp,
            batches: headers,
        })
    }

    /// Reads whole batches starting with the one containing `offset` (in a compacted log, where
    /// `offset` may fall in a gap, the first batch after it), stopping before the
    /// first batch whose base offset is `>= upper` (the high watermark) and before exceeding
    /// `max_bytes` — except that the first batch is always returned whole (KIP-74).
    ///
    /// `offset` equal to the log end or to `upper` gives an empty result; an offset below the
    /// log start or beyond the log end is `OffsetOutOfRange`.
    pub fn read(&self, offset: i64, max_bytes: usize, upper: i64) -> Result<Bytes, LogError> {
        let log_end = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end {
            return Err(self.out_of_range(offset));
        }
        let upper = upper.min(log_end);
        if offset >= upper {
            return Ok(Bytes::new());
        }
        let mut cursor = ReadCursor {
            target: offset,
            upper,
            max_bytes,
            slack: self.config.index_interval_bytes as usize,
            out: BytesMut::new(),
            done: false,
        };
        let first = self.segment_index(offset);
        for segment in self.segments.iter().skip(first) {
            if cursor.done || segment.base_offset() >= upper {
                break;
            }
            segment.read_into(&mut cursor)?;
        }
        Ok(cursor.out.freeze())
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start: self.log_start_offset,
            log_end: self.log_end_offset(),
        }
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.segments
            .last()
            .map_or(self.log_start_offset, Segment::next_offset)
    }

    /// Total size of all segment files in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// A handle to fsync the active segment, covering everything appended so far, without
    /// holding `&self` (group commit: take it under the partition lock, sync after releasing).
    pub fn sync_handle(&self) -> SyncHandle {
        SyncHandle {
            file: self.segments.last().map(Segment::file),
            offset: self.log_end_offset(),
        }
    }

    /// Fsyncs the active segment and its indexes.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.active_mut()?.flush()
    }

    /// The first batch with a max timestamp `>= timestamp`, as `(offset, max timestamp)`
    /// (offset clamped to the log start). `None` if there is no such batch.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in &self.segments {
            if segment.max_timestamp() < timestamp
                || segment.max_timestamp() == NO_TIMESTAMP
                || segment.next_offset() <= self.log_start_offset
            {
                continue;
            }
            if let Some((offset, ts)) = segment.find_timestamp(timestamp, self.log_start_offset)? {
                return Ok(Some((offset.max(self.log_start_offset), ts)));
            }
        }
        Ok(None)
    }

    /// `(offset, timestamp)` of the batch with the largest timestamp (the first such batch), for
    /// ListOffsets with timestamp -3. `None` if no batch has a timestamp.
    pub fn max_timestamp_offset(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for segment in &self.segments {
            let ts = segment.max_timestamp();
            if ts != NO_TIMESTAMP && best.is_none_or(|(_, t)| ts > t) {
                best = Some((
                    segment.offset_of_max_timestamp().max(self.log_start_offset),
                    ts,
                ));
            }
        }
        best
    }

    /// DeleteRecords: advances the log start offset to `offset` (persisted atomically) and
    /// deletes the segments entirely below it. Returns the new log start offset. An offset at
    /// or below the current log start is a no-op; beyond the log end (or negative) is
    /// `OffsetOutOfRange`.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset < 0 || offset > self.log_end_offset() {
            return Err(self.out_of_range(offset));
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        write_checkpoint(&self.dir, offset)?;
        self.log_start_offset = offset;
        self.delete_segments_below(offset)?;
        Ok(offset)
    }

    /// Deletes the segments whose offsets are all below `offset`; if that includes the active
    /// segment, rolls a new (empty) one first so that there always is one.
    fn delete_segments_below(&mut self, offset: i64) -> Result<(), LogError> {
        let active = self.active()?;
        if !active.is_empty() && active.next_offset() <= offset {
            self.roll()?;
        }
        let closed = self.segments.len().saturating_sub(1);
        let n = self
            .segments
            .iter()
            .take(closed)
            .take_while(|s| s.next_offset() <= offset)
            .count();
        self.delete_first_segments(n)
    }

    fn delete_first_segments(&mut self, n: usize) -> Result<(), LogError> {
        let n = n.min(self.segments.len().saturating_sub(1));
        let mut first_error = None;
        for segment in self.segments.drain(..n) {
            tracing::info!(dir = %self.dir.display(), base_offset = segment.base_offset(),
                size = segment.size(), "deleting segment");
            if let Err(e) = segment.delete() {
                tracing::error!(dir = %self.dir.display(), error = %e, "failed to delete segment");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes closed segments older than `retention_ms` (by their largest timestamp, or file
    /// modification time if they have none) and then the oldest closed segments while the log
    /// is larger than `retention_bytes`. The active segment is never deleted. Returns the number
    /// of segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<u64, LogError> {
        let closed = self.segments.len().saturating_sub(1);
        let mut n = 0usize;
        if let Some(retention_ms) = self.config.retention_ms.filter(|r| *r >= 0) {
            while let Some(segment) = self.segments.get(n).filter(|_| n < closed) {
                if now_ms.saturating_sub(segment.largest_timestamp()?) > retention_ms {
                    n += 1;
                } else {
                    break;
                }
            }
        }
        if let Some(retention_bytes) = self.config.retention_bytes.filter(|r| *r >= 0) {
            let limit = retention_bytes as u64;
            let mut remaining: u64 = self.segments.iter().skip(n).map(Segment::size).sum();
            while let Some(segment) = self.segments.get(n).filter(|_| n < closed) {
                if remaining.saturating_sub(segment.size()) >= limit && remaining > limit {
                    remaining -= segment.size();
                    n += 1;
                } else {
                    break;
                }
            }
        }
        if n == 0 {
            return Ok(0);
        }
        let new_start = self
            .segments
            .get(n)
            .map_or(self.log_start_offset, Segment::base_offset)
            .max(self.log_start_offset);
        if new_start > self.log_start_offset {
            write_checkpoint(&self.dir, new_start)?;
            self.log_start_offset = new_start;
        }
        self.delete_first_segments(n)?;
        Ok(n as u64)
    }

    /// Replaces the configuration (takes effect for future appends, rolls and retention runs).
    pub fn set_config(&mut self, config: LogConfig) {
        let interval = config.index_interval_bytes;
        self.config = config;
        if let Some(active) = self.segments.last_mut() {
            active.set_index_interval(interval);
        }
    }

    /// The current configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The headers of all batches from the one containing `offset` to the log end (e.g. to
    /// rebuild idempotent-producer state). `offset` below the log start reads from the log
    /// start; beyond the log end is `OffsetOutOfRange`.
    pub fn batch_headers_from(&self, offset: i64) -> Result<Vec<BatchHeader>, LogError> {
        if offset > self.log_end_offset() {
            return Err(self.out_of_range(offset));
        }
        let offset = offset.max(self.log_start_offset);
        let mut headers = Vec::new();
        for segment in self.segments.iter().skip(self.segment_index(offset)) {
            segment.scan_headers(offset, |header| {
                headers.push(*header);
                ControlFlow::Continue(())
            })?;
        }
        Ok(headers)
    }

    /// `(base offset, size in bytes)` of every segment, oldest first.
    pub fn segments_info(&self) -> Vec<(i64, u64)> {
        self.segments
            .iter()
            .map(|s| (s.base_offset(), s.size()))
            .collect()
    }

    /// The directory holding this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flushes and closes the log.
    pub fn close(mut self) -> Result<(), LogError> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::BatchIter;
    use crate::log::testing::encode_batch;

    fn config(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 256,
            max_batch_bytes: 1 << 20,
            retention_ms: None,
            retention_bytes: None,
            compaction: None,
            records: Default::default(),
        }
    }

    /// A batch of `n` records of `value_len` bytes, timestamps `ts, ts+1, ...`.
    fn batch(n: usize, value_len: usize, ts: i64) -> Vec<u8> {
        let value = vec![0xabu8; value_len];
        let records: Vec<(&[u8], &[u8], i64)> = (0..n)
            .map(|i| (&b"key"[..], &value[..], ts + i as i64))
            .collect();
        encode_batch(&records)
    }

    /// Headers of the batches in a read result, checking that every CRC is intact.
    fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
        validate_batches(bytes, usize::MAX).unwrap()
    }

    /// Appends `count` batches of 3 records; batch `i` has timestamps `1000 + 10 * i ..`.
    fn fill(log: &mut PartitionLog, count: usize) -> Vec<(i64, i64, usize)> {
        let mut out = Vec::new();
        for i in 0..count {
            let mut b = batch(3, 100, 1000 + 10 * i as i64);
            let info = log.append(&mut b).unwrap();
            out.push((info.base_offset, info.last_offset, b.len()));
        }
        out
    }

    /// What a read should return, computed from the list of `(base, last, size)` batches.
    fn expected_read(
        batches: &[(i64, i64, usize)],
        offset: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Vec<i64> {
        let mut out = Vec::new();
        let end = batches.last().map_or(0, |b| b.1 + 1);
        if offset >= upper.min(end) {
            return out;
        }
        let mut total = 0;
        for &(base, _, size) in batches.iter().filter(|b| b.1 >= offset) {
            if base >= upper || (!out.is_empty() && total + size > max_bytes) {
                break;
            }
            total += size;
            out.push(base);
        }
        out
    }

    fn bases(bytes: &[u8]) -> Vec<i64> {
        headers(bytes).iter().map(|h| h.base_offset).collect()
    }

    fn active_log_path(dir: &Path, log: &PartitionLog) -> PathBuf {
        let (base, _) = *log.segments_info().last().unwrap();
        dir.join(crate::log::segment::segment_file_name(base, LOG_EXT))
    }

    #[test]
    fn empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(&dir.path().join("t-0"), config(4096)).unwrap();
        assert_eq!(log.log_start_offset(), 0);
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(log.size_bytes(), 0);
        assert!(log.read(0, 1000, i64::MAX).unwrap().is_empty());
        assert!(matches!(
            log.read(1, 1000, i64::MAX),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
        assert_eq!(log.max_timestamp_offset(), None);
        assert!(log.batch_headers_from(0).unwrap().is_empty());
        assert_eq!(log.sync_handle().sync().unwrap(), 0);
    }

    #[test]
    fn append_read_round_trip_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        let batches = fill(&mut log, 120);
        assert_eq!(batches[0].0, 0);
        assert_eq!(batches[1].0, 3);
        assert_eq!(log.log_end_offset(), 360);
        let segments = log.segments_info();
        assert!(segments.len() > 5, "{segments:?}");
        assert!(segments.iter().all(|(_, size)| *size <= 4096));
        assert_eq!(
            log.size_bytes(),
            batches.iter().map(|b| b.2 as u64).sum::<u64>()
        );

        // Everything in one read, continuing across segment boundaries.
        let all = log.read(0, usize::MAX, i64::MAX).unwrap();
        let hs = headers(&all);
        assert_eq!(hs.len(), 120);
        for (i, h) in hs.iter().enumerate() {
            assert_eq!(h.base_offset, 3 * i as i64);
            assert_eq!(h.record_count, 3);
        }

        // Every offset, various budgets and bounds, against a model.
        let size = batches[0].2;
        for offset in 0..360 {
            for &max_bytes in &[0, 1, size, size + 1, 2 * size, 5000, 9000] {
                for &upper in &[i64::MAX, 200, offset + 1, offset + 4] {
                    let got = log.read(offset, max_bytes, upper).unwrap();
                    assert_eq!(
                        bases(&got),
                        expected_read(&batches, offset, max_bytes, upper),
                        "offset {offset} max_bytes {max_bytes} upper {upper}"
                    );
                }
            }
        }
    }

    #[test]
    fn read_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        fill(&mut log, 4); // offsets 0..12, batches at 0, 3, 6, 9
        let size = log.size_bytes() as usize / 4;

        // Offset in the middle of a batch: the whole batch is returned.
        assert_eq!(
            bases(&log.read(4, usize::MAX, i64::MAX).unwrap()),
            vec![3, 6, 9]
        );
        // At least one batch even when it is larger than max_bytes.
        assert_eq!(bases(&log.read(5, 10, i64::MAX).unwrap()), vec![3]);
        assert_eq!(bases(&log.read(0, 2 * size, i64::MAX).unwrap()), vec![0, 3]);
        assert_eq!(
            bases(&log.read(0, 2 * size - 1, i64::MAX).unwrap()),
            vec![0]
        );
        // Upper bound: only batches whose base offset is below it.
        assert_eq!(bases(&log.read(0, usize::MAX, 6).unwrap()), vec![0, 3]);
        assert_eq!(bases(&log.read(0, usize::MAX, 7).unwrap()), vec![0, 3, 6]);
        assert!(log.read(6, usize::MAX, 6).unwrap().is_empty());
        // End of log and out of range.
        assert!(log.read(12, usize::MAX, i64::MAX).unwrap().is_empty());
        assert!(matches!(
            log.read(13, usize::MAX, i64::MAX),
            Err(LogError::OffsetOutOfRange {
                offset: 13,
                log_start: 0,
                log_end: 12
            })
        ));
        assert!(matches!(
            log.read(-1, usize::MAX, i64::MAX),
            Err(LogError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn large_batches_and_multi_batch_appends() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(64 * 1024);
        cfg.index_interval_bytes = 64;
        let mut log = PartitionLog::open(dir.path(), cfg).unwrap();
        let mut batches = Vec::new();
        for i in 0..40 {
            // A few batches per append, mixing sizes from tiny to 20 KB.
            let mut records = Vec::new();
            let sizes = [10usize, 20_000, 300, 5_000];
            for (j, value_len) in sizes.iter().enumerate().take(1 + i % 4) {
                records.extend_from_slice(&batch(1 + j, *value_len, i as i64));
            }
            let info = log.append(&mut records).unwrap();
            assert_eq!(info.batches.first().unwrap().base_offset, info.base_offset);
            assert_eq!(info.batches.last().unwrap().last_offset(), info.last_offset);
            for h in &info.batches {
                batches.push((h.base_offset, h.last_offset(), h.total_size()));
            }
        }
        let end = log.log_end_offset();
        assert!(log.segments_info().len() > 3);
        for offset in 0..end {
            for &max_bytes in &[1, 1000, 25_000, 100_000] {
                let got = log.read(offset, max_bytes, i64::MAX).unwrap();
                assert_eq!(
                    bases(&got),
                    expected_read(&batches, offset, max_bytes, i64::MAX),
                    "offset {offset} max_bytes {max_bytes}"
                );
            }
        }
        // The same after reopening (closed segments searched on disk).
        drop(log);
        let log = PartitionLog::open(dir.path(), config(64 * 1024)).unwrap();
        assert_eq!(log.log_end_offset(), end);
        for offset in 0..end {
            let got = log.read(offset, 25_000, i64::MAX).unwrap();
            assert_eq!(
                bases(&got),
                expected_read(&batches, offset, 25_000, i64::MAX)
            );
        }
    }

    #[test]
    fn invalid_appends_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(1 << 20);
        cfg.max_batch_bytes = 2000;
        let mut log = PartitionLog::open(dir.path(), cfg).unwrap();
        fill(&mut log, 2);
        let (end, size) = (log.log_end_offset(), log.size_bytes());

        // A good batch followed by one with a bad CRC.
        let mut records = batch(2, 10, 5);
        let mut bad = batch(2, 10, 5);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        records.extend_from_slice(&bad);
        assert!(matches!(
            log.append(&mut records),
            Err(LogError::CorruptMessage(_))
        ));
        // Oversized batch.
        assert!(matches!(
            log.append(&mut batch(1, 3000, 5)),
            Err(LogError::MessageTooLarge { .. })
        ));
        // Trailing partial batch, empty input, wrong magic.
        let mut partial = batch(1, 10, 5);
        partial.extend_from_slice(&batch(1, 10, 5)[..40]);
        assert!(log.append(&mut partial).is_err());
        assert!(log.append(&mut []).is_err());
        let mut v1 = batch(1, 10, 5);
        v1[16] = 1;
        assert!(matches!(
            log.append(&mut v1),
            Err(LogError::UnsupportedMagic(1))
        ));

        assert_eq!((log.log_end_offset(), log.size_bytes()), (end, size));
        assert_eq!(
            headers(&log.read(0, usize::MAX, i64::MAX).unwrap()).len(),
            2
        );
        drop(log);
        let log = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        assert_eq!((log.log_end_offset(), log.size_bytes()), (end, size));
    }

    #[test]
    fn append_larger_than_segment_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1000)).unwrap();
        assert!(matches!(
            log.append(&mut batch(1, 2000, 5)),
            Err(LogError::RecordListTooLarge { .. })
        ));
        assert_eq!(log.log_end_offset(), 0);
    }

    #[test]
    fn reopen_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        fill(&mut log, 50);
        let end = log.log_end_offset();
        let info = log.segments_info();
        let all = log.read(0, usize::MAX, i64::MAX).unwrap();
        log.close().unwrap();

        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(log.segments_info(), info);
        assert_eq!(log.read(0, usize::MAX, i64::MAX).unwrap(), all);
        let next = log.append(&mut batch(1, 10, 5)).unwrap();
        assert_eq!(next.base_offset, end);

        // Dropped without close: appends are in the page cache, so still there.
        drop(log);
        let log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_end_offset(), end + 1);
    }

    #[test]
    fn torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        let batches = fill(&mut log, 20);
        let end = log.log_end_offset();
        let path = active_log_path(dir.path(), &log);
        let active_size = log.segments_info().last().unwrap().1;
        drop(log);

        // Cut the last batch in the middle.
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(active_size - 10).unwrap();
        drop(file);
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_end_offset(), end - 3);
        assert_eq!(
            log.segments_info().last().unwrap().1,
            active_size - batches.last().unwrap().2 as u64
        );
        let info = log.append(&mut batch(2, 10, 5)).unwrap();
        assert_eq!(info.base_offset, end - 3);
        let end = log.log_end_offset();
        let size = log.segments_info().last().unwrap().1;
        drop(log);

        // Garbage after the last batch.
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0x5a; 100]);
        fs::write(&path, &bytes).unwrap();
        let log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(log.segments_info().last().unwrap().1, size);
        drop(log);

        // A whole-looking batch with a bad CRC, and one with the wrong offset.
        let mut bytes = fs::read(&path).unwrap();
        let mut bad = batch(1, 10, 5);
        set_base_offset(&mut bad, end);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        bytes.extend_from_slice(&bad);
        fs::write(&path, &bytes).unwrap();
        let log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_end_offset(), end);
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        let mut wrong = batch(1, 10, 5);
        set_base_offset(&mut wrong, end + 7);
        bytes.extend_from_slice(&wrong);
        fs::write(&path, &bytes).unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_end_offset(), end);

        let info = log.append(&mut batch(1, 10, 5)).unwrap();
        assert_eq!(info.base_offset, end);
        let all = log.read(0, usize::MAX, i64::MAX).unwrap();
        let hs = headers(&all);
        assert_eq!(hs.last().unwrap().base_offset, end);
        for pair in hs.windows(2) {
            assert_eq!(pair[0].next_offset(), pair[1].base_offset);
        }
    }

    #[test]
    fn missing_or_broken_indexes_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(8192)).unwrap();
        let batches = fill(&mut log, 80);
        let first_closed = log.segments_info()[0].0;
        log.close().unwrap();

        let index = |ext: &str| {
            dir.path()
                .join(crate::log::segment::segment_file_name(first_closed, ext))
        };
        let original = fs::read(index(INDEX_EXT)).unwrap();
        assert!(!original.is_empty());
        let original_time = fs::read(index(TIME_INDEX_EXT)).unwrap();
        for entry in fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if name.ends_with(".index") || name.ends_with(".timeindex") {
                fs::remove_file(path).unwrap();
            }
        }
        let log = PartitionLog::open(dir.path(), config(8192)).unwrap();
        assert_eq!(fs::read(index(INDEX_EXT)).unwrap(), original);
        assert_eq!(fs::read(index(TIME_INDEX_EXT)).unwrap(), original_time);
        for offset in (0..240).step_by(7) {
            let got = log.read(offset, 3000, i64::MAX).unwrap();
            assert_eq!(bases(&got), expected_read(&batches, offset, 3000, i64::MAX));
        }
        drop(log);

        // Inconsistent index: entries beyond the segment, odd length.
        let mut broken = original.clone();
        broken[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        fs::write(index(INDEX_EXT), &broken).unwrap();
        let mut odd = original_time.clone();
        odd.push(1);
        fs::write(index(TIME_INDEX_EXT), &odd).unwrap();
        let log = PartitionLog::open(dir.path(), config(8192)).unwrap();
        assert_eq!(fs::read(index(INDEX_EXT)).unwrap(), original);
        assert_eq!(fs::read(index(TIME_INDEX_EXT)).unwrap(), original_time);
        assert_eq!(
            bases(&log.read(100, 1, i64::MAX).unwrap()),
            expected_read(&batches, 100, 1, i64::MAX)
        );
    }

    #[test]
    fn retention_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        fill(&mut log, 100);
        let before = log.segments_info();
        let limit = 3 * 4096;
        log.set_config(LogConfig {
            retention_bytes: Some(limit),
            ..config(4096)
        });
        let deleted = log.enforce_retention(0).unwrap();
        assert!(deleted > 0);
        let after = log.segments_info();
        assert_eq!(after.len() + deleted as usize, before.len());
        assert_eq!(after.last(), before.last());
        // Like Kafka: a segment goes only if the rest is still at least the limit.
        assert!(log.size_bytes() >= limit as u64);
        assert!(log.size_bytes() - after[0].1 < limit as u64);
        assert_eq!(log.log_start_offset(), after[0].0);
        assert!(matches!(
            log.read(0, 100, i64::MAX),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(
            bases(&log.read(after[0].0, 1, i64::MAX).unwrap()),
            vec![after[0].0]
        );

        // Never the active segment, even with a zero limit.
        log.set_config(LogConfig {
            retention_bytes: Some(0),
            ..config(4096)
        });
        log.enforce_retention(0).unwrap();
        assert_eq!(log.segments_info(), vec![*before.last().unwrap()]);
        assert_eq!(log.log_start_offset(), before.last().unwrap().0);
        drop(log);
        let log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_start_offset(), before.last().unwrap().0);
    }

    #[test]
    fn retention_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        fill(&mut log, 100); // batch i has timestamps 1000+10i ..= 1002+10i
        let before = log.segments_info();
        log.set_config(LogConfig {
            retention_ms: Some(100),
            ..config(4096)
        });
        // Nothing is older than 100 ms at time 1100 except batches < 1000.
        assert_eq!(log.enforce_retention(1000).unwrap(), 0);
        // At 1600, batches with max timestamp < 1500 (i < 50) are expired.
        let deleted = log.enforce_retention(1600).unwrap() as usize;
        assert!(deleted > 0);
        let after = log.segments_info();
        assert_eq!(after.len() + deleted, before.len());
        // The first remaining segment holds a batch with a timestamp >= 1500, i.e. offset >= 150.
        assert!(after[1].0 > 150, "{after:?}");
        assert_eq!(log.log_start_offset(), after[0].0);
        // Far in the future: all closed segments go, the active stays.
        log.enforce_retention(i64::MAX).unwrap();
        assert_eq!(log.segments_info(), vec![*before.last().unwrap()]);
        // Forever.
        log.set_config(LogConfig {
            retention_ms: Some(-1),
            ..config(4096)
        });
        assert_eq!(log.enforce_retention(i64::MAX).unwrap(), 0);
    }

    #[test]
    fn delete_records_persists() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        fill(&mut log, 60);
        let end = log.log_end_offset();
        let segments = log.segments_info().len();
        assert_eq!(log.delete_records_before(100).unwrap(), 100);
        assert_eq!(log.log_start_offset(), 100);
        assert!(log.segments_info().len() < segments);
        assert!(log.segments_info()[0].0 <= 100);
        // Below the current start: no-op.
        assert_eq!(log.delete_records_before(50).unwrap(), 100);
        assert!(matches!(
            log.delete_records_before(end + 1),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(matches!(
            log.read(99, 100, i64::MAX),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // Reading at the log start returns the batch containing it (base 99).
        assert_eq!(bases(&log.read(100, 1, i64::MAX).unwrap()), vec![99]);
        assert_eq!(log.batch_headers_from(0).unwrap()[0].base_offset, 99);
        drop(log);

        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_start_offset(), 100);
        assert_eq!(log.log_end_offset(), end);

        // Delete everything: a fresh empty segment at the log end.
        assert_eq!(log.delete_records_before(end).unwrap(), end);
        assert_eq!(log.segments_info(), vec![(end, 0)]);
        assert!(log.read(end, 100, i64::MAX).unwrap().is_empty());
        let info = log.append(&mut batch(1, 10, 5)).unwrap();
        assert_eq!(info.base_offset, end);
        drop(log);
        let log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_start_offset(), end);
        assert_eq!(log.log_end_offset(), end + 1);
    }

    #[test]
    fn checkpoint_in_empty_dir_and_beyond_end() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), 42).unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (42, 42));
        assert_eq!(log.append(&mut batch(2, 10, 5)).unwrap().base_offset, 42);
        drop(log);

        // The checkpoint is ahead of the data (lost tail): start afresh at the checkpoint.
        write_checkpoint(dir.path(), 1000).unwrap();
        let log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (1000, 1000));
        assert_eq!(log.segments_info(), vec![(1000, 0)]);
    }

    #[test]
    fn timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        fill(&mut log, 100); // batch i: offsets 3i..3i+2, timestamps 1000+10i ..= 1002+10i
        let mut out_of_order = batch(1, 10, 999_999);
        let peak = log.append(&mut out_of_order).unwrap().base_offset;
        fill(&mut log, 5);

        let check = |log: &PartitionLog| {
            assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1002)));
            assert_eq!(log.offset_for_timestamp(1002).unwrap(), Some((0, 1002)));
            assert_eq!(log.offset_for_timestamp(1003).unwrap(), Some((3, 1012)));
            for i in 0..100 {
                let ts = 1000 + 10 * i;
                assert_eq!(
                    log.offset_for_timestamp(ts).unwrap(),
                    Some((3 * i, ts + 2)),
                    "ts {ts}"
                );
            }
            assert_eq!(
                log.offset_for_timestamp(5000).unwrap(),
                Some((peak, 999_999))
            );
            assert_eq!(log.offset_for_timestamp(1_000_000).unwrap(), None);
            assert_eq!(log.max_timestamp_offset(), Some((peak, 999_999)));
        };
        check(&log);
        drop(log);
        let log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        check(&log);
    }

    #[test]
    fn batch_headers_and_sync_handle() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        fill(&mut log, 40);
        let hs = log.batch_headers_from(31).unwrap();
        assert_eq!(hs.len(), 30);
        assert_eq!(hs[0].base_offset, 30);
        assert_eq!(hs.last().unwrap().base_offset, 117);
        assert!(log.batch_headers_from(120).unwrap().is_empty());
        assert!(log.batch_headers_from(121).is_err());

        let handle = log.sync_handle();
        fill(&mut log, 40); // rolls several times
        assert_eq!(handle.sync().unwrap(), 120);
        assert_eq!(log.sync_handle().sync().unwrap(), 240);
        log.flush().unwrap();
    }

    #[test]
    fn reads_from_iter_match_complete_prefix() {
        // The read result is always a whole number of batches.
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        fill(&mut log, 30);
        for max_bytes in (0..3000).step_by(97) {
            let got = log.read(7, max_bytes, i64::MAX).unwrap();
            let mut iter = BatchIter::new(&got);
            for _ in iter.by_ref() {}
            assert_eq!(iter.complete_len(), got.len());
        }
    }

    #[test]
    fn torn_tail_at_every_cut_point() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        let batches = fill(&mut log, 3);
        let path = active_log_path(dir.path(), &log);
        drop(log);
        let full = fs::read(&path).unwrap();
        let second_end = batches[0].2 + batches[1].2;
        let boundaries = [batches[0].2, second_end, full.len()];
        let near_boundary = |cut: usize| boundaries.iter().any(|b| cut.abs_diff(*b) <= 3);
        for cut in (batches[0].2 - 3..full.len()).filter(|c| near_boundary(*c) || c % 13 == 0) {
            fs::write(&path, &full[..cut]).unwrap();
            let mut log = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
            let expected = if cut >= second_end {
                6
            } else if cut >= batches[0].2 {
                3
            } else {
                0
            };
            assert_eq!(log.log_end_offset(), expected, "cut at {cut}");
            assert_eq!(
                log.append(&mut batch(1, 5, 5)).unwrap().base_offset,
                expected
            );
            drop(log);
        }
    }

    #[test]
    fn retention_without_timestamps_uses_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(2048)).unwrap();
        let value = [1u8; 100];
        let records: Vec<(&[u8], &[u8], i64)> = vec![(&b"k"[..], &value[..], NO_TIMESTAMP); 3];
        for _ in 0..40 {
            log.append(&mut encode_batch(&records)).unwrap();
        }
        assert_eq!(log.max_timestamp_offset(), None);
        assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
        let segments = log.segments_info().len();
        assert!(segments > 2);
        log.set_config(LogConfig {
            retention_ms: Some(60_000),
            ..config(2048)
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert_eq!(log.enforce_retention(now).unwrap(), 0);
        assert_eq!(
            log.enforce_retention(now + 120_000).unwrap() as usize,
            segments - 1
        );
        assert_eq!(log.segments_info().len(), 1);
    }

    #[test]
    fn stray_files_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("00000000000000000500.index"), b"junk").unwrap();
        fs::write(dir.path().join("log-start-offset.tmp"), b"7").unwrap();
        fs::write(dir.path().join("README"), b"hello").unwrap();
        fs::write(dir.path().join(LOG_START_CHECKPOINT), b"not a number").unwrap();
        let log = PartitionLog::open(dir.path(), config(4096)).unwrap();
        assert_eq!(log.log_start_offset(), 0);
        assert!(!dir.path().join("00000000000000000500.index").exists());
        assert!(!dir.path().join("log-start-offset.tmp").exists());
        assert!(dir.path().join("README").exists());
    }
}
