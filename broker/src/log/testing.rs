//! Encoding of valid v2 record batches, for tests, integration tests and benchmarks.
//!
//! The broker itself never builds record batches (clients do), so this lives apart from
//! `batch.rs`. It is always compiled (it is tiny) so that integration tests and benches, which
//! cannot see `#[cfg(test)]` items, can use it too.

use super::batch::MAGIC_V2;

/// Header fields of a batch built by [`encode_batch_with`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct EncodeParams {
    /// Offset written into the `baseOffset` field.
    pub base_offset: i64,
    /// Producer id (-1 for a non-idempotent producer).
    pub producer_id: i64,
    /// Producer epoch (-1 for a non-idempotent producer).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 for a non-idempotent producer).
    pub base_sequence: i32,
    /// Batch attributes (compression bits must be 0: records are written uncompressed).
    pub attributes: i16,
    /// Partition leader epoch.
    pub partition_leader_epoch: i32,
}

impl Default for EncodeParams {
    fn default() -> Self {
        EncodeParams {
            base_offset: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
            partition_leader_epoch: -1,
        }
    }
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes an uncompressed v2 batch of `(key, value, timestamp)` records with default header
/// fields (base offset 0, no producer id). An empty key is encoded as a null key.
#[doc(hidden)]
pub fn encode_batch(records: &[(&[u8], &[u8], i64)]) -> Vec<u8> {
    encode_batch_with(&EncodeParams::default(), records)
}

/// Encodes an uncompressed v2 batch with the given header fields.
#[doc(hidden)]
pub fn encode_batch_with(params: &EncodeParams, records: &[(&[u8], &[u8], i64)]) -> Vec<u8> {
    let base_ts = records.first().map(|r| r.2).unwrap_or(-1);
    let max_ts = records.iter().map(|r| r.2).max().unwrap_or(-1);
    let mut body = Vec::new();
    let mut record = Vec::new();
    for (i, (key, value, ts)) in records.iter().enumerate() {
        record.clear();
        record.push(0); // attributes
        put_varlong(&mut record, ts - base_ts);
        put_varlong(&mut record, i as i64);
        if key.is_empty() {
            put_varlong(&mut record, -1);
        } else {
            put_varlong(&mut record, key.len() as i64);
            record.extend_from_slice(key);
        }
        put_varlong(&mut record, value.len() as i64);
        record.extend_from_slice(value);
        put_varlong(&mut record, 0); // headers
        put_varlong(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }

    let last_offset_delta = records.len().saturating_sub(1) as i32;
    let mut out = Vec::with_capacity(61 + body.len());
    out.extend_from_slice(&params.base_offset.to_be_bytes());
    out.extend_from_slice(&((49 + body.len()) as i32).to_be_bytes());
    out.extend_from_slice(&params.partition_leader_epoch.to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&[0u8; 4]); // crc, filled below
    out.extend_from_slice(&params.attributes.to_be_bytes());
    out.extend_from_slice(&last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_ts.to_be_bytes());
    out.extend_from_slice(&max_ts.to_be_bytes());
    out.extend_from_slice(&params.producer_id.to_be_bytes());
    out.extend_from_slice(&params.producer_epoch.to_be_bytes());
    out.extend_from_slice(&params.base_sequence.to_be_bytes());
    out.extend_from_slice(&(records.len() as i32).to_be_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}
