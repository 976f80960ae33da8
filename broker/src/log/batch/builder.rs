//! The one place that writes v2 record batches: records in, a valid batch out.
//!
//! Producers send batches and the log stores them as they are, but the broker also writes
//! batches of its own: the log cleaner rewrites the survivors of a compacted batch, produce
//! recompresses a batch when the topic's `compression.type` asks for another codec, the group
//! coordinator stores committed offsets, and tests and benchmarks need valid (and deliberately
//! broken) batches. They all go through [`BatchBuilder`], so the layout (see [`super`]), the
//! varints, the compression framing and the CRC are written in one place, and what the builder
//! writes is exactly what the validator accepts (a property test checks it).
//!
//! Records are added either from their parts ([`BatchBuilder::push`]) at consecutive offset
//! deltas from 0, or copied verbatim from another batch ([`BatchBuilder::push_raw`]), keeping
//! their offset and timestamp deltas — for that the caller sets the original base timestamp
//! (and, for a batch that lost records to compaction, the original `lastOffsetDelta`).

use super::codec::{self, Codec, CodecError};
use super::record::{put_varint, put_varlong, RecordRef};
use super::{
    rewrite_crc, BATCH_HEADER_LEN, COMPRESSION_MASK, CONTROL_BIT, LOG_OVERHEAD, MAGIC_V2,
    TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT,
};

/// "No timestamp" (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

/// A record given by its parts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Record<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    /// `(key, value)` pairs; a header key is never null.
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// Why a batch could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The batch would not fit the 31-bit `batchLength` field.
    #[error("record batch of {0} bytes is too large to encode")]
    TooLarge(usize),
    /// Compression failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Builds one v2 record batch. Defaults: base offset 0, no producer id, partition leader epoch
/// -1, CreateTime, uncompressed.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    /// Attribute bits other than the codec.
    flags: i16,
    codec: Codec,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    base_timestamp: Option<i64>,
    max_timestamp: Option<i64>,
    computed_max_timestamp: i64,
    last_offset_delta: Option<i32>,
    next_offset_delta: i64,
    count: i32,
    records: Vec<u8>,
    scratch: Vec<u8>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        BatchBuilder {
            base_offset: 0,
            partition_leader_epoch: -1,
            flags: 0,
            codec: Codec::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            base_timestamp: None,
            max_timestamp: None,
            computed_max_timestamp: NO_TIMESTAMP,
            last_offset_delta: None,
            next_offset_delta: 0,
            count: 0,
            records: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The `baseOffset` field (the log overwrites it when appending).
    pub fn base_offset(mut self, offset: i64) -> Self {
        self.base_offset = offset;
        self
    }

    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Idempotent-producer fields.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// The codec the records are compressed with (an empty batch is always uncompressed).
    pub fn compression(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Attribute bits other than the codec (timestamp type, transactional, control), as a
    /// copied batch has them.
    pub fn flags(mut self, attributes: i16) -> Self {
        self.flags =
            attributes & (TIMESTAMP_TYPE_BIT | TRANSACTIONAL_BIT | CONTROL_BIT) & !COMPRESSION_MASK;
        self
    }

    /// Marks the timestamps LogAppendTime (bit 3), or CreateTime.
    pub fn log_append_time(mut self, yes: bool) -> Self {
        self.set_flag(TIMESTAMP_TYPE_BIT, yes);
        self
    }

    pub fn transactional(mut self, yes: bool) -> Self {
        self.set_flag(TRANSACTIONAL_BIT, yes);
        self
    }

    pub fn control(mut self, yes: bool) -> Self {
        self.set_flag(CONTROL_BIT, yes);
        self
    }

    fn set_flag(&mut self, bit: i16, yes: bool) {
        if yes {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    /// The base timestamp that records' timestamp deltas are relative to. Without it, the
    /// first record pushed sets it (Kafka's rule); it must be set before [`Self::push_raw`].
    pub fn base_timestamp(mut self, timestamp: i64) -> Self {
        self.base_timestamp = Some(timestamp);
        self
    }

    /// The `maxTimestamp` field; by default the largest record timestamp (or -1 if none).
    pub fn max_timestamp(mut self, timestamp: i64) -> Self {
        self.max_timestamp = Some(timestamp);
        self
    }

    /// The `lastOffsetDelta` field; by default the last record's offset delta (0 if none).
    pub fn last_offset_delta(mut self, delta: i32) -> Self {
        self.last_offset_delta = Some(delta);
        self
    }

    /// Number of records added.
    pub fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn note(&mut self, timestamp: i64, offset_delta: i64) {
        self.computed_max_timestamp = self.computed_max_timestamp.max(timestamp);
        self.next_offset_delta = offset_delta.saturating_add(1);
        self.count = self.count.saturating_add(1);
    }

    /// Adds a record at the next offset delta.
    pub fn push(&mut self, record: &Record<'_>) -> &mut Self {
        let base = *self.base_timestamp.get_or_insert(record.timestamp);
        let offset_delta = i32::try_from(self.next_offset_delta).unwrap_or(i32::MAX);
        let body = &mut self.scratch;
        body.clear();
        body.push(0); // attributes
        put_varlong(body, record.timestamp.wrapping_sub(base));
        put_varint(body, offset_delta);
        for field in [record.key, record.value] {
            put_bytes(body, field);
        }
        put_varint(body, len_i32(record.headers.len()));
        for (key, value) in record.headers {
            put_bytes(body, Some(key));
            put_bytes(body, *value);
        }
        put_varint(&mut self.records, len_i32(body.len()));
        self.records.extend_from_slice(body);
        self.note(record.timestamp, i64::from(offset_delta));
        self
    }

    /// Adds `(key, value, timestamp)` without headers.
    pub fn record(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> &mut Self {
        self.push(&Record {
            key,
            value,
            timestamp,
            headers: &[],
        })
    }

    /// Copies a record of another batch verbatim: its offset and timestamp deltas stay as they
    /// are, relative to this batch's base timestamp (set it first) and base offset.
    pub fn push_raw(&mut self, record: &RecordRef<'_>) -> &mut Self {
        let base = self.base_timestamp.unwrap_or(0);
        self.records.extend_from_slice(record.raw);
        self.note(
            base.saturating_add(record.timestamp_delta),
            i64::from(record.offset_delta),
        );
        self
    }

    /// The finished batch.
    pub fn build(self) -> Result<Vec<u8>, BuildError> {
        let compressed;
        let (codec, body) = if self.codec != Codec::None && self.count > 0 {
            compressed = codec::compress(self.codec, &self.records)?;
            (self.codec, &compressed[..])
        } else {
            (Codec::None, &self.records[..])
        };
        let total = BATCH_HEADER_LEN + body.len();
        let batch_length =
            i32::try_from(total - LOG_OVERHEAD).map_err(|_| BuildError::TooLarge(total))?;
        let last_offset_delta = self.last_offset_delta.unwrap_or_else(|| {
            i32::try_from(self.next_offset_delta.saturating_sub(1).max(0)).unwrap_or(i32::MAX)
        });
        let base_timestamp = self.base_timestamp.unwrap_or(NO_TIMESTAMP);
        let max_timestamp = self.max_timestamp.unwrap_or(self.computed_max_timestamp);
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&[0u8; 4]); // CRC, below
        out.extend_from_slice(&(self.flags | codec.id()).to_be_bytes());
        out.extend_from_slice(&last_offset_delta.to_be_bytes());
        out.extend_from_slice(&base_timestamp.to_be_bytes());
        out.extend_from_slice(&max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(body);
        rewrite_crc(&mut out);
        Ok(out)
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, len_i32(b.len()));
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::record::Records;
    use crate::log::batch::{validate_batches, BatchHeader};
    use bytes::Bytes;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn builds_what_kafka_protocol_decodes_for_every_codec() {
        for codec in Codec::ALL {
            let mut b = BatchBuilder::new()
                .producer(7, 2, 100)
                .partition_leader_epoch(3)
                .compression(codec);
            b.record(Some(b"k1"), Some(b"v1"), 1_000)
                .record(None, Some(b"v2"), 1_005)
                .push(&Record {
                    key: Some(b"k3"),
                    value: None,
                    timestamp: 999,
                    headers: &[(b"h", Some(b"x")), (b"n", None)],
                });
            let batch = b.build().unwrap();
            let h = validate_batches(&batch, usize::MAX).unwrap()[0];
            assert_eq!(h.compression(), codec.id());
            assert_eq!(
                (
                    h.record_count,
                    h.last_offset_delta,
                    h.base_timestamp,
                    h.max_timestamp
                ),
                (3, 2, 1_000, 1_005)
            );
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (7, 2, 100)
            );
            let mut buf = Bytes::from(batch);
            let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
            let recs = &sets[0].records;
            assert_eq!(recs.len(), 3, "{codec}");
            assert_eq!(recs[1].key, None);
            assert_eq!(recs[1].value.as_deref(), Some(&b"v2"[..]));
            assert_eq!(recs[2].timestamp, 999);
            assert_eq!(recs[2].offset, 2);
            assert_eq!(recs[2].headers.len(), 2);
        }
    }

    #[test]
    fn raw_copies_keep_deltas_and_overrides_apply() {
        let mut b = BatchBuilder::new();
        for i in 0..5 {
            b.record(Some(format!("k{i}").as_bytes()), Some(b"v"), 100 + i);
        }
        let original = b.build().unwrap();
        let header = BatchHeader::parse(&original).unwrap();
        let data = &original[BATCH_HEADER_LEN..];
        let mut copy = BatchBuilder::new()
            .base_timestamp(header.base_timestamp)
            .last_offset_delta(header.last_offset_delta)
            .compression(Codec::Zstd);
        for r in Records::new(data)
            .filter_map(Result::ok)
            .filter(|r| r.offset_delta % 2 == 1)
        {
            copy.push_raw(&r);
        }
        let copy = copy.build().unwrap();
        let h = validate_batches(&copy, usize::MAX).unwrap()[0];
        assert_eq!(
            (h.record_count, h.last_offset_delta, h.max_timestamp),
            (2, 4, 103)
        );
        let mut buf = Bytes::from(copy);
        let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
        let offsets: Vec<i64> = sets[0].records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1, 3]);
        // An empty batch is uncompressed and keeps the given lastOffsetDelta.
        let empty = BatchBuilder::new()
            .compression(Codec::Gzip)
            .last_offset_delta(9)
            .build()
            .unwrap();
        let h = BatchHeader::parse(&empty).unwrap();
        assert_eq!(
            (h.record_count, h.last_offset_delta, h.compression()),
            (0, 9, 0)
        );
    }
}
