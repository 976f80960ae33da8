//! Kafka Connect's REST API (same paths, status codes and JSON shapes as Apache Kafka's), over
//! the [`Herder`]. Unknown paths and methods answer in the same error shape, and so does every
//! request axum itself refuses (a body over [`MAX_BODY_BYTES`], a path that is not valid
//! percent-encoded UTF-8): clients parse `{"error_code", "message"}`, never plain text.
//!
//! Every worker of a group serves the API: reads answer from any worker, writes are forwarded
//! to the group's leader ([`forward`]).
//!
//! Securing it, as Kafka Connect does: HTTPS ([`tls`], `listeners=https://...`) and HTTP basic
//! authentication against a users file ([`basic_auth`], `BasicAuthSecurityRestExtension`).

pub mod basic_auth;
mod body;
mod connectors;
mod forward;
mod plugins;
pub mod tls;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::herder::Herder;

pub type AppState = Arc<Herder>;

/// The largest request body accepted (connector configs are far smaller; the config topic
/// takes records up to its `max.message.bytes`, 1 MiB by default).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// How the API is secured beyond what the listener does (TLS).
#[derive(Clone, Debug, Default)]
pub struct RestSecurity {
    /// Basic authentication of every request; `None`: open.
    pub basic_auth: Option<basic_auth::BasicAuth>,
    /// The client writes are forwarded to the leader with (trusting the REST CA with TLS).
    pub forward_client: reqwest::Client,
}

pub fn router(herder: Arc<Herder>) -> Router {
    router_with(herder, RestSecurity::default())
}

/// [`router`] with authentication and the forwarding client of `security`.
pub fn router_with(herder: Arc<Herder>, security: RestSecurity) -> Router {
    let router = Router::new()
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
        .route("/metrics", get(metrics))
        .route(
            "/connector-plugins/{class}/config/validate",
            put(plugins::validate),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            (herder.clone(), security.forward_client),
            forward::to_leader,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(valid_path));
    // Outermost: no request reaches anything (not even a 404) unauthenticated.
    let router = match security.basic_auth {
        Some(auth) => router.layer(middleware::from_fn_with_state(auth, basic_auth::require)),
        None => router,
    };
    router.with_state(herder)
}

/// Refuses a path whose percent-encoding is broken (`%` not followed by two hex digits) or
/// decodes to something other than UTF-8, as Kafka Connect's server does: a 400, before any
/// route sees a name it would otherwise take literally.
async fn valid_path(req: Request, next: Next) -> Response {
    if let Err(problem) = check_percent_encoding(req.uri().path()) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid request path {}: {problem}", req.uri().path()),
        );
    }
    next.run(req).await
}

fn check_percent_encoding(path: &str) -> Result<(), String> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Err(format!(
                    "'%' at byte {i} is not followed by two hexadecimal digits"
                ));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map(|_| ())
        .map_err(|_| "the percent-encoded bytes are not UTF-8".to_string())
}

/// Gives axum's own rejections (plain text: a body over the limit, a missing content, a path
/// parameter that cannot be decoded) Kafka Connect's JSON error shape and a message that says
/// what to change.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("Request body is larger than the limit of {MAX_BODY_BYTES} bytes")
    } else if text.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        text
    };
    let mut response = error(status, &message);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The unread rest of the body makes the server close the connection after this answer;
        // saying so keeps a client from sending its next request on it.
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

async fn root() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "version": "3.7.0",
        "commit": concat!("datasync-connect-worker-", env!("CARGO_PKG_VERSION")),
        "kafka_cluster_id": "datasync",
    }))
}

/// `GET /metrics`: the task metrics and, read now, every connector's and task's status.
async fn metrics(axum::extract::State(h): axum::extract::State<AppState>) -> Response {
    let status = h.expanded(true, false).await;
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        h.metrics().render(&status),
    )
        .into_response()
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
