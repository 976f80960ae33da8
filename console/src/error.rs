//! What goes wrong, and the page each answer gets: a user's mistake is a 400 with the reason
//! (forms show theirs next to the field instead), a missing topic, group or connector a 404, a
//! cluster or Connect worker that cannot be reached a 503 page saying which; never a panic.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use broker::client::ClientError;
use kafka_protocol::error::ResponseError;

use crate::layout;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The cluster cannot be reached (connection refused, timeout).
    #[error("the Kafka cluster at {servers} is unavailable: {reason}")]
    KafkaUnavailable { servers: String, reason: String },
    /// The cluster answered with an error.
    #[error("{0}")]
    Kafka(ClientError),
    /// No Connect worker answered.
    #[error("Kafka Connect is unavailable: {0}")]
    ConnectUnavailable(String),
    /// Kafka Connect answered with an error status.
    #[error("Kafka Connect answered {status}: {message}")]
    Connect { status: u16, message: String },
    #[error("{what} {name:?} does not exist")]
    NotFound { what: &'static str, name: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("this console is read-only")]
    ReadOnly,
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::KafkaUnavailable { .. } | ConsoleError::ConnectUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ConsoleError::Kafka(ClientError::Broker { error, .. }) => match error {
                ResponseError::UnknownTopicOrPartition | ResponseError::GroupIdNotFound => {
                    StatusCode::NOT_FOUND
                }
                ResponseError::TopicAlreadyExists
                | ResponseError::InvalidTopicException
                | ResponseError::InvalidPartitions
                | ResponseError::InvalidReplicationFactor
                | ResponseError::InvalidConfig
                | ResponseError::InvalidRequest
                | ResponseError::PolicyViolation
                | ResponseError::NonEmptyGroup
                | ResponseError::UnknownMemberId
                | ResponseError::RecordListTooLarge
                | ResponseError::MessageTooLarge
                | ResponseError::InvalidRecord
                | ResponseError::CorruptMessage => StatusCode::BAD_REQUEST,
                ResponseError::TopicAuthorizationFailed
                | ResponseError::GroupAuthorizationFailed
                | ResponseError::ClusterAuthorizationFailed => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_GATEWAY,
            },
            ConsoleError::Kafka(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Connect { status, .. } => match *status {
                400..=499 => StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                _ => StatusCode::BAD_GATEWAY,
            },
            ConsoleError::NotFound { .. } => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::ReadOnly => StatusCode::FORBIDDEN,
        }
    }
}

impl From<ClientError> for ConsoleError {
    fn from(e: ClientError) -> Self {
        ConsoleError::Kafka(e)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let title = match status {
            StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::FORBIDDEN => "Forbidden",
            _ => "Error",
        };
        let page = layout::page(
            title,
            maud::html! {
                div.error role="alert" {
                    h2 { (status.as_u16()) " " (title) }
                    p { (self.to_string()) }
                }
            },
        );
        (status, page).into_response()
    }
}

pub type Result<T> = std::result::Result<T, ConsoleError>;
