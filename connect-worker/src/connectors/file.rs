//! Kafka's quickstart connectors: `FileStreamSourceConnector` turns the lines of a file into
//! string records (resuming from the byte position stored in `connect-offsets`), and
//! `FileStreamSinkConnector` appends each record's value as a line.

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
use crate::data::{Schema, SchemaType, Value};

pub struct FileStreamSourceConnector;
pub struct FileStreamSinkConnector;

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
        let topic = config.str_or("topic", "");
        if topic.contains(',') {
            return vec![("topic".into(), format!("Invalid value {topic} for configuration topic: 'topic' in FileStreamSourceConnector configuration requires definition of a single topic."))];
        }
        Vec::new()
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
        })))
    }
}

struct FileSourceTask {
    file: String,
    topic: String,
    batch: usize,
    position: u64,
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
        if let Ok(f) = tokio::fs::File::open(&self.file).await {
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
    async fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![config.clone(); max_tasks.max(1)])
    }
    fn create_task(&self, config: &Config) -> Result<Task> {
        Ok(Task::Sink(Box::new(FileSinkTask {
            file: config.str_or("file", "").to_string(),
            out: None,
        })))
    }
}

struct FileSinkTask {
    file: String,
    out: Option<tokio::fs::File>,
}

#[async_trait]
impl SinkTask for FileSinkTask {
    async fn start(&mut self) -> Result<()> {
        let f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .await?;
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
