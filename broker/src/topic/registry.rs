//! The registry of topics: their ids, configs and partitions, persisted in `topics.json` in the
//! data directory so that a restarted broker serves the same topics. Partition logs live in
//! `<data-dir>/<topic>-<partition>/`, the layout Kafka uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::config::{self, TopicConfigs};
use super::name;
use super::partition::Partition;
use crate::config::Config;
use crate::durable_file::write_atomically;
use crate::log::LogError;

/// Why a topic operation failed; each maps to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("{0}")]
    InvalidName(String),
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    #[error("topic '{0}' does not exist")]
    Unknown(String),
    #[error("topic '{0}' is a Kafka internal topic holding the broker's own state; clients cannot delete it or its records")]
    Internal(String),
    #[error("topic name '{0}' is reserved for Kafka's internal use")]
    Reserved(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("storage error: {0}")]
    Log(#[from] LogError),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
}

impl TopicError {
    /// The Kafka error code clients expect for this error.
    pub fn code(&self) -> i16 {
        use kafka_protocol::error::ResponseError as E;
        match self {
            TopicError::InvalidName(_) | TopicError::Internal(_) | TopicError::Reserved(_) => {
                E::InvalidTopicException.code()
            }
            TopicError::AlreadyExists(_) => E::TopicAlreadyExists.code(),
            TopicError::Unknown(_) => E::UnknownTopicOrPartition.code(),
            TopicError::InvalidPartitions(_) => E::InvalidPartitions.code(),
            TopicError::InvalidReplicationFactor(_) => E::InvalidReplicationFactor.code(),
            TopicError::InvalidConfig(_) => E::InvalidConfig.code(),
            TopicError::Log(_) | TopicError::Io(_) => E::KafkaStorageError.code(),
        }
    }
}

/// A topic and its partitions.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    partitions: RwLock<Vec<Arc<Partition>>>,
    configs: RwLock<TopicConfigs>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let index = usize::try_from(index).ok()?;
        self.partitions.read().get(index).cloned()
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().clone()
    }

    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.read().len()).unwrap_or(i32::MAX)
    }

    pub fn configs(&self) -> TopicConfigs {
        self.configs.read().clone()
    }

    /// Kafka's internal topics (see [`name::INTERNAL_TOPICS`]) are flagged as such in
    /// Metadata and cannot be deleted by clients. Other names with a leading `__` are ordinary
    /// topics, as in Kafka.
    pub fn is_internal(&self) -> bool {
        name::is_internal(&self.name)
    }
}

#[derive(Serialize, Deserialize)]
struct StoredTopic {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: TopicConfigs,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredMetadata {
    cluster_id: String,
    topics: Vec<StoredTopic>,
}

/// All topics of this broker.
pub struct TopicRegistry {
    config: Arc<Config>,
    cluster_id: String,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serializes changes to the set of topics and their persistence.
    change: tokio::sync::Mutex<()>,
}

const METADATA_FILE: &str = "topics.json";

impl TopicRegistry {
    /// Loads the topics persisted in the data directory, opening (and recovering) every
    /// partition log, and removes partition directories no topic owns (left by a crash in the
    /// middle of a create or delete).
    pub fn open(config: Arc<Config>) -> Result<Self, TopicError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)?;
        let path = dir.join(METADATA_FILE);
        let stored: StoredMetadata = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                TopicError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoredMetadata {
                cluster_id: new_cluster_id(),
                topics: Vec::new(),
            },
            Err(e) => return Err(e.into()),
        };
        let mut topics = HashMap::new();
        for t in stored.topics {
            let log_config = t.configs.log_config(&config);
            let mut partitions = Vec::new();
            for p in 0..t.partitions {
                let pdir = partition_dir(dir, &t.name, p);
                partitions.push(Arc::new(Partition::open(
                    &t.name,
                    p,
                    &pdir,
                    log_config.clone(),
                )?));
            }
            tracing::info!(topic = %t.name, partitions = t.partitions, "loaded topic");
            topics.insert(
                t.name.clone(),
                Arc::new(Topic {
                    name: t.name,
                    id: t.id,
                    partitions: RwLock::new(partitions),
                    configs: RwLock::new(t.configs),
                }),
            );
        }
        let registry = TopicRegistry {
            config,
            cluster_id: stored.cluster_id,
            topics: RwLock::new(topics),
            change: tokio::sync::Mutex::new(()),
        };
        registry.persist()?;
        registry.remove_orphan_dirs()?;
        Ok(registry)
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// All topics, sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.topics.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Checks a would-be topic without creating it (CreateTopics with validate_only).
    pub fn validate_new(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &TopicConfigs,
    ) -> Result<i32, TopicError> {
        name::validate(name).map_err(TopicError::InvalidName)?;
        if self.topics.read().contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let partitions = match partitions {
            -1 => self.config.default_partitions,
            n if n >= 1 => n,
            n => {
                return Err(TopicError::InvalidPartitions(format!(
                    "number of partitions must be larger than 0, or -1 for the default, not {n}"
                )))
            }
        };
        if partitions > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "{partitions} partitions is more than this broker allows (100000)"
            )));
        }
        if replication_factor != -1 && replication_factor != 1 {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "replication factor {replication_factor} is larger than the number of brokers (1)"
            )));
        }
        for (k, v) in &configs.0 {
            config::validate(k, v).map_err(TopicError::InvalidConfig)?;
        }
        Ok(partitions)
    }

    /// Creates a topic (partitions = -1 means the broker default).
    pub async fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: TopicConfigs,
    ) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.change.lock().await;
        let partitions = self.validate_new(name, partitions, replication_factor, &configs)?;
        let log_config = configs.log_config(&self.config);
        let mut opened = Vec::new();
        for p in 0..partitions {
            let pdir = partition_dir(&self.config.data_dir, name, p);
            // A leftover directory from a crashed delete must not leak old records.
            if pdir.exists() {
                std::fs::remove_dir_all(&pdir)?;
            }
            opened.push(Arc::new(Partition::open(
                name,
                p,
                &pdir,
                log_config.clone(),
            )?));
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions: RwLock::new(opened),
            configs: RwLock::new(configs),
        });
        self.topics.write().insert(name.to_string(), topic.clone());
        if let Err(e) = self.persist() {
            self.topics.write().remove(name);
            return Err(e);
        }
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its data. Internal topics are refused ([`TopicError::Internal`]):
    /// the broker's own state lives there.
    pub async fn delete(&self, name: &str) -> Result<(), TopicError> {
        if name::is_internal(name) {
            return Err(TopicError::Internal(name.to_string()));
        }
        let _guard = self.change.lock().await;
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.persist()?;
        for p in topic.partitions() {
            if let Err(e) = std::fs::remove_dir_all(p.dir()) {
                tracing::warn!(dir = %p.dir().display(), error = %e, "could not remove partition directory");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _guard = self.change.lock().await;
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = topic.partition_count();
        if count <= current {
            return Err(TopicError::InvalidPartitions(format!(
                "topic currently has {current} partitions, which is higher than or equal to the requested {count}"
            )));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "{count} partitions is more than this broker allows (100000)"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let log_config = topic.configs().log_config(&self.config);
        for p in current..count {
            let pdir = partition_dir(&self.config.data_dir, name, p);
            if pdir.exists() {
                std::fs::remove_dir_all(&pdir)?;
            }
            let partition = Arc::new(Partition::open(name, p, &pdir, log_config.clone())?);
            topic.partitions.write().push(partition);
        }
        self.persist()?;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides (already validated by the caller with
    /// [`config::validate`]) and applies them to its partitions.
    pub async fn set_configs(&self, name: &str, configs: TopicConfigs) -> Result<(), TopicError> {
        let _guard = self.change.lock().await;
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let previous = std::mem::replace(&mut *topic.configs.write(), configs.clone());
        if let Err(e) = self.persist() {
            *topic.configs.write() = previous;
            return Err(e);
        }
        let log_config = configs.log_config(&self.config);
        for p in topic.partitions() {
            p.set_config(log_config.clone());
        }
        Ok(())
    }

    /// Writes `topics.json` atomically: temp file, fsync, rename, fsync of the directory.
    fn persist(&self) -> Result<(), TopicError> {
        let stored = StoredMetadata {
            cluster_id: self.cluster_id.clone(),
            topics: self
                .all()
                .iter()
                .map(|t| StoredTopic {
                    name: t.name.clone(),
                    id: t.id,
                    partitions: t.partition_count(),
                    configs: t.configs(),
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&stored)
            .map_err(|e| TopicError::Io(std::io::Error::other(e)))?;
        write_atomically(&self.config.data_dir, METADATA_FILE, &bytes)?;
        Ok(())
    }

    fn remove_orphan_dirs(&self) -> Result<(), TopicError> {
        let topics = self.topics.read();
        for entry in std::fs::read_dir(&self.config.data_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let file_name = entry.file_name();
            let Some(dir_name) = file_name.to_str() else {
                continue;
            };
            let Some((topic, partition)) = dir_name.rsplit_once('-') else {
                continue;
            };
            let Ok(partition) = partition.parse::<i32>() else {
                continue;
            };
            let owned = topics
                .get(topic)
                .is_some_and(|t| partition < t.partition_count());
            if !owned {
                tracing::warn!(dir = dir_name, "removing partition directory of no topic");
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    /// Flushes every partition (shutdown).
    pub fn flush_all(&self) {
        for topic in self.all() {
            for p in topic.partitions() {
                if let Err(e) = p.flush() {
                    tracing::error!(topic = %topic.name, partition = p.index, error = %e, "flush failed");
                }
            }
        }
    }
}

pub(crate) fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

fn new_cluster_id() -> String {
    // Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 chars).
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}
