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

use super::batch::{set_base_offset, validate_batches, BatchHeader, BATCH_HEADER_LEN};
use super::error::LogError;
use super::segment::{
    ReadCursor, Segment, INDEX_EXT, LOG_EXT, MAX_SEGMENT_SIZE, NO_TIMESTAMP, TIME_INDEX_EXT,
};

/// Name of the file holding the log start offset.
pub const LOG_START_CHECKPOINT: &str = "log-start-offset";

/// Per-partition log settings (Kafka topic configs of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before one would exceed this (capped at 4 GiB).
    pub segment_bytes: u64,
    /// `index.interval.bytes`: bytes of data between two offset index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: largest accepted record batch.
    pub max_batch_bytes: usize,
    /// `retention.ms`: `None` or negative keeps data forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: `None` or negative means no size limit.
    pub retention_bytes: Option<i64>,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            max_batch_bytes: 1_048_588,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
        }
    }
}

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
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset, never empty; the last one is the active segment.
    segments: Vec<Segment>,
    log_start_offset: i64,
}

fn parse_base_offset(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse::<i64>().ok()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
    fn roll(&mut self) -> Result<(), LogError> {
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
    pub fn append(&mut self, records: &mut [u8]) -> Result<AppendInfo, LogError> {
        let mut headers = validate_batches(records, self.config.max_batch_bytes)?;
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

    /// Reads whole batches starting with the one containing `offset`, stopping before the
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
