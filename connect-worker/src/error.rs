//! The worker's top-level error types: [`ConnectError`] with its HTTP rendering, and
//! [`WorkerError`] for what stops [`crate::run`].
//!
//! Kafka Connect answers every REST error as `{"error_code": <http status>, "message": "..."}`;
//! clients (and the Confluent CLI) parse that shape, so every handler returns [`ConnectError`]
//! and the status code is decided here, in one place. A client mistake is never a 500.
//!
//! Errors of the layers below (connectors, storage) keep their causes as `source()`; [`chain`]
//! renders an error with all its causes, which is the text of status traces and of 500s.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use rdkafka::types::RDKafkaErrorCode;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("Connector {0} not found")]
    ConnectorNotFound(String),
    #[error("Task {0} not found")]
    TaskNotFound(String),
    #[error("Connector {0} already exists")]
    ConnectorExists(String),
    #[error("{0}")]
    BadRequest(String),
    /// An invalid connector configuration; the message lists every problem.
    #[error("Connector configuration is invalid and contains the following {count} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`", .problems.join("\n"))]
    InvalidConfig { count: usize, problems: Vec<String> },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A request, or the record it would store, is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Internal(String),
}

impl ConnectError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConnectError::ConnectorNotFound(_)
            | ConnectError::TaskNotFound(_)
            | ConnectError::NotFound(_) => StatusCode::NOT_FOUND,
            ConnectError::ConnectorExists(_) | ConnectError::Conflict(_) => StatusCode::CONFLICT,
            ConnectError::BadRequest(_) | ConnectError::InvalidConfig { .. } => {
                StatusCode::BAD_REQUEST
            }
            ConnectError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ConnectError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn invalid_config(problems: Vec<String>) -> Self {
        ConnectError::InvalidConfig {
            count: problems.len(),
            problems,
        }
    }
}

/// A state topic could not be read or written: the request fails with a 500, but for a record
/// too large for the topic (a connector config over the config topic's `max.message.bytes`,
/// or the producer's `message.max.bytes`), which is the client's to fix: a 413.
impl From<StorageError> for ConnectError {
    fn from(e: StorageError) -> Self {
        match &e {
            StorageError::Produce { topic, error }
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) =>
            {
                ConnectError::PayloadTooLarge(format!(
                    "The request is too large to store: its record is over the size limit of topic {topic} (max.message.bytes of the topic, message.max.bytes of the worker's producer); nothing was stored ({error})"
                ))
            }
            _ => ConnectError::Internal(chain(&e)),
        }
    }
}

impl IntoResponse for ConnectError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::json!({"error_code": status.as_u16(), "message": self.to_string()});
        (status, Json(body)).into_response()
    }
}

pub type Result<T, E = ConnectError> = std::result::Result<T, E>;

/// An error followed by each of its causes, `outer: cause: root cause`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// Why the worker could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The REST listener's address could not be read.
    #[error(transparent)]
    Listener(std::io::Error),
    /// The Kafka security settings are invalid, or the broker refused them.
    #[error(transparent)]
    KafkaSecurity(#[from] kafka_client_config::SecurityConfigError),
    /// The Kafka security settings do not suit the group membership client.
    #[error("the group membership client's Kafka settings: {0}")]
    GroupSecurity(String),
    /// The REST API's TLS settings cannot be used.
    #[error(transparent)]
    RestTls(#[from] crate::rest::tls::TlsError),
    /// The REST API's basic-auth users file cannot be used.
    #[error(transparent)]
    RestUsers(#[from] crate::rest::basic_auth::UsersFileError),
    #[error("creating internal topic {topic} on {bootstrap}")]
    InternalTopic {
        topic: String,
        bootstrap: String,
        #[source]
        source: StorageError,
    },
    /// The producer or the offsets topic could not be set up.
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("reading the config topic")]
    ConfigTopic(#[source] StorageError),
    #[error("reading the status topic")]
    StatusTopic(#[source] StorageError),
    /// `--connectors-dir` could not be listed.
    #[error("reading {}", .dir.display())]
    ConnectorsDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A connector file could not be read.
    #[error(transparent)]
    ConnectorFile(std::io::Error),
    #[error("parsing {}", .file.display())]
    ConnectorJson {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: no \"name\"", .file.display())]
    ConnectorFileName { file: PathBuf },
    #[error("{}: no \"config\" object", .file.display())]
    ConnectorFileConfig { file: PathBuf },
    /// The connector of a file was refused (the message says why).
    #[error("{}: {error}", .file.display())]
    CreateConnector { file: PathBuf, error: ConnectError },
    /// `--allowed-paths` names something that is not an absolute path to a directory.
    #[error("--allowed-paths: {0}")]
    AllowedPaths(#[from] crate::allowed_paths::AllowedPathsError),
    /// The REST server failed.
    #[error(transparent)]
    Serve(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_renders_every_cause_once() {
        let e = WorkerError::InternalTopic {
            topic: "connect-configs".into(),
            bootstrap: "b:9092".into(),
            source: StorageError::TopicUnavailable {
                topic: "connect-configs".into(),
            },
        };
        assert_eq!(
            chain(&e),
            "creating internal topic connect-configs on b:9092: topic connect-configs not available"
        );
        let e = ConnectError::from(StorageError::ReadTimeout { topic: "t".into() });
        assert_eq!(e.to_string(), "timed out reading t");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
