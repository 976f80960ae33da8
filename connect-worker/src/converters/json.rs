//! `JsonConverter`: with `schemas.enable=true` (the default) each message is the envelope
//! `{"schema": ..., "payload": ...}`; without it, plain JSON with no schema.
//! Logical types are encoded like Kafka's: Timestamp as epoch millis, Date as epoch days, Time
//! as millis of the day, Decimal as base64 of the big-endian two's-complement unscaled value
//! (numbers are accepted too, as with `decimal.format=NUMERIC`).
//!
//! Reading is the sink's hot path, so envelopes take a fast path: the schema text is looked up
//! in a small cache (every record of a topic usually carries the same schema, so it is parsed
//! once), and the payload is decoded straight from the bytes against that schema, without an
//! intermediate JSON tree. Whatever the fast path does not handle (defaults, maps, numeric
//! decimals) or rejects goes through the general decoder, which also words every error; both
//! give the same result for every input the fast path accepts.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value as Json};

use super::Converter;
use crate::data::schema::{DATE, DECIMAL, TIME, TIMESTAMP};
use crate::data::{Field, Schema, SchemaType, Value};

/// Distinct schemas remembered per converter; past that the cache starts over.
const SCHEMA_CACHE_ENTRIES: usize = 256;

pub struct JsonConverter {
    schemas_enable: bool,
    decimal_numeric: bool,
    /// Schema JSON text → parsed schema.
    schemas: Mutex<HashMap<Box<str>, Arc<Schema>>>,
}

impl JsonConverter {
    pub fn new(props: &BTreeMap<String, String>) -> Result<Self, String> {
        let schemas_enable = match props.get("schemas.enable").map(|s| s.trim().to_ascii_lowercase()) {
            None => true,
            Some(s) if s == "true" => true,
            Some(s) if s == "false" => false,
            Some(s) => return Err(format!("Invalid value {s} for configuration schemas.enable: Expected value to be either true or false")),
        };
        let decimal_numeric = props
            .get("decimal.format")
            .is_some_and(|f| f.eq_ignore_ascii_case("NUMERIC"));
        Ok(JsonConverter {
            schemas_enable,
            decimal_numeric,
            schemas: Mutex::new(HashMap::new()),
        })
    }

    /// The parsed schema for `raw` (a schema's JSON text), from the cache when seen before.
    fn schema(&self, raw: &str) -> Option<Arc<Schema>> {
        if let Some(s) = self.schemas.lock().get(raw) {
            return Some(s.clone());
        }
        let doc: Json = serde_json::from_str(raw).ok()?;
        let schema = Arc::new(parse_schema(&doc).ok()?);
        let mut cache = self.schemas.lock();
        if cache.len() >= SCHEMA_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(raw.into(), schema.clone());
        Some(schema)
    }

    /// The fast path: `None` when it does not apply or the record is not valid (the general
    /// decoder then decides and words the error).
    fn envelope_fast(&self, bytes: &[u8]) -> Option<(Arc<Schema>, Value)> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Envelope<'a> {
            #[serde(borrow)]
            schema: &'a RawValue,
            #[serde(borrow)]
            payload: &'a RawValue,
        }
        let envelope: Envelope<'_> = serde_json::from_slice(bytes).ok()?;
        if envelope.schema.get() == "null" {
            return None;
        }
        let schema = self.schema(envelope.schema.get())?;
        let mut de = serde_json::Deserializer::from_str(envelope.payload.get());
        let value = Decode(&schema).deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some((schema, value))
    }
}

impl Converter for JsonConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Arc<Schema>>, Value), String> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        if self.schemas_enable {
            if let Some((schema, value)) = self.envelope_fast(bytes) {
                return Ok((Some(schema), value));
            }
        }
        let doc: Json = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error: {e}"
            )
        })?;
        if !self.schemas_enable {
            return Ok((None, schemaless(&doc)));
        }
        let envelope_ok = matches!(&doc, Json::Object(m) if m.len() == 2 && m.contains_key("schema") && m.contains_key("payload"));
        if !envelope_ok {
            return Err("JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.".to_string());
        }
        let schema_doc = &doc["schema"];
        if schema_doc.is_null() {
            return Ok((None, schemaless(&doc["payload"])));
        }
        let schema = parse_schema(schema_doc)?;
        let value = decode(&schema, &doc["payload"], "payload")?;
        Ok((Some(Arc::new(schema)), value))
    }

    fn from_connect(
        &self,
        _topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, String> {
        if value.is_null() && schema.is_none_or(|s| s.optional) {
            // Tombstones stay null on the wire, with or without schemas.
            if !self.schemas_enable || schema.is_none() {
                return Ok(None);
            }
        }
        let payload = encode(schema, value, self.decimal_numeric);
        let doc = if self.schemas_enable {
            json!({"schema": schema.map(schema_to_json).unwrap_or(Json::Null), "payload": payload})
        } else {
            payload
        };
        serde_json::to_vec(&doc)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// Decodes a payload straight from JSON against a schema: the fast path of [`decode`], with
/// the same result wherever it succeeds. It declines (with an error) what it leaves to
/// [`decode`]: nulls of fields with defaults, maps, numeric decimals, and every mismatch.
struct Decode<'s>(&'s Schema);

fn decline<E: de::Error>() -> E {
    E::custom("left to the general decoder")
}

impl Decode<'_> {
    fn null<E: de::Error>(&self) -> Result<Value, E> {
        if self.0.default.is_none() && self.0.optional {
            Ok(Value::Null)
        } else {
            Err(decline())
        }
    }

    fn int<E: de::Error>(&self, v: i64) -> Result<Value, E> {
        let s = self.0;
        if s.is(TIMESTAMP) {
            return DateTime::from_timestamp_millis(v)
                .map(|t| Value::Timestamp(t.naive_utc()))
                .ok_or_else(decline);
        }
        if s.is(DATE) {
            return epoch()
                .checked_add_signed(Duration::try_days(v).ok_or_else(decline)?)
                .map(Value::Date)
                .ok_or_else(decline);
        }
        if s.is(TIME) {
            if !(0..86_400_000).contains(&v) {
                return Err(decline());
            }
            return NaiveTime::from_num_seconds_from_midnight_opt(
                (v / 1000) as u32,
                ((v % 1000) * 1_000_000) as u32,
            )
            .map(Value::Time)
            .ok_or_else(decline);
        }
        if s.is(DECIMAL) {
            return Err(decline());
        }
        let ok = match s.kind {
            SchemaType::Int8 => i8::try_from(v).is_ok(),
            SchemaType::Int16 => i16::try_from(v).is_ok(),
            SchemaType::Int32 => i32::try_from(v).is_ok(),
            SchemaType::Int64 => true,
            SchemaType::Float32 | SchemaType::Float64 => return Ok(Value::Float(v as f64)),
            _ => false,
        };
        if ok {
            Ok(Value::Int(v))
        } else {
            Err(decline())
        }
    }

    fn plain(&self) -> bool {
        self.0.name.is_none()
            || !(self.0.is(TIMESTAMP) || self.0.is(DATE) || self.0.is(TIME) || self.0.is(DECIMAL))
    }
}

impl<'de> DeserializeSeed<'de> for Decode<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Decode<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} value", self.0.kind.name())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.null()
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.null()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        if self.0.kind == SchemaType::Boolean && self.plain() {
            Ok(Value::Bool(v))
        } else {
            Err(decline())
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.int(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.int(v),
            // Beyond i64 only a float column takes it (as `as_f64` does).
            Err(_)
                if matches!(self.0.kind, SchemaType::Float32 | SchemaType::Float64)
                    && self.plain() =>
            {
                Ok(Value::Float(v as f64))
            }
            Err(_) => Err(decline()),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if matches!(self.0.kind, SchemaType::Float32 | SchemaType::Float64) && self.plain() {
            Ok(Value::Float(v))
        } else {
            Err(decline())
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        let s = self.0;
        if s.is(DECIMAL) {
            let bytes = B64.decode(v).map_err(|_| decline::<E>())?;
            return decimal_from_bytes(&bytes, s.decimal_scale())
                .map(Value::Decimal)
                .map_err(|_| decline());
        }
        if !self.plain() {
            return Err(decline());
        }
        match s.kind {
            SchemaType::String => Ok(Value::String(v.to_string())),
            SchemaType::Bytes => B64.decode(v).map(Value::Bytes).map_err(|_| decline()),
            _ => Err(decline()),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let items = match (self.0.kind, &self.0.value_schema) {
            (SchemaType::Array, Some(items)) if self.plain() => items,
            _ => return Err(decline()),
        };
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(Decode(items))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let s = self.0;
        if s.kind != SchemaType::Struct || !self.plain() {
            return Err(decline());
        }
        let mut values: Vec<Option<Value>> = vec![None; s.fields.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match s.fields.iter().position(|f| f.name == *key) {
                // A repeated key: the last one counts, as in a parsed document.
                Some(i) => values[i] = Some(map.next_value_seed(Decode(&s.fields[i].schema))?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        s.fields
            .iter()
            .zip(values)
            .map(|(f, v)| {
                let v = match v {
                    Some(v) => v,
                    None => Decode(&f.schema).null()?,
                };
                Ok((f.name.clone(), v))
            })
            .collect::<Result<_, _>>()
            .map(Value::Struct)
    }
}

fn schemaless(doc: &Json) -> Value {
    match doc {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(0.0))),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(schemaless).collect()),
        Json::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (Value::String(k.clone()), schemaless(v)))
                .collect(),
        ),
    }
}

pub fn parse_schema(doc: &Json) -> Result<Schema, String> {
    let obj = doc.as_object().ok_or("schema must be a JSON object")?;
    let type_name = obj
        .get("type")
        .and_then(Json::as_str)
        .ok_or("schema must contain a \"type\" field")?;
    let kind =
        SchemaType::parse(type_name).ok_or_else(|| format!("Unknown schema type: {type_name}"))?;
    let mut schema = Schema::new(kind);
    schema.optional = obj.get("optional").and_then(Json::as_bool).unwrap_or(false);
    schema.name = obj.get("name").and_then(Json::as_str).map(str::to_string);
    schema.version = obj.get("version").and_then(Json::as_i64).map(|v| v as i32);
    schema.doc = obj.get("doc").and_then(Json::as_str).map(str::to_string);
    schema.default = obj.get("default").filter(|d| !d.is_null()).cloned();
    if let Some(params) = obj.get("parameters").and_then(Json::as_object) {
        for (k, v) in params {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            schema.parameters.insert(k.clone(), v);
        }
    }
    match kind {
        SchemaType::Struct => {
            let fields = obj
                .get("fields")
                .and_then(Json::as_array)
                .ok_or("struct schema must contain a \"fields\" array")?;
            for f in fields {
                let name = f
                    .get("field")
                    .and_then(Json::as_str)
                    .ok_or("struct field must have a \"field\" name")?;
                schema.fields.push(Field {
                    name: name.to_string(),
                    schema: parse_schema(f)?,
                });
            }
        }
        SchemaType::Array => {
            let items = obj
                .get("items")
                .ok_or("array schema must contain \"items\"")?;
            schema.value_schema = Some(Box::new(parse_schema(items)?));
        }
        SchemaType::Map => {
            let keys = obj.get("keys").ok_or("map schema must contain \"keys\"")?;
            let values = obj
                .get("values")
                .ok_or("map schema must contain \"values\"")?;
            schema.key_schema = Some(Box::new(parse_schema(keys)?));
            schema.value_schema = Some(Box::new(parse_schema(values)?));
        }
        _ => {}
    }
    Ok(schema)
}

pub fn schema_to_json(schema: &Schema) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!(schema.kind.name()));
    m.insert("optional".into(), json!(schema.optional));
    if let Some(n) = &schema.name {
        m.insert("name".into(), json!(n));
    }
    if let Some(v) = schema.version {
        m.insert("version".into(), json!(v));
    }
    if let Some(d) = &schema.doc {
        m.insert("doc".into(), json!(d));
    }
    if let Some(d) = &schema.default {
        m.insert("default".into(), d.clone());
    }
    if !schema.parameters.is_empty() {
        m.insert("parameters".into(), json!(schema.parameters));
    }
    match schema.kind {
        SchemaType::Struct => {
            let fields: Vec<Json> = schema
                .fields
                .iter()
                .map(|f| {
                    let mut j = schema_to_json(&f.schema);
                    j["field"] = json!(f.name);
                    j
                })
                .collect();
            m.insert("fields".into(), Json::Array(fields));
        }
        SchemaType::Array => {
            if let Some(v) = &schema.value_schema {
                m.insert("items".into(), schema_to_json(v));
            }
        }
        SchemaType::Map => {
            if let Some(k) = &schema.key_schema {
                m.insert("keys".into(), schema_to_json(k));
            }
            if let Some(v) = &schema.value_schema {
                m.insert("values".into(), schema_to_json(v));
            }
        }
        _ => {}
    }
    Json::Object(m)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

pub fn decimal_from_bytes(bytes: &[u8], scale: u32) -> Result<Decimal, String> {
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(format!("invalid Decimal of {} bytes", bytes.len()));
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(bytes);
    Decimal::try_from_i128_with_scale(i128::from_be_bytes(buf), scale).map_err(|e| e.to_string())
}

pub fn decimal_to_bytes(d: &Decimal, scale: u32) -> Vec<u8> {
    let mut d = *d;
    d.rescale(scale);
    let bytes = d.mantissa().to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

fn decode(schema: &Schema, doc: &Json, path: &str) -> Result<Value, String> {
    if doc.is_null() {
        if let Some(d) = &schema.default {
            let mut s = schema.clone();
            s.default = None;
            return decode(&s, d, path);
        }
        if schema.optional {
            return Ok(Value::Null);
        }
        return Err(format!(
            "Invalid null value for required {} field {path}",
            schema.kind.name()
        ));
    }
    let mismatch = || {
        format!(
            "Invalid JSON for {} field {path}: {doc}",
            schema.kind.name()
        )
    };
    if schema.is(DECIMAL) {
        let scale = schema.decimal_scale();
        return match doc {
            Json::String(s) => {
                let bytes = B64
                    .decode(s)
                    .map_err(|e| format!("Invalid Decimal field {path}: {e}"))?;
                decimal_from_bytes(&bytes, scale).map(Value::Decimal)
            }
            Json::Number(n) => n
                .to_string()
                .parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&n.to_string()))
                .map(Value::Decimal)
                .map_err(|e| format!("Invalid Decimal field {path}: {e}")),
            _ => Err(mismatch()),
        };
    }
    if schema.is(TIMESTAMP) {
        let ms = doc.as_i64().ok_or_else(mismatch)?;
        return DateTime::from_timestamp_millis(ms)
            .map(|t| Value::Timestamp(t.naive_utc()))
            .ok_or_else(mismatch);
    }
    if schema.is(DATE) {
        let days = doc.as_i64().ok_or_else(mismatch)?;
        return epoch()
            .checked_add_signed(Duration::try_days(days).ok_or_else(mismatch)?)
            .map(Value::Date)
            .ok_or_else(mismatch);
    }
    if schema.is(TIME) {
        let ms = doc.as_i64().ok_or_else(mismatch)?;
        if !(0..86_400_000).contains(&ms) {
            return Err(mismatch());
        }
        let secs = (ms / 1000) as u32;
        return NaiveTime::from_num_seconds_from_midnight_opt(
            secs,
            ((ms % 1000) * 1_000_000) as u32,
        )
        .map(Value::Time)
        .ok_or_else(mismatch);
    }
    match schema.kind {
        SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64 => {
            let v = doc.as_i64().ok_or_else(mismatch)?;
            let ok = match schema.kind {
                SchemaType::Int8 => i8::try_from(v).is_ok(),
                SchemaType::Int16 => i16::try_from(v).is_ok(),
                SchemaType::Int32 => i32::try_from(v).is_ok(),
                _ => true,
            };
            if !ok {
                return Err(format!(
                    "Value {v} out of range for {} field {path}",
                    schema.kind.name()
                ));
            }
            Ok(Value::Int(v))
        }
        SchemaType::Float32 | SchemaType::Float64 => {
            doc.as_f64().map(Value::Float).ok_or_else(mismatch)
        }
        SchemaType::Boolean => doc.as_bool().map(Value::Bool).ok_or_else(mismatch),
        SchemaType::String => doc
            .as_str()
            .map(|s| Value::String(s.to_string()))
            .ok_or_else(mismatch),
        SchemaType::Bytes => {
            let s = doc.as_str().ok_or_else(mismatch)?;
            B64.decode(s)
                .map(Value::Bytes)
                .map_err(|e| format!("Invalid bytes field {path}: {e}"))
        }
        SchemaType::Array => {
            let items = doc.as_array().ok_or_else(mismatch)?;
            let item_schema = schema.value_schema.as_deref().ok_or_else(mismatch)?;
            items
                .iter()
                .enumerate()
                .map(|(i, v)| decode(item_schema, v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        SchemaType::Map => {
            let ks = schema.key_schema.as_deref().ok_or_else(mismatch)?;
            let vs = schema.value_schema.as_deref().ok_or_else(mismatch)?;
            match doc {
                Json::Object(m) if ks.kind == SchemaType::String => m
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            Value::String(k.clone()),
                            decode(vs, v, &format!("{path}.{k}"))?,
                        ))
                    })
                    .collect::<Result<_, String>>()
                    .map(Value::Map),
                Json::Array(pairs) => pairs
                    .iter()
                    .map(|p| match p.as_array().map(Vec::as_slice) {
                        Some([k, v]) => Ok((decode(ks, k, path)?, decode(vs, v, path)?)),
                        _ => Err(mismatch()),
                    })
                    .collect::<Result<_, String>>()
                    .map(Value::Map),
                _ => Err(mismatch()),
            }
        }
        SchemaType::Struct => {
            let obj = doc.as_object().ok_or_else(mismatch)?;
            schema
                .fields
                .iter()
                .map(|f| {
                    let v = obj.get(&f.name).unwrap_or(&Json::Null);
                    Ok((
                        f.name.clone(),
                        decode(&f.schema, v, &format!("{path}.{}", f.name))?,
                    ))
                })
                .collect::<Result<_, String>>()
                .map(Value::Struct)
        }
    }
}

pub fn encode(schema: Option<&Schema>, value: &Value, decimal_numeric: bool) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::String(s) => json!(s),
        Value::Bytes(b) => json!(B64.encode(b)),
        Value::Decimal(d) => {
            if decimal_numeric {
                serde_json::from_str(&d.to_string()).unwrap_or(Json::Null)
            } else {
                let scale = schema.map(Schema::decimal_scale).unwrap_or(d.scale());
                json!(B64.encode(decimal_to_bytes(d, scale)))
            }
        }
        Value::Date(d) => json!(d.signed_duration_since(epoch()).num_days()),
        Value::Time(t) => {
            json!(t.num_seconds_from_midnight() as i64 * 1000 + (t.nanosecond() / 1_000_000) as i64)
        }
        Value::Timestamp(t) => json!(t.and_utc().timestamp_millis()),
        Value::Array(items) => {
            let s = schema.and_then(|s| s.value_schema.as_deref());
            Json::Array(
                items
                    .iter()
                    .map(|v| encode(s, v, decimal_numeric))
                    .collect(),
            )
        }
        Value::Map(entries) => {
            let vs = schema.and_then(|s| s.value_schema.as_deref());
            if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                Json::Object(
                    entries
                        .iter()
                        .map(|(k, v)| (k.to_text(), encode(vs, v, decimal_numeric)))
                        .collect(),
                )
            } else {
                let ks = schema.and_then(|s| s.key_schema.as_deref());
                Json::Array(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            json!([
                                encode(ks, k, decimal_numeric),
                                encode(vs, v, decimal_numeric)
                            ])
                        })
                        .collect(),
                )
            }
        }
        Value::Struct(fields) => Json::Object(
            fields
                .iter()
                .map(|(n, v)| {
                    let fs = schema.and_then(|s| s.field(n)).map(|f| &f.schema);
                    (n.clone(), encode(fs, v, decimal_numeric))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trips_through_bytes() {
        for s in [
            "0",
            "1.25",
            "-1.25",
            "12345678901234567890.12",
            "-0.01",
            "127",
            "128",
            "-128",
            "-129",
        ] {
            let d: Decimal = s.parse().unwrap();
            let scale = d.scale();
            assert_eq!(
                decimal_from_bytes(&decimal_to_bytes(&d, scale), scale).unwrap(),
                d,
                "{s}"
            );
        }
        // Kafka's own example: 1.00 with scale 2 is "AGQ=" (0x0064).
        assert_eq!(
            B64.encode(decimal_to_bytes(&"1.00".parse().unwrap(), 2)),
            "ZA=="
        );
    }

    #[test]
    fn envelope_decodes_every_type() {
        let c = JsonConverter::new(&BTreeMap::new()).unwrap();
        let doc = json!({"schema":{"type":"struct","fields":[
            {"field":"a","type":"int32"},{"field":"b","type":"string","optional":true},
            {"field":"ts","type":"int64","name":TIMESTAMP,"version":1},
            {"field":"d","type":"int32","name":DATE},{"field":"t","type":"int32","name":TIME},
            {"field":"p","type":"bytes","name":DECIMAL,"parameters":{"scale":"2"}},
            {"field":"arr","type":"array","items":{"type":"int64"}},
            {"field":"m","type":"map","keys":{"type":"string"},"values":{"type":"boolean"}}]},
            "payload":{"a":1,"b":null,"ts":1700000000123i64,"d":1,"t":1500,"p":"ZA==","arr":[1,2],"m":{"x":true}}});
        let (schema, v) = c.to_connect("t", Some(doc.to_string().as_bytes())).unwrap();
        let schema = schema.unwrap();
        assert_eq!(v.get("a"), Some(&Value::Int(1)));
        assert_eq!(v.get("b"), Some(&Value::Null));
        assert_eq!(v.get("p"), Some(&Value::Decimal("1.00".parse().unwrap())));
        assert_eq!(
            v.get("d"),
            Some(&Value::Date(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()))
        );
        let back = c.from_connect("t", Some(&schema), &v).unwrap().unwrap();
        let back: Json = serde_json::from_slice(&back).unwrap();
        assert_eq!(back["payload"], doc["payload"]);
    }

    /// The general decoder alone, as the fast path's reference.
    fn general(bytes: &[u8]) -> Result<(Option<Schema>, Value), String> {
        let doc: Json = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let schema = parse_schema(&doc["schema"])?;
        let value = decode(&schema, &doc["payload"], "payload")?;
        Ok((Some(schema), value))
    }

    #[test]
    fn fast_path_agrees_with_the_general_decoder() {
        let c = JsonConverter::new(&BTreeMap::new()).unwrap();
        let schema = json!({"type":"struct","name":"orders","fields":[
            {"field":"i8","type":"int8","optional":true},
            {"field":"i32","type":"int32","optional":true},
            {"field":"i64","type":"int64","optional":true},
            {"field":"f","type":"double","optional":true},
            {"field":"b","type":"boolean","optional":true},
            {"field":"s","type":"string","optional":true},
            {"field":"by","type":"bytes","optional":true},
            {"field":"ts","type":"int64","name":TIMESTAMP,"optional":true},
            {"field":"d","type":"int32","name":DATE,"optional":true},
            {"field":"t","type":"int32","name":TIME,"optional":true},
            {"field":"dec","type":"bytes","name":DECIMAL,"parameters":{"scale":"2"},"optional":true},
            {"field":"arr","type":"array","items":{"type":"int32"},"optional":true},
            {"field":"m","type":"map","keys":{"type":"string"},"values":{"type":"int32"},"optional":true},
            {"field":"def","type":"int32","optional":true,"default":7},
            {"field":"req","type":"string"}]});
        let payloads = [
            json!({"req":"x"}),
            json!({"req":"x","i8":127,"i32":-5,"i64":9007199254740993i64,"f":1.5,"b":true,"s":"é\"q","by":"AAE=","ts":1700000000123i64,"d":19000,"t":1500,"dec":"ZA==","arr":[1,2,3],"m":{"a":1}}),
            json!({"req":"x","i8":128}),
            json!({"req":"x","i32":2147483648i64}),
            json!({"req":"x","i64":18446744073709551615u64}),
            json!({"req":"x","f":18446744073709551615u64}),
            json!({"req":"x","i32":1.0}),
            json!({"req":"x","f":3}),
            json!({"req":"x","s":5}),
            json!({"req":"x","b":"true"}),
            json!({"req":"x","by":"not base64!"}),
            json!({"req":"x","t":86400000}),
            json!({"req":"x","d":9223372036854775807i64}),
            json!({"req":"x","ts":9223372036854775807i64}),
            json!({"req":"x","dec":1.25}),
            json!({"req":"x","arr":[1,"2"]}),
            json!({"req":"x","def":null}),
            json!({"req":null}),
            json!({}),
            json!({"req":"x","unknown":{"deep":[1,2,{"x":null}]}}),
            json!([1, 2]),
            json!("scalar"),
            json!(null),
        ];
        for payload in payloads {
            let bytes = json!({"schema": schema, "payload": payload}).to_string();
            let fast = c
                .to_connect("t", Some(bytes.as_bytes()))
                .map(|(s, v)| (s.map(|s| (*s).clone()), v));
            let slow = general(bytes.as_bytes());
            assert_eq!(
                fast.is_ok(),
                slow.is_ok(),
                "{payload}: {fast:?} vs {slow:?}"
            );
            if let (Ok(a), Ok(b)) = (&fast, &slow) {
                assert_eq!(a, b, "{payload}");
            }
            if let (Err(a), Err(b)) = (&fast, &slow) {
                assert_eq!(a, b, "{payload}: the general decoder words every error");
            }
        }
        // Duplicate keys: the last one counts, as in a parsed document.
        let bytes = format!(r#"{{"schema":{schema},"payload":{{"req":"a","req":"b"}}}}"#);
        let (_, v) = c.to_connect("t", Some(bytes.as_bytes())).unwrap();
        assert_eq!(v.get("req"), Some(&Value::String("b".into())));
        // The schema is parsed once and shared by every record that carries the same text.
        let one = json!({"schema": schema, "payload": {"req":"x","def":1}}).to_string();
        let (a, _) = c.to_connect("t", Some(one.as_bytes())).unwrap();
        let (b, _) = c.to_connect("t", Some(one.as_bytes())).unwrap();
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
    }

    #[test]
    fn plain_json_with_schemas_enabled_is_an_error() {
        let c = JsonConverter::new(&BTreeMap::new()).unwrap();
        assert!(c
            .to_connect("t", Some(b"{\"a\":1}"))
            .unwrap_err()
            .contains("schemas.enable"));
        assert!(c.to_connect("t", Some(b"not json")).is_err());
    }
}
