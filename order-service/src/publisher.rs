//! Publishing orders to Kafka as Kafka Connect JSON (schema + payload), the format the JDBC sink
//! connector (`orders-sink`) reads with Connect's default JsonConverter (`schemas.enable=true`)
//! for both key and value; the key is the order id.
//!
//! Orders are committed in Kafka transactions by the publisher thread ([`crate::transactions`]):
//! a 201 means the order's transaction committed (the read_committed sink will apply it), any
//! error answer means the order is not and never will be in the topic. `message.timeout.ms` is
//! the POST's deadline for an order the thread has not taken yet; one it has taken is answered
//! once its transaction's outcome is known.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_client_config::KafkaConnection;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::domain::Order;
use crate::error::ApiError;
use crate::transactions::{self, CurrentProducer, Outcome, Request, Settings};

/// The Connect schema of an order record (constant, so serialised once).
pub const ORDER_SCHEMA: &str = r#"{"type":"struct","name":"orders","optional":false,"fields":[{"type":"string","optional":false,"field":"order_id"},{"type":"string","optional":false,"field":"user_id"},{"type":"string","optional":false,"field":"product_id"},{"type":"int32","optional":false,"field":"qty"},{"type":"int32","optional":false,"field":"unit_price"},{"type":"int64","optional":false,"field":"total_price"},{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"created_at"}]}"#;

#[derive(Serialize)]
struct Payload<'a> {
    order_id: &'a str,
    user_id: &'a str,
    product_id: &'a str,
    qty: i32,
    unit_price: i32,
    total_price: i64,
    /// Connect Timestamp: milliseconds since the epoch, UTC.
    created_at: i64,
}

/// The record value of `order`: `{"schema":…,"payload":…}`.
pub fn connect_json(order: &Order) -> Vec<u8> {
    let payload = Payload {
        order_id: &order.order_id,
        user_id: &order.user_id,
        product_id: &order.product_id,
        qty: order.qty,
        unit_price: order.unit_price,
        total_price: order.total_price,
        created_at: order.created_at.timestamp_millis(),
    };
    let mut out = Vec::with_capacity(ORDER_SCHEMA.len() + 256);
    out.extend_from_slice(br#"{"schema":"#);
    out.extend_from_slice(ORDER_SCHEMA.as_bytes());
    out.extend_from_slice(br#","payload":"#);
    // Serialising plain strings and integers cannot fail.
    serde_json::to_writer(&mut out, &payload).unwrap_or_default();
    out.push(b'}');
    out
}

/// The record key of `order`: its id as a Connect JSON string
/// (`{"schema":{"type":"string","optional":false},"payload":"<order_id>"}`). A bare id would make
/// the sink fail: Kafka Connect's default key converter is JsonConverter with schemas, and the
/// `orders-sink` config does not override it.
pub fn connect_key(order_id: &str) -> Vec<u8> {
    let mut out = br#"{"schema":{"type":"string","optional":false},"payload":"#.to_vec();
    serde_json::to_writer(&mut out, order_id).unwrap_or_default();
    out.push(b'}');
    out
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// Orders waiting for the publisher thread at most; more are refused with a 503.
const QUEUE: usize = 65_536;

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    #[error("creating the Kafka metadata client")]
    Client(#[from] KafkaError),
    #[error("starting the publisher thread")]
    Thread(#[from] std::io::Error),
}

pub struct OrderPublisher {
    requests: mpsc::Sender<Request>,
    /// Metadata and end offsets (read_committed: the end is the last stable offset).
    metadata: Arc<BaseConsumer>,
    ready: Arc<AtomicBool>,
    current: CurrentProducer,
    topic: String,
    timeout: Duration,
}

impl OrderPublisher {
    /// Starts the publisher thread (its transactional producer initialises in the background).
    pub fn new(settings: Settings) -> Result<Self, PublisherError> {
        let metadata: BaseConsumer = settings
            .kafka
            .client_config()
            .set("isolation.level", "read_committed")
            .set("socket.keepalive.enable", "true")
            .create()?;
        let (requests, receiver) = mpsc::channel(QUEUE);
        let ready = Arc::new(AtomicBool::new(false));
        let current = CurrentProducer::default();
        let (topic, timeout) = (settings.topic.clone(), settings.timeout);
        transactions::spawn(settings, receiver, ready.clone(), current.clone())?;
        Ok(OrderPublisher {
            requests,
            current,
            metadata: Arc::new(metadata),
            ready,
            topic,
            timeout,
        })
    }

    /// Publishes `order` keyed by its id: `Ok` once its transaction committed (with where the
    /// record is, when known); an error only when it never will be.
    pub async fn publish(&self, order: &Order) -> Result<Option<Position>, ApiError> {
        let (request, mut waiting) = Request::new(
            connect_key(&order.order_id),
            connect_json(order),
            order.created_at.timestamp_millis(),
        );
        if self.requests.try_send(request).is_err() {
            return Err(ApiError::Unavailable(
                "too many orders waiting for the broker".into(),
            ));
        }
        let outcome = match tokio::time::timeout(self.timeout, &mut waiting.reply).await {
            Ok(answer) => answer,
            Err(_) if waiting.cancel() => {
                tracing::warn!(order_id = %order.order_id, "order not taken into a transaction in time");
                return Err(ApiError::Unavailable(
                    "the broker did not take the order in time".into(),
                ));
            }
            // Taken into a transaction: only its outcome can be answered.
            Err(_) => waiting.reply.await,
        };
        match outcome {
            Ok(Outcome::Committed(position)) => Ok(position),
            Ok(Outcome::NotCommitted(why)) => {
                tracing::warn!(order_id = %order.order_id, reason = %why, "order not committed");
                Err(ApiError::Unavailable(format!(
                    "the order was not committed: {why}"
                )))
            }
            Err(_) => {
                // The thread ended without answering: it only does so when shutting down, before
                // committing anything of a batch it has not answered.
                tracing::error!(order_id = %order.order_id, "publisher thread gone");
                Err(ApiError::Unavailable("the publisher stopped".into()))
            }
        }
    }

    /// Whether the transactional producer is ready (initialised, no abort pending) and the
    /// broker answers a metadata request for the orders topic through it within `within`.
    pub async fn broker_ready(&self, within: Duration) -> Result<(), String> {
        let producer = self.current.lock().ok().and_then(|p| p.clone());
        let Some(producer) = producer.filter(|_| self.ready.load(Ordering::Acquire)) else {
            return Err("the transactional producer is not ready".into());
        };
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), within)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The end offset (high watermark) of `partition` of the orders topic: `Ok(None)` when the
    /// topic has no such partition, `Err` when the broker did not answer within `within`.
    pub async fn end_offset(
        &self,
        partition: i32,
        within: Duration,
    ) -> Result<Option<i64>, String> {
        let metadata = self.metadata.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let client = metadata.client();
            let metadata = client
                .fetch_metadata(Some(&topic), within)
                .map_err(|e| e.to_string())?;
            let exists = metadata.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().iter().any(|p| p.id() == partition)
            });
            if !exists {
                return Ok(None);
            }
            client
                .fetch_watermarks(&topic, partition, within)
                .map(|(_, high)| Some(high))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Creates the orders topic unless it exists (with `partitions` partitions).
pub async fn ensure_topic(
    kafka: &KafkaConnection,
    topic: &str,
    partitions: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    // Replication -1: the cluster's default.replication.factor (KIP-464), so that acks=all
    // means every in-sync replica on a real cluster, not a single copy.
    let new = NewTopic::new(topic, partitions.max(1), TopicReplication::Fixed(-1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    for r in admin.create_topics([&new], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn record_value_is_connect_json_with_snake_case_payload() {
        let order = Order {
            order_id: "o-1".into(),
            user_id: "u-1".into(),
            product_id: "CATALOG-001".into(),
            qty: 2,
            unit_price: 1500,
            total_price: 3000,
            created_at: chrono::Utc.timestamp_millis_opt(1_700_000_000_123).unwrap(),
        };
        let v: serde_json::Value = serde_json::from_slice(&connect_json(&order)).unwrap();
        assert_eq!(v["schema"]["type"], "struct");
        assert_eq!(v["schema"]["name"], "orders");
        let fields: Vec<&str> = v["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "order_id",
                "user_id",
                "product_id",
                "qty",
                "unit_price",
                "total_price",
                "created_at"
            ]
        );
        assert_eq!(
            v["schema"]["fields"][6]["name"],
            "org.apache.kafka.connect.data.Timestamp"
        );
        let k: serde_json::Value = serde_json::from_slice(&connect_key("o-1")).unwrap();
        assert_eq!(
            k,
            serde_json::json!({"schema":{"type":"string","optional":false},"payload":"o-1"})
        );
        assert_eq!(
            v["payload"],
            serde_json::json!({"order_id":"o-1","user_id":"u-1","product_id":"CATALOG-001",
                "qty":2,"unit_price":1500,"total_price":3000,"created_at":1_700_000_000_123_i64})
        );
    }
}
