//! Prometheus metrics of a service: every HTTP request in a histogram by method, route template
//! (`/order-service/{user_id}/orders`, never the raw path, so one series per route) and status
//! — the shape Spring Boot's `http_server_requests_seconds` has, which the tutorial's users know —
//! and the database pool's connections, read at scrape time. A service registers its own
//! metrics (orders published, consistency waits) in the same [`Registry`].
//!
//! `GET /metrics` renders it in the OpenMetrics text format with `prometheus-client`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sqlx::MySqlPool;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets for HTTP requests and the work behind them: 0.5 ms .. ~16 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    uri: String,
    status: String,
}

/// A service's metrics registry and its HTTP request histogram.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// A registry with the HTTP request histogram and, when given, the pool's gauges.
    pub fn new(pool: Option<MySqlPool>) -> Self {
        let mut registry = Registry::default();
        let requests: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_server_requests_seconds",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        if let Some(pool) = pool {
            registry.register_collector(Box::new(PoolCollector(pool)));
        }
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            requests,
        }
    }

    /// Registers a metric of the service's own.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry.lock().register(name, help, metric);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock()) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }

    fn observe(&self, method: &str, uri: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                uri: uri.to_string(),
                status: status.to_string(),
            })
            .observe(seconds);
    }
}

/// Middleware timing every request (use with `axum::middleware::from_fn_with_state`). Paths
/// that match no route are counted under `uri="UNKNOWN"`, as Spring does, so scanning
/// clients cannot create a series per path.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let uri = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "UNKNOWN".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    metrics.observe(
        &method,
        &uri,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub async fn handler(State(metrics): State<Metrics>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// The pool's connections at scrape time (HikariCP's names, as Spring users know them).
#[derive(Debug)]
struct PoolCollector(MySqlPool);

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let size = i64::from(self.0.size());
        let idle = i64::try_from(self.0.num_idle()).unwrap_or(i64::MAX);
        let max = i64::from(self.0.options().get_max_connections());
        for (name, help, value) in [
            ("hikaricp_connections", "Open database connections", size),
            (
                "hikaricp_connections_idle",
                "Idle database connections",
                idle,
            ),
            (
                "hikaricp_connections_active",
                "Database connections in use",
                (size - idle).max(0),
            ),
            (
                "hikaricp_connections_max",
                "Largest number of database connections",
                max,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
