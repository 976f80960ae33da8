//! HTTP routes, one file per resource.

pub mod health;
pub mod orders;

use axum::routing::get;
use axum::Router;
use service_common::metrics;

use crate::error::ApiError;
use crate::startup::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/order-service/{user_id}/orders",
            get(orders::list).post(orders::create),
        )
        .route("/order-service/health_check", get(health::health_check))
        .route("/order-service/ready", get(health::ready))
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
