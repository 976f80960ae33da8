//! Connect values. Integers and floats keep their width in the [`Schema`](super::Schema), not
//! here; logical types are decoded to their meaning (a decimal, a date...) so that sinks never
//! see the wire encoding.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
    Decimal(Decimal),
    Date(NaiveDate),
    Time(NaiveTime),
    /// UTC.
    Timestamp(NaiveDateTime),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// Field values in schema order (or, schemaless, in document order).
    Struct(Vec<(String, Value)>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A struct's (or a string-keyed map's) field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// How the value reads as text (FileStream sink, string converter, error headers).
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => "null".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::String(s) => s.clone(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Decimal(d) => d.to_string(),
            Value::Date(d) => d.to_string(),
            Value::Time(t) => t.to_string(),
            Value::Timestamp(t) => t.and_utc().to_rfc3339(),
            Value::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|v| v.to_text())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}={}", k.to_text(), v.to_text()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Struct(fields) => format!(
                "Struct{{{}}}",
                fields
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| format!("{k}={}", v.to_text()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}
