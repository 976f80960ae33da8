//! The start-up and shutdown steps both services take around their own wiring: [`start`] (the
//! bound address and the migrated database), [`register`] (the registry heartbeat under the
//! advertised URL) and [`serve`] (HTTP until shutdown, leaving the registry before draining).
//! A service's `run` calls them in that order and adds what is its own in between.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use discovery::{Heartbeat, KafkaConnection, Registration};
use sqlx::MySqlPool;
use tokio::net::TcpListener;

use crate::config::CommonConfig;

/// Why a service could not start, or stopped serving, for a reason both services share.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The listener's address could not be read, or serving failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("invalid --database-url")]
    DatabaseUrl(#[source] sqlx::Error),
    #[error(transparent)]
    Migrations(#[from] schema::MigrationError),
    #[error("creating the registry heartbeat")]
    Heartbeat(#[source] discovery::Error),
    /// The Kafka security settings are invalid, or the broker refused them.
    #[error(transparent)]
    Kafka(#[from] kafka_client_config::SecurityConfigError),
}

/// What [`start`] sets up.
pub struct Started {
    /// The address the listener is bound to.
    pub addr: SocketAddr,
    /// A lazy pool whose migrations are applied.
    pub pool: MySqlPool,
    /// Upper bound of one database round trip (`--db-timeout-ms`).
    pub db_timeout: Duration,
    /// The bootstrap servers and security settings every Kafka client of the service uses.
    pub kafka: KafkaConnection,
}

/// Reads the listener's address, checks the Kafka security settings, creates the pool and
/// applies the migrations (retrying for up to `--startup-timeout-secs` while the database is
/// unreachable).
///
/// With security settings, one login to the broker first: librdkafka retries a refused login
/// forever in the background, so a wrong password would otherwise look like a hang. An
/// unreachable broker is only a warning (the clients retry in the background, as without
/// security); a refused login or TLS handshake stops start-up.
pub async fn start(config: &CommonConfig, listener: &TcpListener) -> Result<Started, StartupError> {
    let addr = listener.local_addr()?;
    let kafka = config.kafka_connection()?;
    if !kafka.properties.is_empty() {
        match kafka.check(Duration::from_secs(10)).await {
            Ok(()) => {}
            Err(e @ kafka_client_config::SecurityConfigError::Unreachable { .. }) => {
                tracing::warn!(error = %e, "Kafka not reachable yet; its clients keep retrying");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let db_timeout = Duration::from_millis(config.db_timeout_ms);
    let pool = schema::pool(&config.database_url, config.db_max_connections, db_timeout)
        .map_err(StartupError::DatabaseUrl)?;
    schema::migrate(&pool, Duration::from_secs(config.startup_timeout_secs)).await?;
    Ok(Started {
        addr,
        pool,
        db_timeout,
        kafka,
    })
}

/// This instance in the registry.
pub struct Registered {
    /// Its registry key: `--instance-id`, or a random UUID.
    pub instance_id: String,
    /// The URL other services reach it at.
    pub url: String,
    /// Sends the heartbeats until [`serve`] deregisters it.
    pub heartbeat: Heartbeat,
}

/// Starts the heartbeat that registers this instance as `service`, reachable at
/// `--advertised-host` (default: the bound address, or 127.0.0.1 when bound to 0.0.0.0) and the
/// bound port.
pub fn register(
    config: &CommonConfig,
    kafka: &KafkaConnection,
    service: &str,
    addr: SocketAddr,
) -> Result<Registered, StartupError> {
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
        kafka,
        &config.registry_topic,
        &instance_id,
        Registration {
            service: service.into(),
            url: url.clone(),
            heartbeat_ms: config.heartbeat_ms,
        },
    )
    .map_err(StartupError::Heartbeat)?;
    Ok(Registered {
        instance_id,
        url,
        heartbeat,
    })
}

/// Serves `app` on `listener` until `shutdown` resolves, then deregisters and lets the requests
/// in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    heartbeat: Heartbeat,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Leave the registry first, so that nobody picks this instance while it drains.
            heartbeat.deregister(Duration::from_secs(2)).await;
        })
        .await?;
    Ok(())
}
