//! Response frames: a 4-byte length, the response header (whose version depends on the API and
//! version of the request), and the body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// Encodes a complete response frame.
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &R,
) -> anyhow::Result<Bytes> {
    let header_version = R::header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version)? + body.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_u32(u32::try_from(size)?);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// The smallest answer possible to a request whose API or version this broker does not know:
/// the correlation id and UNSUPPORTED_VERSION (35). Most responses start with an error code or a
/// throttle time, so a client reading it sees the error; the connection is then closed, as Kafka
/// does for requests it cannot parse.
pub fn error_frame(correlation_id: i32, error_code: i16) -> Bytes {
    let mut buf = BytesMut::with_capacity(10);
    buf.put_u32(6);
    buf.put_i32(correlation_id);
    buf.put_i16(error_code);
    buf.freeze()
}
