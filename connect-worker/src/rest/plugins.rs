//! `/connector-plugins` handlers.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value as Json_};

use super::body::{parse_json, strict_config};
use super::AppState;
use crate::connectors::{config_def, find_plugin, simple_name};
use crate::error::{ConnectError, Result};

pub async fn list(State(h): State<AppState>) -> Json<Json_> {
    let plugins: Vec<Json_> = h
        .plugins()
        .iter()
        .map(|p| json!({"class": p.class(), "type": p.kind().as_str(), "version": p.version()}))
        .collect();
    Json(Json_::Array(plugins))
}

pub async fn validate(
    State(h): State<AppState>,
    Path(class): Path<String>,
    body: Bytes,
) -> Result<Json<Json_>> {
    let mut config = strict_config(&parse_json(&body)?)?;
    let plugin = find_plugin(h.plugins(), &class).ok_or_else(|| {
        ConnectError::BadRequest(format!(
            "Failed to find any class that implements Connector and which name matches {class}"
        ))
    })?;
    match config.get("connector.class") {
        None => {
            config.insert("connector.class".into(), plugin.class().to_string());
        }
        Some(c) if find_plugin(h.plugins(), c).is_none_or(|p| p.class() != plugin.class()) => {
            return Err(ConnectError::BadRequest(format!(
                "Included connector type {c} does not match request type {class}"
            )))
        }
        Some(_) => {}
    }
    let v = h.validate(&config);
    Ok(Json(config_def::validate_response(
        simple_name(plugin.class()),
        &v.keys,
        &config,
        &v.problems,
    )))
}
