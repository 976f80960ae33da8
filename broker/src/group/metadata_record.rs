//! Kafka's group-metadata records in `__consumer_offsets` (key version 2), the record Kafka's
//! coordinator writes beside the offset commits whenever a group completes a rebalance or
//! becomes empty, and deletes (a tombstone) with the group.
//!
//! The broker keeps groups in memory and does not read these back (members of a restarted
//! broker rejoin); it writes them because tools that read `__consumer_offsets` directly, as
//! LinkedIn Burrow does, learn from them which member (and host) owns each partition.
//!
//! The value is written in the oldest version that holds everything the group has: v1 unless a
//! member is static (has a `group.instance.id`, which only v3 holds). Kafka reads every
//! version; Burrow 1.2 (Debian's) reads only v0 and v1, and skips a v3 record without learning
//! the owners. Layouts (big-endian, strings with an i16 length, bytes with an i32 length):
//!
//! * v1: `protocol_type, generation i32, protocol?, leader?, [member_id, client_id,
//!   client_host, rebalance_timeout i32, session_timeout i32, subscription, assignment]`;
//! * v3: v1 with `current_state_timestamp i64` after the leader and `group_instance_id?` after
//!   each member id.

use bytes::{BufMut, Bytes, BytesMut};

use crate::topic::internal::{put_nullable_str, put_str};

const KEY_VERSION: i16 = 2;

/// One member as the record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol (a consumer's subscription).
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's state as the record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberRecord>,
}

/// The key of `group`'s metadata record.
pub fn key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_i16(KEY_VERSION);
    put_str(&mut buf, group);
    buf.freeze()
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
    buf.put_slice(b);
}

/// The value of a group's metadata record (v1, or v3 for a group with static members).
pub fn value(group: &GroupRecord) -> Bytes {
    let v3 = group.members.iter().any(|m| m.instance_id.is_some());
    let mut buf = BytesMut::new();
    buf.put_i16(if v3 { 3 } else { 1 });
    put_str(&mut buf, &group.protocol_type);
    buf.put_i32(group.generation);
    put_nullable_str(&mut buf, group.protocol.as_deref());
    put_nullable_str(&mut buf, group.leader.as_deref());
    if v3 {
        buf.put_i64(group.state_timestamp_ms);
    }
    buf.put_i32(i32::try_from(group.members.len()).unwrap_or(i32::MAX));
    for m in &group.members {
        put_str(&mut buf, &m.member_id);
        if v3 {
            put_nullable_str(&mut buf, m.instance_id.as_deref());
        }
        put_str(&mut buf, &m.client_id);
        put_str(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layouts Kafka's `GroupMetadataValue` v1 and v3 schemas give, field by field.
    #[test]
    fn value_v1_and_v3_layouts() {
        let mut group = GroupRecord {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp_ms: 1_000,
            members: vec![MemberRecord {
                member_id: "m1".into(),
                instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"s"),
                assignment: Bytes::from_static(b"ab"),
            }],
        };
        let mut expected: Vec<u8> = vec![0, 3, 0, 8];
        expected.extend(b"consumer");
        expected.extend(7i32.to_be_bytes());
        expected.extend([0, 5]);
        expected.extend(b"range");
        expected.extend([0, 2]);
        expected.extend(b"m1");
        expected.extend(1_000i64.to_be_bytes());
        expected.extend(1i32.to_be_bytes());
        expected.extend([0, 2]);
        expected.extend(b"m1");
        expected.extend([0, 1, b'i']);
        expected.extend([0, 1, b'c', 0, 10]);
        expected.extend(b"/127.0.0.1");
        expected.extend(300_000i32.to_be_bytes());
        expected.extend(45_000i32.to_be_bytes());
        expected.extend([0, 0, 0, 1, b's', 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(value(&group).to_vec(), expected);

        // Without a static member: v1, without the state timestamp and instance id.
        group.members[0].instance_id = None;
        let mut v1 = expected.clone();
        v1[1] = 1;
        let state_timestamp_at = 2 + 10 + 4 + 7 + 4;
        v1.drain(state_timestamp_at..state_timestamp_at + 8);
        let instance_at = state_timestamp_at + 4 + 4;
        v1.drain(instance_at..instance_at + 3);
        assert_eq!(value(&group).to_vec(), v1);
        assert_eq!(key("g").to_vec(), vec![0, 2, 0, 1, b'g']);
    }
}
