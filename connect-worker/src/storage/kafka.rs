//! Kafka plumbing shared by the stores: topic creation, reading a topic to its end, and a
//! producer whose writes are awaited (a REST call answers only once its change is durable).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;

use super::StorageError;
pub use kafka_client_config::KafkaConnection;

/// A record's (key, value) as read back.
pub type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// The worker's settings for every client it makes: the bootstrap servers, the security
/// settings (`--kafka-*`, see `kafka-client-config`) and quiet logging.
pub fn client_config(bootstrap: &KafkaConnection) -> ClientConfig {
    let mut c = bootstrap.client_config();
    c.set("log_level", "3");
    c
}

/// Creates each missing topic (compacted if asked) and waits until its metadata is visible.
pub async fn ensure_topic(
    bootstrap: &KafkaConnection,
    topic: &str,
    partitions: i32,
    compact: bool,
) -> Result<(), StorageError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create()?;
    // Replication -1: the cluster's default.replication.factor (KIP-464).
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    if compact {
        new = new.set("cleanup.policy", "compact");
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&new], &opts)
        .await
        .map_err(StorageError::CreateTopics)?;
    for r in results {
        if let Err((t, code)) = r {
            if code != RDKafkaErrorCode::TopicAlreadyExists {
                return Err(StorageError::CreateTopic { topic: t, code });
            }
        }
    }
    let bootstrap = bootstrap.clone();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        partitions_of(&bootstrap, &topic, Duration::from_secs(15)).map(|_| ())
    })
    .await?
}

/// The partitions of `topic`, waiting up to `within` for it to exist.
pub fn partitions_of(
    bootstrap: &KafkaConnection,
    topic: &str,
    within: Duration,
) -> Result<Vec<i32>, StorageError> {
    let consumer: BaseConsumer = client_config(bootstrap).create()?;
    let deadline = Instant::now() + within;
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if t.error().is_none() && !t.partitions().is_empty() {
                    return Ok(t.partitions().iter().map(|p| p.id()).collect());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(StorageError::TopicUnavailable {
                topic: topic.to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every committed record of `topic` from the beginning to the current end: (key, value).
///
/// read_committed, as Kafka Connect reads its offsets topic with exactly-once sources: the end
/// of a partition is reached once the consumer's position is at its high watermark (commit and
/// abort markers and aborted records are never returned, so the last record read can lie
/// before it), which waits for a transaction still open at the start to be decided.
pub fn read_to_end(
    bootstrap: &KafkaConnection,
    topic: &str,
) -> Result<Vec<KeyValue>, StorageError> {
    let parts = partitions_of(bootstrap, topic, Duration::from_secs(15))?;
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "connect-worker-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = std::collections::HashMap::new();
    for p in parts {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        if high > low {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)?;
            remaining.insert(p, high);
        }
    }
    let mut out = Vec::new();
    if remaining.is_empty() {
        return Ok(out);
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            return Err(StorageError::ReadTimeout {
                topic: topic.to_string(),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                if m.offset() + 1 >= *remaining.get(&m.partition()).unwrap_or(&0) {
                    remaining.remove(&m.partition());
                }
                out.push((
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().map(<[u8]>::to_vec),
                ));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                let end = *remaining.get(&p).unwrap_or(&0);
                let at = consumer
                    .position()?
                    .find_partition(topic, p)
                    .and_then(|e| e.offset().to_raw())
                    .unwrap_or(-1);
                if at >= end {
                    remaining.remove(&p);
                }
            }
            Some(Err(error)) => {
                return Err(StorageError::Read {
                    topic: topic.to_string(),
                    error,
                })
            }
            None => {}
        }
    }
    Ok(out)
}

pub fn producer(bootstrap: &KafkaConnection) -> Result<FutureProducer, StorageError> {
    producer_with(bootstrap, [])
}

/// [`producer`] with client settings overridden (a connector's allowed `producer.override.*`).
pub fn producer_with<'a>(
    bootstrap: &KafkaConnection,
    overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<FutureProducer, StorageError> {
    let mut config = client_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "30000");
    for (k, v) in overrides {
        config.set(k, v);
    }
    Ok(config.create()?)
}

/// A record to `topic` with an optional key and value (none: a null key or a tombstone).
pub fn record<'a>(
    topic: &'a str,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
) -> FutureRecord<'a, [u8], [u8]> {
    let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    if let Some(v) = value {
        rec = rec.payload(v);
    }
    rec
}

/// Sends one record and waits for the broker's acknowledgement.
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: Option<OwnedHeaders>,
) -> Result<(), StorageError> {
    send_at(producer, topic, key, value, headers)
        .await
        .map(|_| ())
}

/// [`send`], returning the record's offset.
pub async fn send_at(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: Option<OwnedHeaders>,
) -> Result<i64, StorageError> {
    let mut rec = record(topic, key, value);
    if let Some(h) = headers {
        rec = rec.headers(h);
    }
    let delivery = producer
        .send(rec, Duration::from_secs(30))
        .await
        .map_err(|(error, _)| StorageError::Produce {
            topic: topic.to_string(),
            error,
        })?;
    Ok(delivery.offset)
}

/// A consumer that follows `topic` from its beginning, partitions assigned (no group), and
/// the end offset of each partition now: what a tail must read before its view is current.
pub fn tail_consumer(
    bootstrap: &KafkaConnection,
    topic: &str,
) -> Result<(BaseConsumer, std::collections::HashMap<i32, i64>), StorageError> {
    let parts = partitions_of(bootstrap, topic, Duration::from_secs(15))?;
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "connect-worker-tail")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for p in parts {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)?;
        ends.insert(p, high);
    }
    consumer.assign(&tpl)?;
    Ok((consumer, ends))
}
