//! Liveness (`health_check`), the tutorial's `welcome`, and readiness (MariaDB answers).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::startup::AppState;

pub async fn health_check(State(state): State<AppState>) -> String {
    format!("It's Working in User Service on PORT {}", state.port)
}

pub async fn welcome(State(state): State<AppState>) -> String {
    state.greeting.to_string()
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let db = tokio::time::timeout(
        Duration::from_secs(1),
        sqlx::query("SELECT 1").execute(&state.pool),
    )
    .await;
    match db {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(json!({"status": "UP", "database": {"status": "UP"}})),
        ),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "DOWN", "database": {"status": "DOWN", "error": e.to_string()}})),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "DOWN", "database": {"status": "DOWN", "error": "timed out"}})),
        ),
    }
}
