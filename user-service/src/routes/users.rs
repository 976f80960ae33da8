//! `POST /users`, `GET /users`, `GET /users/{userId}` (with the user's orders).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use crate::db::{self, UserRow};
use crate::domain::{NewUser, SignUpRequest};
use crate::error::{ApiError, UserError};
use crate::extract::{ApiJson, ApiPath};
use crate::startup::AppState;

/// A user in responses: never the password or its hash.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    pub email: String,
    pub name: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orders: Option<Vec<Value>>,
}

impl From<UserRow> for UserResponse {
    fn from(u: UserRow) -> Self {
        UserResponse {
            email: u.email,
            name: u.name,
            user_id: u.user_id,
            orders: None,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignUpRequest>,
) -> Result<Response, ApiError> {
    let new = NewUser::parse(body)?;
    let encrypted = state.passwords.hash(new.pwd).await?;
    let user_id = uuid::Uuid::new_v4().to_string();
    let inserted = db::with_timeout(
        state.db_timeout,
        db::insert_user(&state.pool, &user_id, &new.email, &new.name, &encrypted),
    )
    .await?;
    if !inserted {
        return Err(ApiError::Service(UserError::Conflict(format!(
            "a user with email {} already exists",
            new.email
        ))));
    }
    tracing::info!(%user_id, "user created");
    let body = UserResponse {
        email: new.email,
        name: new.name,
        user_id,
        orders: None,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<UserResponse>>, ApiError> {
    let users = db::with_timeout(state.db_timeout, db::all_users(&state.pool)).await?;
    Ok(Json(users.into_iter().map(UserResponse::from).collect()))
}

pub async fn get_one(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let user = db::with_timeout(state.db_timeout, db::user_by_id(&state.pool, &user_id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {user_id} not found")))?;
    let orders = state.orders.orders_of(&user.user_id).await;
    let degraded = orders.is_none();
    let mut body = UserResponse::from(user);
    body.orders = Some(orders.unwrap_or_default());
    let mut response = Json(body).into_response();
    if degraded {
        response.headers_mut().insert(
            "warning",
            HeaderValue::from_static(
                "199 user-service \"orders unavailable: no order-service instance answered\"",
            ),
        );
    }
    Ok(response)
}
