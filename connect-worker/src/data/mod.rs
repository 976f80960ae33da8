//! Kafka Connect's data model: schemas and the values they describe.
//!
//! Converters turn bytes into these and connectors turn these into rows (or lines); keeping one
//! model in between is what lets any converter feed any connector.

pub mod schema;
pub mod value;

pub use schema::{Field, Schema, SchemaType};
pub use value::Value;
