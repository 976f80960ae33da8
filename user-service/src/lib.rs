//! user-service: users with argon2-hashed passwords, JWT login, and each user's orders fetched
//! from a live order-service instance found through the broker's registry topic (round-robin,
//! skipping instances that do not answer). Nothing but MariaDB and Kafka is needed to run it.

pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod extract;
pub mod orders_client;
pub mod routes;
pub mod startup;

pub use config::Config;
pub use startup::{run, StartupError, SERVICE_NAME};
