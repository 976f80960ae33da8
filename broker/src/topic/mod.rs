//! Topics: names, configs, partitions, and the registry that keeps them on disk.

pub mod config;
pub mod name;
mod partition;
mod registry;

pub use config::TopicConfigs;
pub use partition::{Partition, ReadResult};
pub use registry::{Topic, TopicError, TopicRegistry};
