//! `StringConverter`: bytes are UTF-8 text with an optional string schema.

use std::sync::Arc;

use super::Converter;
use crate::data::{Schema, SchemaType, Value};

pub struct StringConverter {
    schema: Arc<Schema>,
}

impl Default for StringConverter {
    fn default() -> Self {
        StringConverter {
            schema: Arc::new(Schema::new(SchemaType::String).optional(true)),
        }
    }
}

impl Converter for StringConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Arc<Schema>>, Value), String> {
        let schema = Some(self.schema.clone());
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
