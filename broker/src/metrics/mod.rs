//! The broker's Prometheus metrics, named as Kafka users' dashboards already query them:
//! jmx_exporter's standard Kafka rules (`kafka_server_brokertopicmetrics_*`,
//! `kafka_network_requestmetrics_*`, `kafka_log_log_*`, ...) and kafka_exporter's
//! (`kafka_topic_partition_*`, `kafka_consumergroup_lag`, `kafka_consumergroup_lag_sum`), so a
//! Grafana dashboard built for Kafka works here and no extra exporter is needed.
//!
//! Counters and histograms ([`Metrics`]) are updated where things happen (dispatch, produce,
//! fetch); everything that is a state rather than an event (log sizes, end offsets, committed
//! offsets and lag, groups by state, open connections) is read from the broker at scrape time
//! by [`collector::StateCollector`], so it is never stale and costs nothing between scrapes.
//! The text is written by `prometheus-client` (OpenMetrics), never by hand.

mod collector;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::broker::Broker;
use crate::server::Limits;

pub use collector::StateCollector;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    request: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    request: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    request: String,
    error: String,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~13 s, doubling: produce with fsync and long-poll fetches both fit.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 18,
    ))
}

/// Event counters and latency histograms of one broker.
#[derive(Clone)]
pub struct Metrics {
    messages_in: Family<TopicLabel, Counter>,
    bytes_in: Family<TopicLabel, Counter>,
    bytes_out: Family<TopicLabel, Counter>,
    failed_produce: Family<TopicLabel, Counter>,
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    request_seconds: Family<RequestLabel, Histogram, fn() -> Histogram>,
    flush_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            messages_in: Family::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            failed_produce: Family::default(),
            requests: Family::default(),
            errors: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            flush_seconds: latency_histogram(),
        }
    }
}

impl Metrics {
    /// Records appended to `topic` by a produce request (retries of stored batches excluded).
    pub fn produced(&self, topic: &str, messages: u64, bytes: u64) {
        let t = TopicLabel {
            topic: topic.to_string(),
        };
        self.messages_in.get_or_create(&t).inc_by(messages);
        self.bytes_in.get_or_create(&t).inc_by(bytes);
    }

    /// A produce to `topic` refused (invalid records, unknown partition, ...).
    pub fn produce_failed(&self, topic: &str) {
        self.failed_produce
            .get_or_create(&TopicLabel {
                topic: topic.to_string(),
            })
            .inc();
    }

    /// Record bytes of `topic` sent to a consumer by a fetch.
    pub fn fetched(&self, topic: &str, bytes: u64) {
        if bytes > 0 {
            self.bytes_out
                .get_or_create(&TopicLabel {
                    topic: topic.to_string(),
                })
                .inc_by(bytes);
        }
    }

    /// One request of `request` (Kafka's API name) at `version` was received.
    pub fn request(&self, request: &str, version: i16) {
        self.requests
            .get_or_create(&RequestLabels {
                request: request.to_string(),
                version: version.to_string(),
            })
            .inc();
    }

    /// A request ended in `error` (a Kafka error name, or why its connection was closed).
    pub fn error(&self, request: &str, error: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                request: request.to_string(),
                error: error.to_string(),
            })
            .inc();
    }

    /// The time from receiving a request to its response being ready.
    pub fn answered(&self, request: &str, took: Duration) {
        self.request_seconds
            .get_or_create(&RequestLabel {
                request: request.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The histogram of fsync durations, for the flusher thread.
    pub fn fsync_histogram(&self) -> Histogram {
        self.flush_seconds.clone()
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "kafka_server_brokertopicmetrics_messagesin",
            "Records appended per topic",
            self.messages_in.clone(),
        );
        registry.register(
            "kafka_server_brokertopicmetrics_bytesin",
            "Record bytes appended per topic (as sent, before recompression)",
            self.bytes_in.clone(),
        );
        registry.register(
            "kafka_server_brokertopicmetrics_bytesout",
            "Record bytes sent to consumers per topic",
            self.bytes_out.clone(),
        );
        registry.register(
            "kafka_server_brokertopicmetrics_failedproducerequests",
            "Partition produce requests refused per topic",
            self.failed_produce.clone(),
        );
        registry.register(
            "kafka_network_requestmetrics_requests",
            "Requests received per API and version",
            self.requests.clone(),
        );
        registry.register(
            "kafka_network_requestmetrics_errors",
            "Requests that ended in an error, per API and error",
            self.errors.clone(),
        );
        registry.register(
            "kafka_network_requestmetrics_totaltime_seconds",
            "Time from receiving a request to its response being ready, per API",
            self.request_seconds.clone(),
        );
        registry.register(
            "kafka_log_logflushstats_logflush_seconds",
            "Time of one fsync of a partition log",
            self.flush_seconds.clone(),
        );
    }
}

/// The broker's metrics in the OpenMetrics text format, state read now.
pub fn render(broker: &Arc<Broker>, limits: &Arc<Limits>) -> String {
    let mut registry = Registry::default();
    broker.metrics.register(&mut registry);
    registry.register_collector(Box::new(StateCollector::new(
        broker.clone(),
        limits.clone(),
    )));
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &registry) {
        // Only a fmt::Error of writing into a String: not expected, but never a panic.
        tracing::error!(error = %e, "could not encode the metrics");
    }
    out
}
