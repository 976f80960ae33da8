//! Wiring: database (migrations), registry reader and heartbeat, router; `run` serves on a
//! listener it is given until `shutdown` resolves, then deregisters. The steps both services take
//! are [`service_common::startup`]'s; the registry reader, the JWT settings and the state are this
//! service's own.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use discovery::Registry;
use service_common::startup::{register, serve, start, Registered, Started};
use sqlx::MySqlPool;

use crate::auth::Passwords;
use crate::config::Config;
use crate::orders_client::OrdersClient;
use crate::routes;

/// The name this service registers under.
pub const SERVICE_NAME: &str = "user-service";

/// Why [`run`] could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The steps both services take: the listener, the database, the registry, serving.
    #[error(transparent)]
    Common(#[from] service_common::StartupError),
    #[error("--jwt-secret must not be empty")]
    EmptyJwtSecret,
    #[error("creating the registry reader")]
    RegistryReader(#[source] discovery::Error),
}

#[derive(Clone)]
pub struct AppState {
    pub metrics: service_common::metrics::Metrics,
    pub pool: MySqlPool,
    pub orders: Arc<OrdersClient>,
    pub passwords: Passwords,
    pub jwt_secret: Arc<[u8]>,
    pub jwt_lifetime_secs: u64,
    pub greeting: Arc<str>,
    pub db_timeout: Duration,
    pub port: u16,
}

impl axum::extract::FromRef<AppState> for service_common::metrics::Metrics {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

/// Runs the service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    if config.jwt_secret.is_empty() {
        return Err(StartupError::EmptyJwtSecret);
    }
    let Started {
        addr,
        pool,
        db_timeout,
        kafka,
    } = start(&config.common, &listener).await?;

    let registry = Registry::start(&kafka, &config.common.registry_topic)
        .map_err(StartupError::RegistryReader)?;
    let Registered {
        instance_id,
        url,
        heartbeat,
    } = register(&config.common, &kafka, SERVICE_NAME, addr)?;

    let state = AppState {
        metrics: service_common::metrics::Metrics::new(Some(pool.clone())),
        pool: pool.clone(),
        orders: Arc::new(OrdersClient::new(
            registry,
            Duration::from_millis(config.order_service_timeout_ms),
        )),
        passwords: Passwords::new(
            config.password_workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
            }),
            Duration::from_millis(config.password_queue_timeout_ms),
        ),
        jwt_secret: config.jwt_secret.as_bytes().into(),
        jwt_lifetime_secs: config.jwt_expiration_secs,
        greeting: config.greeting_message.as_str().into(),
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
