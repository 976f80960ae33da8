//! Writes go to the group's leader, as in Kafka Connect's distributed mode: a follower sends
//! a create, update, delete, pause, resume, stop or restart on to the leader's advertised REST
//! URL and answers with the leader's answer. A forwarded request carries
//! [`FORWARDED_HEADER`] and is never forwarded again (a worker that thinks another one leads
//! handles it itself rather than bounce it around during a rebalance).
//!
//! With basic authentication the follower has already checked the caller's credentials; it
//! forwards the caller's own `Authorization` header (as Kafka Connect's `RestClient` does), so
//! the leader checks them too and a follower never lends its own identity to a request. Over
//! HTTPS the forwarding client trusts the REST CA and presents the worker's certificate
//! ([`super::tls::forward_client`]).

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{error, AppState, MAX_BODY_BYTES};

/// Marks a request a follower forwarded; its value is the follower's URL.
pub const FORWARDED_HEADER: &str = "x-connect-forwarded-by";

/// How long a follower waits for the leader's answer.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

fn is_write(req: &Request) -> bool {
    matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && (req.uri().path() == "/connectors" || req.uri().path().starts_with("/connectors/"))
}

pub async fn to_leader(
    State((h, client)): State<(AppState, reqwest::Client)>,
    req: Request,
    next: Next,
) -> Response {
    if !is_write(&req) || req.headers().contains_key(FORWARDED_HEADER) {
        return next.run(req).await;
    }
    let Some(leader) = h.forward_to() else {
        return next.run(req).await;
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let url = format!("{}{path}", leader.trim_end_matches('/'));
    let method = req.method().clone();
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
            )
        }
    };
    tracing::debug!(%method, url, "forwarding a write to the leader");
    let mut out = client
        .request(method, &url)
        .timeout(FORWARD_TIMEOUT)
        .header(FORWARDED_HEADER, h.url())
        .body(body);
    if let Some(ct) = content_type {
        out = out.header(header::CONTENT_TYPE, ct);
    }
    if let Some(auth) = authorization {
        out = out.header(header::AUTHORIZATION, auth);
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => {
            // The leader is gone or unreachable: a rebalance will name a new one.
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "Cannot complete the request: the group's leader at {leader} did not answer ({e}); try again once the group has rebalanced"
                ),
            );
        }
    };
    let status = answer.status();
    let mut headers = Vec::new();
    for name in [header::CONTENT_TYPE, header::LOCATION] {
        if let Some(v) = answer.headers().get(&name) {
            if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                headers.push((name, v));
            }
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = (status, bytes).into_response();
    for (name, v) in headers {
        response.headers_mut().insert(name, v);
    }
    response
}
