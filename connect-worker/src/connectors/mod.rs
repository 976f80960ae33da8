//! The plugin boundary: every connector implements [`ConnectorPlugin`] and hands out source or
//! sink tasks; the worker runs the tasks (Kafka clients, converters, offsets, error handling),
//! so a new connector is one module plus one line in [`registry`].
//!
//! Connectors fail with [`ConnectorError`] (splitting work, creating, starting and polling
//! tasks) and a sink's `put` with [`SinkError`], whose retriable/fatal split drives the worker's
//! retries and error policy.

pub mod config_def;
pub mod file;
pub mod jdbc;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value as Json;

use crate::allowed_paths::AllowedPaths;
use crate::data::{Schema, Value};
use config_def::ConfigKey;

pub type Config = BTreeMap<String, String>;

/// A config from (key, value) pairs, for tests.
#[cfg(test)]
pub fn config_of(pairs: &[(&str, &str)]) -> Config {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorKind {
    Source,
    Sink,
}

impl ConnectorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Source => "source",
            ConnectorKind::Sink => "sink",
        }
    }
}

/// A (topic, partition) pair.
pub type TopicPartition = (String, i32);

#[derive(Debug, Clone)]
pub struct SinkRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key_schema: Option<Arc<Schema>>,
    pub key: Value,
    pub value_schema: Option<Arc<Schema>>,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// Where the record comes from, e.g. `{"filename": "..."}` (a key of `connect-offsets`).
    pub source_partition: Json,
    /// How far that source has been read once this record is delivered.
    pub source_offset: Json,
    pub topic: String,
    pub key_schema: Option<Schema>,
    pub key: Value,
    pub value_schema: Option<Schema>,
    pub value: Value,
    pub timestamp: Option<i64>,
}

/// What a sink's `put` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Retrying the same records later may succeed (the database is down...).
    #[error("{0}")]
    Retriable(String),
    /// These records cannot be written as they are.
    #[error("{0}")]
    Fatal(String),
}

/// What a connector or a task fails with outside a sink's `put`; the worker shows it, with its
/// causes, as the connector's or task's status trace.
///
/// Variants whose message already carries the underlying error do not also return it as
/// `source()`, so [`crate::error::chain`] prints it once.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The configuration cannot be used (e.g. a `connection.url` that does not parse).
    #[error("{0}")]
    InvalidConfig(String),
    /// A database query failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Listing the database's tables (to split them among tasks) failed.
    #[error("listing tables: {0}")]
    ListTables(sqlx::Error),
    #[error("table {table} not found")]
    TableNotFound { table: String },
    #[error("Cannot find column {column} in table {table}")]
    ColumnNotFound { column: String, table: String },
    #[error("Cannot make incremental queries using column {column} on {table} because this column is nullable.")]
    NullableColumn { column: String, table: String },
    /// A file could not be opened, read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A sink's own storage (such as its offsets table) failed, retriably or not.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// What connector and task calls return (a sink's `put` returns [`SinkError`] instead).
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// Reads committed source offsets (from `connect-offsets`).
pub trait OffsetReader: Send + Sync {
    fn offset(&self, partition: &Json) -> Option<Json>;
}

#[async_trait]
pub trait SourceTask: Send {
    async fn start(&mut self, offsets: Arc<dyn OffsetReader>) -> Result<()>;
    /// The next records; may wait (up to about a poll interval) when there are none.
    async fn poll(&mut self) -> Result<Vec<SourceRecord>>;
    async fn stop(&mut self) {}
}

#[async_trait]
pub trait SinkTask: Send {
    async fn start(&mut self) -> Result<()>;
    /// Partitions were assigned: the offsets to resume from, for sinks that store their own
    /// (exactly-once). Partitions left out resume from the consumer group's committed offset.
    async fn open(
        &mut self,
        _partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        Ok(HashMap::new())
    }
    /// Writes records. When this returns Ok they are durable. `positions` holds, for every
    /// partition the batch came from, the offset to resume from once it is applied (records
    /// the error policy skipped are included, so they are not read again).
    async fn put(
        &mut self,
        records: Vec<SinkRecord>,
        positions: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), SinkError>;
    async fn stop(&mut self) {}
}

pub enum Task {
    Source(Box<dyn SourceTask>),
    Sink(Box<dyn SinkTask>),
}

#[async_trait]
pub trait ConnectorPlugin: Send + Sync {
    /// Fully qualified class name, as in `connector.class`.
    fn class(&self) -> &'static str;
    fn kind(&self) -> ConnectorKind;
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    /// Connector-specific keys (the common ones are added by the worker).
    fn config_keys(&self) -> Vec<ConfigKey>;
    /// Cross-field checks, as (key, message); per-key checks come from [`Self::config_keys`].
    fn validate(&self, _config: &Config) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Splits the connector's work into at most `max_tasks` task configs.
    async fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>>;
    fn create_task(&self, config: &Config) -> Result<Task>;
}

/// Every connector this worker knows.
/// The FileStream connectors use files inside `allowed` only.
pub fn registry(allowed: &AllowedPaths) -> Vec<Arc<dyn ConnectorPlugin>> {
    vec![
        Arc::new(jdbc::sink::JdbcSinkConnector),
        Arc::new(jdbc::source::JdbcSourceConnector),
        Arc::new(file::FileStreamSinkConnector::new(allowed.clone())),
        Arc::new(file::FileStreamSourceConnector::new(allowed.clone())),
    ]
}

/// Finds a plugin by class name or alias (simple name, or simple name without "Connector").
pub fn find_plugin(
    plugins: &[Arc<dyn ConnectorPlugin>],
    class: &str,
) -> Option<Arc<dyn ConnectorPlugin>> {
    let class = class.trim();
    plugins
        .iter()
        .find(|p| {
            let full = p.class();
            let simple = full.rsplit('.').next().unwrap_or(full);
            full == class || simple == class || simple.strip_suffix("Connector") == Some(class)
        })
        .cloned()
}

/// The plugin's type name for REST (`sink`/`source`).
pub fn simple_name(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}
