//! A small async Kafka client used by the `broker` admin subcommands.
//!
//! It speaks only the wire protocol (through `kafka-protocol`), never the broker's internals, so
//! the same commands work against this broker and against any Kafka-compatible cluster. It is
//! deliberately minimal: one request in flight per connection, no fetch sessions, no
//! idempotence; enough for admin and console tools, not for a production client.

pub mod acls;
pub mod admin;
mod cluster;
mod connection;
pub mod consumer_protocol;
pub mod records;
pub mod security;

pub use cluster::Cluster;
pub use connection::{open_stream, Connection, Stream};
pub use security::ClientSecurity;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

/// Why a request could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not reach any bootstrap server ({0})")]
    NoBootstrap(String),
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr} did not answer within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u128 },
    #[error("connection to {0} is unusable after an earlier failure")]
    Broken(String),
    #[error("{addr} sent a malformed response: {detail}")]
    Malformed { addr: String, detail: String },
    #[error("could not encode a {api:?} request: {detail}")]
    Encode { api: ApiKey, detail: String },
    #[error("{addr} supports no version of {api:?} that this client implements")]
    Unsupported { addr: String, api: ApiKey },
    #[error("{context}: {}{}", error_name(*.error), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        context: String,
        error: ResponseError,
        message: Option<String>,
    },
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// A broker error for `code` (which must be non-zero), with the context it happened in.
    pub fn broker(context: impl Into<String>, code: i16, message: Option<&str>) -> Self {
        ClientError::Broker {
            context: context.into(),
            error: ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code)),
            message: message.filter(|m| !m.is_empty()).map(str::to_string),
        }
    }

    /// Whether retrying (after refreshing metadata) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Broker { error, .. } => error.is_retriable(),
            _ => false,
        }
    }
}

/// `Ok(())` for error code 0, else a [`ClientError::Broker`].
pub fn check(
    code: i16,
    context: impl FnOnce() -> String,
    message: Option<&str>,
) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::broker(context(), code, message))
    }
}

/// The Kafka spelling of an error, e.g. `TOPIC_ALREADY_EXISTS` for `TopicAlreadyExists`, as the
/// Java tools print it.
pub fn error_name(error: ResponseError) -> String {
    if let ResponseError::Unknown(code) = error {
        return format!("UNKNOWN_ERROR_CODE_{code}");
    }
    let camel = format!("{error:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafka_style() {
        assert_eq!(
            error_name(ResponseError::TopicAlreadyExists),
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(
            error_name(ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            error_name(ResponseError::Unknown(999)),
            "UNKNOWN_ERROR_CODE_999"
        );
        let e = ClientError::broker("creating topic t", 36, Some("Topic 't' already exists."));
        assert_eq!(
            e.to_string(),
            "creating topic t: TOPIC_ALREADY_EXISTS: Topic 't' already exists."
        );
    }
}
