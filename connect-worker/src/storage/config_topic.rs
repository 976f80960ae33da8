//! The config topic (`connect-configs`), in Kafka Connect's record format:
//! `connector-<name>` → `{"properties":{...}}` (null when deleted),
//! `target-state-<name>` → `{"state":"STARTED|PAUSED|STOPPED"}`,
//! `task-<name>-<n>` → `{"properties":{...}}` and `commit-<name>` → `{"tasks":N}`.

use std::collections::BTreeMap;

use rdkafka::producer::FutureProducer;
use serde_json::{json, Value as Json};

use super::{kafka, StorageError};
use crate::connectors::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "PAUSED" => TargetState::Paused,
            "STOPPED" => TargetState::Stopped,
            _ => TargetState::Started,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredConnector {
    pub config: Config,
    pub target: TargetState,
    pub tasks: Vec<Config>,
}

pub struct ConfigStore {
    topic: String,
    producer: FutureProducer,
}

fn props(v: &Json) -> Option<Config> {
    let m = v.get("properties")?.as_object()?;
    Some(
        m.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
    )
}

impl ConfigStore {
    pub fn new(topic: &str, producer: FutureProducer) -> Self {
        ConfigStore {
            topic: topic.to_string(),
            producer,
        }
    }

    /// Replays the topic: the connectors that exist now, in creation order.
    pub async fn load(
        &self,
        bootstrap: &str,
    ) -> Result<Vec<(String, StoredConnector)>, StorageError> {
        let (b, t) = (bootstrap.to_string(), self.topic.clone());
        let records = tokio::task::spawn_blocking(move || kafka::read_to_end(&b, &t)).await??;
        let mut order: Vec<String> = Vec::new();
        let mut configs: BTreeMap<String, Config> = BTreeMap::new();
        let mut targets: BTreeMap<String, TargetState> = BTreeMap::new();
        let mut tasks: BTreeMap<String, BTreeMap<usize, Config>> = BTreeMap::new();
        for (key, value) in records {
            let key = String::from_utf8_lossy(&key).into_owned();
            let value: Option<Json> = value.and_then(|v| serde_json::from_slice(&v).ok());
            if let Some(name) = key.strip_prefix("connector-") {
                match value.as_ref().and_then(props) {
                    Some(c) => {
                        if !order.iter().any(|n| n == name) {
                            order.push(name.to_string());
                        }
                        configs.insert(name.to_string(), c);
                    }
                    None => {
                        order.retain(|n| n != name);
                        configs.remove(name);
                        tasks.remove(name);
                    }
                }
            } else if let Some(name) = key.strip_prefix("target-state-") {
                if let Some(s) = value
                    .as_ref()
                    .and_then(|v| v.get("state"))
                    .and_then(Json::as_str)
                {
                    targets.insert(name.to_string(), TargetState::parse(s));
                }
            } else if let Some(rest) = key.strip_prefix("task-") {
                if let Some((name, n)) = rest.rsplit_once('-') {
                    if let (Ok(n), Some(c)) = (n.parse::<usize>(), value.as_ref().and_then(props)) {
                        tasks.entry(name.to_string()).or_default().insert(n, c);
                    }
                }
            } else if let Some(name) = key.strip_prefix("commit-") {
                if let Some(n) = value
                    .as_ref()
                    .and_then(|v| v.get("tasks"))
                    .and_then(Json::as_u64)
                {
                    tasks
                        .entry(name.to_string())
                        .or_default()
                        .retain(|i, _| (*i as u64) < n);
                }
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|name| {
                let config = configs.remove(&name)?;
                let stored = StoredConnector {
                    config,
                    target: targets.get(&name).copied().unwrap_or(TargetState::Started),
                    tasks: tasks
                        .remove(&name)
                        .map(|t| t.into_values().collect())
                        .unwrap_or_default(),
                };
                Some((name, stored))
            })
            .collect())
    }

    async fn put(&self, key: &str, value: Option<Json>) -> Result<(), StorageError> {
        let bytes = value.map(|v| serde_json::to_vec(&v)).transpose()?;
        kafka::send(
            &self.producer,
            &self.topic,
            Some(key.as_bytes()),
            bytes.as_deref(),
            None,
        )
        .await
    }

    pub async fn put_connector(&self, name: &str, config: &Config) -> Result<(), StorageError> {
        self.put(
            &format!("connector-{name}"),
            Some(json!({"properties": config})),
        )
        .await
    }

    pub async fn put_target_state(
        &self,
        name: &str,
        state: TargetState,
    ) -> Result<(), StorageError> {
        self.put(
            &format!("target-state-{name}"),
            Some(json!({"state": state.as_str()})),
        )
        .await
    }

    pub async fn put_tasks(&self, name: &str, tasks: &[Config]) -> Result<(), StorageError> {
        for (i, t) in tasks.iter().enumerate() {
            self.put(&format!("task-{name}-{i}"), Some(json!({"properties": t})))
                .await?;
        }
        self.put(
            &format!("commit-{name}"),
            Some(json!({"tasks": tasks.len()})),
        )
        .await
    }

    pub async fn delete_connector(
        &self,
        name: &str,
        task_count: usize,
    ) -> Result<(), StorageError> {
        self.put(&format!("connector-{name}"), None).await?;
        self.put(&format!("target-state-{name}"), None).await?;
        for i in 0..task_count {
            self.put(&format!("task-{name}-{i}"), None).await?;
        }
        self.put(&format!("commit-{name}"), None).await
    }
}
