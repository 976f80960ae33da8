//! The broker's HTTP listener (`--http-listen`, port 9644 by default as Redpanda's admin port):
//! `/metrics` for Prometheus, `/healthz` (the process answers) and `/readyz` (the data
//! directory is open and the broker is serving, not shutting down). It is separate from the
//! Kafka listener so that scrapes and probes never compete with clients for connection slots.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::metrics;
use crate::server::Limits;

#[derive(Clone)]
struct AppState {
    broker: Arc<Broker>,
    limits: Arc<Limits>,
}

/// The routes, for tests with `oneshot` and for [`serve`].
pub fn router(broker: Arc<Broker>, limits: Arc<Limits>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(AppState { broker, limits })
}

/// Serves [`router`] on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    limits: Arc<Limits>,
    stop: CancellationToken,
) {
    let app = router(broker, limits);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    {
        tracing::error!(error = %e, "the HTTP listener failed");
    }
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    let broker = s.broker.clone();
    let limits = s.limits.clone();
    // Reading every partition's state takes locks: off the async workers.
    match tokio::task::spawn_blocking(move || metrics::render(&broker, &limits)).await {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"error": format!("could not collect the metrics: {e}")})),
        )
            .into_response(),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.broker.stopping.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "shutting down"})),
        )
            .into_response();
    }
    Json(serde_json::json!({
        "status": "ready",
        "topics": s.broker.topics.all().len(),
    }))
    .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": "not found: the broker's HTTP paths are /metrics, /healthz and /readyz"})),
    )
        .into_response()
}
