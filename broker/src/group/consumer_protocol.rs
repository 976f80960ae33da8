//! The "consumer" embedded protocol: the subscription and assignment bytes that consumers
//! exchange through JoinGroup/SyncGroup. The broker never needs them to run a group (the
//! assignor runs in the clients), only to say which partitions a member owns, for
//! OffsetDelete and for describing groups.

use bytes::Buf;

/// Topic → partitions of a `ConsumerProtocolAssignment`. `None` when the bytes are not a
/// consumer assignment (another protocol type, or garbage).
pub fn assigned_partitions(mut bytes: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    if bytes.remaining() < 6 {
        return None;
    }
    let _version = bytes.get_i16();
    let topics = bytes.get_i32();
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        if bytes.remaining() < 2 {
            return None;
        }
        let len = usize::try_from(bytes.get_i16()).ok()?;
        if bytes.remaining() < len + 4 {
            return None;
        }
        let name = String::from_utf8(bytes[..len].to_vec()).ok()?;
        bytes.advance(len);
        let count = bytes.get_i32();
        let count = usize::try_from(count).ok()?;
        if bytes.remaining() < count.checked_mul(4)? {
            return None;
        }
        let partitions = (0..count).map(|_| bytes.get_i32()).collect();
        out.push((name, partitions));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn parses_an_assignment_and_rejects_garbage() {
        let mut b = Vec::new();
        b.put_i16(1);
        b.put_i32(1);
        b.put_i16(6);
        b.put_slice(b"orders");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i32(3);
        b.put_i32(-1); // user data: null
        assert_eq!(
            assigned_partitions(&b),
            Some(vec![("orders".to_string(), vec![0, 3])])
        );
        assert_eq!(assigned_partitions(&[0, 1, 0, 0, 0, 9, 0]), None);
        assert_eq!(assigned_partitions(&[]), Some(vec![]));
    }
}
