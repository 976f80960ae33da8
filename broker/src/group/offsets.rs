//! Committed offsets, kept in memory for lookups and made durable in the internal compacted
//! topic `__consumer_offsets`, in the record format Kafka itself uses there (offset commit key
//! v1, value v3; a null value deletes). A restarted broker replays the topic; compaction keeps it
//! at one record per group, topic and partition however long the system runs.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

use super::MetadataSink;
use crate::flush::Flusher;
use crate::topic::internal::{
    append_state_records, get_str, open_state_partition, put_str, replay_state,
};
use crate::topic::{Partition, TopicError, TopicRegistry};

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

type GroupOffsets = BTreeMap<(String, i32), Committed>;

/// Committed offsets of all groups.
pub struct OffsetStore {
    partition: Arc<Partition>,
    flusher: Flusher,
    committed: Mutex<HashMap<String, GroupOffsets>>,
}

impl OffsetStore {
    /// Creates the internal topic if needed and replays it.
    pub async fn open(topics: &TopicRegistry, flusher: Flusher) -> Result<Self, TopicError> {
        let partition = open_state_partition(topics, OFFSETS_TOPIC).await?;
        let committed = replay(&partition)?;
        tracing::info!(groups = committed.len(), "loaded committed offsets");
        Ok(OffsetStore {
            partition,
            flusher,
            committed: Mutex::new(committed),
        })
    }

    /// Records `offsets` for `group` now (appended to the log and visible to OffsetFetch when
    /// this returns) and gives the future that resolves once they are on disk.
    ///
    /// The effect happens before the future is returned, not when it is first polled, so that
    /// commits sent one after the other on a connection are applied in that order even though
    /// their answers are awaited concurrently (a consumer that commits 49 then 50 asynchronously
    /// must end on 50). The future only waits for durability: dropping it loses nothing.
    pub fn commit(
        &self,
        group: &str,
        offsets: Vec<((String, i32), Committed)>,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let applied = self.apply(group, offsets);
        self.durable(applied)
    }

    fn apply(&self, group: &str, offsets: Vec<((String, i32), Committed)>) -> Result<bool, String> {
        if offsets.is_empty() {
            return Ok(false);
        }
        let records: Vec<(Bytes, Option<Bytes>)> = offsets
            .iter()
            .map(|((topic, p), c)| (encode_key(group, topic, *p), Some(encode_value(c))))
            .collect();
        // The map stays locked across the append, so that the order of the log and of the map
        // agree even for concurrent commits of the same group from different connections.
        let mut all = self.committed.lock();
        self.append(records)?;
        let entry = all.entry(group.to_string()).or_default();
        for (key, value) in offsets {
            entry.insert(key, value);
        }
        Ok(true)
    }

    /// A future that waits until what `applied` appended is durable.
    fn durable(
        &self,
        applied: Result<bool, String>,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let flusher = self.flusher.clone();
        let partition = self.partition.clone();
        async move {
            if applied? {
                flusher.commit(partition).await
            } else {
                Ok(())
            }
        }
    }

    /// Deletes committed offsets (all of the group's when `which` is `None`) now, and gives the
    /// future that resolves once the deletion is durable (see [`OffsetStore::commit`]).
    pub fn delete(
        &self,
        group: &str,
        which: Option<Vec<(String, i32)>>,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let applied = self.apply_delete(group, which);
        self.durable(applied)
    }

    fn apply_delete(&self, group: &str, which: Option<Vec<(String, i32)>>) -> Result<bool, String> {
        let mut all = self.committed.lock();
        let keys: Vec<(String, i32)> = match (all.get(group), which) {
            (None, _) => return Ok(false),
            (Some(g), None) => g.keys().cloned().collect(),
            (Some(g), Some(which)) => which.into_iter().filter(|k| g.contains_key(k)).collect(),
        };
        if keys.is_empty() {
            return Ok(false);
        }
        let records = keys
            .iter()
            .map(|(topic, p)| (encode_key(group, topic, *p), None))
            .collect();
        self.append(records)?;
        if let Some(g) = all.get_mut(group) {
            for k in &keys {
                g.remove(k);
            }
            if g.is_empty() {
                all.remove(group);
            }
        }
        Ok(true)
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.committed
            .lock()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// Every committed offset of a group.
    pub fn all_of(&self, group: &str) -> Vec<((String, i32), Committed)> {
        self.committed
            .lock()
            .get(group)
            .map(|g| g.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Groups that have committed offsets.
    pub fn groups(&self) -> Vec<String> {
        self.committed.lock().keys().cloned().collect()
    }

    fn append(&self, records: Vec<(Bytes, Option<Bytes>)>) -> Result<(), String> {
        append_state_records(&self.partition, "offsets", &records).map(|_| ())
    }

    /// The group coordinator's writer of group-metadata records into this topic: appended at
    /// once (in the order the coordinator calls it), made durable by the next group commit.
    pub fn metadata_sink(&self) -> MetadataSink {
        let partition = self.partition.clone();
        let flusher = self.flusher.clone();
        Box::new(move |key, value| {
            if let Err(e) = append_state_records(&partition, "group metadata", &[(key, value)]) {
                tracing::warn!(error = %e, "could not store a group-metadata record");
                return;
            }
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (flusher, partition) = (flusher.clone(), partition.clone());
                runtime.spawn(async move {
                    if let Err(e) = flusher.commit(partition).await {
                        tracing::warn!(error = %e, "could not flush a group-metadata record");
                    }
                });
            }
        })
    }
}

const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;

fn encode_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(KEY_VERSION);
    put_str(&mut buf, group);
    put_str(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

fn decode_key(mut buf: Bytes) -> Option<(String, String, i32)> {
    if buf.remaining() < 2 || buf.get_i16() > KEY_VERSION {
        // Version 2 keys are group metadata, written for tools (see `metadata_record`) and not
        // read back.
        return None;
    }
    let group = get_str(&mut buf)?;
    let topic = get_str(&mut buf)?;
    (buf.remaining() >= 4).then(|| (group, topic, buf.get_i32()))
}

fn encode_value(c: &Committed) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(c.offset);
    buf.put_i32(c.leader_epoch);
    put_str(&mut buf, &c.metadata);
    buf.put_i64(c.commit_timestamp);
    buf.freeze()
}

fn decode_value(mut buf: Bytes) -> Option<Committed> {
    if buf.remaining() < 2 || buf.get_i16() != VALUE_VERSION || buf.remaining() < 12 {
        return None;
    }
    let offset = buf.get_i64();
    let leader_epoch = buf.get_i32();
    let metadata = get_str(&mut buf)?;
    (buf.remaining() >= 8).then(|| Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp: buf.get_i64(),
    })
}

fn replay(partition: &Partition) -> Result<HashMap<String, GroupOffsets>, TopicError> {
    let mut committed: HashMap<String, GroupOffsets> = HashMap::new();
    replay_state(partition, |key, value| {
        let Some((group, topic, p)) = decode_key(key) else {
            return;
        };
        match value.and_then(decode_value) {
            Some(value) => {
                committed
                    .entry(group)
                    .or_default()
                    .insert((topic, p), value);
            }
            None => {
                if let Some(g) = committed.get_mut(&group) {
                    g.remove(&(topic, p));
                    if g.is_empty() {
                        committed.remove(&group);
                    }
                }
            }
        }
    })?;
    Ok(committed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let key = encode_key("g", "orders", 3);
        assert_eq!(decode_key(key), Some(("g".into(), "orders".into(), 3)));
        let c = Committed {
            offset: 42,
            leader_epoch: -1,
            metadata: "meta".into(),
            commit_timestamp: 7,
        };
        assert_eq!(decode_value(encode_value(&c)), Some(c));
        assert_eq!(decode_value(Bytes::from_static(&[0, 3, 1])), None);
    }
}
