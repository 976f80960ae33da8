//! The offsets topic (`connect-offsets`) holds source offsets in Kafka Connect's format:
//! key `["<connector>", {<source partition>}]`, value `{<source offset>}`. The whole topic is
//! read at start-up into memory (read_committed); later writes go to both. An exactly-once
//! source task writes its offsets itself, inside its transaction, and tells the store once
//! committed ([`OffsetStore::remember`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rdkafka::producer::FutureProducer;
use serde_json::{json, Value as Json};

use super::{kafka, StorageError};
use crate::connectors::OffsetReader;

pub struct OffsetStore {
    topic: String,
    producer: FutureProducer,
    /// connector → (partition JSON text → offset)
    offsets: Mutex<BTreeMap<String, BTreeMap<String, Json>>>,
}

impl OffsetStore {
    pub async fn load(
        bootstrap: &kafka::KafkaConnection,
        topic: &str,
        producer: FutureProducer,
    ) -> Result<Self, StorageError> {
        let offsets = Self::read(bootstrap, topic).await?;
        Ok(OffsetStore {
            topic: topic.to_string(),
            producer,
            offsets: Mutex::new(offsets),
        })
    }

    /// Every connector's committed offsets in `topic` (read_committed: offsets an exactly-once
    /// source wrote in a transaction count only once it committed).
    async fn read(
        bootstrap: &kafka::KafkaConnection,
        topic: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, Json>>, StorageError> {
        let (b, t) = (bootstrap.clone(), topic.to_string());
        let records = tokio::task::spawn_blocking(move || kafka::read_to_end(&b, &t)).await??;
        let mut offsets: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
        for (key, value) in records {
            let Ok(Json::Array(k)) = serde_json::from_slice::<Json>(&key) else {
                continue;
            };
            let [Json::String(connector), partition] = k.as_slice() else {
                continue;
            };
            let partition = partition.to_string();
            match value.and_then(|v| serde_json::from_slice::<Json>(&v).ok()) {
                Some(v) if !v.is_null() => {
                    offsets
                        .entry(connector.clone())
                        .or_default()
                        .insert(partition, v);
                }
                _ => {
                    if let Some(m) = offsets.get_mut(connector) {
                        m.remove(&partition);
                    }
                }
            }
        }
        Ok(offsets)
    }

    /// Replaces what is remembered of `connector` with what the topic holds: an exactly-once
    /// source task does this once its producer has settled the last transaction of the task's
    /// previous incarnation, whose commit this worker may never have seen.
    pub async fn reload(
        &self,
        bootstrap: &kafka::KafkaConnection,
        connector: &str,
    ) -> Result<(), StorageError> {
        let mut read = Self::read(bootstrap, &self.topic).await?;
        let mine = read.remove(connector).unwrap_or_default();
        self.offsets.lock().insert(connector.to_string(), mine);
        Ok(())
    }

    /// The offsets topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The (key, value) of the offsets-topic record of `offset` for `connector`'s `partition`.
    pub fn record(
        connector: &str,
        partition: &Json,
        offset: &Json,
    ) -> Result<(Vec<u8>, Vec<u8>), StorageError> {
        Ok((
            serde_json::to_vec(&json!([connector, partition]))?,
            serde_json::to_vec(offset)?,
        ))
    }

    /// Remembers offsets written (and committed) by someone else: an exactly-once source task,
    /// inside its transaction.
    pub fn remember(&self, connector: &str, offsets: &[(Json, Json)]) {
        let mut all = self.offsets.lock();
        let m = all.entry(connector.to_string()).or_default();
        for (partition, offset) in offsets {
            m.insert(partition.to_string(), offset.clone());
        }
    }

    /// Durably records offsets (one record per source partition), then remembers them.
    pub async fn commit(
        &self,
        connector: &str,
        offsets: &[(Json, Json)],
    ) -> Result<(), StorageError> {
        for (partition, offset) in offsets {
            let (key, value) = Self::record(connector, partition, offset)?;
            kafka::send(&self.producer, &self.topic, Some(&key), Some(&value), None).await?;
        }
        self.remember(connector, offsets);
        Ok(())
    }

    pub fn get(&self, connector: &str, partition: &Json) -> Option<Json> {
        self.offsets
            .lock()
            .get(connector)?
            .get(&partition.to_string())
            .cloned()
    }

    /// `GET /connectors/{name}/offsets` for a source connector.
    pub fn list(&self, connector: &str) -> Vec<Json> {
        self.offsets
            .lock()
            .get(connector)
            .map(|m| {
                m.iter()
                    .map(|(p, o)| json!({"partition": serde_json::from_str::<Json>(p).unwrap_or(Json::Null), "offset": o}))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn reader(self: &Arc<Self>, connector: &str) -> Arc<dyn OffsetReader> {
        Arc::new(ConnectorOffsets {
            store: self.clone(),
            connector: connector.to_string(),
        })
    }
}

struct ConnectorOffsets {
    store: Arc<OffsetStore>,
    connector: String,
}

impl OffsetReader for ConnectorOffsets {
    fn offset(&self, partition: &Json) -> Option<Json> {
        self.store.get(&self.connector, partition)
    }
}
