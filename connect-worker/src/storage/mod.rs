//! The worker's state lives in Kafka, as in Kafka Connect's distributed mode: connector configs,
//! target states and task configs in a compacted config topic, source offsets in the offsets
//! topic, statuses in the status topic. Nothing is kept on local disk, so a worker killed at
//! any moment starts again from what the broker holds.
//!
//! [`StorageError`] is what reading or writing those topics fails with.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

pub mod config_topic;
pub mod kafka;
pub mod offset_topic;
pub mod status_topic;

pub use config_topic::{ConfigStore, ConfigView, RestartRequest, StoredConnector, TargetState};
pub use offset_topic::OffsetStore;
pub use status_topic::StatusStore;

/// A state topic could not be created, read or written.
///
/// Variants whose message already carries the Kafka error do not also return it as `source()`,
/// so [`crate::error::chain`] prints it once.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Creating a Kafka client, or a client call (metadata, watermarks, assignment) failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The CreateTopics request itself failed.
    #[error("CreateTopics")]
    CreateTopics(#[source] KafkaError),
    /// The broker refused to create a topic (other than because it exists).
    #[error("creating topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("topic {topic} not available")]
    TopicUnavailable { topic: String },
    #[error("timed out reading {topic}")]
    ReadTimeout { topic: String },
    #[error("reading {topic}: {error}")]
    Read { topic: String, error: KafkaError },
    #[error("producing to {topic}: {error}")]
    Produce { topic: String, error: KafkaError },
    /// A record could not be encoded as JSON.
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    /// A thread to follow a topic could not be started.
    #[error("starting a thread: {0}")]
    Thread(String),
    /// The blocking thread doing the Kafka calls panicked or was cancelled.
    #[error(transparent)]
    Blocking(#[from] tokio::task::JoinError),
}
