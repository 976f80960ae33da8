//! order-service: accepts orders over HTTP and publishes them to the `orders` topic; the connect
//! worker's JDBC sink is the only writer of the `orders` table, and this service reads it back.
//!
//! A 201 means the order's Kafka transaction committed, any error answer that it never will (see
//! [`transactions`]). Because the
//! table is filled asynchronously, each 201 carries an `X-Consistency-Token` naming the record's
//! position; a GET that sends it back waits until the sink has applied that position (see
//! [`consistency`]), which gives read-your-writes across instances.

pub mod config;
pub mod consistency;
pub mod db;
pub mod domain;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod publisher;
pub mod routes;
pub mod startup;
pub mod transactions;

pub use config::Config;
pub use startup::{run, StartupError, SERVICE_NAME};
