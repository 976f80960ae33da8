//! What the broker's own state topics (`__consumer_offsets`, `__transaction_state`,
//! `__datasync_acls`, `__datasync_scram_credentials`) share: each is one compacted partition
//! the broker creates on first start, appends keyed records to as one batch per change, and
//! replays on every start; their keys and values spell strings as Kafka's internal records do
//! (an i16 length, then the bytes). One opener, one writer, one replayer and one string codec
//! serve them all, so a fix to any (compaction gaps, a torn tail) reaches every store.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;

use super::{Partition, TopicConfigs, TopicError, TopicRegistry};
use crate::log::batch::builder::BatchBuilder;
use crate::log::batch::BatchIter;

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

/// Appends `(key, value)` records (a `None` value is a tombstone) to a state partition as one
/// batch, stamped now; returns the batch's base offset. Not yet durable: callers wait on the
/// flusher. `what` names the state in the error ("offsets", "ACLs").
pub fn append_state_records(
    partition: &Partition,
    what: &str,
    records: &[(Bytes, Option<Bytes>)],
) -> Result<i64, String> {
    let now = crate::now_ms();
    let mut builder = BatchBuilder::new();
    for (key, value) in records {
        builder.record(Some(key), value.as_deref(), now);
    }
    let mut batch = builder
        .build()
        .map_err(|e| format!("could not encode {what}: {e}"))?;
    partition
        .append(&mut batch)
        .map(|appended| appended.base_offset)
        .map_err(|e| format!("could not store {what}: {e}"))
}

/// Calls `apply(key, value)` for every record of a state partition, oldest first, from the
/// log start to the end. Records without a key are skipped. It advances by batch ends, not
/// record offsets, because compaction can leave batches whose records are all gone.
pub fn replay_state(
    partition: &Partition,
    mut apply: impl FnMut(Bytes, Option<Bytes>),
) -> Result<(), TopicError> {
    let mut offset = partition.log_start_offset();
    loop {
        let read = partition.read(offset, 4 << 20)?;
        if read.records.is_empty() {
            break;
        }
        let batches_end = BatchIter::new(&read.records)
            .map(|(_, h)| h.next_offset())
            .max()
            .unwrap_or(offset);
        let mut bytes = read.records;
        let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| {
            TopicError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}-{}: {e}", partition.topic, partition.index),
            ))
        })?;
        let before = offset;
        for record in sets.into_iter().flat_map(|s| s.records) {
            offset = offset.max(record.offset + 1);
            if let Some(key) = record.key {
                apply(key, record.value);
            }
        }
        offset = offset.max(batches_end);
        if offset == before {
            break;
        }
    }
    Ok(())
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
