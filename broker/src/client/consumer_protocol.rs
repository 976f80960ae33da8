//! Decoding of the consumer protocol's `member_assignment` bytes (DescribeGroups), which are
//! opaque to the broker: a version, then the assigned topics and partitions, then user data.
//!
//! Needed to show which member owns which partition, as kafka-consumer-groups.sh does.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;

/// The newest assignment version `kafka-protocol` knows; newer versions only append fields,
/// so they are read as this one.
const MAX_KNOWN_VERSION: i16 = 3;

/// The `(topic, partitions)` assigned by `member_assignment`, empty for an empty assignment
/// (a member of a group that is rebalancing) or for bytes of another protocol type.
pub fn assigned_partitions(member_assignment: &Bytes) -> Result<Vec<(String, Vec<i32>)>, String> {
    if member_assignment.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = member_assignment.clone();
    if buf.remaining() < 2 {
        return Err("assignment shorter than its version".into());
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("assignment version {version}"));
    }
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version.min(MAX_KNOWN_VERSION))
        .map_err(|e| format!("{e:#}"))?;
    Ok(assignment
        .assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic.0.to_string(), tp.partitions))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    #[test]
    fn decodes_a_java_client_assignment() {
        let mut b = BytesMut::new();
        b.put_i16(1); // version
        b.put_i32(2); // topics
        for (name, parts) in [("orders", &[0, 2][..]), ("audit", &[1][..])] {
            b.put_i16(name.len() as i16);
            b.put_slice(name.as_bytes());
            b.put_i32(parts.len() as i32);
            for p in parts {
                b.put_i32(*p);
            }
        }
        b.put_i32(-1); // null user data
        let got = assigned_partitions(&b.freeze()).expect("decodes");
        assert_eq!(
            got,
            vec![
                ("orders".to_string(), vec![0, 2]),
                ("audit".to_string(), vec![1])
            ]
        );
        assert!(assigned_partitions(&Bytes::new())
            .expect("empty")
            .is_empty());
        assert!(assigned_partitions(&Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
    }
}
