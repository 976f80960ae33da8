//! Database access: the pool (bounded waits, so an unreachable MariaDB means a quick 503), the
//! migrations shared with the user-service, and the queries.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeZone, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::MySqlPool;

use crate::domain::Order;
use crate::error::ApiError;

/// The schema in the workspace's `migrations/`, shared by both services. sqlx's MySQL migrator
/// takes an advisory lock (`SELECT GET_LOCK(<id derived from the database name>, -1)`) around the
/// whole run, so instances starting at once apply each migration exactly once; the others wait
/// and then find everything applied.
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
pub async fn migrate(pool: &MySqlPool, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(sqlx::migrate::MigrateError::Execute(e))
                if !matches!(e, sqlx::Error::Database(_)) && Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "database not reachable yet; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("migrations failed: {e}")),
        }
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
