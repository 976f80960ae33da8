//! The records of `__transaction_state`: key = Kafka's transaction log key (version 0, the
//! transactional id), value = Kafka's transaction log value version 0 (producer id, epoch,
//! timeout, state, partitions by topic, last update and start time), followed by datasync's
//! addition: the offsets a transaction commits for consumer groups (TxnOffsetCommit), so that
//! a transaction prepared to commit before a crash commits them after the restart.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{TxnMeta, TxnState};
use crate::group::offsets::Committed;
use crate::topic::internal::{get_str, put_str};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn get_count(buf: &mut Bytes, min_each: usize) -> Option<usize> {
    if buf.remaining() < 4 {
        return None;
    }
    let n = usize::try_from(buf.get_i32()).ok()?;
    // Never trust a count beyond what the bytes can hold.
    (n.saturating_mul(min_each) <= buf.remaining()).then_some(n)
}

pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(KEY_VERSION);
    put_str(&mut buf, transactional_id);
    buf.freeze()
}

pub fn decode_key(mut buf: Bytes) -> Option<String> {
    if buf.remaining() < 2 || buf.get_i16() != KEY_VERSION {
        return None;
    }
    get_str(&mut buf)
}

pub fn encode_value(m: &TxnMeta) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(m.producer_id);
    buf.put_i16(m.producer_epoch);
    buf.put_i32(m.timeout_ms);
    buf.put_i8(m.state.id());
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &m.partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    buf.put_i32(len_i32(by_topic.len()));
    for (topic, parts) in by_topic {
        put_str(&mut buf, topic);
        buf.put_i32(len_i32(parts.len()));
        for p in parts {
            buf.put_i32(p);
        }
    }
    buf.put_i64(m.last_update_ms);
    buf.put_i64(m.start_ms);
    // datasync: the consumer groups of the transaction and their pending offsets.
    buf.put_i32(len_i32(m.groups.len()));
    for group in &m.groups {
        put_str(&mut buf, group);
        let offsets = m.offsets.get(group).map(|o| o.as_slice()).unwrap_or(&[]);
        buf.put_i32(len_i32(offsets.len()));
        for ((topic, p), c) in offsets {
            put_str(&mut buf, topic);
            buf.put_i32(*p);
            buf.put_i64(c.offset);
            buf.put_i32(c.leader_epoch);
            put_str(&mut buf, &c.metadata);
            buf.put_i64(c.commit_timestamp);
        }
    }
    buf.freeze()
}

pub fn decode_value(mut buf: Bytes) -> Option<TxnMeta> {
    if buf.remaining() < 2 + 8 + 2 + 4 + 1 || buf.get_i16() != VALUE_VERSION {
        return None;
    }
    let producer_id = buf.get_i64();
    let producer_epoch = buf.get_i16();
    let timeout_ms = buf.get_i32();
    let state = TxnState::from_id(buf.get_i8())?;
    let mut partitions = BTreeSet::new();
    for _ in 0..get_count(&mut buf, 6)? {
        let topic = get_str(&mut buf)?;
        for _ in 0..get_count(&mut buf, 4)? {
            partitions.insert((topic.clone(), buf.get_i32()));
        }
    }
    if buf.remaining() < 16 {
        return None;
    }
    let last_update_ms = buf.get_i64();
    let start_ms = buf.get_i64();
    let mut groups = BTreeSet::new();
    let mut offsets = BTreeMap::new();
    if buf.has_remaining() {
        for _ in 0..get_count(&mut buf, 6)? {
            let group = get_str(&mut buf)?;
            let mut list = Vec::new();
            for _ in 0..get_count(&mut buf, 28)? {
                let topic = get_str(&mut buf)?;
                if buf.remaining() < 16 {
                    return None;
                }
                let p = buf.get_i32();
                let offset = buf.get_i64();
                let leader_epoch = buf.get_i32();
                let metadata = get_str(&mut buf)?;
                if buf.remaining() < 8 {
                    return None;
                }
                list.push((
                    (topic, p),
                    Committed {
                        offset,
                        leader_epoch,
                        metadata,
                        commit_timestamp: buf.get_i64(),
                    },
                ));
            }
            if !list.is_empty() {
                offsets.insert(group.clone(), list);
            }
            groups.insert(group);
        }
    }
    Some(TxnMeta {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        groups,
        offsets,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_records_round_trip() {
        let mut m = TxnMeta::new(42, 60_000);
        m.producer_epoch = 3;
        m.state = TxnState::PrepareCommit;
        m.partitions.insert(("orders".into(), 0));
        m.partitions.insert(("orders".into(), 2));
        m.partitions.insert(("audit".into(), 1));
        m.groups.insert("g".into());
        m.offsets.insert(
            "g".into(),
            vec![(
                ("in".into(), 1),
                Committed {
                    offset: 17,
                    leader_epoch: -1,
                    metadata: "m".into(),
                    commit_timestamp: 5,
                },
            )],
        );
        m.start_ms = 10;
        m.last_update_ms = 20;
        assert_eq!(decode_value(encode_value(&m)), Some(m));
        assert_eq!(decode_key(encode_key("tx-1")), Some("tx-1".into()));
        // Truncated or forged values are refused, not trusted.
        let full = encode_value(&TxnMeta::new(1, 1000));
        for cut in 0..full.len() - 4 {
            let _ = decode_value(full.slice(..cut));
        }
        assert_eq!(decode_value(full.slice(..5)), None);
    }
}
