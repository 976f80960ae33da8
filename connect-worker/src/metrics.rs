//! The worker's Prometheus metrics on its REST port (`GET /metrics`), named as jmx_exporter's
//! Kafka Connect rules name Kafka Connect's JMX metrics, so dashboards built for Kafka Connect
//! read them: records read and written per sink task, polled and written per source task, batch
//! (put) and offset-commit latency, record errors and dead-letter records; and, read from the
//! herder at scrape time, each connector's and task's status and the worker's counts.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::Value as Json;

/// The content type of [`ConnectMetrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    connector: String,
    task: String,
}

fn task(connector: &str, task: usize) -> TaskLabels {
    TaskLabels {
        connector: connector.to_string(),
        task: task.to_string(),
    }
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

type Counters = Family<TaskLabels, Counter>;
type Histograms = Family<TaskLabels, Histogram, fn() -> Histogram>;

/// Event counters and histograms of every task of this worker.
#[derive(Clone)]
pub struct ConnectMetrics {
    sink_read: Counters,
    sink_send: Counters,
    put_seconds: Histograms,
    source_poll: Counters,
    source_write: Counters,
    commit_seconds: Histograms,
    record_errors: Counters,
    dlq_produced: Counters,
}

impl Default for ConnectMetrics {
    fn default() -> Self {
        ConnectMetrics {
            sink_read: Family::default(),
            sink_send: Family::default(),
            put_seconds: Family::new_with_constructor(seconds_histogram),
            source_poll: Family::default(),
            source_write: Family::default(),
            commit_seconds: Family::new_with_constructor(seconds_histogram),
            record_errors: Family::default(),
            dlq_produced: Family::default(),
        }
    }
}

impl ConnectMetrics {
    /// A sink task read `n` records from Kafka.
    pub fn sink_read(&self, connector: &str, id: usize, n: u64) {
        self.sink_read.get_or_create(&task(connector, id)).inc_by(n);
    }

    /// A sink task's `put` of `n` records succeeded after `took`.
    pub fn sink_written(&self, connector: &str, id: usize, n: u64, took: Duration) {
        let t = task(connector, id);
        self.sink_send.get_or_create(&t).inc_by(n);
        self.put_seconds
            .get_or_create(&t)
            .observe(took.as_secs_f64());
    }

    /// A source task's `poll` returned `n` records.
    pub fn source_polled(&self, connector: &str, id: usize, n: u64) {
        self.source_poll
            .get_or_create(&task(connector, id))
            .inc_by(n);
    }

    /// A source task's `n` records were acknowledged by Kafka.
    pub fn source_written(&self, connector: &str, id: usize, n: u64) {
        self.source_write
            .get_or_create(&task(connector, id))
            .inc_by(n);
    }

    /// Offsets of a task were committed (the sink's to the group, the source's to the offsets
    /// topic) in `took`.
    pub fn offset_committed(&self, connector: &str, id: usize, took: Duration) {
        self.commit_seconds
            .get_or_create(&task(connector, id))
            .observe(took.as_secs_f64());
    }

    /// A record failed (conversion or `put`) and went through the error policy.
    pub fn record_error(&self, connector: &str, id: usize) {
        self.record_errors.get_or_create(&task(connector, id)).inc();
    }

    /// A failed record was written to the dead letter queue.
    pub fn dlq_produced(&self, connector: &str, id: usize) {
        self.dlq_produced.get_or_create(&task(connector, id)).inc();
    }

    /// The exposition text; `status` is the herder's `GET /connectors?expand=status` answer.
    pub fn render(&self, status: &Json) -> String {
        let mut registry = Registry::default();
        for (name, help, family) in [
            (
                "kafka_connect_sink_task_metrics_sink_record_read",
                "Records read from Kafka by a sink task",
                &self.sink_read,
            ),
            (
                "kafka_connect_sink_task_metrics_sink_record_send",
                "Records written by a sink task (put succeeded)",
                &self.sink_send,
            ),
            (
                "kafka_connect_source_task_metrics_source_record_poll",
                "Records returned by a source task's poll",
                &self.source_poll,
            ),
            (
                "kafka_connect_source_task_metrics_source_record_write",
                "Records of a source task acknowledged by Kafka",
                &self.source_write,
            ),
            (
                "kafka_connect_task_error_metrics_total_record_errors",
                "Records that failed in conversion or put",
                &self.record_errors,
            ),
            (
                "kafka_connect_task_error_metrics_deadletterqueue_produce_requests",
                "Failed records written to the dead letter queue",
                &self.dlq_produced,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "kafka_connect_sink_task_metrics_put_batch_time_seconds",
            "Time of one put of a batch by a sink task",
            self.put_seconds.clone(),
        );
        registry.register(
            "kafka_connect_connector_task_metrics_offset_commit_time_seconds",
            "Time of one offset commit of a task",
            self.commit_seconds.clone(),
        );
        registry.register_collector(Box::new(StatusCollector::from(status)));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// Connector and task states, read from the herder at scrape time.
#[derive(Debug, Default)]
struct StatusCollector {
    /// (connector, type, state)
    connectors: Vec<(String, String, String)>,
    /// (connector, task, state)
    tasks: Vec<(String, String, String)>,
}

impl From<&Json> for StatusCollector {
    fn from(expanded: &Json) -> Self {
        let mut c = StatusCollector::default();
        for (name, e) in expanded.as_object().into_iter().flatten() {
            let s = &e["status"];
            let kind = s["type"].as_str().unwrap_or("unknown").to_string();
            let state = s["connector"]["state"].as_str().unwrap_or("UNASSIGNED");
            c.connectors
                .push((name.clone(), kind, state.to_ascii_lowercase()));
            for t in s["tasks"].as_array().into_iter().flatten() {
                c.tasks.push((
                    name.clone(),
                    t["id"].as_i64().unwrap_or(-1).to_string(),
                    t["state"]
                        .as_str()
                        .unwrap_or("UNASSIGNED")
                        .to_ascii_lowercase(),
                ));
            }
        }
        c
    }
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "kafka_connect_connector_status",
            "1 for a connector's current status",
            None,
            MetricType::Gauge,
        )?;
        for (connector, kind, status) in &self.connectors {
            let labels = [
                ("connector", connector.as_str()),
                ("type", kind.as_str()),
                ("status", status.as_str()),
            ];
            ConstGauge::new(1).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "kafka_connect_connector_task_status",
            "1 for a task's current status",
            None,
            MetricType::Gauge,
        )?;
        for (connector, task, status) in &self.tasks {
            let labels = [
                ("connector", connector.as_str()),
                ("task", task.as_str()),
                ("status", status.as_str()),
            ];
            ConstGauge::new(1).encode(family.encode_family(&labels)?)?;
        }
        for (name, help, value) in [
            (
                "kafka_connect_worker_metrics_connector_count",
                "Connectors on this worker",
                self.connectors.len(),
            ),
            (
                "kafka_connect_worker_metrics_task_count",
                "Tasks on this worker",
                self.tasks.len(),
            ),
        ] {
            let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}
