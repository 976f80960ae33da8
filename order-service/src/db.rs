//! Database access: the pool (bounded waits, so an unreachable MariaDB means a quick 503), the
//! migrations shared with the user-service, and the queries.

use chrono::{NaiveDateTime, TimeZone, Utc};
use sqlx::MySqlPool;

use crate::domain::Order;

pub use schema::{migrate, pool, MigrationError, MIGRATOR};
pub use service_common::db::with_timeout;

/// The next offset `connector` will apply for a partition of `topic`, if it applied any.
pub async fn sink_next_offset(
    pool: &MySqlPool,
    connector: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    let next: Option<(i64,)> = sqlx::query_as(
        "SELECT next_offset FROM datasync_sink_offsets \
         WHERE connector = ? AND topic = ? AND kafka_partition = ?",
    )
    .bind(connector)
    .bind(topic)
    .bind(partition)
    .fetch_optional(pool)
    .await?;
    Ok(next.map(|(n,)| n))
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
