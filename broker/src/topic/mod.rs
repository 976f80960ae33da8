//! Topics: names, configs, partitions, and the registry that keeps them on disk.

pub mod config;
pub(crate) mod internal;
pub mod name;
mod partition;
pub(crate) mod producer_state;
mod registry;
pub mod txn_index;

pub use config::TopicConfigs;
pub use partition::{AppendError, Appended, Isolation, Partition, ReadResult};
pub use registry::{Topic, TopicError, TopicRegistry};
