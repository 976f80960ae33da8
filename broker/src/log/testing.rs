//! Shortcuts over [`BatchBuilder`] for tests, integration tests and benchmarks: valid batches
//! in one call, and targeted corruption of valid ones (a header field or the payload replaced,
//! the CRC fixed) for poison-batch tests.
//!
//! It is always compiled (it is tiny) so that integration tests and benches, which cannot see
//! `#[cfg(test)]` items, can use it too.

use super::batch::builder::BatchBuilder;
use super::batch::codec::Codec;
use super::batch::{rewrite_crc, BATCH_HEADER_LEN, COMPRESSION_MASK, LOG_OVERHEAD};

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
    /// Batch attributes (the compression bits choose the codec).
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

/// Encodes an uncompressed v2 batch of `(key, value, timestamp)` records with default header
/// fields (base offset 0, no producer id). An empty key is encoded as a null key.
#[doc(hidden)]
pub fn encode_batch(records: &[(&[u8], &[u8], i64)]) -> Vec<u8> {
    encode_batch_with(&EncodeParams::default(), records)
}

/// Encodes a v2 batch with the given header fields, through [`BatchBuilder`].
#[doc(hidden)]
pub fn encode_batch_with(params: &EncodeParams, records: &[(&[u8], &[u8], i64)]) -> Vec<u8> {
    let codec = Codec::from_id(params.attributes & COMPRESSION_MASK).unwrap_or(Codec::None);
    let mut builder = BatchBuilder::new()
        .base_offset(params.base_offset)
        .producer(
            params.producer_id,
            params.producer_epoch,
            params.base_sequence,
        )
        .flags(params.attributes)
        .partition_leader_epoch(params.partition_leader_epoch)
        .compression(codec);
    for (key, value, ts) in records {
        builder.record((!key.is_empty()).then_some(*key), Some(value), *ts);
    }
    // Test inputs are small; an encoding failure is a bug in the test.
    builder.build().unwrap_or_default()
}

/// Overwrites a big-endian header field of `batch` at `at` and fixes the CRC: for building
/// batches that are valid but for one chosen field (poison batches in tests).
#[doc(hidden)]
pub fn patch_header(batch: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(field) = batch.get_mut(at..at + bytes.len()) {
        field.copy_from_slice(bytes);
    }
    rewrite_crc(batch);
}

/// Replaces everything after the 61-byte header of `batch` with `payload`, fixing
/// `batchLength` and the CRC (header fields such as the record count stay as they were).
#[doc(hidden)]
pub fn replace_payload(batch: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = batch.get(..BATCH_HEADER_LEN).unwrap_or_default().to_vec();
    out.extend_from_slice(payload);
    let len = i32::try_from(out.len() - LOG_OVERHEAD).unwrap_or(i32::MAX);
    patch_header(&mut out, 8, &len.to_be_bytes());
    out
}

/// Header field offsets, for [`patch_header`].
#[doc(hidden)]
pub mod fields {
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const BASE_TIMESTAMP: usize = 27;
    pub const MAX_TIMESTAMP: usize = 35;
    pub const PRODUCER_ID: usize = 43;
    pub const BASE_SEQUENCE: usize = 53;
    pub const RECORD_COUNT: usize = 57;
}

/// A zstd frame that declares `declared` bytes of content and holds `blocks` RLE blocks of
/// 128 KiB of zeros (4 bytes each on the wire): a compression bomb for decoders that trust the
/// declared size or decode to the end.
#[doc(hidden)]
pub fn zstd_bomb(declared: u64, blocks: usize) -> Vec<u8> {
    // Magic, descriptor (8-byte content size, not single-segment), window 2^20.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x50];
    frame.extend_from_slice(&declared.to_le_bytes());
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = (128 * 1024) << 3 | 1 << 1 | last; // RLE block of 128 KiB
        frame.extend_from_slice(header.to_le_bytes().get(..3).unwrap_or_default());
        frame.push(0);
    }
    frame
}

/// `mib` gzip members of 1 MiB of zeros each, concatenated (a multi-member gzip stream, as
/// Java's and librdkafka's decoders read it): about 1 KiB on the wire per MiB.
#[doc(hidden)]
pub fn gzip_bomb(mib: usize) -> Vec<u8> {
    let member =
        super::batch::codec::compress(Codec::Gzip, &vec![0u8; 1 << 20]).unwrap_or_default();
    member.repeat(mib)
}
