//! Request bodies and query strings, parsed by hand so that every malformed request is a 400 in
//! Kafka Connect's error shape rather than axum's plain-text rejection.

use std::collections::BTreeMap;

use axum::body::Bytes;
use serde_json::Value as Json;

use crate::error::ConnectError;

pub fn parse_json(body: &Bytes) -> Result<Json, ConnectError> {
    if body.is_empty() {
        return Err(ConnectError::BadRequest(
            "Request body must not be empty".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ConnectError::BadRequest(format!("Invalid JSON in request body: {e}")))
}

/// A config map: string values as they are; numbers and booleans as their text (Kafka Connect
/// accepts those); null only when `allow_null` (PATCH uses it to remove a key).
pub fn config_map(
    v: &Json,
    allow_null: bool,
) -> Result<BTreeMap<String, Option<String>>, ConnectError> {
    let obj = v.as_object().ok_or_else(|| {
        ConnectError::BadRequest("Connector configuration must be a JSON object".into())
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let s = match v {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            Json::Bool(b) => Some(b.to_string()),
            Json::Null if allow_null => None,
            _ => {
                return Err(ConnectError::BadRequest(format!(
                    "Invalid value for configuration {k}: expected a string"
                )))
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

pub fn strict_config(v: &Json) -> Result<BTreeMap<String, String>, ConnectError> {
    Ok(config_map(v, false)?
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// `true`/`false` query flags (absent: false).
pub fn flag(query: &BTreeMap<String, String>, name: &str) -> Result<bool, ConnectError> {
    match query.get(name).map(|s| s.to_ascii_lowercase()) {
        None => Ok(false),
        Some(s) if s == "true" || s.is_empty() => Ok(true),
        Some(s) if s == "false" => Ok(false),
        Some(s) => Err(ConnectError::BadRequest(format!(
            "Invalid value {s} for query parameter {name}"
        ))),
    }
}
