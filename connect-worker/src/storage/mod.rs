//! The worker's state lives in Kafka, as in Kafka Connect's distributed mode: connector configs,
//! target states and task configs in a compacted config topic, source offsets in the offsets
//! topic, statuses in the status topic. Nothing is kept on local disk, so a worker killed at
//! any moment starts again from what the broker holds.

pub mod config_topic;
pub mod kafka;
pub mod offset_topic;
pub mod status_topic;

pub use config_topic::{ConfigStore, StoredConnector, TargetState};
pub use offset_topic::OffsetStore;
pub use status_topic::StatusStore;
