//! Kafka Connect's REST API (same paths, status codes and JSON shapes as Apache Kafka's), over
//! the [`Herder`]. Unknown paths and methods answer in the same error shape.

mod body;
mod connectors;
mod plugins;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::herder::Herder;

pub type AppState = Arc<Herder>;

pub fn router(herder: Arc<Herder>) -> Router {
    Router::new()
        .route("/", get(root))
        .route(
            "/connectors",
            get(connectors::list).post(connectors::create),
        )
        .route(
            "/connectors/{name}",
            get(connectors::info).delete(connectors::delete),
        )
        .route(
            "/connectors/{name}/config",
            get(connectors::get_config)
                .put(connectors::put_config)
                .patch(connectors::patch_config),
        )
        .route("/connectors/{name}/status", get(connectors::status))
        .route("/connectors/{name}/tasks", get(connectors::tasks))
        .route(
            "/connectors/{name}/tasks/{id}/status",
            get(connectors::task_status),
        )
        .route(
            "/connectors/{name}/tasks/{id}/restart",
            post(connectors::restart_task),
        )
        .route("/connectors/{name}/restart", post(connectors::restart))
        .route("/connectors/{name}/pause", put(connectors::pause))
        .route("/connectors/{name}/resume", put(connectors::resume))
        .route("/connectors/{name}/stop", put(connectors::stop))
        .route("/connectors/{name}/offsets", get(connectors::offsets))
        .route("/connector-plugins", get(plugins::list))
        .route(
            "/connector-plugins/{class}/config/validate",
            put(plugins::validate),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(herder)
}

async fn root() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "version": "3.7.0",
        "commit": concat!("datasync-connect-worker-", env!("CARGO_PKG_VERSION")),
        "kafka_cluster_id": "datasync",
    }))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "HTTP 404 Not Found")
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP 405 Method Not Allowed",
    )
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error_code": status.as_u16(), "message": message})),
    )
        .into_response()
}
