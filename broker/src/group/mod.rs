//! Consumer groups with Kafka's classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup)
//! and committed offsets. The broker is every group's coordinator; assignors run in the clients.

pub mod configs;
pub mod consumer_protocol;
mod coordinator;
pub mod metadata_record;
pub mod offsets;

pub use coordinator::{
    GroupConfig, GroupCoordinator, GroupSummary, JoinOutcome, JoinRequest, JoinResult,
    MemberSummary, MetadataSink, SyncResult,
};
