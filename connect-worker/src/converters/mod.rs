//! Converters between Kafka record bytes and Connect data, chosen per connector with
//! `key.converter` / `value.converter` (and their `.`-prefixed settings), like Kafka Connect.

pub mod json;
pub mod string;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::data::{Schema, Value};

pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
pub const STRING_CONVERTER: &str = "org.apache.kafka.connect.storage.StringConverter";

#[allow(clippy::wrong_self_convention)] // Kafka's names: toConnectData / fromConnectData
pub trait Converter: Send + Sync {
    /// Bytes (None for a null key or tombstone) to Connect data. The schema is shared: records
    /// of one topic usually carry the same one.
    fn to_connect(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Arc<Schema>>, Value), String>;
    /// Connect data to bytes; a null value becomes None.
    fn from_connect(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, String>;
}

/// Builds `<prefix>` (`key.converter` or `value.converter`) from a connector's config, falling
/// back to the worker's default (JsonConverter with schemas).
pub fn from_config(
    config: &BTreeMap<String, String>,
    prefix: &str,
) -> Result<Box<dyn Converter>, String> {
    let class = config
        .get(prefix)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .unwrap_or(JSON_CONVERTER);
    let sub = format!("{prefix}.");
    let props: BTreeMap<String, String> = config
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&sub).map(|k| (k.to_string(), v.clone())))
        .collect();
    match class {
        JSON_CONVERTER | "JsonConverter" => Ok(Box::new(json::JsonConverter::new(&props)?)),
        STRING_CONVERTER | "StringConverter" => Ok(Box::new(string::StringConverter::default())),
        other => Err(format!(
            "Invalid value {other} for configuration {prefix}: Class {other} could not be found."
        )),
    }
}
