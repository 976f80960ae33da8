//! The status topic (`connect-status`): `status-connector-<name>` and `status-task-<name>-<id>`
//! → `{"state":..., "trace":..., "worker_id":..., "generation":N}`.
//!
//! Each worker writes the statuses of what it runs, in the order it reports them (one writer,
//! so a task's FAILED is never overtaken by its earlier RUNNING), and follows the topic
//! ([`StatusStore::tail`]) to answer for work other workers run: the REST API of any worker
//! names the worker running each task, as Kafka Connect's `KafkaStatusBackingStore` does.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot};

use super::{kafka, StorageError};

/// A status as the topic holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStatus {
    pub state: String,
    pub trace: Option<String>,
    pub worker_id: String,
}

enum Op {
    Put { key: String, value: Option<Vec<u8>> },
    Flush(oneshot::Sender<()>),
}

pub struct StatusStore {
    ops: mpsc::UnboundedSender<Op>,
    topic: String,
    /// The newest status per key read from the topic.
    seen: Arc<Mutex<HashMap<String, StoredStatus>>>,
}

impl StatusStore {
    /// Starts the store's writer (on the current runtime).
    pub fn new(topic: &str, producer: FutureProducer) -> Self {
        let (ops, mut rx) = mpsc::unbounded_channel::<Op>();
        let t = topic.to_string();
        tokio::spawn(async move {
            while let Some(op) = rx.recv().await {
                match op {
                    Op::Put { key, value } => {
                        if let Err(e) =
                            kafka::send(&producer, &t, Some(key.as_bytes()), value.as_deref(), None)
                                .await
                        {
                            tracing::warn!(error = %e, key, "could not write status");
                        }
                    }
                    Op::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        StatusStore {
            ops,
            topic: topic.to_string(),
            seen: Arc::default(),
        }
    }

    /// Queues a status; failures are logged, not returned: statuses are advisory.
    pub fn put(
        &self,
        key: &str,
        state: &str,
        trace: Option<&str>,
        worker_id: &str,
        generation: u64,
    ) {
        let value = json!({"state": state, "trace": trace, "worker_id": worker_id, "generation": generation});
        let _ = self.ops.send(Op::Put {
            key: key.to_string(),
            value: Some(serde_json::to_vec(&value).unwrap_or_default()),
        });
    }

    pub fn delete(&self, key: &str) {
        let _ = self.ops.send(Op::Put {
            key: key.to_string(),
            value: None,
        });
    }

    /// Waits until every status queued before is written (or failed to be).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.ops.send(Op::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The newest status of `key` read from the topic.
    pub fn seen(&self, key: &str) -> Option<StoredStatus> {
        self.seen.lock().get(key).cloned()
    }

    /// Follows the topic on a thread of its own until `stop` is cancelled.
    pub async fn tail(
        &self,
        bootstrap: &kafka::KafkaConnection,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<(), StorageError> {
        let (b, t) = (bootstrap.clone(), self.topic.clone());
        let (consumer, _) =
            tokio::task::spawn_blocking(move || kafka::tail_consumer(&b, &t)).await??;
        let seen = self.seen.clone();
        std::thread::Builder::new()
            .name("status-tail".into())
            .spawn(move || tail_loop(consumer, seen, stop))
            .map_err(|e| StorageError::Thread(e.to_string()))?;
        Ok(())
    }
}

fn tail_loop(
    consumer: BaseConsumer,
    seen: Arc<Mutex<HashMap<String, StoredStatus>>>,
    stop: tokio_util::sync::CancellationToken,
) {
    while !stop.is_cancelled() {
        let Some(polled) = consumer.poll(std::time::Duration::from_millis(100)) else {
            continue;
        };
        let m = match polled {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "reading the status topic");
                continue;
            }
        };
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        let value = m
            .payload()
            .and_then(|v| serde_json::from_slice::<Json>(v).ok());
        let mut seen = seen.lock();
        match value {
            Some(v) => {
                let status = StoredStatus {
                    state: v["state"].as_str().unwrap_or("UNASSIGNED").to_string(),
                    trace: v["trace"].as_str().map(str::to_string),
                    worker_id: v["worker_id"].as_str().unwrap_or_default().to_string(),
                };
                seen.insert(key, status);
            }
            None => {
                seen.remove(&key);
            }
        }
    }
}
