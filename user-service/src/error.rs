//! The handlers' error type: [`service_common::error::ApiError`] (the JSON body, the status of
//! each common variant, `Retry-After` on a 503) with the failures only this service has: a
//! denied login and an email that is taken.

use axum::http::StatusCode;

pub use service_common::error::{FieldError, ServiceError};

/// Every handler's error.
pub type ApiError = service_common::error::ApiError<UserError>;

/// The failures only the user-service has ([`ApiError::Service`]).
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Wrong credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The user exists already (409).
    #[error("{0}")]
    Conflict(String),
}

impl ServiceError for UserError {
    fn status(&self) -> StatusCode {
        match self {
            UserError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            UserError::Conflict(_) => StatusCode::CONFLICT,
        }
    }
}
