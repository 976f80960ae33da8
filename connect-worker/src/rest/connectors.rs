//! `/connectors/...` handlers.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value as Json_;

use super::body::{config_map, flag, parse_json, strict_config};
use super::AppState;
use crate::error::{ConnectError, Result};
use crate::storage::TargetState;

fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

fn query_map(q: &Option<String>) -> BTreeMap<String, String> {
    query_pairs(q).into_iter().collect()
}

pub async fn list(State(h): State<AppState>, RawQuery(q): RawQuery) -> Result<Response> {
    let mut status = false;
    let mut info = false;
    for (k, v) in query_pairs(&q) {
        if k == "expand" {
            for e in v.split(',') {
                match e {
                    "status" => status = true,
                    "info" => info = true,
                    _ => {}
                }
            }
        }
    }
    if status || info {
        return Ok(Json(h.expanded(status, info).await).into_response());
    }
    Ok(Json(h.names().await).into_response())
}

pub async fn create(State(h): State<AppState>, body: Bytes) -> Result<Response> {
    let doc = parse_json(&body)?;
    let config = doc.get("config").filter(|c| !c.is_null());
    let Some(config) = config else {
        return Err(ConnectError::BadRequest(
            "Connector config must not be null; the request body needs a \"config\" object".into(),
        ));
    };
    let config = strict_config(config)?;
    let name = match doc.get("name") {
        Some(Json_::String(n)) => n.clone(),
        None | Some(Json_::Null) => config
            .get("name")
            .cloned()
            .ok_or_else(|| ConnectError::BadRequest("Connector name must not be null".into()))?,
        Some(_) => {
            return Err(ConnectError::BadRequest(
                "Connector name must be a string".into(),
            ))
        }
    };
    let (_, info) = h.put_connector(&name, config, false).await?;
    let location = format!("/connectors/{name}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(info),
    )
        .into_response())
}

pub async fn info(State(h): State<AppState>, Path(name): Path<String>) -> Result<Json<Json_>> {
    Ok(Json(h.info(&name).await?))
}

pub async fn get_config(
    State(h): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<BTreeMap<String, String>>> {
    Ok(Json(h.config(&name).await?))
}

pub async fn put_config(
    State(h): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let config = strict_config(&parse_json(&body)?)?;
    let (created, info) = h.put_connector(&name, config, true).await?;
    if created {
        let location = format!("/connectors/{name}");
        Ok((
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(info),
        )
            .into_response())
    } else {
        Ok(Json(info).into_response())
    }
}

pub async fn patch_config(
    State(h): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let patch = config_map(&parse_json(&body)?, true)?;
    let mut config = h.config(&name).await?;
    for (k, v) in patch {
        match v {
            Some(v) => config.insert(k, v),
            None => config.remove(&k),
        };
    }
    let (_, info) = h.put_connector(&name, config, true).await?;
    Ok(Json(info).into_response())
}

pub async fn status(State(h): State<AppState>, Path(name): Path<String>) -> Result<Json<Json_>> {
    Ok(Json(h.status(&name).await?))
}

pub async fn tasks(State(h): State<AppState>, Path(name): Path<String>) -> Result<Json<Json_>> {
    Ok(Json(h.tasks(&name).await?))
}

fn task_id(name: &str, id: &str) -> Result<usize> {
    id.parse()
        .map_err(|_| ConnectError::TaskNotFound(format!("{name}-{id}")))
}

pub async fn task_status(
    State(h): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Json_>> {
    let id = task_id(&name, &id)?;
    Ok(Json(h.task_status(&name, id).await?))
}

pub async fn restart_task(
    State(h): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = task_id(&name, &id)?;
    h.restart_task(&name, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restart(
    State(h): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let query = query_map(&q);
    let include_tasks = flag(&query, "includeTasks")?;
    let only_failed = flag(&query, "onlyFailed")?;
    let status = h.restart(&name, include_tasks, only_failed).await?;
    if include_tasks || only_failed {
        Ok((StatusCode::ACCEPTED, Json(status)).into_response())
    } else {
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

pub async fn pause(State(h): State<AppState>, Path(name): Path<String>) -> Result<StatusCode> {
    h.set_target(&name, TargetState::Paused).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn resume(State(h): State<AppState>, Path(name): Path<String>) -> Result<StatusCode> {
    h.set_target(&name, TargetState::Started).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn stop(State(h): State<AppState>, Path(name): Path<String>) -> Result<StatusCode> {
    h.set_target(&name, TargetState::Stopped).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn delete(State(h): State<AppState>, Path(name): Path<String>) -> Result<StatusCode> {
    h.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn offsets(State(h): State<AppState>, Path(name): Path<String>) -> Result<Json<Json_>> {
    Ok(Json(h.offsets(&name).await?))
}
