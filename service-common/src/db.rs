//! The deadline both services put on every database call, so that a hung MariaDB becomes a quick
//! 503 rather than a hung request. (The pool and the migrations are the `schema` crate's.)

use std::future::Future;
use std::time::Duration;

use crate::error::ApiError;

/// Runs `f` with a deadline: a hung database becomes a 503, never a hung request.
pub async fn with_timeout<T, X>(
    within: Duration,
    f: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, ApiError<X>> {
    match tokio::time::timeout(within, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ApiError::Unavailable(
            "the database did not answer in time".into(),
        )),
    }
}
