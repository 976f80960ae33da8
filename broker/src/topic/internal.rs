//! What the broker's own state topics (`__consumer_offsets`, `__transaction_state`) share:
//! each is one compacted partition the broker creates on first start and replays on every
//! start, and their keys and values spell strings as Kafka's internal records do (an i16
//! length, then the bytes), so one reader and one writer serve both.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Partition, TopicConfigs, TopicError, TopicRegistry};

/// The single partition of internal topic `name`, created (compacted, 100 MiB segments) if
/// the data directory does not hold it yet.
pub async fn open_state_partition(
    topics: &TopicRegistry,
    name: &str,
) -> Result<Arc<Partition>, TopicError> {
    let topic = match topics.get(name) {
        Some(t) => t,
        None => {
            let mut configs = TopicConfigs::default();
            configs.0.insert("cleanup.policy".into(), "compact".into());
            configs.0.insert("segment.bytes".into(), "104857600".into());
            topics.create(name, 1, 1, configs).await?
        }
    };
    topic
        .partition(0)
        .ok_or_else(|| TopicError::Unknown(format!("{name}-0")))
}

/// Writes `s` as Kafka's internal records do: i16 length, then the bytes (cut at i16::MAX).
pub fn put_str(buf: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    buf.put_i16(len);
    buf.put_slice(&s.as_bytes()[..usize::try_from(len).unwrap_or(0)]);
}

/// [`put_str`], or length -1 for `None` (Kafka's nullable string).
pub fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

/// Reads what [`put_str`] wrote; `None` when the bytes are short or not UTF-8.
pub fn get_str(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = usize::try_from(buf.get_i16()).ok()?;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok()
}
