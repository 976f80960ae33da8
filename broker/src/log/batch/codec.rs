//! The compression codecs of record batches (attribute bits 0–2), with decompression that is
//! bounded by the caller.
//!
//! Why not `kafka_protocol::compression`: its decoders allocate what the compressed data
//! declares (a raw snappy block's length header, zstd's frame content size) or decode to the
//! end whatever the size, so one CRC-valid batch of a few KiB — a zstd frame declaring 1 TB, a
//! gzip stream of 200 MB of zeros — could make the broker allocate gigabytes. Here every codec
//! decodes *streaming* into the caller's buffer and stops with [`CodecError::TooLarge`] as soon
//! as the output would pass `limit`; a zstd frame may not ask for a window larger than
//! [`zstd_window_log_max`]. A bomb therefore costs at most what an honest batch of `limit`
//! bytes costs.
//!
//! Compression writes what Kafka's own clients write, so every consumer can read a batch the
//! broker recompressed: gzip (one member), snappy in the xerial framing of the Java client
//! (decoding also accepts raw snappy, as librdkafka writes it), the LZ4 frame format with
//! independent 64 KiB blocks and no content checksum, and a zstd frame at level 3.

use std::io::{self, Read, Write};

/// A record batch compression codec (the value of attribute bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

/// Why records could not be (de)compressed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Attribute bits 0–2 hold 5, 6 or 7.
    #[error("unknown compression codec id {0}")]
    UnknownCodec(i16),
    /// The decompressed records would be larger than the limit (`max.message.bytes`).
    #[error("records decompress to more than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The compressed data is not valid for its codec.
    #[error("{codec} data cannot be decompressed: {reason}")]
    Corrupt {
        codec: Codec,
        /// The decoder's own description.
        reason: String,
    },
    /// The encoder failed (it does not on valid input; kept for completeness).
    #[error("{codec} compression failed: {reason}")]
    Compress { codec: Codec, reason: String },
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Codec {
    /// All codecs, in id order.
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// The codec of attribute bits 0–2 (`id` is masked with 0x07 by the caller or not).
    pub fn from_id(id: i16) -> Result<Codec, CodecError> {
        match id {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(CodecError::UnknownCodec(other)),
        }
    }

    /// The id stored in attribute bits 0–2.
    pub fn id(self) -> i16 {
        self as i16
    }

    /// Kafka's name of the codec (`compression.type` values; `none` for no compression).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    fn corrupt(self, reason: impl std::fmt::Display) -> CodecError {
        CodecError::Corrupt {
            codec: self,
            reason: reason.to_string(),
        }
    }
}

/// The largest zstd window (log2) a frame may ask for when decompressing at most `limit`
/// bytes: the smallest power of two holding `limit`, but at least 2^23 (8 MiB, what producers
/// use up to level 19) and at most 2^27 (zstd's default cap).
pub fn zstd_window_log_max(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(23, 27)
}

/// Decompresses `input` with `codec`, appending to `out` (which the caller clears), and fails
/// with [`CodecError::TooLarge`] as soon as more than `limit` bytes would be produced.
/// [`Codec::None`] copies (also bounded).
pub fn decompress(
    codec: Codec,
    input: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = out.len();
    match codec {
        Codec::None => {
            if input.len() > limit {
                return Err(CodecError::TooLarge { limit });
            }
            out.extend_from_slice(input);
            Ok(())
        }
        Codec::Gzip => read_bounded(codec, flate2::read::MultiGzDecoder::new(input), limit, out),
        Codec::Snappy => snappy_decompress(input, limit, out),
        Codec::Lz4 => {
            let decoder = lz4::Decoder::new(input).map_err(|e| codec.corrupt(e))?;
            read_bounded(codec, decoder, limit, out)
        }
        Codec::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| codec.corrupt(e))?;
            decoder
                .window_log_max(zstd_window_log_max(limit))
                .map_err(|e| codec.corrupt(e))?;
            read_bounded(codec, decoder, limit, out)
        }
    }
    .inspect_err(|_| out.truncate(start))
}

/// Reads `reader` to its end into `out`, failing once more than `limit` bytes came out.
fn read_bounded(
    codec: Codec,
    reader: impl Read,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = out.len();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(out)
        .map_err(|e| codec.corrupt(e))?;
    if out.len() - start > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(())
}

/// The xerial framing header written by the Java client's snappy stream.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
/// Block size of the xerial framing when compressing (the Java client's default).
const XERIAL_BLOCK: usize = 32 * 1024;

/// Decodes one raw snappy block into `out`, whose total length may not pass `end`.
fn snappy_block(block: &[u8], end: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let codec = Codec::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| codec.corrupt(e))?;
    let start = out.len();
    if len > end.saturating_sub(start) {
        return Err(CodecError::TooLarge { limit: 0 });
    }
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, out.get_mut(start..).unwrap_or_default())
        .map_err(|e| codec.corrupt(e))?;
    out.truncate(start + written);
    Ok(())
}

fn snappy_decompress(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let end = out.len().saturating_add(limit);
    snappy_blocks(input, end, out).map_err(|e| match e {
        CodecError::TooLarge { .. } => CodecError::TooLarge { limit },
        other => other,
    })
}

fn snappy_blocks(input: &[u8], end: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let codec = Codec::Snappy;
    if !input.starts_with(XERIAL_MAGIC) {
        return snappy_block(input, end, out);
    }
    let mut rest = input
        .get(XERIAL_HEADER_LEN..)
        .ok_or_else(|| codec.corrupt("truncated xerial header"))?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| codec.corrupt("truncated xerial block length"))?;
        let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
        let block = tail
            .get(..len)
            .ok_or_else(|| codec.corrupt("truncated xerial block"))?;
        snappy_block(block, end, out)?;
        rest = tail.get(len..).unwrap_or_default();
    }
    Ok(())
}

/// Compresses `data` with `codec` ([`Codec::None`] copies).
pub fn compress(codec: Codec, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    let fail = |e: io::Error| CodecError::Compress {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Codec::None => Ok(data.to_vec()),
        Codec::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2),
                flate2::Compression::default(),
            );
            encoder.write_all(data).map_err(fail)?;
            encoder.finish().map_err(fail)
        }
        Codec::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1u32.to_be_bytes()); // version
            out.extend_from_slice(&1u32.to_be_bytes()); // compatible version
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| fail(io::Error::other(e)))?;
                let len = u32::try_from(block.len())
                    .map_err(|_| fail(io::Error::other("snappy block too large")))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Codec::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::with_capacity(data.len() / 2))
                .map_err(fail)?;
            encoder.write_all(data).map_err(fail)?;
            let (out, result) = encoder.finish();
            result.map_err(fail)?;
            Ok(out)
        }
        Codec::Zstd => zstd::bulk::compress(data, 3).map_err(fail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips_and_respects_the_limit() {
        let data = sample();
        for codec in Codec::ALL {
            let packed = compress(codec, &data).unwrap();
            let mut out = Vec::new();
            decompress(codec, &packed, data.len(), &mut out).unwrap();
            assert_eq!(out, data, "{codec}");
            let mut out = vec![1, 2, 3];
            let err = decompress(codec, &packed, data.len() - 1, &mut out).unwrap_err();
            assert!(matches!(err, CodecError::TooLarge { .. }), "{codec}: {err}");
            assert_eq!(out, vec![1, 2, 3], "{codec}: output cut back");
            assert_eq!(Codec::from_id(codec.id()).unwrap(), codec);
        }
        for id in 5..=7 {
            assert!(matches!(
                Codec::from_id(id),
                Err(CodecError::UnknownCodec(_))
            ));
        }
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut out = Vec::new();
        decompress(Codec::Snappy, &raw, 1 << 20, &mut out).unwrap();
        assert_eq!(out, data);
        // A raw block declaring 4 GiB is refused before anything is allocated.
        let forged = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert!(matches!(
            decompress(Codec::Snappy, &forged, 1 << 20, &mut Vec::new()),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_corrupt_for_every_codec() {
        let junk: Vec<u8> = (0..500u32).map(|i| (i * 97 + 13) as u8).collect();
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let err = decompress(codec, &junk, 1 << 20, &mut Vec::new()).unwrap_err();
            assert!(matches!(err, CodecError::Corrupt { .. }), "{codec}: {err}");
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let bomb = crate::log::testing::zstd_bomb(1 << 40, 64);
        assert!(bomb.len() < 300);
        let mut out = Vec::new();
        let err = decompress(Codec::Zstd, &bomb, 1 << 20, &mut out).unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { .. }), "{err}");
        assert!(out.capacity() <= 4 << 20, "{}", out.capacity());
        let bomb = crate::log::testing::gzip_bomb(200);
        assert!(bomb.len() < 300 << 10, "{}", bomb.len());
        let err = decompress(Codec::Gzip, &bomb, 1 << 20, &mut out).unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { .. }), "{err}");
        assert!(out.capacity() <= 4 << 20, "{}", out.capacity());
        // Below the limit, the RLE frame decodes (and then fails on its declared size).
        let err = decompress(Codec::Zstd, &bomb_of(2), 1 << 20, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CodecError::Corrupt { .. }), "{err}");
    }

    fn bomb_of(blocks: usize) -> Vec<u8> {
        crate::log::testing::zstd_bomb(1 << 40, blocks)
    }

    #[test]
    fn window_log() {
        assert_eq!(zstd_window_log_max(0), 23);
        assert_eq!(zstd_window_log_max(1_048_588), 23);
        assert_eq!(zstd_window_log_max(16 << 20), 24);
        assert_eq!(zstd_window_log_max(usize::MAX), 27);
    }
}
