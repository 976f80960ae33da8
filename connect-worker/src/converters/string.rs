//! `StringConverter`: bytes are UTF-8 text with an optional string schema.

use super::Converter;
use crate::data::{Schema, SchemaType, Value};

pub struct StringConverter;

impl Converter for StringConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Schema>, Value), String> {
        let schema = Some(Schema::new(SchemaType::String).optional(true));
        match bytes {
            None => Ok((schema, Value::Null)),
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => Ok((schema, Value::String(s.to_string()))),
                Err(e) => Err(format!("Failed to deserialize string: {e}")),
            },
        }
    }

    fn from_connect(
        &self,
        _topic: &str,
        _schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, String> {
        match value {
            Value::Null => Ok(None),
            v => Ok(Some(v.to_text().into_bytes())),
        }
    }
}
