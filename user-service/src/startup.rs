//! Wiring: database (migrations), registry reader and heartbeat, router; `run` serves on a
//! listener it is given until `shutdown` resolves, then deregisters.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use discovery::{Heartbeat, Registration, Registry};
use sqlx::MySqlPool;

use crate::config::Config;
use crate::orders_client::OrdersClient;
use crate::{db, routes};

/// The name this service registers under.
pub const SERVICE_NAME: &str = "user-service";

#[derive(Clone)]
pub struct AppState {
    pub pool: MySqlPool,
    pub orders: Arc<OrdersClient>,
    pub jwt_secret: Arc<[u8]>,
    pub jwt_lifetime_secs: u64,
    pub greeting: Arc<str>,
    pub db_timeout: Duration,
    pub port: u16,
}

pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.jwt_secret.is_empty(),
        "--jwt-secret must not be empty"
    );
    let addr = listener.local_addr()?;
    let db_timeout = Duration::from_millis(config.db_timeout_ms);
    let pool = db::pool(&config.database_url, config.db_max_connections, db_timeout)
        .context("invalid --database-url")?;
    db::migrate(&pool, Duration::from_secs(config.startup_timeout_secs)).await?;

    let registry = Registry::start(&config.bootstrap_servers, &config.registry_topic)
        .context("creating the registry reader")?;
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
        orders: Arc::new(OrdersClient::new(
            registry,
            Duration::from_millis(config.order_service_timeout_ms),
        )),
        jwt_secret: config.jwt_secret.as_bytes().into(),
        jwt_lifetime_secs: config.jwt_expiration_secs,
        greeting: config.greeting_message.as_str().into(),
        db_timeout,
        port: addr.port(),
    };
    let app = routes::router(state);
    tracing::info!(instance = %instance_id, registered_as = %url, "listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            heartbeat.deregister(Duration::from_secs(2)).await;
        })
        .await?;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}
