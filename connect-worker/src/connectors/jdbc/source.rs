//! `io.confluent.connect.jdbc.JdbcSourceConnector`: tables (or one query) to topics.
//!
//! Modes as Confluent's: `bulk` (whole table each poll), `incrementing` (rows whose strictly
//! increasing column is above the stored offset), `timestamp` (rows whose timestamp column is
//! newer than the stored one and older than now minus `timestamp.delay.interval.ms`),
//! `timestamp+incrementing` (both, exact under equal timestamps). Offsets go to
//! `connect-offsets` keyed by `{"protocol":"1","table":"db.table"}` (or `{"query":...}`).
//! Rows are structs named after the table with Confluent's type mapping.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value as Json};
use sqlx::mysql::{MySqlPool, MySqlRow};
use sqlx::Row;

use super::dialect::{quote, quote_table};
use super::url;
use crate::connectors::config_def::{ConfigExt, ConfigKey, ConfigType};
use crate::connectors::{
    Config, ConnectorError, ConnectorKind, ConnectorPlugin, OffsetReader, Result, SourceRecord,
    SourceTask, Task,
};
use crate::data::schema::{DATE, TIME, TIMESTAMP};
use crate::data::{Field, Schema, SchemaType, Value};

pub struct JdbcSourceConnector;

fn pool(config: &Config) -> Result<MySqlPool> {
    url::pool(config, Duration::from_secs(10))
}

#[async_trait]
impl ConnectorPlugin for JdbcSourceConnector {
    fn class(&self) -> &'static str {
        "io.confluent.connect.jdbc.JdbcSourceConnector"
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Source
    }
    fn config_keys(&self) -> Vec<ConfigKey> {
        use ConfigType::*;
        let mut keys = url::connection_keys("Database");
        keys.extend([
            ConfigKey::new(
                "table.whitelist",
                List,
                Some(""),
                "Database",
                "Tables to copy (all if empty).",
            ),
            ConfigKey::new(
                "table.blacklist",
                List,
                Some(""),
                "Database",
                "Tables not to copy.",
            ),
            ConfigKey::new("mode", String, None, "Mode", "How to detect new rows.").one_of(&[
                "bulk",
                "incrementing",
                "timestamp",
                "timestamp+incrementing",
            ]),
            ConfigKey::new(
                "incrementing.column.name",
                String,
                Some(""),
                "Mode",
                "Strictly increasing column.",
            ),
            ConfigKey::new(
                "timestamp.column.name",
                List,
                Some(""),
                "Mode",
                "Timestamp column.",
            ),
            ConfigKey::new(
                "validate.non.null",
                Boolean,
                Some("true"),
                "Mode",
                "Check that the mode's columns are NOT NULL.",
            ),
            ConfigKey::new(
                "query",
                String,
                Some(""),
                "Mode",
                "A query to run instead of copying tables.",
            ),
            ConfigKey::new(
                "topic.prefix",
                String,
                None,
                "Connector",
                "Prefix of topic names (the topic itself in query mode).",
            ),
            ConfigKey::new(
                "poll.interval.ms",
                Int,
                Some("5000"),
                "Connector",
                "How often to poll each table.",
            ),
            ConfigKey::new(
                "batch.max.rows",
                Int,
                Some("100"),
                "Connector",
                "Rows per batch, at most.",
            ),
            ConfigKey::new(
                "timestamp.delay.interval.ms",
                Long,
                Some("0"),
                "Connector",
                "How long to wait after a row's timestamp before copying it.",
            ),
        ]);
        keys
    }
    fn validate(&self, config: &Config) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> = url::validate(config).into_iter().collect();
        let mode = config.str_or("mode", "").to_ascii_lowercase();
        if mode.contains("incrementing") && config.str_or("incrementing.column.name", "").is_empty()
        {
            problems.push((
                "incrementing.column.name".into(),
                format!("Mode {mode} requires incrementing.column.name"),
            ));
        }
        if mode.starts_with("timestamp") && config.list("timestamp.column.name").is_empty() {
            problems.push((
                "timestamp.column.name".into(),
                format!("Mode {mode} requires timestamp.column.name"),
            ));
        }
        if !config.list("table.whitelist").is_empty() && !config.list("table.blacklist").is_empty()
        {
            problems.push((
                "table.blacklist".into(),
                "table.whitelist and table.blacklist are mutually exclusive".into(),
            ));
        }
        if !config.str_or("query", "").is_empty()
            && (!config.list("table.whitelist").is_empty()
                || !config.list("table.blacklist").is_empty())
        {
            problems.push((
                "query".into(),
                "query cannot be combined with table.whitelist or table.blacklist".into(),
            ));
        }
        problems
    }
    async fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>> {
        if !config.str_or("query", "").is_empty() {
            return Ok(vec![config.clone()]);
        }
        let pool = pool(config)?;
        let rows = sqlx::query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN ('BASE TABLE','VIEW') ORDER BY TABLE_NAME")
            .fetch_all(&pool)
            .await
            .map_err(ConnectorError::ListTables)?;
        pool.close().await;
        let white = config.list("table.whitelist");
        let black = config.list("table.blacklist");
        let tables: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .filter(|t| t != super::sink::OFFSETS_TABLE)
            .filter(|t| {
                white.is_empty()
                    || white
                        .iter()
                        .any(|w| w == t || w.ends_with(&format!(".{t}")))
            })
            .filter(|t| {
                !black
                    .iter()
                    .any(|b| b == t || b.ends_with(&format!(".{t}")))
            })
            .collect();
        if tables.is_empty() {
            // Like Confluent: no task until a table shows up (the connector stays RUNNING).
            return Ok(Vec::new());
        }
        let n = max_tasks.max(1).min(tables.len());
        let mut groups = vec![Vec::new(); n];
        for (i, t) in tables.into_iter().enumerate() {
            groups[i % n].push(t);
        }
        Ok(groups
            .into_iter()
            .map(|g| {
                let mut c = config.clone();
                c.insert("tables".into(), g.join(","));
                c
            })
            .collect())
    }
    fn create_task(&self, config: &Config) -> Result<Task> {
        let query = config.str_or("query", "").to_string();
        let sources: Vec<String> = if query.is_empty() {
            config.list("tables")
        } else {
            vec![query.clone()]
        };
        let mode = config.str_or("mode", "bulk").to_ascii_lowercase();
        Ok(Task::Source(Box::new(JdbcSourceTask {
            pool: pool(config)?,
            database: url::parse(config.str_or("connection.url", ""))
                .map_err(ConnectorError::InvalidConfig)?
                .database,
            query_mode: !query.is_empty(),
            incrementing: mode
                .contains("incrementing")
                .then(|| config.str_or("incrementing.column.name", "").to_string()),
            timestamp: mode
                .starts_with("timestamp")
                .then(|| config.list("timestamp.column.name").into_iter().next())
                .flatten(),
            prefix: config.str_or("topic.prefix", "").to_string(),
            interval: Duration::from_millis(config.parse_or("poll.interval.ms", 5000u64)),
            batch: config.parse_or("batch.max.rows", 100u32).max(1),
            delay_ms: config.parse_or("timestamp.delay.interval.ms", 0i64).max(0),
            validate_non_null: config.bool_or("validate.non.null", true),
            tables: sources
                .into_iter()
                .map(|s| TableState {
                    source: s,
                    next_poll: Instant::now(),
                    inc: None,
                    ts: None,
                    columns: None,
                })
                .collect(),
            cursor: 0,
        })))
    }
}

#[derive(Clone)]
struct Column {
    name: String,
    data_type: String,
    unsigned: bool,
    nullable: bool,
    scale: u32,
}

struct TableState {
    /// Table name, or the query in query mode.
    source: String,
    next_poll: Instant,
    inc: Option<i64>,
    ts: Option<NaiveDateTime>,
    columns: Option<Vec<Column>>,
}

struct JdbcSourceTask {
    pool: MySqlPool,
    database: String,
    query_mode: bool,
    incrementing: Option<String>,
    timestamp: Option<String>,
    prefix: String,
    interval: Duration,
    batch: u32,
    delay_ms: i64,
    validate_non_null: bool,
    tables: Vec<TableState>,
    cursor: usize,
}

/// The upper bound of timestamp mode's window: now minus `timestamp.delay.interval.ms`. The
/// multiplication saturates, so a huge configured delay cannot overflow (a panic in debug builds,
/// a negative interval in release ones).
fn delay_end(delay_ms: i64) -> String {
    format!(
        "DATE_SUB(CURRENT_TIMESTAMP(3), INTERVAL {} MICROSECOND)",
        delay_ms.saturating_mul(1000)
    )
}

fn column_schema(c: &Column) -> Schema {
    let s = match c.data_type.as_str() {
        "tinyint" if c.unsigned => Schema::new(SchemaType::Int16),
        "tinyint" => Schema::new(SchemaType::Int8),
        "smallint" if c.unsigned => Schema::new(SchemaType::Int32),
        "smallint" => Schema::new(SchemaType::Int16),
        "mediumint" | "year" => Schema::new(SchemaType::Int32),
        "int" | "integer" if c.unsigned => Schema::new(SchemaType::Int64),
        "int" | "integer" => Schema::new(SchemaType::Int32),
        "bigint" => Schema::new(SchemaType::Int64),
        "float" => Schema::new(SchemaType::Float32),
        "double" | "real" => Schema::new(SchemaType::Float64),
        "decimal" | "numeric" => Schema::decimal(c.scale as i32),
        "date" => Schema::logical(SchemaType::Int32, DATE),
        "time" => Schema::logical(SchemaType::Int32, TIME),
        "datetime" | "timestamp" => Schema::logical(SchemaType::Int64, TIMESTAMP),
        "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob" | "bit" => {
            Schema::new(SchemaType::Bytes)
        }
        _ => Schema::new(SchemaType::String),
    };
    s.optional(c.nullable)
}

fn decode(row: &MySqlRow, i: usize, c: &Column) -> Value {
    macro_rules! get {
        ($t:ty) => {
            row.try_get::<Option<$t>, _>(i)
        };
    }
    let v: Option<Value> = match c.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => get!(i64)
            .map(|o| o.map(Value::Int))
            .or_else(|_| get!(u64).map(|o| o.map(|u| Value::Int(u as i64))))
            .ok()
            .flatten(),
        "float" => get!(f32).ok().flatten().map(|f| Value::Float(f as f64)),
        "double" | "real" => get!(f64).ok().flatten().map(Value::Float),
        "decimal" | "numeric" => get!(Decimal).ok().flatten().map(Value::Decimal),
        "date" => get!(NaiveDate).ok().flatten().map(Value::Date),
        "time" => get!(NaiveTime).ok().flatten().map(Value::Time),
        "datetime" => get!(NaiveDateTime).ok().flatten().map(Value::Timestamp),
        "timestamp" => get!(DateTime<Utc>)
            .map(|o| o.map(|t| Value::Timestamp(t.naive_utc())))
            .or_else(|_| get!(NaiveDateTime).map(|o| o.map(Value::Timestamp)))
            .ok()
            .flatten(),
        "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob" | "bit" => {
            get!(Vec<u8>).ok().flatten().map(Value::Bytes)
        }
        _ => get!(String).ok().flatten().map(Value::String).or_else(|| {
            get!(Vec<u8>)
                .ok()
                .flatten()
                .map(|b| Value::String(String::from_utf8_lossy(&b).into_owned()))
        }),
    };
    v.unwrap_or(Value::Null)
}

impl JdbcSourceTask {
    fn partition(&self, t: &TableState) -> Json {
        if self.query_mode {
            json!({"query": "query"})
        } else {
            json!({"protocol": "1", "table": format!("{}.{}", self.database, t.source)})
        }
    }

    fn topic(&self, t: &TableState) -> String {
        if self.query_mode {
            self.prefix.clone()
        } else {
            format!("{}{}", self.prefix, t.source)
        }
    }

    async fn columns(&self, table: &str) -> Result<Vec<Column>> {
        let rows = sqlx::query("SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_SCALE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION")
            .bind(table)
            .fetch_all(&self.pool)
            .await?;
        let cols: Vec<Column> = rows
            .iter()
            .map(|r| {
                let text = |i: usize| {
                    r.try_get::<String, _>(i)
                        .or_else(|_| {
                            r.try_get::<Vec<u8>, _>(i)
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                        })
                        .unwrap_or_default()
                };
                Column {
                    name: text(0),
                    data_type: text(1).to_ascii_lowercase(),
                    unsigned: text(2).to_ascii_lowercase().contains("unsigned"),
                    nullable: text(3).eq_ignore_ascii_case("YES"),
                    scale: r.try_get::<Option<u64>, _>(4).ok().flatten().unwrap_or(0) as u32,
                }
            })
            .collect();
        if cols.is_empty() {
            return Err(ConnectorError::TableNotFound {
                table: table.to_string(),
            });
        }
        Ok(cols)
    }

    /// Runs one table's query and turns the rows into records, advancing its offset.
    async fn poll_table(&mut self, idx: usize) -> Result<Vec<SourceRecord>> {
        let from = if self.query_mode {
            format!("({}) AS datasync_q", self.tables[idx].source)
        } else {
            quote_table(&self.tables[idx].source)
        };
        let inc_col = self.incrementing.as_deref().map(quote);
        let ts_col = self.timestamp.as_deref().map(quote);
        let end = delay_end(self.delay_ms);
        let t = &self.tables[idx];
        let epoch = DateTime::from_timestamp_millis(0)
            .expect("epoch")
            .naive_utc();
        let q;
        let sql;
        match (&inc_col, &ts_col) {
            (Some(inc), None) => {
                sql = format!(
                    "SELECT * FROM {from} WHERE {inc} > ? ORDER BY {inc} ASC LIMIT {}",
                    self.batch
                );
                q = sqlx::query(&sql).bind(t.inc.unwrap_or(-1));
            }
            (None, Some(ts)) => {
                sql = format!(
                    "SELECT * FROM {from} WHERE {ts} > ? AND {ts} < {end} ORDER BY {ts} ASC"
                );
                q = sqlx::query(&sql).bind(t.ts.unwrap_or(epoch));
            }
            (Some(inc), Some(ts)) => {
                sql = format!("SELECT * FROM {from} WHERE {ts} < {end} AND (({ts} = ? AND {inc} > ?) OR {ts} > ?) ORDER BY {ts}, {inc} ASC LIMIT {}", self.batch);
                let last = t.ts.unwrap_or(epoch);
                q = sqlx::query(&sql)
                    .bind(last)
                    .bind(t.inc.unwrap_or(-1))
                    .bind(last);
            }
            (None, None) => {
                sql = format!("SELECT * FROM {from}");
                q = sqlx::query(&sql);
            }
        }
        let rows = q.fetch_all(&self.pool).await?;
        let t = &self.tables[idx];
        let columns: Vec<Column> = match &t.columns {
            Some(c) => c.clone(),
            None if rows.is_empty() => return Ok(Vec::new()),
            None => {
                use sqlx::Column as _;
                rows[0]
                    .columns()
                    .iter()
                    .map(|c| Column {
                        name: c.name().to_string(),
                        data_type: sqlx::TypeInfo::name(sqlx::Column::type_info(c))
                            .to_ascii_lowercase(),
                        unsigned: false,
                        nullable: true,
                        scale: 0,
                    })
                    .collect()
            }
        };
        let name = if self.query_mode {
            self.prefix.clone()
        } else {
            t.source.clone()
        };
        let mut schema = Schema::new(SchemaType::Struct).named(&name);
        schema.fields = columns
            .iter()
            .map(|c| Field {
                name: c.name.clone(),
                schema: column_schema(c),
            })
            .collect();
        let (partition, topic) = (self.partition(t), self.topic(t));
        let mut out = Vec::with_capacity(rows.len());
        let (mut inc, mut ts) = (t.inc, t.ts);
        for row in &rows {
            let fields: Vec<(String, Value)> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), decode(row, i, c)))
                .collect();
            let value = Value::Struct(fields);
            if let Some(c) = &self.incrementing {
                if let Some(Value::Int(v)) = value.get(c) {
                    inc = Some(*v);
                }
            }
            if let Some(c) = &self.timestamp {
                if let Some(Value::Timestamp(v)) = value.get(c) {
                    ts = Some(*v);
                }
            }
            let mut offset = serde_json::Map::new();
            if let Some(i) = inc {
                offset.insert("incrementing".into(), json!(i));
            }
            if let Some(t) = ts {
                let utc = t.and_utc();
                offset.insert("timestamp".into(), json!(utc.timestamp_millis()));
                offset.insert(
                    "timestamp_nanos".into(),
                    json!(utc.timestamp_subsec_nanos()),
                );
            }
            out.push(SourceRecord {
                source_partition: partition.clone(),
                source_offset: Json::Object(offset),
                topic: topic.clone(),
                key_schema: None,
                key: Value::Null,
                value_schema: Some(schema.clone()),
                value,
                timestamp: None,
            });
        }
        let t = &mut self.tables[idx];
        t.inc = inc;
        t.ts = ts;
        Ok(out)
    }
}

#[async_trait]
impl SourceTask for JdbcSourceTask {
    async fn start(&mut self, offsets: Arc<dyn OffsetReader>) -> Result<()> {
        for i in 0..self.tables.len() {
            let partition = self.partition(&self.tables[i]);
            if let Some(o) = offsets.offset(&partition) {
                let t = &mut self.tables[i];
                t.inc = o.get("incrementing").and_then(Json::as_i64);
                if let Some(ms) = o.get("timestamp").and_then(Json::as_i64) {
                    let nanos = o.get("timestamp_nanos").and_then(Json::as_u64).unwrap_or(0) as u32;
                    t.ts =
                        DateTime::from_timestamp(ms.div_euclid(1000), nanos).map(|d| d.naive_utc());
                }
            }
        }
        if !self.query_mode {
            let mut cols = HashMap::new();
            for t in &self.tables {
                let c = self.columns(&t.source).await?;
                if self.validate_non_null {
                    for want in self.incrementing.iter().chain(self.timestamp.iter()) {
                        match c.iter().find(|c| c.name.eq_ignore_ascii_case(want)) {
                            None => {
                                return Err(ConnectorError::ColumnNotFound {
                                    column: want.clone(),
                                    table: t.source.clone(),
                                })
                            }
                            Some(col) if col.nullable => {
                                return Err(ConnectorError::NullableColumn {
                                    column: want.clone(),
                                    table: t.source.clone(),
                                })
                            }
                            _ => {}
                        }
                    }
                }
                cols.insert(t.source.clone(), c);
            }
            for t in &mut self.tables {
                t.columns = cols.remove(&t.source);
            }
        }
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.tables.is_empty() {
            tokio::time::sleep(self.interval).await;
            return Ok(Vec::new());
        }
        let now = Instant::now();
        let n = self.tables.len();
        for k in 0..n {
            let idx = (self.cursor + k) % n;
            if self.tables[idx].next_poll > now {
                continue;
            }
            self.cursor = (idx + 1) % n;
            let records = self.poll_table(idx).await?;
            // A full batch means more rows are waiting: poll again right away.
            let full = self.incrementing.is_some() && records.len() as u32 >= self.batch;
            self.tables[idx].next_poll = if full {
                Instant::now()
            } else {
                Instant::now() + self.interval
            };
            if !records.is_empty() {
                return Ok(records);
            }
        }
        let next = self
            .tables
            .iter()
            .map(|t| t.next_poll)
            .min()
            .unwrap_or(now + self.interval);
        tokio::time::sleep_until(next.into()).await;
        // Nothing new: return (empty) after one wait, as `SourceTask::poll` says, so that
        // the worker gets a turn (an exactly-once task commits an interval-bounded
        // transaction when it is due, rows or not).
        Ok(Vec::new())
    }

    async fn stop(&mut self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_delays_saturate() {
        assert_eq!(
            delay_end(5),
            "DATE_SUB(CURRENT_TIMESTAMP(3), INTERVAL 5000 MICROSECOND)"
        );
        assert!(delay_end(i64::MAX).contains(&format!("INTERVAL {} MICROSECOND", i64::MAX)));
    }
}
