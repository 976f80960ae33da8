//! Message format v0 and v1 ("magic 0/1", Kafka before 0.11), which the broker never stores:
//! produce up-converts what old clients send into one v2 batch, and fetch down-converts v2
//! batches for them, as Kafka 3.9 does for the request versions that predate magic 2 (Produce
//! v0–2, Fetch v0–3). Tools in users' hands still send those versions (LinkedIn Burrow 1.2 as
//! Debian ships it, sarama clients configured for an old `kafka-version`).
//!
//! A message set is a sequence of
//!
//! | field | type |
//! |-------|------|
//! | offset | i64 |
//! | messageSize | i32 (bytes after this field) |
//! | crc | u32, CRC-32 (IEEE) of the bytes from magic to the end |
//! | magic | i8, 0 or 1 |
//! | attributes | i8: bits 0–2 codec, bit 3 LogAppendTime (v1) |
//! | timestamp | i64, v1 only |
//! | key, value | i32 length (-1 = null) and bytes |
//!
//! A compressed message is a wrapper whose value is the compressed message set of its inner
//! messages. Headers, producer ids and transaction markers do not exist in these formats: the
//! down-conversion drops headers and control batches, as Kafka does.

use super::builder::{BatchBuilder, BuildError, NO_TIMESTAMP};
use super::codec::{self, Codec, CodecError};
use super::record::Records;
use super::{BatchIter, BATCH_HEADER_LEN};

/// Bytes before a message's CRC: offset and size.
const MESSAGE_OVERHEAD: usize = 12;
/// Smallest v0 message after the size field: crc, magic, attributes, two null lengths.
const MIN_V0_SIZE: usize = 4 + 1 + 1 + 4 + 4;
/// Smallest v1 message after the size field (a timestamp more).
const MIN_V1_SIZE: usize = MIN_V0_SIZE + 8;
/// Attribute bit 3 of a v1 message: LogAppendTime.
const LOG_APPEND_TIME_BIT: u8 = 0x08;

/// Why a message set from an old producer was refused.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// The bytes do not parse as a message set (Kafka's CORRUPT_MESSAGE).
    #[error("corrupt message set: {0}")]
    Corrupt(String),
    /// A message's CRC does not match its content (CORRUPT_MESSAGE).
    #[error("message at offset {offset} has CRC {stored:#010x}, computed {computed:#010x}")]
    Crc {
        offset: i64,
        stored: u32,
        computed: u32,
    },
    /// The codec of a compressed message is unknown or its payload does not decompress.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The converted batch cannot be written.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// One message of a message set, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub offset: i64,
    pub magic: i8,
    pub attributes: u8,
    /// `NO_TIMESTAMP` for v0.
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

impl Message<'_> {
    fn codec(&self) -> Result<Codec, CodecError> {
        Codec::from_id(i16::from(self.attributes & 0x07))
    }
}

fn be<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Reads a length-prefixed byte field at `*at`; `Err` if it does not fit.
fn bytes_field<'a>(msg: &'a [u8], at: &mut usize) -> Result<Option<&'a [u8]>, LegacyError> {
    let corrupt = || LegacyError::Corrupt("key or value runs past the end of its message".into());
    let len = i32::from_be_bytes(be(msg, *at).ok_or_else(corrupt)?);
    *at += 4;
    if len < 0 {
        return Ok(None);
    }
    let end = at
        .checked_add(usize::try_from(len).map_err(|_| corrupt())?)
        .ok_or_else(corrupt)?;
    let field = msg.get(*at..end).ok_or_else(corrupt)?;
    *at = end;
    Ok(Some(field))
}

/// Parses the message at the start of `buf`, checking its CRC; returns it and its total size.
/// `Ok(None)` when `buf` holds less than one whole message.
fn parse_message(buf: &[u8]) -> Result<Option<(Message<'_>, usize)>, LegacyError> {
    let (Some(offset), Some(size)) = (be::<8>(buf, 0), be::<4>(buf, 8)) else {
        return Ok(None);
    };
    let offset = i64::from_be_bytes(offset);
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s >= MIN_V0_SIZE)
        .ok_or_else(|| LegacyError::Corrupt(format!("message size {size} is too small")))?;
    let Some(msg) = buf.get(MESSAGE_OVERHEAD..MESSAGE_OVERHEAD + size) else {
        return Ok(None);
    };
    let stored = u32::from_be_bytes(be(msg, 0).unwrap_or_default());
    let computed = crc32fast::hash(&msg[4..]);
    if stored != computed {
        return Err(LegacyError::Crc {
            offset,
            stored,
            computed,
        });
    }
    let magic = msg[4] as i8;
    let attributes = msg[5];
    let mut at = 6;
    let timestamp = match magic {
        0 => NO_TIMESTAMP,
        1 if size >= MIN_V1_SIZE => {
            at += 8;
            i64::from_be_bytes(be(msg, 6).unwrap_or_default())
        }
        1 => return Err(LegacyError::Corrupt(format!("v1 message of {size} bytes"))),
        other => {
            return Err(LegacyError::Corrupt(format!(
                "magic {other} in a message set of format v0/v1"
            )))
        }
    };
    let key = bytes_field(msg, &mut at)?;
    let value = bytes_field(msg, &mut at)?;
    if at != msg.len() {
        return Err(LegacyError::Corrupt(format!(
            "{} bytes after the value of the message at offset {offset}",
            msg.len() - at
        )));
    }
    let message = Message {
        offset,
        magic,
        attributes,
        timestamp,
        key,
        value,
    };
    Ok(Some((message, MESSAGE_OVERHEAD + size)))
}

/// The complete messages of a message set, outermost level (wrappers are not opened).
fn messages(set: &[u8]) -> Result<Vec<Message<'_>>, LegacyError> {
    let mut out = Vec::new();
    let mut rest = set;
    while !rest.is_empty() {
        let Some((message, size)) = parse_message(rest)? else {
            return Err(LegacyError::Corrupt(format!(
                "{} trailing bytes are not a whole message",
                rest.len()
            )));
        };
        out.push(message);
        rest = &rest[size..];
    }
    Ok(out)
}

/// Converts a producer's message set (v0 or v1, compressed or not) into one v2 batch holding
/// the same records at consecutive offsets, compressed with the codec the producer used.
/// Decompressed payloads are bounded by `limit` bytes.
pub fn up_convert(set: &[u8], limit: usize) -> Result<Vec<u8>, LegacyError> {
    let outer = messages(set)?;
    if outer.is_empty() {
        return Err(LegacyError::Corrupt(
            "the message set holds no message".into(),
        ));
    }
    let mut builder = BatchBuilder::new();
    let mut batch_codec = Codec::None;
    let mut inflated = Vec::new();
    for wrapper in &outer {
        let codec = wrapper.codec()?;
        if codec == Codec::None {
            builder.record(wrapper.key, wrapper.value, wrapper.timestamp);
            continue;
        }
        batch_codec = codec;
        let payload = wrapper
            .value
            .ok_or_else(|| LegacyError::Corrupt("a compressed message has a null value".into()))?;
        inflated.clear();
        codec::decompress(codec, payload, limit, &mut inflated)?;
        for inner in messages(&inflated)? {
            if inner.codec()? != Codec::None {
                return Err(LegacyError::Corrupt(
                    "a compressed message inside a compressed message".into(),
                ));
            }
            let timestamp = if wrapper.attributes & LOG_APPEND_TIME_BIT != 0 {
                wrapper.timestamp
            } else {
                inner.timestamp
            };
            builder.record(inner.key, inner.value, timestamp);
        }
    }
    if builder.is_empty() {
        return Err(LegacyError::Corrupt(
            "the message set holds no record".into(),
        ));
    }
    Ok(builder.compression(batch_codec).build()?)
}

/// Appends one uncompressed message of format `magic` (0 or 1) to `out`.
fn put_message(
    out: &mut Vec<u8>,
    magic: i8,
    offset: i64,
    timestamp: i64,
    log_append_time: bool,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let field_len = |f: Option<&[u8]>| 4 + f.map_or(0, <[u8]>::len);
    let size = MIN_V0_SIZE - 8 + if magic >= 1 { 8 } else { 0 } + field_len(key) + field_len(value);
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&i32::try_from(size).unwrap_or(i32::MAX).to_be_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(magic as u8);
    let mut attributes = 0u8;
    if magic >= 1 && log_append_time {
        attributes |= LOG_APPEND_TIME_BIT;
    }
    out.push(attributes);
    if magic >= 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                out.extend_from_slice(
                    &i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes(),
                );
                out.extend_from_slice(bytes);
            }
        }
    }
    let crc = crc32fast::hash(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Converts the complete v2 batches at the start of `data` (as the log returns them) into an
/// uncompressed message set of format `magic` (0 for Fetch v0–1, 1 for Fetch v2–3): control
/// batches and record headers are dropped, offsets and timestamps kept. A batch that does not
/// decode (it passed validation when it was appended, so this is a damaged log) ends the
/// conversion there; the client sees the messages before it and fetches again.
pub fn down_convert(data: &[u8], magic: i8, limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut inflated = Vec::new();
    for (at, header) in BatchIter::new(data) {
        if header.is_control() {
            continue;
        }
        let batch = &data[at..at + header.total_size()];
        let payload = &batch[BATCH_HEADER_LEN..];
        let Ok(codec) = Codec::from_id(header.compression()) else {
            break;
        };
        inflated.clear();
        if codec::decompress(codec, payload, limit, &mut inflated).is_err() {
            tracing::warn!(
                base_offset = header.base_offset,
                "a stored batch does not decompress"
            );
            break;
        }
        let log_append_time = header.is_log_append_time();
        for record in Records::new(&inflated) {
            let Ok(record) = record else {
                tracing::warn!(
                    base_offset = header.base_offset,
                    "a stored record does not parse"
                );
                return out;
            };
            let offset = header
                .base_offset
                .saturating_add(i64::from(record.offset_delta));
            let timestamp = if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp.saturating_add(record.timestamp_delta)
            };
            put_message(
                &mut out,
                magic,
                offset,
                timestamp,
                log_append_time,
                record.key,
                record.value,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::validator;
    use crate::log::config::LogConfig;

    type Rec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

    fn batch(base: i64, control: bool, codec: Codec, records: &[Rec<'_>]) -> Vec<u8> {
        let mut b = BatchBuilder::new()
            .base_offset(base)
            .control(control)
            .compression(codec);
        for (k, v, t) in records {
            b.record(*k, *v, *t);
        }
        b.build().unwrap()
    }

    /// A v0/v1 message as an old producer writes it (offset 0, relative inner offsets).
    fn message(
        magic: i8,
        codec: Codec,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        put_message(&mut out, magic, 0, timestamp, false, key, value);
        if codec != Codec::None {
            // put_message writes attributes 0: set the codec and fix the CRC.
            out[MESSAGE_OVERHEAD + 5] |= codec.id() as u8;
            let crc = crc32fast::hash(&out[MESSAGE_OVERHEAD + 4..]);
            out[MESSAGE_OVERHEAD..MESSAGE_OVERHEAD + 4].copy_from_slice(&crc.to_be_bytes());
        }
        out
    }

    /// (key, value, timestamp) of a stored record.
    type Owned = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

    fn records_of(batch: &[u8]) -> Vec<Owned> {
        let header = crate::log::batch::BatchHeader::parse(batch).unwrap();
        let mut inflated = Vec::new();
        let codec = Codec::from_id(header.compression()).unwrap();
        codec::decompress(codec, &batch[BATCH_HEADER_LEN..], 1 << 20, &mut inflated).unwrap();
        Records::new(&inflated)
            .map(|r| {
                let r = r.unwrap();
                (
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                    header.base_timestamp + r.timestamp_delta,
                )
            })
            .collect()
    }

    #[test]
    fn uncompressed_v0_and_v1_messages_become_one_valid_v2_batch() {
        let mut set = message(1, Codec::None, 1_700_000_000_000, Some(b"k1"), Some(b"v1"));
        set.extend(message(
            1,
            Codec::None,
            1_700_000_000_005,
            None,
            Some(b"v2"),
        ));
        set.extend(message(0, Codec::None, 0, Some(b"k3"), None));
        let mut batch = up_convert(&set, 1 << 20).unwrap();
        validator::validate(&mut batch, &LogConfig::default(), 1_700_000_000_000).unwrap();
        assert_eq!(
            records_of(&batch),
            vec![
                (
                    Some(b"k1".to_vec()),
                    Some(b"v1".to_vec()),
                    1_700_000_000_000
                ),
                (None, Some(b"v2".to_vec()), 1_700_000_000_005),
                (Some(b"k3".to_vec()), None, NO_TIMESTAMP),
            ]
        );
    }

    #[test]
    fn a_compressed_wrapper_is_opened_and_its_codec_kept() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4] {
            let mut inner = message(1, Codec::None, 10, Some(b"a"), Some(b"1"));
            inner.extend(message(1, Codec::None, 11, Some(b"b"), Some(b"2")));
            let compressed = codec::compress(codec, &inner).unwrap();
            let wrapper = message(1, codec, 11, None, Some(&compressed));
            let batch = up_convert(&wrapper, 1 << 20).unwrap();
            let header = crate::log::batch::BatchHeader::parse(&batch).unwrap();
            assert_eq!(header.compression(), codec.id(), "{codec:?}");
            assert_eq!(header.record_count, 2);
            assert_eq!(
                records_of(&batch),
                vec![
                    (Some(b"a".to_vec()), Some(b"1".to_vec()), 10),
                    (Some(b"b".to_vec()), Some(b"2".to_vec()), 11),
                ]
            );
        }
    }

    #[test]
    fn damaged_message_sets_are_refused_not_stored() {
        let good = message(1, Codec::None, 1, Some(b"k"), Some(b"v"));
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            up_convert(&flipped, 1 << 20),
            Err(LegacyError::Crc { .. })
        ));
        assert!(matches!(
            up_convert(&good[..good.len() - 1], 1 << 20),
            Err(LegacyError::Corrupt(_))
        ));
        assert!(matches!(
            up_convert(&[], 1 << 20),
            Err(LegacyError::Corrupt(_))
        ));
        let mut magic2 = good.clone();
        magic2[MESSAGE_OVERHEAD + 4] = 2;
        let crc = crc32fast::hash(&magic2[MESSAGE_OVERHEAD + 4..]);
        magic2[MESSAGE_OVERHEAD..MESSAGE_OVERHEAD + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(up_convert(&magic2, 1 << 20).is_err());
        // A decompression bomb is bounded.
        let big = codec::compress(Codec::Gzip, &vec![0u8; 1 << 20]).unwrap();
        let bomb = message(1, Codec::Gzip, 1, None, Some(&big));
        assert!(matches!(
            up_convert(&bomb, 1 << 16),
            Err(LegacyError::Codec(_))
        ));
    }

    #[test]
    fn down_conversion_keeps_offsets_and_timestamps_and_drops_control_batches() {
        let mut log = batch(
            5,
            false,
            Codec::Gzip,
            &[(Some(b"k"), Some(b"v"), 100), (None, Some(b"w"), 107)],
        );
        log.extend(batch(
            7,
            true,
            Codec::None,
            &[(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), 108)],
        ));
        log.extend(batch(8, false, Codec::None, &[(Some(b"x"), None, 109)]));
        // A partial batch at the end (as a size-bounded read returns) is left out.
        let partial = batch(9, false, Codec::None, &[(None, Some(b"cut"), 110)]);
        log.extend_from_slice(&partial[..partial.len() - 3]);

        for magic in [0i8, 1] {
            let set = down_convert(&log, magic, 1 << 20);
            let got = messages(&set).unwrap();
            let ts = |t: i64| if magic == 0 { NO_TIMESTAMP } else { t };
            assert_eq!(
                got,
                vec![
                    Message {
                        offset: 5,
                        magic,
                        attributes: 0,
                        timestamp: ts(100),
                        key: Some(b"k"),
                        value: Some(b"v")
                    },
                    Message {
                        offset: 6,
                        magic,
                        attributes: 0,
                        timestamp: ts(107),
                        key: None,
                        value: Some(b"w")
                    },
                    Message {
                        offset: 8,
                        magic,
                        attributes: 0,
                        timestamp: ts(109),
                        key: Some(b"x"),
                        value: None
                    },
                ],
                "magic {magic}"
            );
        }
    }

    #[test]
    fn up_then_down_conversion_round_trips() {
        let mut set = message(1, Codec::None, 42, Some(b"key"), Some(b"value"));
        set.extend(message(1, Codec::None, 43, Some(b""), Some(b"")));
        let batch = up_convert(&set, 1 << 20).unwrap();
        let back = down_convert(&batch, 1, 1 << 20);
        assert_eq!(messages(&back).unwrap(), {
            let mut expected = messages(&set).unwrap();
            expected[1].offset = 1;
            expected
        });
    }
}
