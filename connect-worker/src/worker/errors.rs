//! `errors.tolerance`: with `none` a bad record fails the task (its status carries the trace and
//! `restart` resumes at that record); with `all` the record is skipped and, for sinks with
//! `errors.deadletterqueue.topic.name`, sent as it was read to the dead letter queue with the
//! error in `__connect.errors.*` headers. Either way no record silently vanishes.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureProducer;

use crate::connectors::config_def::ConfigExt;
use crate::connectors::Config;
use crate::storage::kafka;

/// A record as it came off the topic, for the dead letter queue.
pub struct RawRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

pub struct ErrorPolicy {
    connector: String,
    task: usize,
    tolerate: bool,
    log: bool,
    dlq: Option<String>,
    context_headers: bool,
    bootstrap: kafka::KafkaConnection,
    producer: Option<FutureProducer>,
    dlq_ready: bool,
    metrics: crate::metrics::ConnectMetrics,
}

impl ErrorPolicy {
    pub fn new(
        connector: &str,
        task: usize,
        config: &Config,
        bootstrap: &kafka::KafkaConnection,
        metrics: crate::metrics::ConnectMetrics,
    ) -> Self {
        ErrorPolicy {
            connector: connector.to_string(),
            task,
            tolerate: config
                .str_or("errors.tolerance", "none")
                .eq_ignore_ascii_case("all"),
            log: config.bool_or("errors.log.enable", false),
            dlq: Some(
                config
                    .str_or("errors.deadletterqueue.topic.name", "")
                    .to_string(),
            )
            .filter(|t| !t.is_empty()),
            context_headers: config.bool_or("errors.deadletterqueue.context.headers.enable", true),
            bootstrap: bootstrap.clone(),
            producer: None,
            dlq_ready: false,
            metrics,
        }
    }

    pub fn tolerates(&self) -> bool {
        self.tolerate
    }

    /// Handles one failed record: Ok to skip it, Err(trace) to fail the task.
    pub async fn handle(
        &mut self,
        stage: &str,
        record: &RawRecord<'_>,
        error: &str,
    ) -> Result<(), String> {
        self.metrics.record_error(&self.connector, self.task);
        let trace = format!(
            "Error in stage {stage} on {}-{} offset {}: {error}",
            record.topic, record.partition, record.offset
        );
        if !self.tolerate {
            return Err(format!("org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\n{trace}"));
        }
        if self.log {
            tracing::warn!(connector = %self.connector, task = self.task, "{trace}");
        }
        let Some(topic) = self.dlq.clone() else {
            return Ok(());
        };
        if self.producer.is_none() {
            self.producer = Some(kafka::producer(&self.bootstrap).map_err(|e| e.to_string())?);
        }
        if !self.dlq_ready {
            if let Err(e) = kafka::ensure_topic(&self.bootstrap, &topic, 1, false).await {
                tracing::warn!(error = %e, topic, "could not create the dead letter queue topic");
            }
            self.dlq_ready = true;
        }
        let mut headers = OwnedHeaders::new();
        if self.context_headers {
            let partition = record.partition.to_string();
            let offset = record.offset.to_string();
            let task = self.task.to_string();
            for (k, v) in [
                ("__connect.errors.topic", record.topic),
                ("__connect.errors.partition", &partition),
                ("__connect.errors.offset", &offset),
                ("__connect.errors.connector.name", &self.connector),
                ("__connect.errors.task.id", &task),
                ("__connect.errors.stage", stage),
                (
                    "__connect.errors.exception.class.name",
                    "org.apache.kafka.connect.errors.DataException",
                ),
                ("__connect.errors.exception.message", error),
            ] {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
        }
        let producer = self.producer.as_ref().ok_or("no producer")?;
        kafka::send(producer, &topic, record.key, record.value, Some(headers))
            .await
            .map_err(|e| format!("could not write to the dead letter queue {topic}: {e}"))?;
        self.metrics.dlq_produced(&self.connector, self.task);
        Ok(())
    }
}
