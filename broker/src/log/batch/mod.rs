//! Kafka record batches (message format v2, "magic 2"): the fixed header, and the submodules
//! that read and write what follows it.
//!
//! The log stores batches as producers sent them (after the validator has checked every record
//! and the log has rewritten `baseOffset`), and fetches return them verbatim. Walking and
//! indexing the log needs only the fixed 61-byte header handled here, which tells how long the
//! batch is, which offsets and timestamps it covers, and lets the CRC be verified. Records are
//! looked at only where they must be:
//!
//! * [`record`] — parsing the records of a batch without allocating;
//! * [`codec`] — the compression codecs, with bounded decompression;
//! * [`legacy`] — message formats v0/v1, converted for clients older than Kafka 0.11;
//! * [`builder`] — [`BatchBuilder`](builder::BatchBuilder), the one writer of batches (cleaner,
//!   recompression, committed offsets, tests);
//! * [`validator`] — what produce accepts, as Kafka's `LogValidator`.
//!
//! Layout (big-endian):
//!
//! | bytes     | field                 |
//! |-----------|-----------------------|
//! | `0..8`    | baseOffset i64        |
//! | `8..12`   | batchLength i32 (bytes after this field) |
//! | `12..16`  | partitionLeaderEpoch i32 |
//! | `16`      | magic i8 (= 2)        |
//! | `17..21`  | crc u32 (CRC-32C of bytes `21..end`) |
//! | `21..23`  | attributes i16        |
//! | `23..27`  | lastOffsetDelta i32   |
//! | `27..35`  | baseTimestamp i64     |
//! | `35..43`  | maxTimestamp i64      |
//! | `43..51`  | producerId i64        |
//! | `51..53`  | producerEpoch i16     |
//! | `53..57`  | baseSequence i32      |
//! | `57..61`  | recordCount i32       |

pub mod builder;
pub mod codec;
pub mod legacy;
#[cfg(test)]
mod proptests;
pub mod record;
pub mod validator;

use super::error::LogError;

/// Size of the fixed record batch header; the records follow it.
pub const BATCH_HEADER_LEN: usize = 61;

/// Bytes before (and including) the `batchLength` field, i.e. not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;

/// Smallest legal `batchLength`: a header without records.
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;

/// The only supported message format.
pub const MAGIC_V2: i8 = 2;

/// Offset of the first byte covered by the CRC (the attributes field).
pub const CRC_START: usize = 21;
/// Offset of the CRC field.
const CRC_AT: usize = 17;
/// Offset of the attributes field.
const ATTRIBUTES_AT: usize = 21;
/// Offset of the maxTimestamp field.
const MAX_TIMESTAMP_AT: usize = 35;

/// Attribute bits 0–2: the compression codec.
pub const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: LogAppendTime (else CreateTime).
pub const TIMESTAMP_TYPE_BIT: i16 = 0x08;
/// Attribute bit 4: part of a transaction.
pub const TRANSACTIONAL_BIT: i16 = 0x10;
/// Attribute bit 5: a control batch (transaction markers).
pub const CONTROL_BIT: i16 = 0x20;

/// The decoded fixed header of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record of the batch.
    pub base_offset: i64,
    /// Bytes following the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch of the partition when the batch was appended.
    pub partition_leader_epoch: i32,
    /// Message format version (2).
    pub magic: i8,
    /// CRC-32C of bytes `21..end`.
    pub crc: u32,
    /// Compression (bits 0-2), timestamp type (bit 3), transactional (bit 4), control (bit 5).
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp of the batch.
    pub max_timestamp: i64,
    /// Idempotent / transactional producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

fn be_i64(buf: &[u8], at: usize) -> Option<i64> {
    let bytes: [u8; 8] = buf.get(at..at + 8)?.try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

fn be_i16(buf: &[u8], at: usize) -> Option<i16> {
    let bytes: [u8; 2] = buf.get(at..at + 2)?.try_into().ok()?;
    Some(i16::from_be_bytes(bytes))
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`.
    ///
    /// Needs at least [`BATCH_HEADER_LEN`] bytes. Rejects a `batchLength` smaller than a bare
    /// header, so that anything that parses has `total_size() >= BATCH_HEADER_LEN` and walking
    /// batches always makes progress. Does not check magic, CRC or whether the batch is complete;
    /// see [`validate_batches`] for that.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, LogError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(LogError::CorruptMessage(format!(
                "record batch header needs {BATCH_HEADER_LEN} bytes, got {}",
                buf.len()
            )));
        }
        let short = || LogError::CorruptMessage("short record batch header".to_string());
        let header = BatchHeader {
            base_offset: be_i64(buf, 0).ok_or_else(short)?,
            batch_length: be_i32(buf, 8).ok_or_else(short)?,
            partition_leader_epoch: be_i32(buf, 12).ok_or_else(short)?,
            magic: buf.get(16).map(|b| *b as i8).ok_or_else(short)?,
            crc: be_u32(buf, 17).ok_or_else(short)?,
            attributes: be_i16(buf, 21).ok_or_else(short)?,
            last_offset_delta: be_i32(buf, 23).ok_or_else(short)?,
            base_timestamp: be_i64(buf, 27).ok_or_else(short)?,
            max_timestamp: be_i64(buf, 35).ok_or_else(short)?,
            producer_id: be_i64(buf, 43).ok_or_else(short)?,
            producer_epoch: be_i16(buf, 51).ok_or_else(short)?,
            base_sequence: be_i32(buf, 53).ok_or_else(short)?,
            record_count: be_i32(buf, 57).ok_or_else(short)?,
        };
        if header.batch_length < MIN_BATCH_LENGTH {
            return Err(LogError::CorruptMessage(format!(
                "record batch length {} is smaller than the minimum {MIN_BATCH_LENGTH}",
                header.batch_length
            )));
        }
        Ok(header)
    }

    /// Size of the whole batch in bytes, including the offset and length fields.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length.max(0)).unwrap_or(0)
    }

    /// Offset of the last record (`base_offset + last_offset_delta`), saturating.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset following this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    /// Whether the timestamps are LogAppendTime (otherwise CreateTime).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch is a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// Checks one complete batch whose header has been parsed: magic, counts and CRC.
///
/// `batch` must be exactly the bytes of the batch (`header.total_size()` long).
pub fn check_batch(header: &BatchHeader, batch: &[u8]) -> Result<(), LogError> {
    if header.magic != MAGIC_V2 {
        return Err(LogError::UnsupportedMagic(header.magic));
    }
    if header.last_offset_delta < 0 {
        return Err(LogError::CorruptMessage(format!(
            "negative lastOffsetDelta {}",
            header.last_offset_delta
        )));
    }
    if header.record_count < 0 {
        return Err(LogError::CorruptMessage(format!(
            "negative record count {}",
            header.record_count
        )));
    }
    let covered = batch
        .get(CRC_START..)
        .ok_or_else(|| LogError::CorruptMessage("record batch shorter than its header".into()))?;
    let actual = crc32c::crc32c(covered);
    if actual != header.crc {
        return Err(LogError::CorruptMessage(format!(
            "CRC mismatch at base offset {}: stored {:#010x}, computed {actual:#010x}",
            header.base_offset, header.crc
        )));
    }
    Ok(())
}

/// Validates one or more back-to-back batches filling `buf` exactly.
///
/// Every batch must be magic 2, have a sane length, non-negative `lastOffsetDelta` and
/// `recordCount`, a correct CRC-32C (else `CorruptMessage`), and be at most
/// `max_batch_bytes` long (else `MessageTooLarge`); other magic values are `UnsupportedMagic`. A trailing partial
/// batch is an error. Returns the headers in order; batch `i` starts at the sum of the
/// `total_size()` of the batches before it.
pub fn validate_batches(buf: &[u8], max_batch_bytes: usize) -> Result<Vec<BatchHeader>, LogError> {
    let mut headers = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = buf.get(pos..).unwrap_or_default();
        let header = BatchHeader::parse(rest)?;
        let size = header.total_size();
        if size > max_batch_bytes {
            return Err(LogError::MessageTooLarge {
                size,
                max: max_batch_bytes,
            });
        }
        let batch = rest.get(..size).ok_or_else(|| {
            LogError::CorruptMessage(format!(
                "record batch of {size} bytes at position {pos} is truncated to {} bytes",
                rest.len()
            ))
        })?;
        check_batch(&header, batch)?;
        headers.push(header);
        pos += size;
    }
    Ok(headers)
}

/// Overwrites the `baseOffset` field of the batch starting at `buf[0]`.
///
/// The CRC does not cover `baseOffset`, so nothing else needs to change. Does nothing if `buf`
/// is shorter than 8 bytes.
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    if let Some(field) = buf.get_mut(0..8) {
        field.copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Recomputes the CRC of the batch filling `batch` (after a header field it covers changed).
/// Does nothing if `batch` is shorter than a header.
pub fn rewrite_crc(batch: &mut [u8]) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    let crc = crc32c::crc32c(batch.get(CRC_START..).unwrap_or_default());
    if let Some(field) = batch.get_mut(CRC_AT..CRC_AT + 4) {
        field.copy_from_slice(&crc.to_be_bytes());
    }
}

/// Sets the `attributes` and `maxTimestamp` fields of the batch starting at `batch[0]` and
/// recomputes its CRC.
pub fn set_attributes_and_max_timestamp(batch: &mut [u8], attributes: i16, max_timestamp: i64) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    if let Some(field) = batch.get_mut(ATTRIBUTES_AT..ATTRIBUTES_AT + 2) {
        field.copy_from_slice(&attributes.to_be_bytes());
    }
    if let Some(field) = batch.get_mut(MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8) {
        field.copy_from_slice(&max_timestamp.to_be_bytes());
    }
    rewrite_crc(batch);
}

/// Iterator over the complete batches at the start of a byte slice, yielding
/// `(position, header)`. Stops (without error) at the first incomplete or unparsable batch;
/// [`BatchIter::complete_len`] then tells how many bytes of complete batches were walked.
/// Does not verify CRCs: it is meant for data that was validated when it was appended.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BatchIter<'a> {
    /// Walks the batches of `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter { buf, pos: 0 }
    }

    /// Byte length of the complete batches yielded so far.
    pub fn complete_len(&self) -> usize {
        self.pos
    }
}

impl Iterator for BatchIter<'_> {
    type Item = (usize, BatchHeader);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        let header = BatchHeader::parse(rest).ok()?;
        let size = header.total_size();
        if size > rest.len() {
            return None;
        }
        let at = self.pos;
        self.pos += size;
        Some((at, header))
    }
}

/// Byte length of the longest prefix of `buf` made of complete batches (headers only, no CRC
/// check). Used to trim a read chunk to whole batches.
pub fn complete_batches_len(buf: &[u8]) -> usize {
    let mut iter = BatchIter::new(buf);
    for _ in iter.by_ref() {}
    iter.complete_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::{encode_batch, encode_batch_with, EncodeParams};

    fn sample() -> Vec<u8> {
        encode_batch(&[
            (b"k1", b"v1", 1000),
            (b"k2", b"v2", 1005),
            (b"", b"v3", 1002),
        ])
    }

    #[test]
    fn parse_fields() {
        let buf = encode_batch_with(
            &EncodeParams {
                base_offset: 42,
                producer_id: 7,
                producer_epoch: 3,
                base_sequence: 11,
                attributes: 0x10,
                partition_leader_epoch: 5,
            },
            &[(b"a", b"b", 10), (b"c", b"d", 20)],
        );
        let h = BatchHeader::parse(&buf).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.total_size(), buf.len());
        assert_eq!(h.magic, 2);
        assert_eq!(h.last_offset_delta, 1);
        assert_eq!(h.last_offset(), 43);
        assert_eq!(h.base_timestamp, 10);
        assert_eq!(h.max_timestamp, 20);
        assert_eq!(h.producer_id, 7);
        assert_eq!(h.producer_epoch, 3);
        assert_eq!(h.base_sequence, 11);
        assert_eq!(h.record_count, 2);
        assert_eq!(h.partition_leader_epoch, 5);
        assert!(h.is_transactional());
        assert!(!h.is_control());
    }

    #[test]
    fn validate_multiple_batches() {
        let mut buf = sample();
        buf.extend_from_slice(&encode_batch(&[(b"x", b"y", 1)]));
        let headers = validate_batches(&buf, 1 << 20).unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].record_count, 3);
        assert_eq!(headers[1].record_count, 1);
        assert_eq!(headers[0].max_timestamp, 1005);
        assert!(validate_batches(&[], 100).unwrap().is_empty());
    }

    #[test]
    fn validate_rejects_bad_input() {
        let good = sample();
        // CRC corruption in the records.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            validate_batches(&bad, 1 << 20),
            Err(LogError::CorruptMessage(_))
        ));
        // Trailing partial batch.
        let mut bad = good.clone();
        bad.extend_from_slice(&good[..30]);
        assert!(matches!(
            validate_batches(&bad, 1 << 20),
            Err(LogError::CorruptMessage(_))
        ));
        // Truncated batch.
        assert!(validate_batches(&good[..good.len() - 1], 1 << 20).is_err());
        // Wrong magic.
        let mut bad = good.clone();
        bad[16] = 1;
        assert!(matches!(
            validate_batches(&bad, 1 << 20),
            Err(LogError::UnsupportedMagic(1))
        ));
        // Too large.
        assert!(matches!(
            validate_batches(&good, good.len() - 1),
            Err(LogError::MessageTooLarge { .. })
        ));
        // Tiny / negative batch length.
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(validate_batches(&bad, 1 << 20).is_err());
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(validate_batches(&bad, 1 << 20).is_err());
        // Huge batch length.
        let mut bad = good;
        bad[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(validate_batches(&bad, usize::MAX).is_err());
        // Garbage never panics.
        for len in 0..200 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = validate_batches(&junk, 1 << 20);
            let _ = complete_batches_len(&junk);
        }
    }

    #[test]
    fn set_base_offset_keeps_crc_valid() {
        let mut buf = sample();
        set_base_offset(&mut buf, 123_456);
        let headers = validate_batches(&buf, 1 << 20).unwrap();
        assert_eq!(headers[0].base_offset, 123_456);
        set_base_offset(&mut [0u8; 3], 1); // no panic
    }

    #[test]
    fn complete_prefix() {
        let a = sample();
        let b = encode_batch(&[(b"x", b"y", 1)]);
        let mut buf = a.clone();
        buf.extend_from_slice(&b);
        assert_eq!(complete_batches_len(&buf), a.len() + b.len());
        assert_eq!(complete_batches_len(&buf[..buf.len() - 1]), a.len());
        assert_eq!(complete_batches_len(&buf[..a.len() + 10]), a.len());
        assert_eq!(complete_batches_len(&buf[..5]), 0);
        let positions: Vec<usize> = BatchIter::new(&buf).map(|(p, _)| p).collect();
        assert_eq!(positions, vec![0, a.len()]);
    }
}
