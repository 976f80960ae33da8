//! Database access: the pool (bounded waits, so an unreachable MariaDB means a quick 503), the
//! migrations shared with the user-service, and the queries.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeZone, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::MySqlPool;

use crate::domain::Order;
use crate::error::ApiError;

/// The schema in the workspace's `migrations/`, shared by both services (see [`migrate`]).
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
pub async fn migrate(pool: &MySqlPool, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        match migrate_locked(pool, within).await {
            Ok(()) => return Ok(()),
            Err(Failure::Unreachable(e)) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(Failure::Unreachable(e) | Failure::Fatal(e)) => {
                return Err(anyhow::anyhow!("migrations failed: {e}"))
            }
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

/// Runs `f` with a deadline: a hung database becomes a 503, never a hung request.
pub async fn with_timeout<T>(
    within: Duration,
    f: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(within, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ApiError::Unavailable(
            "the database did not answer in time".into(),
        )),
    }
}

/// The sink's next offset for a partition of `topic` (over every connector), if any.
pub async fn sink_next_offset(
    pool: &MySqlPool,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    let (next,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(next_offset) FROM datasync_sink_offsets WHERE topic = ? AND kafka_partition = ?",
    )
    .bind(topic)
    .bind(partition)
    .fetch_one(pool)
    .await?;
    Ok(next)
}

type OrderRow = (String, String, String, i32, i32, i64, NaiveDateTime);

/// A user's orders, oldest first.
pub async fn orders_of(pool: &MySqlPool, user_id: &str) -> Result<Vec<Order>, sqlx::Error> {
    let rows: Vec<OrderRow> = sqlx::query_as(
        "SELECT order_id, user_id, product_id, qty, unit_price, total_price, created_at \
         FROM orders WHERE user_id = ? ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(order_id, user_id, product_id, qty, unit_price, total_price, created_at)| Order {
                order_id,
                user_id,
                product_id,
                qty,
                unit_price,
                total_price,
                created_at: Utc.from_utc_datetime(&created_at),
            },
        )
        .collect())
}
