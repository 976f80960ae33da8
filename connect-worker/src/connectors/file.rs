//! Kafka's quickstart connectors: `FileStreamSourceConnector` turns the lines of a file into
//! string records (resuming from the byte position stored in `connect-offsets`), and
//! `FileStreamSinkConnector` appends each record's value as a line.
//!
//! Both use only files inside the worker's `--allowed-paths` ([`AllowedPaths`]): checked when
//! the config is validated (a 400 naming the path) and again every time a task opens the file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};

use super::config_def::{ConfigExt, ConfigKey, ConfigType};
use super::{
    Config, ConnectorKind, ConnectorPlugin, OffsetReader, Result, SinkError, SinkRecord, SinkTask,
    SourceRecord, SourceTask, Task, TopicPartition,
};
use crate::allowed_paths::AllowedPaths;
use crate::data::{Schema, SchemaType, Value};

pub struct FileStreamSourceConnector {
    allowed: AllowedPaths,
}

pub struct FileStreamSinkConnector {
    allowed: AllowedPaths,
}

impl FileStreamSourceConnector {
    pub fn new(allowed: AllowedPaths) -> Self {
        FileStreamSourceConnector { allowed }
    }
}

impl FileStreamSinkConnector {
    pub fn new(allowed: AllowedPaths) -> Self {
        FileStreamSinkConnector { allowed }
    }
}

/// The problem with the `file` setting, if its path is not allowed (a missing one is reported
/// by the required-key check).
fn check_file(allowed: &AllowedPaths, config: &Config) -> Option<(String, String)> {
    let file = config.str_or("file", "");
    if file.is_empty() {
        return None;
    }
    allowed.resolve(file).err().map(|e| {
        (
            "file".to_string(),
            format!("Invalid value {file} for configuration file: {e}"),
        )
    })
}

#[async_trait]
impl ConnectorPlugin for FileStreamSourceConnector {
    fn class(&self) -> &'static str {
        "org.apache.kafka.connect.file.FileStreamSourceConnector"
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Source
    }
    fn config_keys(&self) -> Vec<ConfigKey> {
        vec![
            ConfigKey::new(
                "file",
                ConfigType::String,
                None,
                "Common",
                "Source filename.",
            ),
            ConfigKey::new(
                "topic",
                ConfigType::String,
                None,
                "Common",
                "The topic to publish data to.",
            ),
            ConfigKey::new(
                "batch.size",
                ConfigType::Int,
                Some("2000"),
                "Common",
                "Maximum lines per poll.",
            ),
        ]
    }
    fn validate(&self, config: &Config) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> =
            check_file(&self.allowed, config).into_iter().collect();
        let topic = config.str_or("topic", "");
        if topic.contains(',') {
            problems.push(("topic".into(), format!("Invalid value {topic} for configuration topic: 'topic' in FileStreamSourceConnector configuration requires definition of a single topic.")));
        }
        problems
    }
    async fn task_configs(&self, config: &Config, _max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![config.clone()])
    }
    fn create_task(&self, config: &Config) -> Result<Task> {
        Ok(Task::Source(Box::new(FileSourceTask {
            file: config.str_or("file", "").to_string(),
            topic: config.str_or("topic", "").to_string(),
            batch: config.parse_or("batch.size", 2000usize).max(1),
            position: 0,
            allowed: self.allowed.clone(),
        })))
    }
}

struct FileSourceTask {
    file: String,
    topic: String,
    batch: usize,
    position: u64,
    allowed: AllowedPaths,
}

#[async_trait]
impl SourceTask for FileSourceTask {
    async fn start(&mut self, offsets: Arc<dyn OffsetReader>) -> Result<()> {
        self.position = offsets
            .offset(&json!({"filename": self.file}))
            .and_then(|o| o.get("position").and_then(|p| p.as_u64()))
            .unwrap_or(0);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let mut records = Vec::new();
        // Checked at every open: a link swapped in since validation is refused, not followed.
        let opened = self
            .allowed
            .open(&self.file, tokio::fs::OpenOptions::new().read(true))
            .await;
        let file = match opened {
            Ok(f) => Some(f),
            // Not there (yet): as Kafka's task, wait for it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(
                    std::io::Error::new(e.kind(), format!("opening {}: {e}", self.file)).into(),
                )
            }
        };
        if let Some(f) = file {
            let mut reader = BufReader::new(f);
            reader.seek(std::io::SeekFrom::Start(self.position)).await?;
            let mut line = String::new();
            while records.len() < self.batch {
                line.clear();
                let n = reader.read_line(&mut line).await?;
                // Only whole lines: a line still being written is read next time.
                if n == 0 || !line.ends_with('\n') {
                    break;
                }
                self.position += n as u64;
                let text = line.trim_end_matches(['\n', '\r']).to_string();
                records.push(SourceRecord {
                    source_partition: json!({"filename": self.file}),
                    source_offset: json!({"position": self.position}),
                    topic: self.topic.clone(),
                    key_schema: None,
                    key: Value::Null,
                    value_schema: Some(Schema::new(SchemaType::String)),
                    value: Value::String(text),
                    timestamp: None,
                });
            }
        }
        if records.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(records)
    }
}

#[async_trait]
impl ConnectorPlugin for FileStreamSinkConnector {
    fn class(&self) -> &'static str {
        "org.apache.kafka.connect.file.FileStreamSinkConnector"
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sink
    }
    fn config_keys(&self) -> Vec<ConfigKey> {
        vec![ConfigKey::new(
            "file",
            ConfigType::String,
            None,
            "Common",
            "Destination filename.",
        )]
    }
    fn validate(&self, config: &Config) -> Vec<(String, String)> {
        check_file(&self.allowed, config).into_iter().collect()
    }
    async fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![config.clone(); max_tasks.max(1)])
    }
    fn create_task(&self, config: &Config) -> Result<Task> {
        Ok(Task::Sink(Box::new(FileSinkTask {
            file: config.str_or("file", "").to_string(),
            out: None,
            allowed: self.allowed.clone(),
        })))
    }
}

struct FileSinkTask {
    file: String,
    out: Option<tokio::fs::File>,
    allowed: AllowedPaths,
}

#[async_trait]
impl SinkTask for FileSinkTask {
    async fn start(&mut self) -> Result<()> {
        let f = self
            .allowed
            .open(
                &self.file,
                tokio::fs::OpenOptions::new().create(true).append(true),
            )
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("opening {}: {e}", self.file)))?;
        self.out = Some(f);
        Ok(())
    }

    async fn put(
        &mut self,
        records: Vec<SinkRecord>,
        _positions: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), SinkError> {
        let Some(out) = self.out.as_mut() else {
            return Err(SinkError::Fatal("task not started".into()));
        };
        let mut buf = String::new();
        for r in &records {
            buf.push_str(&r.value.to_text());
            buf.push('\n');
        }
        out.write_all(buf.as_bytes())
            .await
            .map_err(|e| SinkError::Retriable(e.to_string()))?;
        out.flush()
            .await
            .map_err(|e| SinkError::Retriable(e.to_string()))?;
        Ok(())
    }
}
