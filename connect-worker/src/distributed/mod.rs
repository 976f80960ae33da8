//! Distributed mode: the pieces that let several workers share connectors and tasks as Kafka
//! Connect's `DistributedHerder` does (issue 13).
//!
//! Workers join a group of protocol type `connect` through the Kafka group coordinator; the
//! group's member metadata and the leader's assignments are opaque bytes to the broker, and
//! their formats are Kafka Connect's own so our workers could share a group with Kafka's:
//!
//! - [`protocol`]: `ConnectProtocol` (v0, `default`) and `IncrementalCooperativeConnectProtocol`
//!   (v1 `compatible`, v2 `sessioned`) member metadata and assignments, encoded and decoded
//!   without panics on any input.
//! - [`assignor`]: the leader's incremental cooperative assignment (KIP-415): work moves only
//!   when it must, lost work waits up to `scheduled.rebalance.max.delay.ms` for its worker.
//!
//! - [`client`]: group membership over the Kafka protocol (librdkafka runs only `consumer`
//!   groups), over TLS and SASL with the worker's `--kafka-*` settings, through
//!   `broker::client`'s connection set-up and SCRAM client.
//! - [`coordinator`]: a worker's membership loop, handing each assignment to the herder.
//! - [`group`]: what connects the two in a running worker: config changes to the coordinator,
//!   assignments to the herder.

pub mod assignor;
pub mod client;
pub mod coordinator;
pub mod group;
pub mod protocol;

pub use group::start;
