//! The offsets topic (`connect-offsets`) holds source offsets in Kafka Connect's format:
//! key `["<connector>", {<source partition>}]`, value `{<source offset>}`. The whole topic is
//! read at start-up into memory; later writes go to both.

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
        bootstrap: &str,
        topic: &str,
        producer: FutureProducer,
    ) -> Result<Self, StorageError> {
        let (b, t) = (bootstrap.to_string(), topic.to_string());
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
        Ok(OffsetStore {
            topic: topic.to_string(),
            producer,
            offsets: Mutex::new(offsets),
        })
    }

    /// Reads the topic again to its end: offsets another worker committed (a task that ran
    /// there and runs here now resumes where it stopped).
    pub async fn reload(&self, bootstrap: &str) -> Result<(), StorageError> {
        let fresh = OffsetStore::load(bootstrap, &self.topic, self.producer.clone()).await?;
        let fresh = fresh.offsets.into_inner();
        let mut all = self.offsets.lock();
        for (connector, m) in fresh {
            all.entry(connector).or_default().extend(m);
        }
        Ok(())
    }

    /// Durably records offsets (one record per source partition), then remembers them.
    pub async fn commit(
        &self,
        connector: &str,
        offsets: &[(Json, Json)],
    ) -> Result<(), StorageError> {
        for (partition, offset) in offsets {
            let key = serde_json::to_vec(&json!([connector, partition]))?;
            let value = serde_json::to_vec(offset)?;
            kafka::send(&self.producer, &self.topic, Some(&key), Some(&value), None).await?;
        }
        let mut all = self.offsets.lock();
        let m = all.entry(connector.to_string()).or_default();
        for (partition, offset) in offsets {
            m.insert(partition.to_string(), offset.clone());
        }
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
