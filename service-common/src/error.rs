//! The error type of every handler of both services. Each variant maps to a status and a JSON
//! body `{"status", "error", "message", "fields"?, "details"?}`, so clients never get an empty or HTML error, a
//! client's mistake is never a 500, and infrastructure trouble is a 503 they may retry (with
//! `Retry-After: 1`).
//!
//! The variants here are the ones both services have. A service with failures of its own (a
//! conflict, a consistency timeout) puts them in its own enum implementing [`ServiceError`] and
//! uses `ApiError<ItsEnum>`; they get the same body and headers.

use std::convert::Infallible;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// The errors only one service has: their status, and any header they add to the common ones.
/// Their `Display` is the body's `message`.
pub trait ServiceError: std::error::Error {
    fn status(&self) -> StatusCode;

    /// Headers besides the common ones (`Retry-After` on a 503); default: none.
    fn add_headers(&self, _headers: &mut HeaderMap) {}

    /// What a client program needs to act on the failure, as the body's `details`; default:
    /// none.
    fn details(&self) -> Option<serde_json::Value> {
        None
    }
}

/// No failure of its own: `ApiError` alone (what the extractors reject with).
impl ServiceError for Infallible {
    fn status(&self) -> StatusCode {
        match *self {}
    }
}

/// A handler's failure; `X` holds the failures only one service has.
#[derive(Debug, thiserror::Error)]
pub enum ApiError<X = Infallible> {
    #[error("invalid request: {}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The body is over the size limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The path exists, the method does not (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The database or the broker cannot serve the request now; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
    /// A failure of one service (see [`ServiceError`]).
    #[error(transparent)]
    Service(X),
}

#[derive(Serialize)]
struct Body<'a> {
    status: u16,
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

impl<X: ServiceError> ApiError<X> {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Service(e) => e.status(),
        }
    }
}

impl<X: ServiceError> IntoResponse for ApiError<X> {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "unavailable"),
            _ => {}
        }
        let fields = match &self {
            ApiError::Validation(f) => Some(f.as_slice()),
            _ => None,
        };
        let body = Body {
            status: status.as_u16(),
            error: status.canonical_reason().unwrap_or("error"),
            message: self.to_string(),
            fields,
            details: match &self {
                ApiError::Service(e) => e.details(),
                _ => None,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the oversized body stays unread, so the server closes the connection
            // after this answer; saying so keeps a client from sending its next request on it.
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        if let ApiError::Service(e) = &self {
            e.add_headers(response.headers_mut());
        }
        response
    }
}

impl<X> From<JsonRejection> for ApiError<X> {
    fn from(r: JsonRejection) -> Self {
        // Every JSON rejection (syntax, wrong types, missing content type, too large) is the
        // client's mistake: 400, but 413 for a body over the limit, which the client cannot fix
        // by correcting its JSON.
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(r.body_text())
        } else {
            ApiError::BadRequest(r.body_text())
        }
    }
}

impl<X> From<PathRejection> for ApiError<X> {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl<X> From<sqlx::Error> for ApiError<X> {
    fn from(e: sqlx::Error) -> Self {
        // Unreachable, overloaded, shutting down, read-only, a lost lock race: retry later.
        // Any other answer from the server (syntax, schema, constraint) is a bug here.
        if schema::is_transient(&e) {
            ApiError::Unavailable(format!("database unavailable: {e}"))
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Teapot(String);

    impl ServiceError for Teapot {
        fn status(&self) -> StatusCode {
            StatusCode::IM_A_TEAPOT
        }
        fn add_headers(&self, headers: &mut HeaderMap) {
            headers.insert("x-teapot", header::HeaderValue::from_static("yes"));
        }
        fn details(&self) -> Option<serde_json::Value> {
            Some(serde_json::json!({"handle": "one", "spout": "one"}))
        }
    }

    async fn body(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn validation_lists_the_fields() {
        let e: ApiError = ApiError::Validation(vec![FieldError::new("qty", "must be positive")]);
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body(r).await,
            serde_json::json!({
                "status": 400,
                "error": "Bad Request",
                "message": "invalid request: qty: must be positive",
                "fields": [{"field": "qty", "message": "must be positive"}],
            })
        );
    }

    #[tokio::test]
    async fn unavailable_may_be_retried_and_internal_hides_the_detail() {
        let r = ApiError::<Infallible>::Unavailable("db down".into()).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(body(r).await["message"], "db down");

        let r = ApiError::<Infallible>::Internal("secret detail".into()).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        let b = body(r).await;
        assert_eq!(b["message"], "internal error");
        assert!(b.get("fields").is_none());
    }

    #[tokio::test]
    async fn a_service_error_brings_its_status_message_and_headers() {
        let r = ApiError::Service(Teapot("short and stout".into())).into_response();
        assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(r.headers()["x-teapot"], "yes");
        let b = body(r).await;
        assert_eq!(b["status"], 418);
        assert_eq!(b["message"], "short and stout");
        assert_eq!(b["details"]["spout"], "one");
    }
}
