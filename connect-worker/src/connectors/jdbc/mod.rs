//! Confluent's JDBC connectors, for MariaDB/MySQL over sqlx: the sink writes records into
//! tables exactly once, the source turns tables into topics.

pub mod dialect;
pub mod sink;
pub mod source;
pub mod url;
