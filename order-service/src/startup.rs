//! Wiring: database (migrations), producer, registry heartbeat, router; `run` serves on a listener
//! it is given (port 0 in tests) until `shutdown` resolves, then deregisters and drains.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use discovery::{Heartbeat, Registration};
use sqlx::MySqlPool;

use crate::config::Config;
use crate::consistency::Consistency;
use crate::publisher::{self, OrderPublisher};
use crate::{db, routes};

/// The name this service registers under.
pub const SERVICE_NAME: &str = "order-service";

#[derive(Clone)]
pub struct AppState {
    pub pool: MySqlPool,
    pub publisher: Arc<OrderPublisher>,
    pub consistency: Arc<Consistency>,
    pub orders_topic: String,
    pub db_timeout: Duration,
    pub port: u16,
}

/// Runs the service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let db_timeout = Duration::from_millis(config.db_timeout_ms);
    let pool = db::pool(&config.database_url, config.db_max_connections, db_timeout)
        .context("invalid --database-url")?;
    db::migrate(&pool, Duration::from_secs(config.startup_timeout_secs)).await?;

    let publish_timeout = Duration::from_millis(config.publish_timeout_ms);
    let publisher = Arc::new(
        OrderPublisher::new(
            &config.bootstrap_servers,
            &config.orders_topic,
            publish_timeout,
            config.producer_linger_ms,
        )
        .context("creating the Kafka producer")?,
    );
    {
        // Best effort: a broker with auto-create (or an operator) may provide it as well.
        let (bootstrap, topic, n) = (
            config.bootstrap_servers.clone(),
            config.orders_topic.clone(),
            config.orders_partitions,
        );
        tokio::spawn(async move {
            if let Err(e) = publisher::ensure_topic(&bootstrap, &topic, n).await {
                tracing::warn!(error = %e, %topic, "could not create the orders topic");
            }
        });
    }

    let advertised = config.advertised_host.clone().unwrap_or_else(|| {
        if addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST).to_string()
        } else {
            addr.ip().to_string()
        }
    });
    let url = format!("http://{advertised}:{}", addr.port());
    let instance_id = config
        .instance_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let heartbeat = Heartbeat::start(
        &config.bootstrap_servers,
        &config.registry_topic,
        &instance_id,
        Registration {
            service: SERVICE_NAME.into(),
            url: url.clone(),
            heartbeat_ms: config.heartbeat_ms,
        },
    )
    .context("creating the registry heartbeat")?;

    let state = AppState {
        pool: pool.clone(),
        publisher: publisher.clone(),
        consistency: Arc::new(Consistency::new(
            &config.orders_topic,
            Duration::from_millis(config.consistency_timeout_ms),
            db_timeout,
        )),
        orders_topic: config.orders_topic.clone(),
        db_timeout,
        port: addr.port(),
    };
    let app = routes::router(state);
    tracing::info!(instance = %instance_id, registered_as = %url, "listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Leave the registry first, so that nobody picks this instance while it drains.
            heartbeat.deregister(Duration::from_secs(2)).await;
        })
        .await?;
    publisher.flush(Duration::from_secs(2));
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}
