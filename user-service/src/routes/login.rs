//! `POST /login`: on success 200 with the JWT in the `token` header and the `userId` header, as
//! the tutorial's AuthenticationFilter does; wrong email or password: 401 (same message for
//! both, so the endpoint does not reveal which emails exist).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth;
use crate::db;
use crate::domain::{parse_login, LoginRequest};
use crate::error::{ApiError, UserError};
use crate::extract::ApiJson;
use crate::startup::AppState;

pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let (email, password) = parse_login(body)?;
    let denied = || ApiError::Service(UserError::Unauthorized("wrong email or password".into()));
    let user = db::with_timeout(state.db_timeout, db::user_by_email(&state.pool, &email)).await?;
    // An unknown email costs the same password check as a known one, so that the answer's
    // timing does not tell which emails exist either.
    let stored = user.as_ref().map(|u| u.encrypted_pwd.clone());
    let matches = state.passwords.check_login(password, stored).await?;
    let user = user.filter(|_| matches).ok_or_else(denied)?;
    let token = auth::issue_token(&user.user_id, &state.jwt_secret, state.jwt_lifetime_secs)?;
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(
        "token",
        HeaderValue::from_str(&token).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    headers.insert(
        "userId",
        HeaderValue::from_str(&user.user_id).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}
