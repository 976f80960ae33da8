//! The handlers' error type: [`service_common::error::ApiError`] (the JSON body, the status of
//! each common variant, `Retry-After` on a 503) with the one failure only this service has, a
//! consistency token that the database has not caught up with yet, or that no sink connector
//! writes.

use axum::http::{header, HeaderMap, StatusCode};

pub use service_common::error::{FieldError, ServiceError};

/// Every handler's error.
pub type ApiError = service_common::error::ApiError<OrderError>;

/// The failures only the order-service has ([`ApiError::Service`]).
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// A consistency token's write is not in the database yet: a 503 with
    /// `X-Consistency-Status: timeout`.
    #[error("{0}")]
    NotYetConsistent(String),
    /// No sink connector that could ever vouch for a token has recorded any progress: a 503
    /// with `X-Consistency-Status: no-sink` whose `details` say what was looked for and how to
    /// name the right connector.
    #[error("{message}")]
    NoSink {
        message: String,
        details: serde_json::Value,
    },
}

impl ServiceError for OrderError {
    fn status(&self) -> StatusCode {
        match self {
            OrderError::NotYetConsistent(_) | OrderError::NoSink { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn add_headers(&self, headers: &mut HeaderMap) {
        match self {
            OrderError::NotYetConsistent(_) => {
                headers.insert(
                    "x-consistency-status",
                    header::HeaderValue::from_static("timeout"),
                );
            }
            OrderError::NoSink { .. } => {
                headers.insert(
                    "x-consistency-status",
                    header::HeaderValue::from_static("no-sink"),
                );
            }
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            OrderError::NotYetConsistent(_) => None,
            OrderError::NoSink { details, .. } => Some(details.clone()),
        }
    }
}
