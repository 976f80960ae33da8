//! The worker's error type and its HTTP rendering.
//!
//! Kafka Connect answers every REST error as `{"error_code": <http status>, "message": "..."}`;
//! clients (and the Confluent CLI) parse that shape, so every handler returns [`ConnectError`]
//! and the status code is decided here, in one place. A client mistake is never a 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

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

impl From<anyhow::Error> for ConnectError {
    fn from(e: anyhow::Error) -> Self {
        ConnectError::Internal(format!("{e:#}"))
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
