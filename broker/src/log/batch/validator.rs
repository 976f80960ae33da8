//! What a produce request's records must be before any of them is stored: Kafka's
//! `LogValidator`, for message format v2.
//!
//! A CRC only proves that the bytes arrived as the client wrote them, not that consumers can
//! read them: a CRC-valid batch with an undecodable payload, garbage records or a record count
//! that does not match its records stops every consumer of the partition at that offset, for
//! good. So every batch of every codec is decoded here and every record checked:
//!
//! * the header: magic 2, a complete batch no larger than `max.message.bytes`, a good CRC, not
//!   a control batch, `lastOffsetDelta == recordCount - 1` (a batch of one record claiming
//!   2^31 - 1 would otherwise move the end offset by two billion), a sequence number with a
//!   producer id, a producer id on a transactional batch;
//! * the codec: 0–4 (5–7 do not exist), and a payload that decompresses — streaming, into at
//!   most `max.message.bytes` (see [`codec`](super::codec): a compression bomb costs no more
//!   than an honest batch);
//! * every record: well-formed (lengths, varints, headers, exactly its declared size), offset
//!   deltas 0, 1, 2, … and exactly `recordCount` records with nothing after them;
//! * the topic's policy: with CreateTime, every timestamp within
//!   `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]` (records
//!   without a timestamp, -1, pass, as in Kafka), and no producer may claim LogAppendTime; on a
//!   compacted topic a key on every record.
//!
//! Nothing is stored unless everything passes: the caller appends the whole buffer or nothing.
//! Policy failures (timestamps, keys) are reported for every offending record (KIP-467's
//! `record_errors`, at most [`MAX_RECORD_ERRORS`]); structural ones stop at the first.
//!
//! What the broker changes, as Kafka does: `maxTimestamp` is set to the largest record
//! timestamp (CreateTime) or to the append time (LogAppendTime, with attribute bit 3), with the
//! CRC recomputed; and when the topic's `compression.type` names a codec other than the
//! batch's, the batch is rebuilt with [`BatchBuilder`] in that codec (records copied verbatim).
//! Base offsets are assigned later, by the log.
//!
//! Cost: an uncompressed batch is walked in place, without allocating per record; a compressed
//! one is decompressed once into a buffer reused for the request's batches.

use super::builder::{BatchBuilder, BuildError};
use super::codec::{self, Codec, CodecError};
use super::record::{RecordError, Records};
use super::TIMESTAMP_TYPE_BIT;
use super::{check_batch, set_attributes_and_max_timestamp, BatchHeader, BATCH_HEADER_LEN};
use crate::log::config::{LogConfig, TimestampType};
use crate::log::error::LogError;

/// At most this many per-record errors are reported for one rejected batch.
pub const MAX_RECORD_ERRORS: usize = 100;

/// "No timestamp".
const NO_TIMESTAMP: i64 = -1;

/// One offending record (KIP-467): its index in its batch and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIssue {
    pub index: i32,
    pub message: String,
}

/// A structural problem of a batch or of one of its records (Kafka's InvalidRecordException).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("clients may not write control batches")]
    ControlBatch,
    #[error("lastOffsetDelta {last_offset_delta} does not match the record count {record_count}")]
    LastOffsetDelta {
        last_offset_delta: i32,
        record_count: i32,
    },
    #[error("invalid base sequence {base_sequence} for producer id {producer_id}")]
    Sequence {
        producer_id: i64,
        base_sequence: i32,
    },
    #[error("a transactional batch needs a producer id")]
    TransactionalWithoutProducerId,
    #[error("record {index}: {error}")]
    Malformed { index: i32, error: RecordError },
    #[error("record {index} has offset delta {offset_delta}, expected {index}")]
    OffsetDelta { index: i32, offset_delta: i32 },
    #[error("record {index}: timestamp delta {delta} overflows the base timestamp")]
    TimestampOverflow { index: i32, delta: i64 },
    #[error("the batch declares {declared} records but holds {found}")]
    MissingRecords { declared: i32, found: i32 },
    #[error("{bytes} bytes follow the batch's {declared} records")]
    TrailingBytes { declared: i32, bytes: usize },
}

impl Problem {
    /// The record it concerns, if it is about one.
    pub fn record_index(&self) -> Option<i32> {
        match self {
            Problem::Malformed { index, .. }
            | Problem::OffsetDelta { index, .. }
            | Problem::TimestampOverflow { index, .. } => Some(*index),
            Problem::MissingRecords { found, .. } => Some(*found),
            _ => None,
        }
    }
}

/// Why a produce request's records were refused. `batch` is the index of the offending batch
/// among the partition's batches.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// Framing, size, magic or CRC of a batch (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, or an
    /// unsupported magic).
    #[error(transparent)]
    Batch(#[from] LogError),
    /// The payload cannot be decompressed, uses an unknown codec, or decompresses to more than
    /// `max.message.bytes`.
    #[error("record batch {batch}: {source}")]
    Codec {
        batch: usize,
        #[source]
        source: CodecError,
    },
    /// A batch or record is malformed (INVALID_RECORD).
    #[error("record batch {batch}: {problem}")]
    Invalid { batch: usize, problem: Problem },
    /// Records break the topic's policy (INVALID_TIMESTAMP if `timestamps`, else
    /// INVALID_RECORD), with one issue per offending record (at most [`MAX_RECORD_ERRORS`] of
    /// `total`).
    #[error("{}", rejected_message(*.timestamps, .records, *.total))]
    Rejected {
        batch: usize,
        timestamps: bool,
        records: Vec<RecordIssue>,
        total: usize,
    },
    /// Recompressing for the topic's `compression.type` failed.
    #[error("record batch {batch}: recompression failed: {source}")]
    Recompress {
        batch: usize,
        #[source]
        source: BuildError,
    },
}

fn rejected_message(timestamps: bool, records: &[RecordIssue], total: usize) -> String {
    if timestamps {
        return "One or more records have been rejected due to invalid timestamp".into();
    }
    let first: Vec<String> = records
        .iter()
        .take(3)
        .map(|r| format!("record {}: {}", r.index, r.message))
        .collect();
    format!(
        "One or more records have been rejected due to {total} record errors in total, and only \
         showing the first three errors at most: [{}]",
        first.join("; ")
    )
}

impl ValidationError {
    /// KIP-467's per-record errors: `(batch_index, message)`.
    pub fn record_errors(&self) -> Vec<(i32, String)> {
        match self {
            ValidationError::Invalid { problem, .. } => problem
                .record_index()
                .map(|i| vec![(i, problem.to_string())])
                .unwrap_or_default(),
            ValidationError::Rejected { records, .. } => records
                .iter()
                .map(|r| (r.index, r.message.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Proof that a buffer of batches passed [`validate`]: their headers, in order (base offsets
/// still as the producer sent them).
#[derive(Debug)]
pub struct Validated {
    headers: Vec<BatchHeader>,
}

impl Validated {
    pub fn headers(&self) -> &[BatchHeader] {
        &self.headers
    }

    pub fn into_headers(self) -> Vec<BatchHeader> {
        self.headers
    }
}

/// Validates the batches filling `buf` (one partition's records of a produce request) against
/// `config` at time `now_ms`. On success `buf` holds the batches to store: the same bytes with
/// `maxTimestamp`/attributes normalised, or rebuilt ones where the topic's codec differs.
pub fn validate(
    buf: &mut Vec<u8>,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Validated, ValidationError> {
    let mut headers = Vec::new();
    let mut scratch = Vec::new();
    // (position, old size, new bytes) of batches rebuilt in another codec.
    let mut rebuilt: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut pos = 0usize;
    if buf.is_empty() {
        return Err(LogError::CorruptMessage("no record batches".into()).into());
    }
    while pos < buf.len() {
        let index = headers.len();
        let rest = buf.get_mut(pos..).unwrap_or_default();
        let header = BatchHeader::parse(rest)?;
        let size = header.total_size();
        if size > config.max_batch_bytes {
            return Err(LogError::MessageTooLarge {
                size,
                max: config.max_batch_bytes,
            }
            .into());
        }
        let available = rest.len();
        let batch = rest.get_mut(..size).ok_or_else(|| {
            LogError::CorruptMessage(format!(
                "record batch of {size} bytes at position {pos} is truncated to {available} bytes"
            ))
        })?;
        check_batch(&header, batch)?;
        match validate_batch(index, batch, &header, config, now_ms, &mut scratch)? {
            Outcome::InPlace(h) => headers.push(h),
            Outcome::Rebuilt(bytes) => {
                let h = BatchHeader::parse(&bytes)?;
                if bytes.len() > config.max_batch_bytes {
                    return Err(LogError::MessageTooLarge {
                        size: bytes.len(),
                        max: config.max_batch_bytes,
                    }
                    .into());
                }
                headers.push(h);
                rebuilt.push((pos, size, bytes));
            }
        }
        pos += size;
    }
    if !rebuilt.is_empty() {
        let mut out = Vec::with_capacity(buf.len());
        let mut at = 0usize;
        for (pos, size, bytes) in &rebuilt {
            out.extend_from_slice(buf.get(at..*pos).unwrap_or_default());
            out.extend_from_slice(bytes);
            at = pos + size;
        }
        out.extend_from_slice(buf.get(at..).unwrap_or_default());
        *buf = out;
    }
    Ok(Validated { headers })
}

enum Outcome {
    /// Valid; stored as it is (header possibly normalised in place).
    InPlace(BatchHeader),
    /// Valid; stored as these bytes instead (another codec).
    Rebuilt(Vec<u8>),
}

fn validate_batch(
    index: usize,
    batch: &mut [u8],
    header: &BatchHeader,
    config: &LogConfig,
    now_ms: i64,
    scratch: &mut Vec<u8>,
) -> Result<Outcome, ValidationError> {
    let invalid = |problem| ValidationError::Invalid {
        batch: index,
        problem,
    };
    if header.is_control() {
        return Err(invalid(Problem::ControlBatch));
    }
    if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
        return Err(invalid(Problem::LastOffsetDelta {
            last_offset_delta: header.last_offset_delta,
            record_count: header.record_count,
        }));
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(invalid(Problem::Sequence {
            producer_id: header.producer_id,
            base_sequence: header.base_sequence,
        }));
    }
    if header.is_transactional() && header.producer_id < 0 {
        return Err(invalid(Problem::TransactionalWithoutProducerId));
    }
    let codec = Codec::from_id(header.compression()).map_err(|source| ValidationError::Codec {
        batch: index,
        source,
    })?;
    let policy = &config.records;
    let append_time = policy.timestamp_type == TimestampType::LogAppendTime;
    let target = policy.compression.codec().filter(|c| *c != codec);

    let max_timestamp = {
        let payload = batch.get(BATCH_HEADER_LEN..).unwrap_or_default();
        let data: &[u8] = if codec == Codec::None {
            payload
        } else {
            scratch.clear();
            codec::decompress(codec, payload, config.max_batch_bytes, scratch).map_err(
                |source| ValidationError::Codec {
                    batch: index,
                    source,
                },
            )?;
            scratch
        };
        let max_timestamp = check_records(index, data, header, config, now_ms)?;
        if let Some(target) = target {
            let mut builder = BatchBuilder::new()
                .base_offset(header.base_offset)
                .partition_leader_epoch(header.partition_leader_epoch)
                .producer(
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                )
                .flags(header.attributes & !TIMESTAMP_TYPE_BIT)
                .log_append_time(append_time)
                .base_timestamp(header.base_timestamp)
                .max_timestamp(if append_time { now_ms } else { max_timestamp })
                .last_offset_delta(header.last_offset_delta)
                .compression(target);
            for record in Records::new(data).flatten() {
                builder.push_raw(&record);
            }
            let bytes = builder
                .build()
                .map_err(|source| ValidationError::Recompress {
                    batch: index,
                    source,
                })?;
            return Ok(Outcome::Rebuilt(bytes));
        }
        max_timestamp
    };

    let (attributes, max_timestamp) = if append_time {
        (header.attributes | TIMESTAMP_TYPE_BIT, now_ms)
    } else {
        (header.attributes & !TIMESTAMP_TYPE_BIT, max_timestamp)
    };
    let mut header = *header;
    if attributes != header.attributes || max_timestamp != header.max_timestamp {
        set_attributes_and_max_timestamp(batch, attributes, max_timestamp);
        header.attributes = attributes;
        header.max_timestamp = max_timestamp;
        if let Some(crc) = batch.get(17..21).and_then(|b| b.try_into().ok()) {
            header.crc = u32::from_be_bytes(crc);
        }
    }
    Ok(Outcome::InPlace(header))
}

/// Checks every record of a batch's (decompressed) records data; returns the largest record
/// timestamp (-1 if none has one).
fn check_records(
    index: usize,
    data: &[u8],
    header: &BatchHeader,
    config: &LogConfig,
    now_ms: i64,
) -> Result<i64, ValidationError> {
    let invalid = |problem| ValidationError::Invalid {
        batch: index,
        problem,
    };
    let policy = &config.records;
    let key_required = config.compaction.is_some();
    let create_time = policy.timestamp_type == TimestampType::CreateTime;
    let producer_append_time = header.is_log_append_time();
    let mut issues: Vec<RecordIssue> = Vec::new();
    let mut total_issues = 0usize;
    let mut timestamp_issues = false;
    let mut note = |issue: RecordIssue| {
        total_issues += 1;
        if issues.len() < MAX_RECORD_ERRORS {
            issues.push(issue);
        }
    };
    let mut max_timestamp = NO_TIMESTAMP;
    let mut records = Records::new(data);
    for i in 0..header.record_count {
        let record = match records.next() {
            None => {
                return Err(invalid(Problem::MissingRecords {
                    declared: header.record_count,
                    found: i,
                }))
            }
            Some(Err(error)) => return Err(invalid(Problem::Malformed { index: i, error })),
            Some(Ok(r)) => r,
        };
        if record.offset_delta != i {
            return Err(invalid(Problem::OffsetDelta {
                index: i,
                offset_delta: record.offset_delta,
            }));
        }
        let timestamp = header
            .base_timestamp
            .checked_add(record.timestamp_delta)
            .ok_or_else(|| {
                invalid(Problem::TimestampOverflow {
                    index: i,
                    delta: record.timestamp_delta,
                })
            })?;
        max_timestamp = max_timestamp.max(timestamp);
        if producer_append_time {
            timestamp_issues = true;
            note(RecordIssue {
                index: i,
                message: "Invalid timestamp type in message: producers may not set the \
                          timestamp type to LogAppendTime"
                    .into(),
            });
        } else if create_time
            && timestamp != NO_TIMESTAMP
            && (now_ms.saturating_sub(timestamp) > policy.timestamp_before_max_ms
                || timestamp.saturating_sub(now_ms) > policy.timestamp_after_max_ms)
        {
            timestamp_issues = true;
            note(RecordIssue {
                index: i,
                message: format!(
                    "Timestamp {timestamp} of message with offset {i} is out of range. The \
                     timestamp should be within [{}, {}]",
                    now_ms.saturating_sub(policy.timestamp_before_max_ms),
                    now_ms.saturating_add(policy.timestamp_after_max_ms)
                ),
            });
        }
        if key_required && record.key.is_none() {
            note(RecordIssue {
                index: i,
                message: "Compacted topic cannot accept message without key".into(),
            });
        }
    }
    if records.remaining() > 0 {
        return Err(invalid(Problem::TrailingBytes {
            declared: header.record_count,
            bytes: records.remaining(),
        }));
    }
    if total_issues > 0 {
        return Err(ValidationError::Rejected {
            batch: index,
            timestamps: timestamp_issues,
            records: issues,
            total: total_issues,
        });
    }
    Ok(max_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::builder::Record;
    use crate::log::config::{CompactionConfig, CompressionType, RecordPolicy};
    use crate::log::testing::{fields, patch_header, replace_payload};

    const NOW: i64 = 1_700_000_000_000;

    fn config() -> LogConfig {
        LogConfig {
            max_batch_bytes: 1 << 20,
            ..LogConfig::default()
        }
    }

    fn batch(codec: Codec, n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new().compression(codec);
        for i in 0..n {
            let value = format!("value-{i}-{}", "x".repeat(100));
            b.record(
                Some(format!("k{i}").as_bytes()),
                Some(value.as_bytes()),
                NOW - 10 + i as i64,
            );
        }
        b.build().unwrap()
    }

    fn check(buf: &[u8], config: &LogConfig) -> Result<(Vec<u8>, Validated), ValidationError> {
        let mut buf = buf.to_vec();
        let validated = validate(&mut buf, config, NOW)?;
        Ok((buf, validated))
    }

    #[test]
    fn valid_batches_of_every_codec_pass_unchanged() {
        for codec in Codec::ALL {
            let mut two = batch(codec, 5);
            two.extend(batch(codec, 1));
            let (out, validated) = check(&two, &config()).unwrap();
            assert_eq!(out, two, "{codec}");
            assert_eq!(validated.headers().len(), 2);
            assert_eq!(validated.headers()[0].max_timestamp, NOW - 6);
        }
    }

    #[test]
    fn structural_poison_is_invalid_record() {
        let good = batch(Codec::None, 3);
        let invalid = |buf: &[u8]| match check(buf, &config()) {
            Err(ValidationError::Invalid { problem, .. }) => problem,
            other => panic!("expected INVALID_RECORD, got {other:?}"),
        };
        // A forged lastOffsetDelta.
        let mut forged = batch(Codec::None, 1);
        patch_header(
            &mut forged,
            fields::LAST_OFFSET_DELTA,
            &i32::MAX.to_be_bytes(),
        );
        assert!(matches!(invalid(&forged), Problem::LastOffsetDelta { .. }));
        // More records declared than present, and fewer (count and lastOffsetDelta agree).
        let mut more = good.clone();
        patch_header(&mut more, fields::RECORD_COUNT, &4i32.to_be_bytes());
        patch_header(&mut more, fields::LAST_OFFSET_DELTA, &3i32.to_be_bytes());
        assert!(matches!(
            invalid(&more),
            Problem::MissingRecords {
                declared: 4,
                found: 3
            }
        ));
        let mut fewer = good.clone();
        patch_header(&mut fewer, fields::RECORD_COUNT, &2i32.to_be_bytes());
        patch_header(&mut fewer, fields::LAST_OFFSET_DELTA, &1i32.to_be_bytes());
        assert!(matches!(invalid(&fewer), Problem::TrailingBytes { .. }));
        // Garbage records.
        let junk: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
        assert!(matches!(
            invalid(&replace_payload(&good, &junk)),
            Problem::Malformed { index: 0, .. }
        ));
        // Offset deltas not 0, 1, 2.
        let mut b = BatchBuilder::new().last_offset_delta(1);
        let body = batch(Codec::None, 2);
        let header = BatchHeader::parse(&body).unwrap();
        let records: Vec<_> = Records::new(&body[BATCH_HEADER_LEN..]).flatten().collect();
        b = b.base_timestamp(header.base_timestamp);
        b.push_raw(&records[1]).push_raw(&records[0]);
        let swapped = b.build().unwrap();
        assert!(matches!(
            invalid(&swapped),
            Problem::OffsetDelta {
                index: 0,
                offset_delta: 1
            }
        ));
        // A control batch, an idempotent batch without a sequence.
        let control = BatchBuilder::new().control(true);
        let mut control = control;
        control.record(None, Some(b"x"), NOW);
        assert_eq!(invalid(&control.build().unwrap()), Problem::ControlBatch);
        let mut seq = BatchBuilder::new().producer(5, 0, -1);
        seq.record(None, Some(b"x"), NOW);
        assert!(matches!(
            invalid(&seq.build().unwrap()),
            Problem::Sequence { .. }
        ));
    }

    #[test]
    fn codec_poison_is_corrupt_and_bombs_are_too_large() {
        let junk: Vec<u8> = (0..300u32).map(|i| (i * 131 + 17) as u8).collect();
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let garbage = replace_payload(&batch(codec, 3), &junk);
            assert!(
                matches!(
                    check(&garbage, &config()),
                    Err(ValidationError::Codec {
                        source: CodecError::Corrupt { .. },
                        ..
                    })
                ),
                "{codec}"
            );
        }
        for id in 5..=7i16 {
            let mut unknown = batch(Codec::None, 2);
            patch_header(&mut unknown, fields::ATTRIBUTES, &id.to_be_bytes());
            assert!(matches!(
                check(&unknown, &config()),
                Err(ValidationError::Codec {
                    source: CodecError::UnknownCodec(_),
                    ..
                })
            ));
        }
        // 64 MiB of zeros, gzip: a few KiB on the wire.
        let zeros = vec![0u8; 64 << 20];
        let bomb = replace_payload(
            &batch(Codec::Gzip, 1),
            &codec::compress(Codec::Gzip, &zeros).unwrap(),
        );
        assert!(bomb.len() < 100 << 10);
        assert!(matches!(
            check(&bomb, &config()),
            Err(ValidationError::Codec {
                source: CodecError::TooLarge { .. },
                ..
            })
        ));
    }

    #[test]
    fn policy_errors_name_every_offending_record() {
        let mut b = BatchBuilder::new();
        b.record(Some(b"k"), Some(b"v"), NOW)
            .record(None, Some(b"v"), NOW)
            .record(Some(b"k"), None, NOW)
            .record(None, None, NOW);
        let keyless = b.build().unwrap();
        assert!(check(&keyless, &config()).is_ok());
        let compacted = LogConfig {
            compaction: Some(CompactionConfig::default()),
            ..config()
        };
        let err = check(&keyless, &compacted).unwrap_err();
        let indexes: Vec<i32> = err.record_errors().iter().map(|e| e.0).collect();
        assert_eq!(indexes, vec![1, 3]);
        assert!(matches!(
            err,
            ValidationError::Rejected {
                timestamps: false,
                total: 2,
                ..
            }
        ));

        let mut b = BatchBuilder::new();
        b.record(None, Some(b"ok"), NOW)
            .record(None, Some(b"future"), NOW + 3_600_001)
            .record(None, Some(b"none"), -1)
            .record(None, Some(b"old"), 5);
        let times = b.build().unwrap();
        let err = check(&times, &config()).unwrap_err();
        assert!(matches!(
            err,
            ValidationError::Rejected {
                timestamps: true,
                ..
            }
        ));
        assert_eq!(err.record_errors().len(), 1);
        let strict = LogConfig {
            records: RecordPolicy {
                timestamp_before_max_ms: 1000,
                ..RecordPolicy::default()
            },
            ..config()
        };
        let indexes: Vec<i32> = check(&times, &strict)
            .unwrap_err()
            .record_errors()
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(indexes, vec![1, 3]);

        // Producers may not claim LogAppendTime.
        let mut claims = batch(Codec::None, 2);
        patch_header(&mut claims, fields::ATTRIBUTES, &0x08i16.to_be_bytes());
        assert!(matches!(
            check(&claims, &config()),
            Err(ValidationError::Rejected {
                timestamps: true,
                ..
            })
        ));
    }

    #[test]
    fn broker_sets_max_timestamp_and_log_append_time() {
        let mut wrong_max = batch(Codec::Lz4, 4);
        patch_header(&mut wrong_max, fields::MAX_TIMESTAMP, &1i64.to_be_bytes());
        let (out, validated) = check(&wrong_max, &config()).unwrap();
        let h = BatchHeader::parse(&out).unwrap();
        assert_eq!(h.max_timestamp, NOW - 7);
        assert_eq!(validated.headers()[0], h);
        check_batch(&h, &out).unwrap();

        let append_time = LogConfig {
            records: RecordPolicy {
                timestamp_type: TimestampType::LogAppendTime,
                ..RecordPolicy::default()
            },
            ..config()
        };
        let mut ancient = BatchBuilder::new();
        ancient.record(None, Some(b"v"), 1);
        let (out, _) = check(&ancient.build().unwrap(), &append_time).unwrap();
        let h = BatchHeader::parse(&out).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, NOW);
        check_batch(&h, &out).unwrap();
    }

    #[test]
    fn topic_codec_recompresses_other_codecs() {
        for target in Codec::ALL {
            let config = LogConfig {
                records: RecordPolicy {
                    compression: CompressionType::Codec(target),
                    ..RecordPolicy::default()
                },
                ..config()
            };
            for source in Codec::ALL {
                let mut input = batch(source, 20);
                patch_header(&mut input, fields::PRODUCER_ID, &3i64.to_be_bytes());
                patch_header(&mut input, fields::BASE_SEQUENCE, &9i32.to_be_bytes());
                input.extend(batch(Codec::None, 1));
                let (out, validated) = check(&input, &config).unwrap();
                let headers = validated.headers();
                assert_eq!(headers.len(), 2);
                assert!(headers.iter().all(|h| h.compression() == target.id()));
                assert_eq!((headers[0].producer_id, headers[0].base_sequence), (3, 9));
                assert_eq!(headers[0].record_count, 20);
                // What comes out validates again, unchanged, and holds the same records.
                let (again, _) = check(&out, &config).unwrap();
                assert_eq!(again, out);
                let decode = |bytes: &[u8]| {
                    let mut buf = bytes::Bytes::copy_from_slice(bytes);
                    kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
                        .unwrap()
                        .into_iter()
                        .flat_map(|s| s.records)
                        .map(|r| (r.offset, r.timestamp, r.key, r.value))
                        .collect::<Vec<_>>()
                };
                assert_eq!(decode(&out), decode(&input), "{source} -> {target}");
            }
        }
    }

    #[test]
    fn header_problems_keep_their_log_errors() {
        let good = batch(Codec::None, 2);
        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert!(matches!(
            check(&bad_crc, &config()),
            Err(ValidationError::Batch(LogError::CorruptMessage(_)))
        ));
        assert!(matches!(
            check(&good[..good.len() - 1], &config()),
            Err(ValidationError::Batch(LogError::CorruptMessage(_)))
        ));
        assert!(matches!(
            check(
                &good,
                &LogConfig {
                    max_batch_bytes: 10,
                    ..config()
                }
            ),
            Err(ValidationError::Batch(LogError::MessageTooLarge { .. }))
        ));
        assert!(matches!(
            check(&[], &config()),
            Err(ValidationError::Batch(LogError::CorruptMessage(_)))
        ));
        // Nothing of a request is accepted if its second batch is bad.
        let mut two = good.clone();
        two.extend_from_slice(&bad_crc);
        assert!(check(&two, &config()).is_err());
        // Records with headers pass.
        let mut b = BatchBuilder::new();
        b.push(&Record {
            key: Some(b"k"),
            value: Some(b"v"),
            timestamp: NOW,
            headers: &[(b"h", None)],
        });
        assert!(check(&b.build().unwrap(), &config()).is_ok());
    }
}
