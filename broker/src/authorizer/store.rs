//! ACLs on disk: one record per ACL in the compacted internal topic `__datasync_acls`, keyed by
//! the whole binding (so compaction keeps one record per ACL) with a one-byte value while it
//! exists and a tombstone once deleted. The broker replays the topic at start, so ACLs survive
//! restarts and crashes (an ACL is acknowledged to the client only once it is on disk).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::acl::AclBinding;
use crate::flush::Flusher;
use crate::topic::internal::{
    append_state_records, get_str, open_state_partition, put_str, replay_state,
};
use crate::topic::{Partition, TopicError, TopicRegistry};

/// The internal topic holding the ACLs.
pub const ACL_TOPIC: &str = "__datasync_acls";

const KEY_VERSION: i16 = 0;

/// Writer of the ACL topic.
pub struct AclStore {
    partition: Arc<Partition>,
    flusher: Flusher,
}

impl AclStore {
    /// Creates the topic if needed and replays it into the set of ACLs.
    pub async fn open(
        topics: &TopicRegistry,
        flusher: Flusher,
    ) -> Result<(Self, BTreeSet<AclBinding>), TopicError> {
        let partition = open_state_partition(topics, ACL_TOPIC).await?;
        let acls = replay(&partition)?;
        Ok((AclStore { partition, flusher }, acls))
    }

    /// Appends one record per binding: present, or a tombstone.
    pub fn write(&self, bindings: &[AclBinding], present: bool) -> Result<(), String> {
        if bindings.is_empty() {
            return Ok(());
        }
        let records: Vec<_> = bindings
            .iter()
            .map(|b| (encode_key(b), present.then(|| Bytes::from_static(&[1]))))
            .collect();
        append_state_records(&self.partition, "ACLs", &records).map(|_| ())
    }

    /// A future that resolves once everything written so far is on disk.
    pub fn durable(&self) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let flusher = self.flusher.clone();
        let partition = self.partition.clone();
        async move { flusher.commit(partition).await }
    }
}

fn encode_key(b: &AclBinding) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(KEY_VERSION);
    buf.put_i8(b.resource_type.code());
    put_str(&mut buf, &b.resource_name);
    buf.put_i8(b.pattern_type.code());
    put_str(&mut buf, &b.principal);
    put_str(&mut buf, &b.host);
    buf.put_i8(b.operation.code());
    buf.put_i8(b.permission.code());
    buf.freeze()
}

fn decode_key(mut buf: Bytes) -> Option<AclBinding> {
    if buf.remaining() < 3 || buf.get_i16() != KEY_VERSION {
        return None;
    }
    let resource_type = buf.get_i8();
    let resource_name = get_str(&mut buf)?;
    (buf.remaining() >= 1).then_some(())?;
    let pattern_type = buf.get_i8();
    let principal = get_str(&mut buf)?;
    let host = get_str(&mut buf)?;
    (buf.remaining() >= 2).then_some(())?;
    let (operation, permission) = (buf.get_i8(), buf.get_i8());
    AclBinding::from_wire(
        resource_type,
        &resource_name,
        pattern_type,
        &principal,
        &host,
        operation,
        permission,
    )
    .ok()
}

fn replay(partition: &Partition) -> Result<BTreeSet<AclBinding>, TopicError> {
    let mut acls = BTreeSet::new();
    replay_state(partition, |key, value| {
        let Some(binding) = decode_key(key) else {
            tracing::warn!("skipping an unreadable ACL record");
            return;
        };
        if value.is_some() {
            acls.insert(binding);
        } else {
            acls.remove(&binding);
        }
    })?;
    Ok(acls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorizer::acl::{Operation, PatternType, Permission, ResourceType};

    #[test]
    fn keys_round_trip() {
        let b = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders-".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:CN=a,O=b".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Deny,
        };
        assert_eq!(decode_key(encode_key(&b)), Some(b));
        assert_eq!(decode_key(Bytes::from_static(&[0, 0, 2])), None);
    }
}
