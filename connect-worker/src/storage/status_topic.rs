//! The status topic (`connect-status`): `status-connector-<name>` and `status-task-<name>-<id>`
//! → `{"state":..., "trace":..., "worker_id":..., "generation":N}`, for monitoring tools that
//! read it; this worker's REST answers come from memory.

use rdkafka::producer::FutureProducer;
use serde_json::json;

use super::kafka;

pub struct StatusStore {
    topic: String,
    producer: FutureProducer,
}

impl StatusStore {
    pub fn new(topic: &str, producer: FutureProducer) -> Self {
        StatusStore {
            topic: topic.to_string(),
            producer,
        }
    }

    /// Writes a status; failures are logged, not returned: statuses are advisory.
    pub async fn put(
        &self,
        key: &str,
        state: &str,
        trace: Option<&str>,
        worker_id: &str,
        generation: u64,
    ) {
        let value = json!({"state": state, "trace": trace, "worker_id": worker_id, "generation": generation});
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        if let Err(e) = kafka::send(
            &self.producer,
            &self.topic,
            Some(key.as_bytes()),
            Some(&bytes),
            None,
        )
        .await
        {
            tracing::warn!(error = %e, key, "could not write status");
        }
    }

    pub async fn delete(&self, key: &str) {
        if let Err(e) = kafka::send(
            &self.producer,
            &self.topic,
            Some(key.as_bytes()),
            None,
            None,
        )
        .await
        {
            tracing::warn!(error = %e, key, "could not delete status");
        }
    }
}
