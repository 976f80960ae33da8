//! What the order-service and the user-service share, so that the two cannot drift apart on it:
//! the JSON error body and the extractors that produce it ([`error`], [`extract`]), the flags
//! every service takes ([`config`]), the database deadline ([`db`]), start-up, registration and
//! graceful shutdown ([`startup`]), and what their binaries do around `run` ([`process`]).
//!
//! Each service keeps what is its own: its routes, its extra error variants (through
//! [`error::ServiceError`]), its extra flags and its wiring.

pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod process;
pub mod startup;

pub use config::CommonConfig;
pub use error::{ApiError, FieldError, ServiceError};
pub use startup::StartupError;
