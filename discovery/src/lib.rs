//! Service discovery through the broker, so that nothing but Kafka is needed to find instances.
//!
//! Every instance publishes a heartbeat on a compacted registry topic (default
//! [`DEFAULT_TOPIC`]): key = instance id, value = JSON [`Registration`] `{service, url,
//! heartbeat_ms}`, record timestamp = when it was sent. On graceful shutdown it publishes a
//! tombstone (null value) for its key. Compaction keeps one record per instance, so the topic
//! stays small however long instances run; and the topic also deletes by time
//! (`cleanup.policy=compact,delete`, `retention.ms` one hour), so the last heartbeat of a killed
//! instance, which never gets a tombstone, goes away too instead of being kept forever.
//!
//! Readers ([`Registry`]) consume the topic from the beginning without a consumer group (every
//! reader sees every record) and keep the last heartbeat per key. An instance is live while its
//! last heartbeat is younger than [`DEAD_AFTER_HEARTBEATS`] of its own heartbeat intervals, so a
//! killed instance (no tombstone) disappears after about three intervals, and readers forget
//! dead entries, so their memory does not grow with every instance that ever ran.
//!
//! Only the Kafka protocol is used (rdkafka), so this works against Apache Kafka as well as
//! datasync's broker; every client is made from one [`KafkaConnection`] (bootstrap servers and
//! the security settings of `kafka-client-config`). Nothing here blocks start-up: the heartbeat and reader tasks retry in the
//! background while the broker is unreachable.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub use kafka_client_config::KafkaConnection;

/// Default name of the registry topic.
pub const DEFAULT_TOPIC: &str = "datasync-registry";

/// An instance is dead when its last heartbeat is older than this many of its intervals.
pub const DEAD_AFTER_HEARTBEATS: u64 = 3;

/// Errors of the registry clients.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("registry record: {0}")]
    Json(#[from] serde_json::Error),
}

/// The value of a registry record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Service name, e.g. `order-service`.
    pub service: String,
    /// Base URL of the instance, e.g. `http://10.0.0.5:41234`.
    pub url: String,
    /// How often the instance sends a heartbeat.
    pub heartbeat_ms: u64,
}

/// A live instance as seen by a [`Registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub url: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Creates the compacted registry topic unless it exists.
pub async fn ensure_topic(kafka: &KafkaConnection, topic: &str) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    // Replication -1: the cluster's default.replication.factor (KIP-464), so on a real cluster
    // the registry is replicated like any other topic; datasync's broker has one copy.
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact,delete")
        .set("retention.ms", "3600000")
        // Small segments and a low dirty ratio so old heartbeats get compacted away.
        .set("segment.bytes", "1048576")
        .set("min.cleanable.dirty.ratio", "0.1")
        .set("delete.retention.ms", "60000");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    let results = admin.create_topics([&new], &opts).await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code).into()),
        }
    }
    Ok(())
}

/// Aborts a background task when dropped, so that a task never outlives its owner.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// This instance's registration: a heartbeat task until [`Heartbeat::deregister`].
///
/// Dropping it without `deregister` stops the heartbeats without a tombstone, as a crash
/// would: readers then drop the instance after [`DEAD_AFTER_HEARTBEATS`] intervals.
pub struct Heartbeat {
    producer: FutureProducer,
    topic: String,
    instance_id: String,
    task: AbortOnDrop,
}

impl Heartbeat {
    /// Starts sending heartbeats for `registration` under key `instance_id`.
    pub fn start(
        kafka: &KafkaConnection,
        topic: &str,
        instance_id: &str,
        registration: Registration,
    ) -> Result<Heartbeat, Error> {
        let producer: FutureProducer = kafka
            .client_config()
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                registration.heartbeat_ms.max(1000).to_string(),
            )
            .set("linger.ms", "0")
            .create()?;
        let value = serde_json::to_vec(&registration)?;
        let interval = Duration::from_millis(registration.heartbeat_ms.max(10));
        let task = {
            let producer = producer.clone();
            let topic = topic.to_string();
            let kafka = kafka.clone();
            let key = instance_id.to_string();
            tokio::spawn(async move {
                let mut topic_ready = false;
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticker.tick().await;
                    if !topic_ready {
                        match ensure_topic(&kafka, &topic).await {
                            Ok(()) => topic_ready = true,
                            Err(e) => {
                                tracing::warn!(error = %e, %topic, "registry topic not ready");
                                continue;
                            }
                        }
                    }
                    let record = FutureRecord::to(&topic)
                        .key(&key)
                        .payload(&value)
                        .timestamp(now_ms());
                    if let Err((e, _)) = producer.send(record, interval).await {
                        tracing::warn!(error = %e, "registry heartbeat not acknowledged");
                    }
                }
            })
        };
        Ok(Heartbeat {
            producer,
            topic: topic.to_string(),
            instance_id: instance_id.to_string(),
            task: AbortOnDrop(Some(task)),
        })
    }

    /// Stops the heartbeats and publishes a tombstone, waiting at most `within` for the ack.
    pub async fn deregister(mut self, within: Duration) {
        if let Some(t) = self.task.0.take() {
            t.abort();
            let _ = t.await;
        }
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic)
            .key(self.instance_id.as_str())
            .timestamp(now_ms());
        let sent = tokio::time::timeout(within, self.producer.send(record, within)).await;
        match sent {
            Ok(Ok(_)) => tracing::info!(instance = %self.instance_id, "deregistered"),
            Ok(Err((e, _))) => tracing::warn!(error = %e, "registry tombstone not acknowledged"),
            Err(_) => tracing::warn!("registry tombstone timed out"),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    registration: Registration,
    timestamp_ms: i64,
}

impl Entry {
    /// Whether the last heartbeat is younger than [`DEAD_AFTER_HEARTBEATS`] intervals at `now`.
    /// Both numbers come from records anyone may write to the topic, so the arithmetic saturates
    /// instead of overflowing (a panic in debug builds, a wrong answer in release ones).
    fn is_live(&self, now_ms: i64) -> bool {
        let window = DEAD_AFTER_HEARTBEATS.saturating_mul(self.registration.heartbeat_ms);
        let window = i64::try_from(window).unwrap_or(i64::MAX);
        now_ms.saturating_sub(self.timestamp_ms) <= window
    }
}

type Table = Arc<RwLock<HashMap<String, Entry>>>;

/// Forgets the entries that are no longer live at `now_ms` (a later heartbeat brings one back).
fn forget_dead(table: &mut HashMap<String, Entry>, now_ms: i64) {
    table.retain(|_, e| e.is_live(now_ms));
}

/// A live view of the registry, kept up to date by a background consumer.
#[derive(Clone)]
pub struct Registry {
    table: Table,
    _task: Arc<AbortOnDrop>,
}

impl Registry {
    /// Starts reading `topic` from the beginning.
    pub fn start(kafka: &KafkaConnection, topic: &str) -> Result<Registry, Error> {
        // librdkafka wants a group id even for assign(); it never joins or commits with it.
        let group = format!("{topic}-reader-{}-{}", std::process::id(), now_ms());
        let consumer: StreamConsumer = kafka
            .client_config()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100")
            .create()?;
        let table: Table = Arc::default();
        let task = {
            let table = table.clone();
            let topic = topic.to_string();
            let kafka = kafka.clone();
            tokio::spawn(async move { consume(consumer, kafka, topic, table).await })
        };
        Ok(Registry {
            table,
            _task: Arc::new(AbortOnDrop(Some(task))),
        })
    }

    /// The live instances of `service`, ordered by instance id (a stable order for round-robin).
    pub fn live(&self, service: &str) -> Vec<Instance> {
        let now = now_ms();
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let mut live: Vec<Instance> = table
            .iter()
            .filter(|(_, e)| e.registration.service == service && e.is_live(now))
            .map(|(id, e)| Instance {
                id: id.clone(),
                url: e.registration.url.clone(),
            })
            .collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        live
    }
}

async fn consume(consumer: StreamConsumer, kafka: KafkaConnection, topic: String, table: Table) {
    // Assign every partition of the topic from the beginning, once the topic exists.
    loop {
        let assigned = async {
            ensure_topic(&kafka, &topic).await?;
            let md = consumer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(2))?;
            let mut tpl = TopicPartitionList::new();
            for t in md.topics() {
                for p in t.partitions() {
                    tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)?;
                }
            }
            if tpl.count() == 0 {
                return Err(Error::Kafka(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                )));
            }
            consumer.assign(&tpl)?;
            Ok::<_, Error>(())
        }
        .await;
        match assigned {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, %topic, "registry not readable yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let mut forgotten_at = std::time::Instant::now();
    loop {
        if forgotten_at.elapsed() >= Duration::from_secs(1) {
            forgotten_at = std::time::Instant::now();
            forget_dead(
                &mut table.write().unwrap_or_else(|e| e.into_inner()),
                now_ms(),
            );
        }
        match consumer.recv().await {
            Ok(m) => {
                let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    continue;
                };
                let mut table = table.write().unwrap_or_else(|e| e.into_inner());
                match m.payload() {
                    None => {
                        table.remove(key);
                    }
                    Some(v) => match serde_json::from_slice::<Registration>(v) {
                        Ok(registration) => {
                            let timestamp_ms = m.timestamp().to_millis().unwrap_or_else(now_ms);
                            table.insert(
                                key.to_string(),
                                Entry {
                                    registration,
                                    timestamp_ms,
                                },
                            );
                        }
                        Err(e) => tracing::warn!(error = %e, key, "ignoring registry record"),
                    },
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "registry read failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(heartbeat_ms: u64, timestamp_ms: i64) -> Entry {
        Entry {
            registration: Registration {
                service: "s".into(),
                url: "http://x".into(),
                heartbeat_ms,
            },
            timestamp_ms,
        }
    }

    #[test]
    fn liveness_follows_the_heartbeat_interval() {
        assert!(entry(1000, 10_000).is_live(13_000));
        assert!(!entry(1000, 10_000).is_live(13_001));
    }

    #[test]
    fn readers_forget_dead_instances() {
        let mut table = HashMap::from([
            ("live".to_string(), entry(1000, 10_000)),
            ("dead".to_string(), entry(1000, 5_000)),
        ]);
        forget_dead(&mut table, 12_000);
        assert_eq!(table.keys().collect::<Vec<_>>(), ["live"]);
    }

    #[test]
    fn hostile_registry_records_do_not_overflow() {
        // Values a producer can put on the topic: no panic, and a sensible answer.
        assert!(entry(u64::MAX, 0).is_live(now_ms()));
        assert!(entry(u64::MAX / 2, i64::MIN).is_live(i64::MAX));
        assert!(!entry(1000, i64::MIN).is_live(now_ms()));
        assert!(!entry(0, i64::MIN).is_live(i64::MAX));
    }
}
