//! The config topic (`connect-configs`), in Kafka Connect's record format:
//! `connector-<name>` → `{"properties":{...}}` (null when deleted),
//! `target-state-<name>` → `{"state":"STARTED|PAUSED|STOPPED"}`,
//! `task-<name>-<n>` → `{"properties":{...}}` and `commit-<name>` → `{"tasks":N}`; restart
//! requests (KIP-745) as `restart-connector-<name>` → `{"include-tasks":B,"only-failed":B}`, and
//! ours of one task as `restart-task-<name>-<n>` → `{}` (Kafka forwards a task restart to its
//! owner over REST instead; its workers log and skip this key).
//!
//! Every worker of a group follows the topic ([`ConfigStore::tail`]); task configs take effect
//! at their commit record, so an update is seen whole or not at all.

use std::collections::BTreeMap;

use std::sync::atomic::{AtomicI64, Ordering};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use serde_json::{json, Value as Json};
use tokio::sync::watch;

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
    /// Just past the newest offset this worker wrote.
    written: AtomicI64,
}

/// What the config topic holds, read to `offset` (the next offset to read).
#[derive(Debug, Clone, Default)]
pub struct ConfigView {
    pub offset: i64,
    /// Connectors in creation order.
    pub connectors: Vec<(String, StoredConnector)>,
    /// The newest restart requests read since this worker started following the topic (older
    /// ones, replayed at start-up, were acted on by the workers of their time), oldest first.
    pub restarts: Vec<RestartRequest>,
}

/// A restart request record (`POST /connectors/{name}/restart` with query parameters, or
/// `POST /connectors/{name}/tasks/{id}/restart`), written by the leader; every worker reads it
/// and restarts what it runs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartRequest {
    /// The record's offset: each request is acted on once.
    pub offset: i64,
    pub connector: String,
    /// `Some(id)`: only that task (and not the connector).
    pub task: Option<usize>,
    pub include_tasks: bool,
    pub only_failed: bool,
}

/// Restart requests kept in the view (a worker applying views one at a time never falls this
/// far behind).
const RESTARTS_KEPT: usize = 256;

/// The topic's records folded into connectors, one record at a time.
#[derive(Debug, Default)]
struct ConfigState {
    order: Vec<String>,
    configs: BTreeMap<String, Config>,
    targets: BTreeMap<String, TargetState>,
    /// Task configs as written, applied at their connector's commit record.
    pending: BTreeMap<String, BTreeMap<usize, Config>>,
    tasks: BTreeMap<String, Vec<Config>>,
    restarts: std::collections::VecDeque<RestartRequest>,
}

impl ConfigState {
    /// Folds one record in; `live` (read after start-up) restart requests are kept, at `offset`.
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>, live: Option<i64>) {
        let key = String::from_utf8_lossy(key).into_owned();
        let value: Option<Json> = value.and_then(|v| serde_json::from_slice(v).ok());
        if let Some(rest) = key.strip_prefix("restart-") {
            if let (Some(offset), Some(v)) = (live, value.as_ref()) {
                if let Some(req) = restart_request(offset, rest, v) {
                    if self.restarts.len() == RESTARTS_KEPT {
                        self.restarts.pop_front();
                    }
                    self.restarts.push_back(req);
                }
            }
        } else if let Some(name) = key.strip_prefix("connector-") {
            match value.as_ref().and_then(props) {
                Some(c) => {
                    if !self.order.iter().any(|n| n == name) {
                        self.order.push(name.to_string());
                    }
                    self.configs.insert(name.to_string(), c);
                }
                None => {
                    self.order.retain(|n| n != name);
                    self.configs.remove(name);
                    self.tasks.remove(name);
                    self.pending.remove(name);
                    self.targets.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            if let Some(s) = value
                .as_ref()
                .and_then(|v| v.get("state"))
                .and_then(Json::as_str)
            {
                self.targets.insert(name.to_string(), TargetState::parse(s));
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            if let Some((name, n)) = rest.rsplit_once('-') {
                if let (Ok(n), Some(c)) = (n.parse::<usize>(), value.as_ref().and_then(props)) {
                    self.pending
                        .entry(name.to_string())
                        .or_default()
                        .insert(n, c);
                }
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            if let Some(n) = value
                .as_ref()
                .and_then(|v| v.get("tasks"))
                .and_then(Json::as_u64)
            {
                // A commit makes the task configs written before it the connector's tasks, all
                // at once (a reader never runs half of an update).
                let written = self.pending.remove(name).unwrap_or_default();
                let previous = self.tasks.remove(name).unwrap_or_default();
                let tasks: Vec<Config> = (0..n as usize)
                    .map_while(|i| written.get(&i).or_else(|| previous.get(i)).cloned())
                    .collect();
                self.tasks.insert(name.to_string(), tasks);
            }
        }
    }

    fn connectors(&self) -> Vec<(String, StoredConnector)> {
        self.order
            .iter()
            .filter_map(|name| {
                let config = self.configs.get(name)?.clone();
                let stored = StoredConnector {
                    config,
                    target: self
                        .targets
                        .get(name)
                        .copied()
                        .unwrap_or(TargetState::Started),
                    tasks: self.tasks.get(name).cloned().unwrap_or_default(),
                };
                Some((name.clone(), stored))
            })
            .collect()
    }
}

/// The tail's thread: reads records as they come and publishes the view after each burst.
fn tail_loop(
    consumer: BaseConsumer,
    topic: &str,
    end: i64,
    tx: watch::Sender<ConfigView>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut state = ConfigState::default();
    let mut next = 0i64;
    let mut published = -1i64;
    while !stop.is_cancelled() && !tx.is_closed() {
        let mut read_any = false;
        // Drain what is fetched, then publish once.
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            match consumer.poll(wait) {
                Some(Ok(m)) => {
                    let live = (m.offset() >= end).then_some(m.offset());
                    state.apply(m.key().unwrap_or_default(), m.payload(), live);
                    next = m.offset() + 1;
                    read_any = true;
                    wait = std::time::Duration::ZERO;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, topic, "reading the config topic");
                    break;
                }
                None => break,
            }
        }
        // The consumer's position passes offsets that hold no record (compacted away, or
        // transaction markers), which `next` alone would never reach.
        let position = consumer
            .position()
            .ok()
            .and_then(|tpl| {
                tpl.find_partition(topic, 0)
                    .and_then(|e| e.offset().to_raw())
            })
            .unwrap_or(-1);
        let offset = next.max(position);
        if offset >= end && (read_any || offset != published) {
            published = offset;
            tx.send_replace(ConfigView {
                offset,
                connectors: state.connectors(),
                restarts: state.restarts.iter().cloned().collect(),
            });
        }
    }
}

/// A restart request from the rest of its key (after `restart-`) and its value.
fn restart_request(offset: i64, key: &str, v: &Json) -> Option<RestartRequest> {
    let flag = |k: &str| v.get(k).and_then(Json::as_bool).unwrap_or(false);
    if let Some(name) = key.strip_prefix("connector-") {
        return Some(RestartRequest {
            offset,
            connector: name.to_string(),
            task: None,
            include_tasks: flag("include-tasks"),
            only_failed: flag("only-failed"),
        });
    }
    let (name, id) = key.strip_prefix("task-")?.rsplit_once('-')?;
    Some(RestartRequest {
        offset,
        connector: name.to_string(),
        task: Some(id.parse().ok()?),
        include_tasks: true,
        only_failed: false,
    })
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
            written: AtomicI64::new(0),
        }
    }

    /// Replays the topic: the connectors that exist now, in creation order.
    pub async fn load(
        &self,
        bootstrap: &kafka::KafkaConnection,
    ) -> Result<Vec<(String, StoredConnector)>, StorageError> {
        let (b, t) = (bootstrap.clone(), self.topic.clone());
        let records = tokio::task::spawn_blocking(move || kafka::read_to_end(&b, &t)).await??;
        let mut state = ConfigState::default();
        for (key, value) in records {
            state.apply(&key, value.as_deref(), None);
        }
        Ok(state.connectors())
    }

    /// Follows the topic on a thread of its own until `stop` is cancelled: the returned view
    /// has read everything the topic held when this was called, and changes with every record
    /// read after (so every worker of a group sees every config change, as Kafka Connect's
    /// `KafkaConfigBackingStore` does).
    pub async fn tail(
        &self,
        bootstrap: &kafka::KafkaConnection,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<watch::Receiver<ConfigView>, StorageError> {
        let (b, t) = (bootstrap.clone(), self.topic.clone());
        let (consumer, ends) =
            tokio::task::spawn_blocking(move || kafka::tail_consumer(&b, &t)).await??;
        let end = ends.get(&0).copied().unwrap_or(0);
        let (tx, mut rx) = watch::channel(ConfigView {
            offset: -1,
            ..ConfigView::default()
        });
        let topic = self.topic.clone();
        std::thread::Builder::new()
            .name("config-tail".into())
            .spawn(move || tail_loop(consumer, &topic, end, tx, stop))
            .map_err(|e| StorageError::Thread(e.to_string()))?;
        let caught_up = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            rx.wait_for(|v| v.offset >= end),
        )
        .await
        .map(|r| r.is_ok());
        match caught_up {
            Ok(true) => Ok(rx),
            _ => Err(StorageError::ReadTimeout {
                topic: self.topic.clone(),
            }),
        }
    }

    /// The offset just past the newest record this worker wrote to the topic.
    pub fn written(&self) -> i64 {
        self.written.load(Ordering::SeqCst)
    }

    async fn put(&self, key: &str, value: Option<Json>) -> Result<(), StorageError> {
        let bytes = value.map(|v| serde_json::to_vec(&v)).transpose()?;
        let offset = kafka::send_at(
            &self.producer,
            &self.topic,
            Some(key.as_bytes()),
            bytes.as_deref(),
            None,
        )
        .await?;
        self.written.fetch_max(offset + 1, Ordering::SeqCst);
        Ok(())
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

    /// A restart request of the connector (KIP-745's record) for every worker to act on.
    pub async fn put_restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<(), StorageError> {
        self.put(
            &format!("restart-connector-{name}"),
            Some(json!({"include-tasks": include_tasks, "only-failed": only_failed})),
        )
        .await
    }

    /// A restart request of one task, for its owner to act on.
    pub async fn put_task_restart(&self, name: &str, id: usize) -> Result<(), StorageError> {
        self.put(&format!("restart-task-{name}-{id}"), Some(json!({})))
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
