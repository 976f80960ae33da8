//! The request extractors the handlers use: the shared ones, whose rejections are the JSON 400
//! body of [`crate::error::ApiError`] instead of axum's plain-text one.

pub use service_common::extract::{ApiJson, ApiPath};
