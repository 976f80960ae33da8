//! Database access: the pool (bounded waits, so an unreachable MariaDB means a quick 503), the
//! migrations shared with the user-service, and the queries.

use chrono::{NaiveDateTime, TimeZone, Utc};
use sqlx::MySqlPool;

use crate::domain::Order;

pub use schema::{migrate, pool, MigrationError, MIGRATOR};
pub use service_common::db::with_timeout;

/// The table the orders are read from, which the sink must write for a token to count.
pub const ORDERS_TABLE: &str = "orders";

/// Whose progress in `datasync_sink_offsets` counts for consistency tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSelector {
    /// Any sink connector that writes the topic into this table (unqualified, or qualified with
    /// the current database).
    Table(String),
    /// Only the connector of this name.
    Connector(String),
}

/// The next offset a selected sink will apply for a partition of `topic` (the highest when
/// several write the table), if one applied any.
pub async fn sink_next_offset(
    pool: &MySqlPool,
    sink: &SinkSelector,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    let next: (Option<i64>,) = match sink {
        SinkSelector::Table(table) => sqlx::query_as(
            "SELECT MAX(next_offset) FROM datasync_sink_offsets \
             WHERE topic = ? AND kafka_partition = ? \
             AND (target_table = ? OR target_table = CONCAT(DATABASE(), '.', ?))",
        )
        .bind(topic)
        .bind(partition)
        .bind(table)
        .bind(table),
        SinkSelector::Connector(connector) => sqlx::query_as(
            "SELECT MAX(next_offset) FROM datasync_sink_offsets \
             WHERE topic = ? AND kafka_partition = ? AND connector = ?",
        )
        .bind(topic)
        .bind(partition)
        .bind(connector),
    }
    .fetch_one(pool)
    .await?;
    Ok(next.0)
}

/// A connector's recorded progress on a topic: its name and the table it writes into (`None`
/// when recorded by a worker older than the `target_table` column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOfTopic {
    pub connector: String,
    pub table: Option<String>,
}

/// Every connector that has recorded progress on `topic`, by name.
pub async fn sinks_of_topic(
    pool: &MySqlPool,
    topic: &str,
) -> Result<Vec<SinkOfTopic>, sqlx::Error> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT connector, target_table FROM datasync_sink_offsets \
         WHERE topic = ? ORDER BY connector",
    )
    .bind(topic)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(connector, table)| SinkOfTopic { connector, table })
        .collect())
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
