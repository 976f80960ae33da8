//! Liveness (`health_check`, as in the tutorial: is the process serving?) and readiness (can it
//! do its job: MariaDB and the broker answer).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::startup::AppState;

pub async fn health_check(State(state): State<AppState>) -> String {
    format!("It's Working in Order Service on PORT {}", state.port)
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let within = Duration::from_secs(1);
    let db = async {
        match tokio::time::timeout(within, sqlx::query("SELECT 1").execute(&state.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_string()),
        }
    };
    let (db, broker) = tokio::join!(db, state.publisher.broker_ready(within));
    let status = |r: &Result<(), String>| match r {
        Ok(()) => json!({"status": "UP"}),
        Err(e) => json!({"status": "DOWN", "error": e}),
    };
    let up = db.is_ok() && broker.is_ok();
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": if up { "UP" } else { "DOWN" },
            "database": status(&db),
            "broker": status(&broker),
        })),
    )
}
