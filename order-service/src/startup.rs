//! Wiring: database (migrations), producer, registry heartbeat, router; `run` serves on a listener
//! it is given (port 0 in tests) until `shutdown` resolves, then deregisters and drains. The steps
//! both services take are [`service_common::startup`]'s; the producer and the state are this
//! service's own.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use service_common::startup::{register, serve, start, Registered, Started};
use sqlx::MySqlPool;

use service_common::metrics::Metrics;

use crate::config::Config;
use crate::consistency::Consistency;
use crate::metrics::OrderMetrics;
use crate::publisher::{self, OrderPublisher, PublisherError};
use crate::routes;
use crate::transactions::Settings;

/// The name this service registers under.
pub const SERVICE_NAME: &str = "order-service";

/// Why [`run`] could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The steps both services take: the listener, the database, the registry, serving.
    #[error(transparent)]
    Common(#[from] service_common::StartupError),
    #[error("starting the order publisher")]
    Publisher(#[source] PublisherError),
}

#[derive(Clone)]
pub struct AppState {
    pub pool: MySqlPool,
    pub publisher: Arc<OrderPublisher>,
    pub consistency: Arc<Consistency>,
    pub orders_topic: String,
    pub db_timeout: Duration,
    pub port: u16,
    pub metrics: Metrics,
    pub order_metrics: OrderMetrics,
}

impl axum::extract::FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Metrics {
        state.metrics.clone()
    }
}

/// Runs the service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let Started {
        addr,
        pool,
        db_timeout,
        kafka,
    } = start(&config.common, &listener).await?;

    let publish_timeout = Duration::from_millis(config.publish_timeout_ms);
    let transactional_id = config
        .transactional_id
        .clone()
        .unwrap_or_else(|| format!("{SERVICE_NAME}-{}", uuid::Uuid::new_v4()));
    let publisher = Arc::new(
        OrderPublisher::new(Settings {
            kafka: kafka.clone(),
            topic: config.orders_topic.clone(),
            transactional_id,
            timeout: publish_timeout,
            linger_ms: config.producer_linger_ms,
            transaction_timeout: Duration::from_millis(config.transaction_timeout_ms),
            max_batch: config.orders_per_transaction.max(1),
        })
        .map_err(StartupError::Publisher)?,
    );
    {
        // Best effort: a broker with auto-create (or an operator) may provide it as well.
        let (kafka, topic, n) = (
            kafka.clone(),
            config.orders_topic.clone(),
            config.orders_partitions,
        );
        tokio::spawn(async move {
            if let Err(e) = publisher::ensure_topic(&kafka, &topic, n).await {
                tracing::warn!(error = %e, %topic, "could not create the orders topic");
            }
        });
    }

    let Registered {
        instance_id,
        url,
        heartbeat,
    } = register(&config.common, &kafka, SERVICE_NAME, addr)?;

    let metrics = Metrics::new(Some(pool.clone()));
    let order_metrics = OrderMetrics::new(&metrics);
    let state = AppState {
        metrics,
        order_metrics,
        pool: pool.clone(),
        publisher: publisher.clone(),
        consistency: Arc::new(Consistency::new(
            &config.orders_topic,
            config.consistency_connector.as_deref(),
            Duration::from_millis(config.consistency_timeout_ms),
            db_timeout,
        )),
        orders_topic: config.orders_topic.clone(),
        db_timeout,
        port: addr.port(),
    };
    let app = routes::router(state);
    tracing::info!(instance = %instance_id, registered_as = %url, "listening on http://{addr}");
    serve(listener, app, heartbeat, shutdown).await?;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}
