//! `POST /order-service/{userId}/orders` publishes; `GET` reads what the sink wrote.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::consistency::{ConsistencyToken, HEADER};
use crate::db;
use crate::domain::{NewOrder, Order, OrderRequest, UserId};
use crate::error::{ApiError, OrderError};
use crate::extract::{ApiJson, ApiPath};
use crate::startup::AppState;

fn user_id(raw: String) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|e| ApiError::Validation(vec![e]))
}

/// 201 once the order's transaction committed; 503 when it never will.
pub async fn create(
    State(state): State<AppState>,
    ApiPath(raw_user_id): ApiPath<String>,
    ApiJson(body): ApiJson<OrderRequest>,
) -> Result<Response, ApiError> {
    let user_id = user_id(raw_user_id)?;
    let order = Order::create(&user_id, NewOrder::parse(body)?);
    let started = std::time::Instant::now();
    let published = state.publisher.publish(&order).await;
    state
        .order_metrics
        .published(published.is_ok(), started.elapsed().as_secs_f64());
    let position = published?;
    let mut response = (StatusCode::CREATED, Json(order.to_response())).into_response();
    // Without a position (only after a producer failure settled as committed) there is no token.
    if let Some(position) = position {
        let token = ConsistencyToken::new(&state.orders_topic, position).to_string();
        tracing::debug!(order_id = %order.order_id, %token, "order published");
        if let Ok(v) = HeaderValue::from_str(&token) {
            response.headers_mut().insert(HEADER, v);
        }
    }
    Ok(response)
}

/// The user's orders from MariaDB; with `X-Consistency-Token`, only once that write is there.
pub async fn list(
    State(state): State<AppState>,
    ApiPath(raw_user_id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user_id = user_id(raw_user_id)?;
    if let Some(token) = headers.get(HEADER) {
        let token = token
            .to_str()
            .map_err(|_| ApiError::BadRequest(format!("invalid {HEADER} header")))?;
        let started = std::time::Instant::now();
        let waited = state
            .consistency
            .wait_for(&state.pool, &state.publisher, token)
            .await;
        let outcome = match &waited {
            Ok(()) => "applied",
            Err(ApiError::Service(OrderError::NoSink { .. })) => "no_sink",
            Err(ApiError::Service(_)) => "timeout",
            Err(ApiError::BadRequest(_)) => "rejected",
            Err(_) => "error",
        };
        state
            .order_metrics
            .consistency_wait(outcome, started.elapsed().as_secs_f64());
        waited?;
    }
    let orders = db::with_timeout(
        state.db_timeout,
        db::orders_of(&state.pool, user_id.as_str()),
    )
    .await?;
    let body: Vec<_> = orders.iter().map(Order::to_response).collect();
    Ok(Json(body).into_response())
}
