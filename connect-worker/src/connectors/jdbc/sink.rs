//! `io.confluent.connect.jdbc.JdbcSinkConnector`, exactly once into MariaDB/MySQL.
//!
//! Each `put` is one transaction holding the batch's rows *and* the batch's consumed positions
//! in `datasync_sink_offsets` (`next_offset` = last applied offset + 1 per partition). Inside
//! the transaction the stored positions are read `FOR UPDATE` and records below them are
//! dropped, so a batch replayed after a crash, a rebalance or a zombie task is applied at most
//! once, and it is applied at least once because the consumer resumes from those positions
//! ([`SinkTask::open`]). Each position row also names the table the topic is written into
//! (`target_table`), so a reader such as the order-service's consistency tokens can find the
//! sink of a table whatever the connector is called. Table DDL (`auto.create`, `auto.evolve`) is idempotent and runs before
//! the transaction, since MariaDB commits implicitly on DDL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlArguments, MySqlPool};
use sqlx::query::Query;
use sqlx::{MySql, Row};

use super::dialect::{column_type, quote, quote_table};
use super::url;
use crate::connectors::config_def::{ConfigExt, ConfigKey, ConfigType};
use crate::connectors::{
    Config, ConnectorKind, ConnectorPlugin, Result, SinkError, SinkRecord, SinkTask, Task,
    TopicPartition,
};
use crate::data::{Schema, SchemaType, Value};

pub const OFFSETS_TABLE: &str = "datasync_sink_offsets";

/// As `migrations/*_sink_offsets.sql` and `*_sink_offsets_target_table.sql` leave it.
const OFFSETS_DDL: &str = "CREATE TABLE IF NOT EXISTS datasync_sink_offsets (
  connector VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL, kafka_partition INT NOT NULL,
  target_table VARCHAR(255) NULL,
  next_offset BIGINT NOT NULL, updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (connector, topic, kafka_partition))";

/// Added to a table that an older worker or migration created without it.
const OFFSETS_ADD_TARGET_TABLE: &str = "ALTER TABLE datasync_sink_offsets \
  ADD COLUMN target_table VARCHAR(255) NULL AFTER kafka_partition";

pub struct JdbcSinkConnector;

#[async_trait]
impl ConnectorPlugin for JdbcSinkConnector {
    fn class(&self) -> &'static str {
        "io.confluent.connect.jdbc.JdbcSinkConnector"
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sink
    }
    fn config_keys(&self) -> Vec<ConfigKey> {
        use ConfigType::*;
        let mut keys = url::connection_keys("Connection");
        keys.extend([
            ConfigKey::new(
                "insert.mode",
                String,
                Some("insert"),
                "Writes",
                "The insertion mode to use.",
            )
            .one_of(&["insert", "upsert", "update"]),
            ConfigKey::new(
                "batch.size",
                Int,
                Some("3000"),
                "Writes",
                "Records per transaction, at most.",
            ),
            ConfigKey::new(
                "delete.enabled",
                Boolean,
                Some("false"),
                "Writes",
                "Whether to treat null record values as deletes (pk.mode must be record_key).",
            ),
            ConfigKey::new(
                "table.name.format",
                String,
                Some("${topic}"),
                "Data Mapping",
                "Destination table name; ${topic} is replaced by the record's topic.",
            ),
            ConfigKey::new(
                "pk.mode",
                String,
                Some("none"),
                "Data Mapping",
                "The primary key mode.",
            )
            .one_of(&["none", "kafka", "record_key", "record_value"]),
            ConfigKey::new(
                "pk.fields",
                List,
                Some(""),
                "Data Mapping",
                "Primary key field names.",
            ),
            ConfigKey::new(
                "fields.whitelist",
                List,
                Some(""),
                "Data Mapping",
                "Record value fields to write (all if empty).",
            ),
            ConfigKey::new(
                "auto.create",
                Boolean,
                Some("false"),
                "DDL Support",
                "Create the destination table from the record schema if missing.",
            ),
            ConfigKey::new(
                "auto.evolve",
                Boolean,
                Some("false"),
                "DDL Support",
                "Add columns for new optional fields.",
            ),
            ConfigKey::new(
                "max.retries",
                Int,
                Some("10"),
                "Retries",
                "Retries of a batch while the database is unavailable.",
            ),
            ConfigKey::new(
                "retry.backoff.ms",
                Int,
                Some("3000"),
                "Retries",
                "Wait between retries.",
            ),
        ]);
        keys
    }
    fn validate(&self, config: &Config) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> = url::validate(config).into_iter().collect();
        let pk_mode = config.str_or("pk.mode", "none").to_ascii_lowercase();
        if config.bool_or("delete.enabled", false) && pk_mode != "record_key" {
            problems.push((
                "delete.enabled".into(),
                "Deletes are only supported for pk.mode record_key".into(),
            ));
        }
        let mode = config.str_or("insert.mode", "insert").to_ascii_lowercase();
        if (mode == "upsert" || mode == "update") && pk_mode == "none" {
            problems.push(("pk.mode".into(), format!("insert.mode {mode} requires a primary key: set pk.mode to kafka, record_key or record_value")));
        }
        if pk_mode == "kafka" {
            let n = config.list("pk.fields").len();
            if n != 0 && n != 3 {
                problems.push((
                    "pk.fields".into(),
                    "pk.mode kafka needs exactly 3 pk.fields (topic, partition, offset) or none"
                        .into(),
                ));
            }
        }
        problems
    }
    async fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![config.clone(); max_tasks.max(1)])
    }
    fn create_task(&self, config: &Config) -> Result<Task> {
        let pool = url::pool(config, Duration::from_secs(5))?;
        Ok(Task::Sink(Box::new(JdbcSinkTask {
            connector: config.str_or("name", "").to_string(),
            settings: Settings::from(config),
            pool,
            columns: HashMap::new(),
        })))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum InsertMode {
    Insert,
    Upsert,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

struct Settings {
    insert_mode: InsertMode,
    pk_mode: PkMode,
    pk_fields: Vec<String>,
    whitelist: Vec<String>,
    table_format: String,
    auto_create: bool,
    auto_evolve: bool,
    delete_enabled: bool,
    max_retries: u32,
    backoff: Duration,
}

impl Settings {
    fn from(c: &Config) -> Self {
        Settings {
            insert_mode: match c
                .str_or("insert.mode", "insert")
                .to_ascii_lowercase()
                .as_str()
            {
                "upsert" => InsertMode::Upsert,
                "update" => InsertMode::Update,
                _ => InsertMode::Insert,
            },
            pk_mode: match c.str_or("pk.mode", "none").to_ascii_lowercase().as_str() {
                "kafka" => PkMode::Kafka,
                "record_key" => PkMode::RecordKey,
                "record_value" => PkMode::RecordValue,
                _ => PkMode::None,
            },
            pk_fields: c.list("pk.fields"),
            whitelist: c.list("fields.whitelist"),
            table_format: c.str_or("table.name.format", "${topic}").to_string(),
            auto_create: c.bool_or("auto.create", false),
            auto_evolve: c.bool_or("auto.evolve", false),
            delete_enabled: c.bool_or("delete.enabled", false),
            max_retries: c.parse_or("max.retries", 10u32),
            backoff: Duration::from_millis(c.parse_or("retry.backoff.ms", 3000u64)),
        }
    }
}

/// A value ready to bind.
#[derive(Debug, Clone)]
enum SqlVal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Dec(Decimal),
    Date(NaiveDate),
    Time(NaiveTime),
    Ts(NaiveDateTime),
}

fn sql_val(v: &Value, field: &str) -> Result<SqlVal, String> {
    Ok(match v {
        Value::Null => SqlVal::Null,
        Value::Bool(b) => SqlVal::Bool(*b),
        Value::Int(i) => SqlVal::Int(*i),
        Value::Float(f) => SqlVal::Float(*f),
        Value::String(s) => SqlVal::Str(s.clone()),
        Value::Bytes(b) => SqlVal::Bytes(b.clone()),
        Value::Decimal(d) => SqlVal::Dec(*d),
        Value::Date(d) => SqlVal::Date(*d),
        Value::Time(t) => SqlVal::Time(*t),
        Value::Timestamp(t) => SqlVal::Ts(*t),
        Value::Array(_) | Value::Map(_) | Value::Struct(_) => {
            return Err(format!(
                "Field {field}: arrays, maps and structs cannot be written to a column"
            ))
        }
    })
}

/// Binds by reference: the rows outlive the statement, so no value is copied.
fn bind<'q>(
    q: Query<'q, MySql, MySqlArguments>,
    v: &'q SqlVal,
) -> Query<'q, MySql, MySqlArguments> {
    match v {
        SqlVal::Null => q.bind(None::<String>),
        SqlVal::Bool(b) => q.bind(*b),
        SqlVal::Int(i) => q.bind(*i),
        SqlVal::Float(f) => q.bind(*f),
        SqlVal::Str(s) => q.bind(s.as_str()),
        SqlVal::Bytes(b) => q.bind(b.as_slice()),
        SqlVal::Dec(d) => q.bind(*d),
        SqlVal::Date(d) => q.bind(*d),
        SqlVal::Time(t) => q.bind(*t),
        SqlVal::Ts(t) => q.bind(*t),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Write,
    Delete,
}

/// Where a record goes: its table, operation and columns. Records of one topic with the same
/// schemas share one (computed once per batch, not per record).
struct Shape {
    table: String,
    op: Op,
    /// (column, schema) in order: key columns first.
    key_cols: Vec<(String, Schema)>,
    val_cols: Vec<(String, Schema)>,
}

/// One record, as a row of a table.
struct Row_ {
    tp: TopicPartition,
    offset: i64,
    shape: Arc<Shape>,
    keys: Vec<SqlVal>,
    vals: Vec<SqlVal>,
}

/// Identifies a [`Shape`] within a batch: topic, delete or not, and the schemas (by identity;
/// the converter hands out one shared schema per distinct schema text).
type ShapeKey = (String, bool, usize, usize);

fn schema_id(s: &Option<Arc<Schema>>) -> usize {
    s.as_ref().map_or(0, |s| Arc::as_ptr(s) as usize)
}

/// A failed write: `Transient` ones (the database is unavailable) are retried by `put` itself.
enum WriteError {
    Transient(String),
    Fatal(String),
}

impl From<WriteError> for SinkError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Transient(m) => SinkError::Retriable(m),
            WriteError::Fatal(m) => SinkError::Fatal(m),
        }
    }
}

fn classify(e: sqlx::Error) -> WriteError {
    use sqlx::Error::*;
    match &e {
        Io(_) | PoolTimedOut | PoolClosed | Tls(_) | Protocol(_) | WorkerCrashed => {
            WriteError::Transient(e.to_string())
        }
        Database(d) => {
            let code = d
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number())
                .unwrap_or(0);
            // lock wait timeout, deadlock, server shutdown, connection killed, too many connections, gone away
            if matches!(code, 1205 | 1213 | 1053 | 1927 | 1040 | 2006 | 2013 | 1317) {
                WriteError::Transient(e.to_string())
            } else {
                WriteError::Fatal(e.to_string())
            }
        }
        _ => WriteError::Fatal(e.to_string()),
    }
}

pub struct JdbcSinkTask {
    connector: String,
    settings: Settings,
    pool: MySqlPool,
    /// table → lower-cased column names.
    columns: HashMap<String, HashSet<String>>,
}

fn describe(r: &SinkRecord) -> String {
    format!(
        "(topic='{}',partition={},offset={},timestamp={:?})",
        r.topic, r.partition, r.offset, r.timestamp
    )
}

/// The primary-key columns of a struct schema (`side` is "key" or "value"): the `pk.fields`
/// named, or every field when none are.
fn pk_columns(
    pk_fields: &[String],
    schema: &Schema,
    side: &str,
    r: &SinkRecord,
) -> Result<Vec<(String, Schema)>, String> {
    let names: Vec<String> = if pk_fields.is_empty() {
        schema.fields.iter().map(|f| f.name.clone()).collect()
    } else {
        pk_fields.to_vec()
    };
    names
        .into_iter()
        .map(|n| {
            let f = schema.field(&n).ok_or_else(|| {
                format!(
                    "PK field {n} not found in the {side} schema of record at {}",
                    describe(r)
                )
            })?;
            Ok((n, f.schema.clone()))
        })
        .collect()
}

impl JdbcSinkTask {
    fn table_name(&self, topic: &str) -> String {
        self.settings.table_format.replace("${topic}", topic)
    }

    fn null_value_error(&self, r: &SinkRecord) -> String {
        format!(
            "Sink connector '{}' is configured with 'delete.enabled=false' and therefore requires records with a non-null Struct value and non-null Struct schema, but found record at {} with a null value",
            self.connector, describe(r)
        )
    }

    fn non_struct_error(&self, r: &SinkRecord) -> String {
        let s = &self.settings;
        format!(
            "Sink connector '{}' is configured with 'delete.enabled={}' and 'pk.mode={}' and therefore requires records with a non-null Struct value and non-null Struct schema, but found record at {} with a {} value and {} value schema. (With value.converter.schemas.enable=false records carry no schema: the JDBC sink needs the {{\"schema\",\"payload\"}} envelope to know the table's columns.)",
            self.connector,
            s.delete_enabled,
            format!("{:?}", s.pk_mode).to_ascii_lowercase(),
            describe(r),
            match &r.value { Value::Map(_) => "map", Value::Struct(_) => "struct", Value::String(_) => "string", Value::Null => "null", _ => "non-struct" },
            if r.value_schema.is_some() { "non-struct" } else { "null" }
        )
    }

    /// The table and columns of a record (pure; no database). Depends only on the record's
    /// topic, whether it is a delete, and its schemas.
    fn shape(&self, r: &SinkRecord) -> Result<Shape, String> {
        let s = &self.settings;
        let table = self.table_name(&r.topic);
        let mut key_cols = Vec::new();
        let is_delete = r.value.is_null();
        if is_delete && !s.delete_enabled {
            return Err(self.null_value_error(r));
        }
        match s.pk_mode {
            PkMode::None | PkMode::RecordValue => {}
            PkMode::Kafka => {
                let names: Vec<String> = if s.pk_fields.len() == 3 {
                    s.pk_fields.clone()
                } else {
                    vec![
                        "__connect_topic".into(),
                        "__connect_partition".into(),
                        "__connect_offset".into(),
                    ]
                };
                key_cols.push((names[0].clone(), Schema::new(SchemaType::String)));
                key_cols.push((names[1].clone(), Schema::new(SchemaType::Int32)));
                key_cols.push((names[2].clone(), Schema::new(SchemaType::Int64)));
            }
            PkMode::RecordKey => {
                let schema = r.key_schema.as_ref().ok_or_else(|| {
                    format!(
                        "pk.mode record_key needs a key schema, but record at {} has none",
                        describe(r)
                    )
                })?;
                if schema.kind == SchemaType::Struct {
                    key_cols.extend(pk_columns(&s.pk_fields, schema, "key", r)?);
                } else {
                    let name = match s.pk_fields.as_slice() {
                        [] => "__connect_key".to_string(),
                        [one] => one.clone(),
                        _ => return Err("pk.mode record_key with a primitive key needs exactly one pk.fields name".into()),
                    };
                    key_cols.push((name, (**schema).clone()));
                }
            }
        }
        let mut val_cols = Vec::new();
        if !is_delete {
            let schema = match &r.value_schema {
                Some(sc) if sc.kind == SchemaType::Struct => sc,
                _ => return Err(self.non_struct_error(r)),
            };
            if s.pk_mode == PkMode::RecordValue {
                key_cols.extend(pk_columns(&s.pk_fields, schema, "value", r)?);
            }
            for f in &schema.fields {
                if key_cols.iter().any(|(k, _)| k == &f.name) {
                    continue;
                }
                if !s.whitelist.is_empty() && !s.whitelist.contains(&f.name) {
                    continue;
                }
                val_cols.push((f.name.clone(), f.schema.clone()));
            }
        }
        if is_delete && key_cols.is_empty() {
            return Err(format!(
                "Cannot delete for record at {}: no key",
                describe(r)
            ));
        }
        if !is_delete && key_cols.is_empty() && val_cols.is_empty() {
            return Err(format!(
                "Record at {} has no fields to write (an empty struct, or fields.whitelist leaves none)",
                describe(r)
            ));
        }
        Ok(Shape {
            table,
            op: if is_delete { Op::Delete } else { Op::Write },
            key_cols,
            val_cols,
        })
    }

    /// A record's key and column values in `shape`'s order (pure; no database).
    fn to_row(&self, r: &SinkRecord, shape: Arc<Shape>) -> Result<Row_, String> {
        let s = &self.settings;
        let mut keys = Vec::with_capacity(shape.key_cols.len());
        match s.pk_mode {
            PkMode::None => {}
            PkMode::Kafka => keys.extend([
                SqlVal::Str(r.topic.clone()),
                SqlVal::Int(r.partition as i64),
                SqlVal::Int(r.offset),
            ]),
            PkMode::RecordKey => {
                if r.key.is_null() {
                    return Err(format!(
                        "pk.mode record_key needs a non-null key, but record at {} has none",
                        describe(r)
                    ));
                }
                if matches!(r.key, Value::Struct(_)) {
                    for (n, _) in &shape.key_cols {
                        keys.push(sql_val(r.key.get(n).unwrap_or(&Value::Null), n)?);
                    }
                } else if let Some((n, _)) = shape.key_cols.first() {
                    keys.push(sql_val(&r.key, n)?);
                }
            }
            PkMode::RecordValue => {}
        }
        let mut vals = Vec::with_capacity(shape.val_cols.len());
        if shape.op == Op::Write {
            if !matches!(r.value, Value::Struct(_)) {
                return Err(self.non_struct_error(r));
            }
            if s.pk_mode == PkMode::RecordValue {
                for (n, _) in &shape.key_cols {
                    keys.push(sql_val(r.value.get(n).unwrap_or(&Value::Null), n)?);
                }
            }
            for (n, _) in &shape.val_cols {
                vals.push(sql_val(r.value.get(n).unwrap_or(&Value::Null), n)?);
            }
        }
        if keys.iter().any(|k| matches!(k, SqlVal::Null)) {
            return Err(format!(
                "Record at {} has a null primary key field",
                describe(r)
            ));
        }
        Ok(Row_ {
            tp: (r.topic.clone(), r.partition),
            offset: r.offset,
            shape,
            keys,
            vals,
        })
    }

    /// Maps every record to its row, sharing the shapes.
    fn to_rows(&self, records: &[SinkRecord]) -> Result<Vec<Row_>, String> {
        let mut shapes: HashMap<ShapeKey, Arc<Shape>> = HashMap::new();
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            let key: ShapeKey = (
                r.topic.clone(),
                r.value.is_null(),
                schema_id(&r.key_schema),
                schema_id(&r.value_schema),
            );
            let shape = match shapes.get(&key) {
                Some(shape) => shape.clone(),
                None => {
                    let shape = Arc::new(self.shape(r)?);
                    shapes.insert(key, shape.clone());
                    shape
                }
            };
            rows.push(self.to_row(r, shape)?);
        }
        Ok(rows)
    }

    async fn ensure_offsets_table(&self) -> Result<(), WriteError> {
        sqlx::query(OFFSETS_DDL)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        let columns = self.load_columns(OFFSETS_TABLE).await?.unwrap_or_default();
        if !columns.contains("target_table") {
            self.add_column(OFFSETS_ADD_TARGET_TABLE).await?;
        }
        Ok(())
    }

    /// Runs an `ALTER TABLE ... ADD COLUMN`; a column that exists by now is no error (another
    /// task, or the services' migration, may have added it meanwhile).
    async fn add_column(&self, ddl: &str) -> Result<(), WriteError> {
        match sqlx::query(ddl).execute(&self.pool).await {
            Err(e) if !e.to_string().contains("Duplicate column") => Err(classify(e)),
            _ => Ok(()),
        }
    }

    async fn load_columns(&self, table: &str) -> Result<Option<HashSet<String>>, WriteError> {
        let (schema, name) = match table.split_once('.') {
            Some((s, n)) => (Some(s.to_string()), n.to_string()),
            None => (None, table.to_string()),
        };
        let rows = sqlx::query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?")
            .bind(schema)
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.iter()
                .filter_map(|r| r.try_get::<String, _>(0).ok())
                .map(|c| c.to_lowercase())
                .collect(),
        ))
    }

    /// Makes sure `row`'s table exists with all its columns (auto.create / auto.evolve).
    async fn ensure_table(&mut self, row: &Shape) -> Result<(), WriteError> {
        let wanted: Vec<&(String, Schema)> =
            row.key_cols.iter().chain(row.val_cols.iter()).collect();
        if let Some(cols) = self.columns.get(&row.table) {
            if wanted.iter().all(|(n, _)| cols.contains(&n.to_lowercase())) {
                return Ok(());
            }
        }
        let mut cols = self.load_columns(&row.table).await?;
        if cols.is_none() {
            if !self.settings.auto_create {
                return Err(WriteError::Fatal(format!(
                    "Table {} is missing and auto-creation is disabled",
                    quote_table(&row.table)
                )));
            }
            if row.op == Op::Delete {
                return Err(WriteError::Fatal(format!(
                    "Table {} is missing; a delete cannot create it",
                    quote_table(&row.table)
                )));
            }
            let mut defs = Vec::new();
            for (i, (n, sc)) in wanted.iter().enumerate() {
                let is_key = i < row.key_cols.len();
                let ty = column_type(sc, is_key).map_err(WriteError::Fatal)?;
                let null = if sc.optional && !is_key {
                    "NULL"
                } else {
                    "NOT NULL"
                };
                defs.push(format!("{} {ty} {null}", quote(n)));
            }
            if !row.key_cols.is_empty() {
                defs.push(format!(
                    "PRIMARY KEY({})",
                    row.key_cols
                        .iter()
                        .map(|(n, _)| quote(n))
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
            let ddl = format!(
                "CREATE TABLE IF NOT EXISTS {} (\n{})",
                quote_table(&row.table),
                defs.join(",\n")
            );
            tracing::info!(table = %row.table, "creating table");
            sqlx::query(&ddl)
                .execute(&self.pool)
                .await
                .map_err(classify)?;
            cols = self.load_columns(&row.table).await?;
        }
        let mut have = cols.unwrap_or_default();
        let missing: Vec<&&(String, Schema)> = wanted
            .iter()
            .filter(|(n, _)| !have.contains(&n.to_lowercase()))
            .collect();
        if !missing.is_empty() {
            if !self.settings.auto_evolve {
                return Err(WriteError::Fatal(format!(
                    "Table {} is missing fields ({}) and auto-evolution is disabled",
                    quote_table(&row.table),
                    missing
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            for (n, sc) in missing {
                if !sc.optional && sc.default.is_none() {
                    return Err(WriteError::Fatal(format!("Cannot ALTER TABLE {} to add missing field {n}, as the field is not optional and does not have a default value", quote_table(&row.table))));
                }
                let ty = column_type(sc, false).map_err(WriteError::Fatal)?;
                let ddl = format!(
                    "ALTER TABLE {} ADD COLUMN {} {ty} NULL",
                    quote_table(&row.table),
                    quote(n)
                );
                tracing::info!(table = %row.table, column = %n, "adding column");
                self.add_column(&ddl).await?;
                have.insert(n.to_lowercase());
            }
        }
        self.columns.insert(row.table.clone(), have);
        Ok(())
    }

    async fn write(
        &mut self,
        records: &[SinkRecord],
        positions: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), WriteError> {
        let rows = self.to_rows(records).map_err(WriteError::Fatal)?;
        // DDL first (idempotent, outside the transaction), once per shape.
        let mut seen: HashSet<usize> = HashSet::new();
        for row in &rows {
            if seen.insert(Arc::as_ptr(&row.shape) as usize) {
                self.ensure_table(&row.shape).await?;
            }
        }
        let mut tx = self.pool.begin().await.map_err(classify)?;
        // The fence: what is already applied, locked until commit.
        let mut stored: HashMap<TopicPartition, i64> = HashMap::new();
        let locked = sqlx::query(&format!("SELECT topic, kafka_partition, next_offset FROM {OFFSETS_TABLE} WHERE connector = ? FOR UPDATE"))
            .bind(&self.connector)
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?;
        for r in locked {
            let t: String = r.try_get(0).map_err(classify)?;
            let p: i32 = r.try_get(1).map_err(classify)?;
            let n: i64 = r.try_get(2).map_err(classify)?;
            stored.insert((t, p), n);
        }
        let rows: Vec<Row_> = rows
            .into_iter()
            .filter(|r| r.offset >= *stored.get(&r.tp).unwrap_or(&0))
            .collect();
        // Consecutive rows of the same table, operation and columns go in one statement.
        let mut i = 0;
        while i < rows.len() {
            let mut j = i + 1;
            while j < rows.len() && same_shape(&rows[i], &rows[j]) {
                j += 1;
            }
            self.execute_group(&mut tx, &rows[i..j]).await?;
            i = j;
        }
        let changed: Vec<(&TopicPartition, &i64)> = positions
            .iter()
            .filter(|(tp, n)| stored.get(*tp).is_none_or(|s| *n > s))
            .collect();
        if !changed.is_empty() {
            let sql = format!(
                "INSERT INTO {OFFSETS_TABLE} (connector, topic, kafka_partition, target_table, next_offset) VALUES {} \
                 ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset)), \
                 target_table = VALUES(target_table), updated_at = CURRENT_TIMESTAMP(3)",
                vec!["(?, ?, ?, ?, ?)"; changed.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for ((t, p), n) in changed {
                q = q
                    .bind(&self.connector)
                    .bind(t)
                    .bind(*p)
                    .bind(self.table_name(t))
                    .bind(*n);
            }
            q.execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    async fn execute_group(
        &self,
        tx: &mut sqlx::Transaction<'_, MySql>,
        rows: &[Row_],
    ) -> Result<(), WriteError> {
        let first = &rows[0].shape;
        let table = quote_table(&first.table);
        let key_names: Vec<String> = first.key_cols.iter().map(|(n, _)| quote(n)).collect();
        let val_names: Vec<String> = first.val_cols.iter().map(|(n, _)| quote(n)).collect();
        let where_key = key_names
            .iter()
            .map(|k| format!("{k} = ?"))
            .collect::<Vec<_>>()
            .join(" AND ");
        match (first.op, self.settings.insert_mode) {
            (Op::Delete, _) => {
                let sql = format!("DELETE FROM {table} WHERE {where_key}");
                for r in rows {
                    let mut q = sqlx::query(&sql);
                    for k in &r.keys {
                        q = bind(q, k);
                    }
                    q.execute(&mut **tx).await.map_err(classify)?;
                }
            }
            (Op::Write, InsertMode::Update) => {
                if val_names.is_empty() {
                    return Ok(());
                }
                let set = val_names
                    .iter()
                    .map(|v| format!("{v} = ?"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!("UPDATE {table} SET {set} WHERE {where_key}");
                for r in rows {
                    let mut q = sqlx::query(&sql);
                    for v in r.vals.iter().chain(r.keys.iter()) {
                        q = bind(q, v);
                    }
                    q.execute(&mut **tx).await.map_err(classify)?;
                }
            }
            (Op::Write, mode) => {
                let all: Vec<&String> = key_names.iter().chain(val_names.iter()).collect();
                let ncols = all.len().max(1);
                let placeholders = format!("({})", vec!["?"; ncols].join(","));
                let suffix = if mode == InsertMode::Upsert {
                    let updates: Vec<String> = if val_names.is_empty() {
                        key_names
                            .iter()
                            .map(|k| format!("{k}=VALUES({k})"))
                            .collect()
                    } else {
                        val_names
                            .iter()
                            .map(|v| format!("{v}=VALUES({v})"))
                            .collect()
                    };
                    format!(" ON DUPLICATE KEY UPDATE {}", updates.join(","))
                } else {
                    String::new()
                };
                let cols = all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
                for chunk in rows.chunks((60_000 / ncols).max(1)) {
                    let sql = format!(
                        "INSERT INTO {table} ({cols}) VALUES {}{suffix}",
                        vec![placeholders.as_str(); chunk.len()].join(",")
                    );
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        for v in r.keys.iter().chain(r.vals.iter()) {
                            q = bind(q, v);
                        }
                    }
                    q.execute(&mut **tx).await.map_err(classify)?;
                }
            }
        }
        Ok(())
    }
}

fn same_shape(a: &Row_, b: &Row_) -> bool {
    let (a, b) = (&a.shape, &b.shape);
    Arc::ptr_eq(a, b)
        || (a.table == b.table
            && a.op == b.op
            && a.key_cols.len() == b.key_cols.len()
            && a.val_cols.len() == b.val_cols.len()
            && a.key_cols.iter().zip(&b.key_cols).all(|(x, y)| x.0 == y.0)
            && a.val_cols.iter().zip(&b.val_cols).all(|(x, y)| x.0 == y.0))
}

#[async_trait]
impl SinkTask for JdbcSinkTask {
    async fn start(&mut self) -> Result<()> {
        Ok(())
    }

    async fn open(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        self.ensure_offsets_table().await.map_err(SinkError::from)?;
        let rows = sqlx::query(&format!(
            "SELECT topic, kafka_partition, next_offset FROM {OFFSETS_TABLE} WHERE connector = ?"
        ))
        .bind(&self.connector)
        .fetch_all(&self.pool)
        .await?;
        let mut stored = HashMap::new();
        for r in rows {
            stored.insert(
                (r.try_get::<String, _>(0)?, r.try_get::<i32, _>(1)?),
                r.try_get::<i64, _>(2)?,
            );
        }
        Ok(partitions
            .iter()
            .map(|tp| (tp.clone(), *stored.get(tp).unwrap_or(&0)))
            .collect())
    }

    async fn put(
        &mut self,
        records: Vec<SinkRecord>,
        positions: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), SinkError> {
        let mut attempt = 0;
        loop {
            match self.write(&records, positions).await {
                Ok(()) => return Ok(()),
                Err(WriteError::Fatal(m)) => return Err(SinkError::Fatal(m)),
                Err(WriteError::Transient(m)) => {
                    if attempt >= self.settings.max_retries {
                        return Err(SinkError::Retriable(format!(
                            "{m} (after {attempt} retries)"
                        )));
                    }
                    attempt += 1;
                    tracing::warn!(connector = %self.connector, attempt, error = %m, "database unavailable; retrying the batch");
                    // A broken pool connection is dropped by sqlx; the next attempt reconnects.
                    self.columns.clear();
                    tokio::time::sleep(self.settings.backoff).await;
                }
            }
        }
    }

    async fn stop(&mut self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use sqlx::mysql::MySqlPoolOptions;

    use super::*;
    use crate::data::Field;

    fn task(settings: &[(&str, &str)]) -> JdbcSinkTask {
        let config: Config = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        JdbcSinkTask {
            connector: "c".into(),
            settings: Settings::from(&config),
            pool: MySqlPoolOptions::new()
                .connect_lazy("mysql://u:p@127.0.0.1:1/db")
                .unwrap(),
            columns: HashMap::new(),
        }
    }

    fn record(offset: i64, schema: &Arc<Schema>, value: Value) -> SinkRecord {
        SinkRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: None,
            key_schema: None,
            key: Value::Null,
            value_schema: Some(schema.clone()),
            value,
        }
    }

    #[tokio::test]
    async fn records_of_one_schema_share_a_shape_and_empty_rows_are_refused() {
        let mut schema = Schema::new(SchemaType::Struct);
        schema.fields.push(Field {
            name: "a".into(),
            schema: Schema::new(SchemaType::Int32),
        });
        let schema = Arc::new(schema);
        let rows = task(&[])
            .to_rows(&[
                record(0, &schema, Value::Struct(vec![("a".into(), Value::Int(1))])),
                record(1, &schema, Value::Struct(vec![("a".into(), Value::Int(2))])),
            ])
            .unwrap();
        assert!(Arc::ptr_eq(&rows[0].shape, &rows[1].shape));
        assert_eq!(rows[1].shape.val_cols.len(), 1);
        assert!(matches!(rows[1].vals[0], SqlVal::Int(2)));

        // Nothing to write: a clear error, not a malformed INSERT retried as if the database
        // were down.
        let only_b = task(&[("fields.whitelist", "b")]).to_rows(&[record(
            0,
            &schema,
            Value::Struct(vec![("a".into(), Value::Int(1))]),
        )]);
        assert!(only_b.is_err_and(|e| e.contains("no fields to write")));
        let empty = Arc::new(Schema::new(SchemaType::Struct));
        let empty_row = task(&[]).to_rows(&[record(0, &empty, Value::Struct(vec![]))]);
        assert!(empty_row.is_err_and(|e| e.contains("no fields to write")));
    }
}
