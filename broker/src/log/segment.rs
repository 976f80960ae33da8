//! One log segment: a `<base_offset:020>.log` file of back-to-back record batches plus its
//! offset and time indexes.
//!
//! A partition's log is split into segments so that old data can be deleted a file at a time
//! (retention, DeleteRecords) and so that file positions fit in 32 bits (a segment is always
//! smaller than 4 GiB). Only the last segment of a partition is *active* (appended to); the others
//! are *closed*: immutable, fsynced, and with their indexes on disk only.
//!
//! All reads use positioned reads (`pread`), so any number of readers can share the file
//! handle without a shared cursor, and appends use positioned writes at the segment's size.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::BytesMut;

use super::batch::{check_batch, BatchHeader, BATCH_HEADER_LEN};
use super::error::LogError;
use super::index::{IndexFile, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};

/// Extension of segment data files.
pub const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub const TIME_INDEX_EXT: &str = "timeindex";

/// Largest possible segment file: positions are `u32`.
pub const MAX_SEGMENT_SIZE: u64 = u32::MAX as u64;

/// Timestamp value meaning "no timestamp" in Kafka.
pub const NO_TIMESTAMP: i64 = -1;

/// Read size when walking headers only (recovery of closed segments, timestamp search).
const HEADER_SCAN_CHUNK: usize = 64 * 1024;
/// Read size when validating whole batches (recovery of the active segment).
const VERIFY_SCAN_CHUNK: usize = 1024 * 1024;

/// `<base_offset:020>.<ext>`, the Kafka file naming scheme.
pub fn segment_file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// The base offset in a segment file name `<20 digits>.<ext>`, if `name` is one.
pub fn parse_base_offset(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse::<i64>().ok()
}

/// Fsyncs a directory (after files in it were created, renamed or removed).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// How a scan of a segment file ended.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Position after the last batch that was accepted (or where the callback stopped).
    pub valid_end: u64,
    /// Why the scan stopped before the end of the file, if it did because of bad data.
    pub problem: Option<String>,
}

/// Walks the batches of `file` between `start` and `size`, calling `f(position, header)` for each
/// complete batch (and, if `verify`, each batch with correct magic, counts and CRC). `f` returns
/// `Break` to stop *before* that batch. Bad data ends the scan and is reported in
/// [`ScanEnd::problem`]; only I/O failures are errors.
pub(crate) fn scan_file(
    file: &File,
    size: u64,
    start: u64,
    verify: bool,
    mut f: impl FnMut(u64, &BatchHeader) -> ControlFlow<()>,
) -> Result<ScanEnd, LogError> {
    let chunk = if verify {
        VERIFY_SCAN_CHUNK
    } else {
        HEADER_SCAN_CHUNK
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_pos = start;
    let mut pos = start;
    let end = |pos: u64, problem: Option<String>| {
        Ok(ScanEnd {
            valid_end: pos,
            problem,
        })
    };
    loop {
        if pos >= size {
            return end(pos, None);
        }
        let remaining = size - pos;
        if remaining < BATCH_HEADER_LEN as u64 {
            return end(
                pos,
                Some(format!("{remaining} trailing bytes after the last batch")),
            );
        }
        let mut off = (pos - buf_pos) as usize;
        if pos < buf_pos || off.saturating_add(BATCH_HEADER_LEN) > buf.len() {
            let len = (chunk as u64).min(remaining) as usize;
            refill(file, &mut buf, pos, len)?;
            buf_pos = pos;
            off = 0;
        }
        let header = match BatchHeader::parse(buf.get(off..).unwrap_or_default()) {
            Ok(h) => h,
            Err(e) => return end(pos, Some(e.to_string())),
        };
        let total = header.total_size() as u64;
        if total > remaining {
            return end(
                pos,
                Some(format!(
                    "batch of {total} bytes at position {pos} extends past the end of the file ({size} bytes)"
                )),
            );
        }
        if verify {
            if off as u64 + total > buf.len() as u64 {
                let len = (chunk as u64).max(total).min(remaining) as usize;
                refill(file, &mut buf, pos, len)?;
                buf_pos = pos;
                off = 0;
            }
            let batch = buf.get(off..off + total as usize).unwrap_or_default();
            if let Err(e) = check_batch(&header, batch) {
                return end(pos, Some(e.to_string()));
            }
        }
        if f(pos, &header).is_break() {
            return end(pos, None);
        }
        pos += total;
    }
}

fn refill(file: &File, buf: &mut Vec<u8>, pos: u64, len: usize) -> Result<(), LogError> {
    buf.resize(len, 0);
    file.read_exact_at(buf, pos)?;
    Ok(())
}

/// State of a fetch that may span several segments.
pub(crate) struct ReadCursor {
    /// The fetch offset: leading batches whose last offset is below it are skipped.
    pub target: i64,
    /// Batches with a base offset at or above this are not returned (high watermark).
    pub upper: i64,
    /// Byte budget (exceeded only by a lone first batch).
    pub max_bytes: usize,
    /// Extra bytes read on the first chunk to cover the distance from the index entry to the
    /// wanted batch (the index interval).
    pub slack: usize,
    /// Whole batches accepted so far.
    pub out: BytesMut,
    /// Set when no more batches should be added.
    pub done: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum ChunkStatus {
    /// The fetch is complete (budget or upper bound reached).
    Done,
    /// The chunk ended; the next read must be at least `min_len` bytes to make progress.
    More { min_len: usize },
}

#[derive(Debug, PartialEq, Eq)]
struct ChunkScan {
    /// Leading bytes belonging to batches below the target (may exceed the chunk length).
    skip: usize,
    /// End of the accepted batches (`>= skip`).
    accept_end: usize,
    status: ChunkStatus,
}

/// Decides which batches of a freshly read chunk belong to the fetch. `have` is the number of
/// bytes accepted before this chunk.
fn scan_chunk(
    chunk: &[u8],
    target: i64,
    upper: i64,
    have: usize,
    max_bytes: usize,
) -> Result<ChunkScan, LogError> {
    let mut p = 0usize;
    let mut skip = 0usize;
    let status = loop {
        let rest = chunk.get(p..).unwrap_or_default();
        if rest.len() < BATCH_HEADER_LEN {
            break ChunkStatus::More {
                min_len: BATCH_HEADER_LEN,
            };
        }
        let header = BatchHeader::parse(rest)?;
        let total = header.total_size();
        let accepted = have + (p - skip);
        if accepted == 0 && header.last_offset() < target {
            p += total;
            skip = p;
            continue;
        }
        if header.base_offset >= upper {
            break ChunkStatus::Done;
        }
        if accepted > 0 && accepted.saturating_add(total) > max_bytes {
            break ChunkStatus::Done;
        }
        if total > rest.len() {
            break ChunkStatus::More { min_len: total };
        }
        p += total;
    };
    Ok(ChunkScan {
        skip,
        accept_end: p,
        status,
    })
}

/// One segment of a partition log.
pub struct Segment {
    base_offset: i64,
    next_offset: i64,
    size: u32,
    file: Arc<File>,
    log_path: PathBuf,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    last_time_entry: i64,
    bytes_since_index: u64,
    index_interval: u32,
    active: bool,
}

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        Self::paths_with_suffix(dir, base_offset, "")
    }

    /// The three file paths of a segment, with `suffix` (e.g. `".cleaned"`) appended.
    fn paths_with_suffix(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
    ) -> (PathBuf, PathBuf, PathBuf) {
        let path = |ext: &str| dir.join(format!("{}{suffix}", segment_file_name(base_offset, ext)));
        (path(LOG_EXT), path(INDEX_EXT), path(TIME_INDEX_EXT))
    }

    fn new_active(
        dir: &Path,
        base_offset: i64,
        index_interval: u32,
        file: File,
        size: u32,
    ) -> Result<Segment, LogError> {
        Self::new_active_at(
            Self::paths(dir, base_offset),
            base_offset,
            index_interval,
            file,
            size,
        )
    }

    fn new_active_at(
        (log_path, index_path, time_path): (PathBuf, PathBuf, PathBuf),
        base_offset: i64,
        index_interval: u32,
        file: File,
        size: u32,
    ) -> Result<Segment, LogError> {
        Ok(Segment {
            base_offset,
            next_offset: base_offset,
            size,
            file: Arc::new(file),
            log_path,
            offset_index: IndexFile::active(&index_path, Vec::new())?,
            time_index: IndexFile::active(&time_path, Vec::new())?,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            last_time_entry: NO_TIMESTAMP,
            bytes_since_index: 0,
            index_interval,
            active: true,
        })
    }

    /// Creates a new, empty active segment (replacing any file of the same name).
    pub fn create(dir: &Path, base_offset: i64, index_interval: u32) -> Result<Segment, LogError> {
        let (log_path, _, _) = Self::paths(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)?;
        Self::new_active(dir, base_offset, index_interval, file, 0)
    }

    /// Creates an empty segment whose three files carry `suffix` after their usual names (the
    /// log cleaner writes `<base>.log.cleaned` etc. and renames them into place when done).
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        index_interval: u32,
        suffix: &str,
    ) -> Result<Segment, LogError> {
        let paths = Self::paths_with_suffix(dir, base_offset, suffix);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&paths.0)?;
        Self::new_active_at(paths, base_offset, index_interval, file, 0)
    }

    /// Opens the last segment of a log after a restart or crash: validates every batch (length,
    /// magic, CRC, contiguous offsets), truncates the file at the first bad or incomplete batch
    /// (a torn write), and rebuilds the indexes. Returns the segment and the bytes cut off.
    pub fn recover_active(
        dir: &Path,
        base_offset: i64,
        index_interval: u32,
    ) -> Result<(Segment, u64), LogError> {
        let (log_path, _, _) = Self::paths(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)?;
        let file_len = file.metadata()?.len();
        let mut seg = Self::new_active(dir, base_offset, index_interval, file, 0)?;
        let file = Arc::clone(&seg.file);
        let mut expected = base_offset;
        let mut bad_offset = None;
        let end = scan_file(&file, file_len, 0, true, |pos, header| {
            let next = pos + header.total_size() as u64;
            if header.base_offset != expected {
                bad_offset = Some(header.base_offset);
                return ControlFlow::Break(());
            }
            if next > MAX_SEGMENT_SIZE {
                return ControlFlow::Break(());
            }
            seg.note_batch(pos as u32, header);
            expected = header.next_offset();
            ControlFlow::Continue(())
        })?;
        seg.next_offset = expected;
        seg.size = end.valid_end.min(MAX_SEGMENT_SIZE) as u32;
        let cut = file_len - u64::from(seg.size);
        if cut > 0 {
            let reason = match (end.problem, bad_offset) {
                (Some(p), _) => p,
                (None, Some(o)) => format!("batch with base offset {o}, expected {expected}"),
                (None, None) => "segment too large".to_string(),
            };
            tracing::warn!(
                segment = %log_path.display(),
                valid_bytes = seg.size,
                truncated_bytes = cut,
                next_offset = expected,
                %reason,
                "truncating torn or corrupt tail of the active segment"
            );
            file.set_len(u64::from(seg.size))?;
            file.sync_all()?;
        }
        Ok((seg, cut))
    }

    /// Opens a closed segment whose successor starts at `next_offset`. Its data is trusted
    /// (closed segments were fsynced when they were rolled); its indexes are checked and rebuilt
    /// by scanning the batch headers if missing or inconsistent.
    pub fn open_closed(
        dir: &Path,
        base_offset: i64,
        next_offset: i64,
        index_interval: u32,
    ) -> Result<Segment, LogError> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let file = File::open(&log_path)?;
        let file_len = file.metadata()?.len();
        if file_len > MAX_SEGMENT_SIZE {
            return Err(LogError::CorruptMessage(format!(
                "segment {} is larger than 4 GiB",
                log_path.display()
            )));
        }
        let size = file_len as u32;
        let offsets = next_offset.saturating_sub(base_offset);
        let offset_index = OffsetIndex::open_closed(&index_path, |e: &OffsetEntry| {
            i64::from(e.relative_offset) < offsets && e.position < size
        })?;
        let time_index = TimeIndex::open_closed(&time_path, |e: &TimeEntry| {
            i64::from(e.relative_offset) < offsets
        })?;
        if let (Some(offset_index), Some(time_index)) = (offset_index, time_index) {
            let (max_timestamp, offset_of_max_timestamp) = match time_index.last()? {
                Some(e) => (
                    e.timestamp,
                    base_offset.saturating_add(i64::from(e.relative_offset)),
                ),
                None => (NO_TIMESTAMP, base_offset),
            };
            return Ok(Segment {
                base_offset,
                next_offset,
                size,
                file: Arc::new(file),
                log_path,
                offset_index,
                time_index,
                max_timestamp,
                offset_of_max_timestamp,
                last_time_entry: max_timestamp,
                bytes_since_index: 0,
                index_interval,
                active: false,
            });
        }

        tracing::info!(segment = %log_path.display(), "rebuilding missing or inconsistent indexes");
        let mut seg = Self::new_active(dir, base_offset, index_interval, file, size)?;
        let file = Arc::clone(&seg.file);
        let end = scan_file(&file, u64::from(size), 0, false, |pos, header| {
            seg.note_batch(pos as u32, header);
            ControlFlow::Continue(())
        })?;
        if let Some(problem) = end.problem {
            tracing::warn!(segment = %log_path.display(), %problem, "closed segment has a bad tail");
        }
        seg.next_offset = next_offset;
        seg.seal()?;
        Ok(seg)
    }

    /// Updates the index state for a batch written at `position`.
    fn note_batch(&mut self, position: u32, header: &BatchHeader) {
        if self.bytes_since_index >= u64::from(self.index_interval) {
            let rel = header.base_offset.checked_sub(self.base_offset);
            if let Some(rel) = rel.and_then(|r| u32::try_from(r).ok()) {
                self.offset_index.push(OffsetEntry {
                    relative_offset: rel,
                    position,
                });
                self.push_time_entry();
                self.bytes_since_index = 0;
            }
        }
        self.bytes_since_index += header.total_size() as u64;
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.base_offset;
        }
    }

    fn push_time_entry(&mut self) {
        if self.max_timestamp > self.last_time_entry {
            let rel = self.offset_of_max_timestamp.checked_sub(self.base_offset);
            if let Some(rel) = rel.and_then(|r| u32::try_from(r).ok()) {
                self.time_index.push(TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset: rel,
                });
                self.last_time_entry = self.max_timestamp;
            }
        }
    }

    /// Appends validated batches (`data`, whose headers are `headers` in order and whose base
    /// offsets are already assigned) with one positioned write. On failure the file is cut back
    /// to its previous size.
    pub fn append(&mut self, data: &[u8], headers: &[BatchHeader]) -> Result<(), LogError> {
        let start = u64::from(self.size);
        let new_size = start + data.len() as u64;
        if new_size > MAX_SEGMENT_SIZE {
            return Err(LogError::RecordListTooLarge {
                size: data.len(),
                max: MAX_SEGMENT_SIZE - start,
            });
        }
        if let Err(e) = self.file.write_all_at(data, start) {
            if let Err(e2) = self.file.set_len(start) {
                tracing::error!(segment = %self.log_path.display(), error = %e2,
                    "failed to cut back a partially written append");
            }
            return Err(e.into());
        }
        let mut pos = start;
        for header in headers {
            self.note_batch(pos as u32, header);
            pos += header.total_size() as u64;
            self.next_offset = header.next_offset();
        }
        self.size = new_size as u32;
        Ok(())
    }

    /// Byte position at which to start looking for the batch containing `offset`.
    pub fn position_for(&self, offset: i64) -> Result<u32, LogError> {
        Ok(self
            .offset_index
            .lookup(offset.saturating_sub(self.base_offset))?
            .map_or(0, |e| e.position))
    }

    /// Adds this segment's batches to a fetch (see [`ReadCursor`]).
    pub(crate) fn read_into(&self, cur: &mut ReadCursor) -> Result<(), LogError> {
        let size = u64::from(self.size);
        let mut pos = if cur.out.is_empty() && cur.target > self.base_offset {
            u64::from(self.position_for(cur.target)?)
        } else {
            0
        };
        let mut min_len = BATCH_HEADER_LEN;
        while !cur.done && pos < size {
            let have = cur.out.len();
            let budget = cur.max_bytes.saturating_sub(have);
            let want = if have == 0 {
                budget.max(min_len).saturating_add(cur.slack)
            } else if budget < BATCH_HEADER_LEN {
                cur.done = true;
                break;
            } else {
                budget
            };
            let len = (want as u64).min(size - pos) as usize;
            cur.out.resize(have + len, 0);
            let chunk = cur.out.get_mut(have..).unwrap_or_default();
            self.file.read_exact_at(chunk, pos)?;
            let scan = scan_chunk(chunk, cur.target, cur.upper, have, cur.max_bytes)?;
            cur.out.truncate(have + scan.accept_end.min(len));
            if scan.skip > 0 {
                if scan.skip >= cur.out.len() {
                    cur.out.clear();
                } else {
                    let _ = cur.out.split_to(scan.skip);
                }
            }
            let consumed = scan.accept_end;
            pos += consumed as u64;
            match scan.status {
                ChunkStatus::Done => cur.done = true,
                ChunkStatus::More { min_len: m } => {
                    if consumed == 0 && m > len && pos + len as u64 >= size {
                        // A batch claims to extend past the end of the segment.
                        tracing::warn!(segment = %self.log_path.display(), position = pos,
                            "segment ends inside a batch");
                        break;
                    }
                    min_len = m;
                }
            }
        }
        Ok(())
    }

    /// First batch in this segment with `last_offset >= min_offset` and
    /// `max_timestamp >= timestamp`, as `(base_offset, max_timestamp)`.
    pub fn find_timestamp(
        &self,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        // Every batch up to the time index entry's recording point has a timestamp below
        // `timestamp`, so the search can start at the batch the entry names.
        let from = self
            .time_index
            .lookup(timestamp.saturating_sub(1))?
            .map_or(self.base_offset, |e| {
                self.base_offset
                    .saturating_add(i64::from(e.relative_offset))
            })
            .max(min_offset);
        let mut found = None;
        self.scan_headers(from, |header| {
            if header.last_offset() >= min_offset && header.max_timestamp >= timestamp {
                found = Some((header.base_offset, header.max_timestamp));
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(found)
    }

    /// Calls `f` with the header of every batch from the one containing `offset` on.
    pub fn scan_headers(
        &self,
        offset: i64,
        mut f: impl FnMut(&BatchHeader) -> ControlFlow<()>,
    ) -> Result<(), LogError> {
        let start = u64::from(self.position_for(offset)?);
        let end = scan_file(
            &self.file,
            u64::from(self.size),
            start,
            false,
            |_, header| {
                if header.last_offset() < offset {
                    ControlFlow::Continue(())
                } else {
                    f(header)
                }
            },
        )?;
        if let Some(problem) = end.problem {
            tracing::warn!(segment = %self.log_path.display(), %problem, "bad data while scanning headers");
        }
        Ok(())
    }

    /// Makes the segment immutable: records the final time index entry, writes and fsyncs both
    /// indexes (dropping their in-memory entries) and fsyncs the data file.
    pub fn seal(&mut self) -> Result<(), LogError> {
        self.push_time_entry();
        self.file.sync_data()?;
        self.offset_index.seal()?;
        self.time_index.seal()?;
        self.active = false;
        Ok(())
    }

    /// Fsyncs the data file and writes + fsyncs the index entries not yet on disk.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.file.sync_data()?;
        self.offset_index.flush(true)?;
        self.time_index.flush(true)?;
        Ok(())
    }

    /// Removes the segment's files.
    pub fn delete(self) -> Result<(), LogError> {
        let Segment {
            log_path,
            offset_index,
            time_index,
            ..
        } = self;
        match fs::remove_file(&log_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        offset_index.delete()?;
        time_index.delete()?;
        Ok(())
    }

    /// Largest timestamp in the segment, or the file's modification time (ms since the epoch)
    /// if no batch has a timestamp. Used by time-based retention.
    pub fn largest_timestamp(&self) -> Result<i64, LogError> {
        if self.max_timestamp >= 0 {
            return Ok(self.max_timestamp);
        }
        let modified = self.file.metadata()?.modified()?;
        Ok(modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// First offset of the segment.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Offset following the last batch of the segment.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Size of the data file in bytes.
    pub fn size(&self) -> u64 {
        u64::from(self.size)
    }

    /// Whether the segment holds no batches.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Whether this is the active (appendable) segment.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Largest batch max-timestamp, [`NO_TIMESTAMP`] if none.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// Base offset of the (first) batch holding [`Segment::max_timestamp`].
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }

    /// Shared handle on the data file (for fsync outside the partition lock).
    pub fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Extends a closed segment's offset range up to `next_offset` (exclusive), when the
    /// segment after it is removed by the log cleaner: its offsets become a gap of this one.
    pub(crate) fn extend_to(&mut self, next_offset: i64) {
        self.next_offset = self.next_offset.max(next_offset);
    }

    /// Sets the index interval used for future entries.
    pub fn set_index_interval(&mut self, index_interval: u32) {
        self.index_interval = index_interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{set_base_offset, validate_batches};
    use crate::log::testing::encode_batch;

    fn batch_at(offset: i64, n: usize, ts: i64) -> Vec<u8> {
        let value = [7u8; 100];
        let records: Vec<(&[u8], &[u8], i64)> = (0..n)
            .map(|i| (&b"k"[..], &value[..], ts + i as i64))
            .collect();
        let mut b = encode_batch(&records);
        set_base_offset(&mut b, offset);
        b
    }

    #[test]
    fn scan_chunk_rules() {
        let a = batch_at(0, 2, 10); // offsets 0..=1
        let b = batch_at(2, 2, 20); // 2..=3
        let c = batch_at(4, 2, 30); // 4..=5
        let all = [a.clone(), b.clone(), c.clone()].concat();
        // Target inside b: a skipped.
        let s = scan_chunk(&all, 3, i64::MAX, 0, usize::MAX).unwrap();
        assert_eq!(s.skip, a.len());
        assert_eq!(s.accept_end, all.len());
        // Upper bound stops before c.
        let s = scan_chunk(&all, 0, 4, 0, usize::MAX).unwrap();
        assert_eq!(s.accept_end, a.len() + b.len());
        assert_eq!(s.status, ChunkStatus::Done);
        // Budget: the first batch always, then only what fits.
        let s = scan_chunk(&all, 0, i64::MAX, 0, 1).unwrap();
        assert_eq!((s.skip, s.accept_end), (0, a.len()));
        // Incomplete batch asks for more.
        let s = scan_chunk(&all[..a.len() + 70], 0, i64::MAX, 0, usize::MAX).unwrap();
        assert_eq!(s.accept_end, a.len());
        assert_eq!(s.status, ChunkStatus::More { min_len: b.len() });
    }

    #[test]
    fn recover_and_reopen_closed() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 100, 256).unwrap();
        let mut offset = 100;
        for i in 0..50 {
            let mut data = batch_at(offset, 3, 1000 + i * 10);
            set_base_offset(&mut data, offset);
            let headers = validate_batches(&data, 1 << 20).unwrap();
            seg.append(&data, &headers).unwrap();
            offset += 3;
        }
        assert_eq!(seg.next_offset(), offset);
        let size = seg.size();
        let expected_pos = seg.position_for(130).unwrap();
        assert!(expected_pos > 0);
        seg.seal().unwrap();
        drop(seg);

        let (seg, cut) = Segment::recover_active(dir.path(), 100, 256).unwrap();
        assert_eq!(cut, 0);
        assert_eq!(seg.next_offset(), offset);
        assert_eq!(seg.size(), size);
        assert_eq!(seg.position_for(130).unwrap(), expected_pos);
        let mut seg = seg;
        seg.seal().unwrap();
        drop(seg);

        let seg = Segment::open_closed(dir.path(), 100, offset, 256).unwrap();
        assert_eq!(seg.position_for(130).unwrap(), expected_pos);
        assert_eq!(seg.max_timestamp(), 1000 + 49 * 10 + 2);
        assert_eq!(seg.offset_of_max_timestamp(), offset - 3);
        assert_eq!(
            seg.find_timestamp(1000 + 20 * 10 + 1, 0).unwrap(),
            Some((100 + 20 * 3, 1000 + 20 * 10 + 2))
        );
        assert_eq!(seg.find_timestamp(999_999, 0).unwrap(), None);
    }
}
