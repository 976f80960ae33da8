//! The shared MariaDB schema: the migrations in the workspace's `migrations/`, the connection
//! pool both services use, and applying the migrations safely when several instances of the
//! order-service and the user-service start at once. One crate, so the services cannot drift
//! apart on how the schema they share is set up.

use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::MySqlPool;

/// Why the migrations could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("migrations failed: {0}")]
pub struct MigrationError(String);

/// The schema in the workspace's `migrations/` (see [`migrate`]).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A lazy pool: the service starts even while the database is down.
pub fn pool(url: &str, max_connections: u32, timeout: Duration) -> Result<MySqlPool, sqlx::Error> {
    let options: MySqlConnectOptions = url.parse()?;
    Ok(MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeout)
        .connect_lazy_with(options))
}

/// Applies the migrations, retrying while the database is unreachable (e.g. still starting).
///
/// Safe when several instances start at once: the run holds a server-wide advisory lock named
/// after the database. sqlx's migrator does take `GET_LOCK(<id>, -1)` itself, but MariaDB (10.11,
/// 11.x) answers a negative timeout with NULL at once instead of waiting, so on MariaDB that lock
/// does nothing (two instances then both insert the same version: "Duplicate entry ... for key
/// PRIMARY"). Ours uses a finite timeout, which both MariaDB and MySQL honour.
pub async fn migrate(pool: &MySqlPool, within: Duration) -> Result<(), MigrationError> {
    let deadline = Instant::now() + within;
    loop {
        match migrate_locked(pool, within).await {
            Ok(()) => return Ok(()),
            Err(Failure::Unreachable(e)) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(Failure::Unreachable(e) | Failure::Fatal(e)) => return Err(MigrationError(e)),
        }
    }
}

enum Failure {
    Unreachable(String),
    Fatal(String),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(_) => Failure::Fatal(e.to_string()),
            other => Failure::Unreachable(other.to_string()),
        }
    }
}

async fn migrate_locked(pool: &MySqlPool, within: Duration) -> Result<(), Failure> {
    const LOCK: &str = "CONCAT('datasync-migrations:', DATABASE())";
    let mut conn = pool.acquire().await?;
    let (got,): (Option<i64>,) = sqlx::query_as(&format!("SELECT GET_LOCK({LOCK}, ?)"))
        .bind(within.as_secs().max(1))
        .fetch_one(&mut *conn)
        .await?;
    if got != Some(1) {
        return Err(Failure::Fatal(
            "timed out waiting for another instance's migrations".into(),
        ));
    }
    // `run_direct` rather than `run(&mut *conn)`, which trips sqlx's "Acquire is not general
    // enough" in spawned futures.
    let result = MIGRATOR.run_direct(&mut *conn).await;
    let _ = sqlx::query(&format!("SELECT RELEASE_LOCK({LOCK})"))
        .execute(&mut *conn)
        .await;
    match result {
        Ok(()) => Ok(()),
        Err(sqlx::migrate::MigrateError::Execute(e)) => Err(e.into()),
        Err(e) => Err(Failure::Fatal(e.to_string())),
    }
}
