//! Sparse per-segment indexes: the offset index and the time index.
//!
//! A fetch names an offset and a ListOffsets request names a timestamp; without an index the
//! broker would have to scan a whole segment (up to 1 GiB) to find where to start. Like Kafka we
//! keep a *sparse* index: one entry every `index_interval_bytes` of log data, so the index is
//! ~1/512 of the data and a lookup lands at most one interval before the wanted batch.
//!
//! * offset index (`<base>.index`): `(relative offset u32, file position u32)` entries, strictly
//!   increasing in both; the relative offset is the base offset of the batch at that position.
//! * time index (`<base>.timeindex`): `(max timestamp so far i64, relative offset u32)`,
//!   appended with an offset-index entry when the maximum timestamp grew; the relative offset is
//!   the base offset of the batch holding that timestamp.
//!
//! Entries are big-endian, fixed size, appended to the file. The active segment keeps its
//! entries in memory (they are written out on flush and roll and rebuilt from the log after a
//! crash). Closed segments keep nothing in memory — the broker's RSS must not grow with the size
//! of the log — and are searched with positioned reads on the file.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::LogError;

/// Once a binary search over a closed index narrows down to this many entries, the rest is read
/// with one positioned read and searched in memory.
const LINEAR_TAIL_ENTRIES: u64 = 512;

/// Chunk size when streaming through an index file to check it.
const CHECK_CHUNK_ENTRIES: usize = 8192;

/// A fixed-size index entry.
pub trait IndexEntry: Copy + Debug + PartialEq {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes an entry from the first `SIZE` bytes of `buf`.
    fn decode(buf: &[u8]) -> Option<Self>;
    /// The search key (relative offset or timestamp).
    fn key(&self) -> i64;
    /// Whether `next` may directly follow `self` in a well-formed index.
    fn may_precede(&self, next: &Self) -> bool;
}

/// An offset index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Base offset of the batch minus the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment file.
    pub position: u32,
}

/// A time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest batch max-timestamp seen in the segment up to this point.
    pub timestamp: i64,
    /// Base offset (relative) of the batch that has `timestamp`.
    pub relative_offset: u32,
}

fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at + N)?.try_into().ok()
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }

    fn decode(buf: &[u8]) -> Option<Self> {
        Some(OffsetEntry {
            relative_offset: u32::from_be_bytes(array(buf, 0)?),
            position: u32::from_be_bytes(array(buf, 4)?),
        })
    }

    fn key(&self) -> i64 {
        i64::from(self.relative_offset)
    }

    fn may_precede(&self, next: &Self) -> bool {
        self.relative_offset < next.relative_offset && self.position < next.position
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn decode(buf: &[u8]) -> Option<Self> {
        Some(TimeEntry {
            timestamp: i64::from_be_bytes(array(buf, 0)?),
            relative_offset: u32::from_be_bytes(array(buf, 8)?),
        })
    }

    fn key(&self) -> i64 {
        self.timestamp
    }

    fn may_precede(&self, next: &Self) -> bool {
        self.timestamp < next.timestamp && self.relative_offset <= next.relative_offset
    }
}

enum State<E> {
    /// Entries in memory; `entries[..persisted]` are already in the file.
    Active { entries: Vec<E>, persisted: usize },
    /// Entries only in the file.
    Closed { len: u64 },
}

/// One index file of one segment.
pub struct IndexFile<E> {
    path: PathBuf,
    file: File,
    state: State<E>,
}

/// The offset index of a segment.
pub type OffsetIndex = IndexFile<OffsetEntry>;
/// The time index of a segment.
pub type TimeIndex = IndexFile<TimeEntry>;

fn corrupt(path: &Path, what: &str) -> LogError {
    LogError::CorruptMessage(format!("index {}: {what}", path.display()))
}

impl<E: IndexEntry> IndexFile<E> {
    /// An active index holding `entries` (e.g. rebuilt by scanning the segment). The file is
    /// truncated and rewritten on the next [`IndexFile::flush`].
    pub fn active(path: &Path, entries: Vec<E>) -> Result<Self, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            file,
            state: State::Active {
                entries,
                persisted: 0,
            },
        })
    }

    /// Opens the index of a closed segment. Returns `Ok(None)` if the file is missing or
    /// inconsistent (length not a multiple of the entry size, entries not increasing, or an
    /// entry rejected by `in_bounds`), in which case the caller rebuilds it.
    pub fn open_closed(
        path: &Path,
        in_bounds: impl Fn(&E) -> bool,
    ) -> Result<Option<Self>, LogError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bytes = file.metadata()?.len();
        let size = E::SIZE as u64;
        if bytes % size != 0 {
            return Ok(None);
        }
        let len = bytes / size;
        let mut prev: Option<E> = None;
        let mut buf = vec![0u8; CHECK_CHUNK_ENTRIES * E::SIZE];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHECK_CHUNK_ENTRIES as u64);
            let chunk = buf
                .get_mut(..(n as usize) * E::SIZE)
                .ok_or_else(|| corrupt(path, "chunk"))?;
            file.read_exact_at(chunk, done * size)?;
            for raw in chunk.chunks_exact(E::SIZE) {
                let Some(entry) = E::decode(raw) else {
                    return Ok(None);
                };
                if !in_bounds(&entry) || prev.is_some_and(|p| !p.may_precede(&entry)) {
                    return Ok(None);
                }
                prev = Some(entry);
            }
            done += n;
        }
        Ok(Some(IndexFile {
            path: path.to_path_buf(),
            file,
            state: State::Closed { len },
        }))
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        match &self.state {
            State::Active { entries, .. } => entries.len() as u64,
            State::Closed { len } => *len,
        }
    }

    /// Whether the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the entries are held in memory (active segment).
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// The path of the index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_entry(&self, i: u64) -> Result<E, LogError> {
        match &self.state {
            State::Active { entries, .. } => usize::try_from(i)
                .ok()
                .and_then(|i| entries.get(i))
                .copied()
                .ok_or_else(|| corrupt(&self.path, "entry out of range")),
            State::Closed { .. } => {
                let mut raw = [0u8; 16];
                let raw = raw
                    .get_mut(..E::SIZE)
                    .ok_or_else(|| corrupt(&self.path, "entry size"))?;
                self.file.read_exact_at(raw, i * E::SIZE as u64)?;
                E::decode(raw).ok_or_else(|| corrupt(&self.path, "undecodable entry"))
            }
        }
    }

    /// The last entry, if any.
    pub fn last(&self) -> Result<Option<E>, LogError> {
        match &self.state {
            State::Active { entries, .. } => Ok(entries.last().copied()),
            State::Closed { len: 0 } => Ok(None),
            State::Closed { len } => self.read_entry(len - 1).map(Some),
        }
    }

    /// Appends an entry to an active index (in memory until the next flush). Entries that would
    /// not keep the index increasing, and pushes to a closed index, are ignored.
    pub fn push(&mut self, entry: E) {
        if let State::Active { entries, .. } = &mut self.state {
            if entries.last().is_none_or(|last| last.may_precede(&entry)) {
                entries.push(entry);
            }
        }
    }

    /// The last entry whose key is `<= key`, if any.
    pub fn lookup(&self, key: i64) -> Result<Option<E>, LogError> {
        match &self.state {
            State::Active { entries, .. } => {
                let n = entries.partition_point(|e| e.key() <= key);
                Ok(n.checked_sub(1).and_then(|i| entries.get(i)).copied())
            }
            State::Closed { len } => self.lookup_closed(*len, key),
        }
    }

    fn lookup_closed(&self, len: u64, key: i64) -> Result<Option<E>, LogError> {
        // Invariant: entries [0, lo) have key <= `key`, entries [hi, len) have key > `key`.
        let mut lo = 0u64;
        let mut hi = len;
        let mut best: Option<E> = None;
        while hi - lo > LINEAR_TAIL_ENTRIES {
            let mid = lo + (hi - lo) / 2;
            let entry = self.read_entry(mid)?;
            if entry.key() <= key {
                best = Some(entry);
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if hi > lo {
            let count = usize::try_from(hi - lo).map_err(|_| corrupt(&self.path, "range"))?;
            let mut buf = vec![0u8; count * E::SIZE];
            self.file.read_exact_at(&mut buf, lo * E::SIZE as u64)?;
            for raw in buf.chunks_exact(E::SIZE) {
                match E::decode(raw) {
                    Some(entry) if entry.key() <= key => best = Some(entry),
                    _ => break,
                }
            }
        }
        Ok(best)
    }

    /// Writes the entries not yet in the file (one write), optionally followed by an fsync.
    pub fn flush(&mut self, sync: bool) -> Result<(), LogError> {
        if let State::Active { entries, persisted } = &mut self.state {
            if let Some(pending) = entries.get(*persisted..).filter(|p| !p.is_empty()) {
                let mut buf = Vec::with_capacity(pending.len() * E::SIZE);
                for entry in pending {
                    entry.encode(&mut buf);
                }
                self.file
                    .write_all_at(&buf, (*persisted as u64) * E::SIZE as u64)?;
                *persisted = entries.len();
            }
        }
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Writes out and fsyncs all entries, then drops them from memory: the segment is closed.
    pub fn seal(&mut self) -> Result<(), LogError> {
        self.flush(true)?;
        if let State::Active { entries, .. } = &self.state {
            let len = entries.len() as u64;
            self.state = State::Closed { len };
        }
        Ok(())
    }

    /// Removes the index file.
    pub fn delete(self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_entries(n: u32) -> Vec<OffsetEntry> {
        (0..n)
            .map(|i| OffsetEntry {
                relative_offset: i * 10 + 5,
                position: i * 4096 + 100,
            })
            .collect()
    }

    #[test]
    fn active_and_closed_lookup_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let n = 3000;
        let mut index = OffsetIndex::active(&path, Vec::new()).unwrap();
        for e in offset_entries(n) {
            index.push(e);
        }
        // A non-increasing entry is ignored.
        index.push(OffsetEntry {
            relative_offset: 1,
            position: 1,
        });
        assert_eq!(index.len(), u64::from(n));
        let probes: Vec<i64> = (-3..(i64::from(n) * 10 + 20)).step_by(7).collect();
        let active: Vec<_> = probes.iter().map(|k| index.lookup(*k).unwrap()).collect();
        index.seal().unwrap();
        assert!(!index.is_active());
        let closed: Vec<_> = probes.iter().map(|k| index.lookup(*k).unwrap()).collect();
        assert_eq!(active, closed);
        assert_eq!(index.lookup(4).unwrap(), None);
        assert_eq!(
            index.lookup(5).unwrap(),
            Some(OffsetEntry {
                relative_offset: 5,
                position: 100
            })
        );
        assert_eq!(
            index.lookup(14).unwrap(),
            Some(OffsetEntry {
                relative_offset: 5,
                position: 100
            })
        );
        assert_eq!(index.last().unwrap(), offset_entries(n).last().copied());

        let reopened = OffsetIndex::open_closed(&path, |_| true).unwrap().unwrap();
        let again: Vec<_> = probes
            .iter()
            .map(|k| reopened.lookup(*k).unwrap())
            .collect();
        assert_eq!(active, again);
    }

    #[test]
    fn open_closed_detects_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        assert!(TimeIndex::open_closed(&path, |_| true).unwrap().is_none());

        let mut index = TimeIndex::active(&path, Vec::new()).unwrap();
        for i in 0..10 {
            index.push(TimeEntry {
                timestamp: 1000 + i,
                relative_offset: i as u32,
            });
        }
        index.seal().unwrap();
        assert!(TimeIndex::open_closed(&path, |_| true).unwrap().is_some());
        assert!(TimeIndex::open_closed(&path, |e| e.relative_offset < 5)
            .unwrap()
            .is_none());

        // Length not a multiple of the entry size.
        let mut bytes = fs::read(&path).unwrap();
        bytes.push(0);
        fs::write(&path, &bytes).unwrap();
        assert!(TimeIndex::open_closed(&path, |_| true).unwrap().is_none());

        // Entries not increasing.
        bytes.pop();
        bytes[12..20].copy_from_slice(&0i64.to_be_bytes());
        fs::write(&path, &bytes).unwrap();
        assert!(TimeIndex::open_closed(&path, |_| true).unwrap().is_none());
    }
}
