//! The order-service's own metrics, beside the HTTP and pool metrics every service has
//! ([`service_common::metrics`]): orders published and how long it took until their Kafka
//! transaction committed, and consistency-token waits and how they ended. The outcome label
//! keeps its name `acknowledged` (dashboards query it); it now means committed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use service_common::metrics::{latency_histogram, Metrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone)]
pub struct OrderMetrics {
    published: Family<Outcome, Counter>,
    publish_seconds: Histogram,
    consistency_waits: Family<Outcome, Histogram, fn() -> Histogram>,
}

impl OrderMetrics {
    /// Creates the metrics and registers them in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        let m = OrderMetrics {
            published: Family::default(),
            publish_seconds: latency_histogram(),
            consistency_waits: Family::new_with_constructor(latency_histogram),
        };
        metrics.register(
            "orders_published",
            "Orders published, by outcome (acknowledged: committed in a Kafka transaction; or failed)",
            m.published.clone(),
        );
        metrics.register(
            "order_publish_seconds",
            "Time until an order's Kafka transaction committed",
            m.publish_seconds.clone(),
        );
        metrics.register(
            "consistency_wait_seconds",
            "Time GETs with a consistency token waited, by outcome (applied, timeout, rejected, error)",
            m.consistency_waits.clone(),
        );
        m
    }

    /// An order was published (`ok`) or not, after `seconds`.
    pub fn published(&self, ok: bool, seconds: f64) {
        let outcome = if ok { "acknowledged" } else { "failed" };
        self.published
            .get_or_create(&Outcome {
                outcome: outcome.into(),
            })
            .inc();
        if ok {
            self.publish_seconds.observe(seconds);
        }
    }

    /// A consistency-token wait ended with `outcome` after `seconds`.
    pub fn consistency_wait(&self, outcome: &str, seconds: f64) {
        self.consistency_waits
            .get_or_create(&Outcome {
                outcome: outcome.into(),
            })
            .observe(seconds);
    }
}
