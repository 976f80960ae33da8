//! HTTP routes, one file per resource (paths as in the tutorial's user-service).

pub mod health;
pub mod login;
pub mod users;

use axum::routing::{get, post};
use axum::Router;
use service_common::metrics;

use crate::error::ApiError;
use crate::startup::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/users", get(users::list).post(users::create))
        .route("/users/{user_id}", get(users::get_one))
        .route("/login", post(login::login))
        .route("/health_check", get(health::health_check))
        .route("/welcome", get(health::welcome))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::handler))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::MethodNotAllowed(format!("{method} is not supported on this path"))
        })
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}
