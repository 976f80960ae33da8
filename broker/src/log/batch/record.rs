//! The records inside a v2 batch (after decompression): parsing without allocating.
//!
//! Each record is `length varint` followed by that many bytes: `attributes i8`,
//! `timestampDelta varlong`, `offsetDelta varint`, `keyLength varint` + key (-1 = null),
//! `valueLength varint` + value (-1 = null), `headerCount varint`, then per header
//! `keyLength varint` + key (never null) and `valueLength varint` + value (-1 = null). Varints
//! are zig-zag encoded, at most 5 bytes (varint) or 10 bytes (varlong).
//!
//! [`Records`] walks such data record by record and borrows every field from it, so the
//! validator can check every record of an uncompressed produce batch in place, and the cleaner
//! and the batch builder can copy records verbatim ([`RecordRef::raw`]). Parsing is strict the
//! way Kafka's `DefaultRecord.readFrom` is: a record must use exactly the bytes its length
//! says, and every length must fit in what is left.

/// Why a record does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A varint runs past the data or is longer than its type allows.
    #[error("malformed varint in the record's {0}")]
    Varint(Field),
    /// A length is below -1 (or below 0 where null is not allowed).
    #[error("invalid {field} length {len}")]
    Length { field: Field, len: i64 },
    /// A field runs past the end of the record (or of the data, for the record itself).
    #[error("the record's {0} runs past its end")]
    Truncated(Field),
    /// The record's fields do not use exactly the bytes its length declares.
    #[error("record length {declared} but its fields take {used} bytes")]
    SizeMismatch { declared: usize, used: usize },
}

/// The parts of a record, to say which one is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Length,
    Attributes,
    TimestampDelta,
    OffsetDelta,
    Key,
    Value,
    HeaderCount,
    HeaderKey,
    HeaderValue,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Length => "length",
            Field::Attributes => "attributes",
            Field::TimestampDelta => "timestamp delta",
            Field::OffsetDelta => "offset delta",
            Field::Key => "key",
            Field::Value => "value",
            Field::HeaderCount => "header count",
            Field::HeaderKey => "header key",
            Field::HeaderValue => "header value",
        })
    }
}

/// One record, borrowed from the records data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The whole record, length prefix included: what a batch holds for it.
    pub raw: &'a [u8],
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Number of headers (all of them well-formed).
    pub header_count: i32,
}

/// Iterator over the records of a batch's (decompressed) records data. Yields `Err` once for
/// a record that does not parse and then stops; [`Records::remaining`] tells how many bytes
/// were not consumed.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Records<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Records {
            data,
            pos: 0,
            failed: false,
        }
    }

    /// Bytes after the last record yielded.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordRef<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let rest = self.data.get(self.pos..)?;
        match parse_record(rest) {
            Ok(record) => {
                self.pos += record.raw.len();
                Some(Ok(record))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// A cursor over one record's bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self, field: Field) -> Result<u8, RecordError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(RecordError::Truncated(field))?;
        self.pos += 1;
        Ok(b)
    }

    /// An unsigned LEB128 value of at most `max_bytes` bytes whose value fits in `bits` bits.
    fn unsigned(&mut self, field: Field, max_bytes: u32, bits: u32) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = *self.buf.get(self.pos).ok_or(RecordError::Varint(field))?;
            self.pos += 1;
            let shift = 7 * i;
            let chunk = u64::from(b & 0x7f);
            if shift + 7 > bits && chunk >> (bits - shift) != 0 {
                return Err(RecordError::Varint(field));
            }
            value |= chunk << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::Varint(field))
    }

    fn varint(&mut self, field: Field) -> Result<i32, RecordError> {
        let raw = self.unsigned(field, 5, 32)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self, field: Field) -> Result<i64, RecordError> {
        let raw = self.unsigned(field, 10, 64)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// `len` bytes.
    fn take(&mut self, len: usize, field: Field) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(RecordError::Truncated(field))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(RecordError::Truncated(field))?;
        self.pos = end;
        Ok(bytes)
    }

    /// A length-prefixed byte string; -1 is null (if `nullable`).
    fn bytes(&mut self, field: Field, nullable: bool) -> Result<Option<&'a [u8]>, RecordError> {
        let len = self.varint(field)?;
        if len == -1 && nullable {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| RecordError::Length {
            field,
            len: i64::from(len),
        })?;
        self.take(len, field).map(Some)
    }
}

/// Parses the record at the start of `data`.
pub fn parse_record(data: &[u8]) -> Result<RecordRef<'_>, RecordError> {
    let mut outer = Cursor { buf: data, pos: 0 };
    let len = outer.varint(Field::Length)?;
    let len = usize::try_from(len).map_err(|_| RecordError::Length {
        field: Field::Length,
        len: i64::from(len),
    })?;
    let prefix = outer.pos;
    let body = outer.take(len, Field::Length)?;
    let raw = data.get(..prefix + len).unwrap_or_default();

    let mut c = Cursor { buf: body, pos: 0 };
    let attributes = c.byte(Field::Attributes)? as i8;
    let timestamp_delta = c.varlong(Field::TimestampDelta)?;
    let offset_delta = c.varint(Field::OffsetDelta)?;
    let key = c.bytes(Field::Key, true)?;
    let value = c.bytes(Field::Value, true)?;
    let header_count = c.varint(Field::HeaderCount)?;
    if header_count < 0 {
        return Err(RecordError::Length {
            field: Field::HeaderCount,
            len: i64::from(header_count),
        });
    }
    for _ in 0..header_count {
        c.bytes(Field::HeaderKey, false)?;
        c.bytes(Field::HeaderValue, true)?;
    }
    if c.pos != body.len() {
        return Err(RecordError::SizeMismatch {
            declared: body.len(),
            used: c.pos,
        });
    }
    Ok(RecordRef {
        raw,
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        header_count,
    })
}

/// Appends `value` as a zig-zag varint.
pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned(out, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

/// Appends `value` as a zig-zag varlong.
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded size of a zig-zag varint.
pub fn varint_len(value: i32) -> usize {
    let v = ((value << 1) ^ (value >> 31)) as u32;
    (32 - v.leading_zeros() as usize).max(1).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Vec<u8> {
        let mut body = vec![0u8];
        put_varlong(&mut body, -5);
        put_varint(&mut body, 3);
        for field in [key, value] {
            match field {
                Some(b) => {
                    put_varint(&mut body, b.len() as i32);
                    body.extend_from_slice(b);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut body, headers.len() as i32);
        for (k, v) in headers {
            put_varint(&mut body, k.len() as i32);
            body.extend_from_slice(k);
            match v {
                Some(v) => {
                    put_varint(&mut body, v.len() as i32);
                    body.extend_from_slice(v);
                }
                None => put_varint(&mut body, -1),
            }
        }
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn parses_fields_and_walks_records() {
        let mut data = record(
            Some(b"k"),
            Some(b"value"),
            &[(b"h", Some(b"x")), (b"n", None)],
        );
        data.extend(record(None, None, &[]));
        let recs: Vec<_> = Records::new(&data).collect::<Result<_, _>>().unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].key, Some(&b"k"[..]));
        assert_eq!(recs[0].value, Some(&b"value"[..]));
        assert_eq!(recs[0].timestamp_delta, -5);
        assert_eq!(recs[0].offset_delta, 3);
        assert_eq!(recs[0].header_count, 2);
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].value, None);
        assert_eq!(recs[0].raw.len() + recs[1].raw.len(), data.len());
    }

    #[test]
    fn rejects_malformed_records() {
        let good = record(Some(b"k"), Some(b"v"), &[(b"h", Some(b"x"))]);
        // Every truncation fails (never panics).
        for cut in 0..good.len() {
            assert!(parse_record(&good[..cut]).is_err(), "cut {cut}");
        }
        // A length one too long or too short.
        let mut long = good.clone();
        long[0] += 2;
        long.push(0);
        assert!(matches!(
            parse_record(&long),
            Err(RecordError::SizeMismatch { .. })
        ));
        let mut short = good.clone();
        short[0] -= 2;
        assert!(parse_record(&short).is_err());
        // A null header key.
        let bad = record(Some(b"k"), Some(b"v"), &[]);
        let mut body = bad[1..bad.len() - 1].to_vec();
        body.push(2); // one header
        body.push(1); // key length -1
        body.push(1); // value length -1
        let mut with_null_key = Vec::new();
        put_varint(&mut with_null_key, body.len() as i32);
        with_null_key.extend_from_slice(&body);
        assert!(matches!(
            parse_record(&with_null_key),
            Err(RecordError::Length {
                field: Field::HeaderKey,
                ..
            })
        ));
        // Over-long varints.
        assert!(matches!(
            parse_record(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(RecordError::Varint(Field::Length))
        ));
        assert!(matches!(
            parse_record(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(RecordError::Varint(Field::Length))
        ));
        // A negative record length.
        assert!(matches!(
            parse_record(&[0x03]),
            Err(RecordError::Length { .. })
        ));
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut c = Cursor { buf: &out, pos: 0 };
            assert_eq!(c.varint(Field::Length).unwrap(), v);
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut c = Cursor { buf: &out, pos: 0 };
            assert_eq!(c.varlong(Field::TimestampDelta).unwrap(), v);
        }
    }
}
