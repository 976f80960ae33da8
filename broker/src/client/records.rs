//! Record batches as the console producer and consumer need them: v2 batches without
//! compression on the way in, and tolerant decoding of fetched bytes on the way out.
//!
//! A Fetch response may end with a partial batch (the broker cuts at `max_bytes`) and may
//! start with a batch below the requested offset, so decoding keeps only complete batches and
//! reports where the next fetch should start even when a batch holds no visible records.

use bytes::{Buf, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use kafka_protocol::protocol::StrBytes;

use super::ClientError;

/// Bytes of a batch header before `last_offset_delta`: base offset, length, leader epoch,
/// magic, crc, attributes.
const LAST_OFFSET_DELTA_AT: usize = 8 + 4 + 4 + 1 + 4 + 2;

/// A record as the CLI and the console see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A record to produce: key, value and headers.
pub type OutRecord = (Option<Bytes>, Option<Bytes>, Vec<(String, Option<Bytes>)>);

/// Encodes `(key, value)` pairs as one v2 record batch without compression.
pub fn encode_batch(
    records: &[(Option<Bytes>, Option<Bytes>)],
    timestamp: i64,
) -> Result<Bytes, ClientError> {
    let records: Vec<OutRecord> = records
        .iter()
        .map(|(k, v)| (k.clone(), v.clone(), Vec::new()))
        .collect();
    encode_records(&records, timestamp)
}

/// Encodes records with headers as one v2 record batch without compression.
pub fn encode_records(records: &[OutRecord], timestamp: i64) -> Result<Bytes, ClientError> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value, headers))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever `offset - sequence` changes, so the
            // sequence follows the offset; the batch's base sequence is still -1 (none).
            sequence: i as i32 - 1,
            timestamp,
            key: key.clone(),
            value: value.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| ClientError::Other(format!("could not encode a record batch: {e:#}")))?;
    Ok(buf.freeze())
}

/// The data records at or after `from` in fetched `bytes`, and the offset to fetch next
/// (at least `from`; past every complete batch, including batches with only control records).
/// A trailing partial batch is ignored; it is fetched again next time.
pub fn decode_fetched(bytes: &Bytes, from: i64) -> Result<(Vec<ConsumedRecord>, i64), String> {
    let mut next = from;
    let mut complete = 0usize;
    let mut rest = &bytes[..];
    while rest.len() >= LAST_OFFSET_DELTA_AT + 4 {
        let base_offset = (&rest[0..8]).get_i64();
        let batch_len = (&rest[8..12]).get_i32();
        let Some(total) = usize::try_from(batch_len)
            .ok()
            .and_then(|l| l.checked_add(12))
            .filter(|&t| t >= LAST_OFFSET_DELTA_AT + 4)
        else {
            return Err(format!("record batch with invalid length {batch_len}"));
        };
        if rest.len() < total {
            break;
        }
        let last_offset_delta = (&rest[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]).get_i32();
        next = next.max(
            base_offset
                .saturating_add(i64::from(last_offset_delta))
                .saturating_add(1),
        );
        complete += total;
        rest = &rest[total..];
    }
    let mut buf = bytes.slice(..complete);
    let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| format!("{e:#}"))?;
    let records = sets
        .into_iter()
        .flat_map(|set| set.records)
        .filter(|r| !r.control && r.offset >= from)
        .map(|r| ConsumedRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })
        .collect();
    Ok((records, next))
}

/// Kafka's murmur2 (as in the Java client's `Utils.murmur2`), for key-based partitioning that
/// agrees with the default partitioner of the Java client and librdkafka's `murmur2_random`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in chunks.by_ref() {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn decodes_complete_batches_and_skips_earlier_records() {
        let batch = encode_batch(
            &[
                (
                    Some(Bytes::from_static(b"k0")),
                    Some(Bytes::from_static(b"v0")),
                ),
                (None, Some(Bytes::from_static(b"v1"))),
                (None, Some(Bytes::from_static(b"v2"))),
            ],
            1,
        )
        .expect("encodes");
        assert_eq!(
            kafka_protocol::records::RecordBatchDecoder::decode_batch_info(&mut batch.clone())
                .expect("headers")
                .iter()
                .map(|b| (b.record_count, b.base_sequence, b.producer_id))
                .collect::<Vec<_>>(),
            vec![(3, -1, -1)],
            "one batch, without producer id or sequence"
        );
        let (records, next) = decode_fetched(&batch, 1).expect("decodes");
        assert_eq!(next, 3);
        let values: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(
            values,
            vec![Bytes::from_static(b"v1"), Bytes::from_static(b"v2")]
        );
        assert_eq!(records[0].offset, 1);

        // A truncated trailing batch is ignored.
        let mut two = BytesMut::from(&batch[..]);
        two.extend_from_slice(&batch[..batch.len() - 5]);
        let (records, next) = decode_fetched(&two.freeze(), 0).expect("decodes");
        assert_eq!((records.len(), next), (3, 3));

        assert!(decode_fetched(&Bytes::from_static(&[0; 30]), 0).is_err());
        assert_eq!(
            decode_fetched(&Bytes::new(), 5).expect("empty"),
            (vec![], 5)
        );
    }
}
