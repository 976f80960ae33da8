//! Connect schemas, including the logical types (`Decimal`, `Date`, `Time`, `Timestamp`) that
//! are a primitive type plus a well-known name.

use std::collections::BTreeMap;

pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
pub const DATE: &str = "org.apache.kafka.connect.data.Date";
pub const TIME: &str = "org.apache.kafka.connect.data.Time";
pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
pub const DECIMAL_SCALE: &str = "scale";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl SchemaType {
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" | "float32" => SchemaType::Float32,
            "double" | "float64" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub kind: SchemaType,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub default: Option<serde_json::Value>,
    /// Struct fields, in order.
    pub fields: Vec<Field>,
    /// Array items / map values.
    pub value_schema: Option<Box<Schema>>,
    /// Map keys.
    pub key_schema: Option<Box<Schema>>,
}

impl Schema {
    pub fn new(kind: SchemaType) -> Self {
        Schema {
            kind,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            default: None,
            fields: Vec::new(),
            value_schema: None,
            key_schema: None,
        }
    }

    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    pub fn decimal(scale: i32) -> Self {
        let mut s = Schema::new(SchemaType::Bytes).named(DECIMAL);
        s.version = Some(1);
        s.parameters
            .insert(DECIMAL_SCALE.to_string(), scale.to_string());
        s
    }

    pub fn logical(kind: SchemaType, name: &str) -> Self {
        let mut s = Schema::new(kind).named(name);
        s.version = Some(1);
        s
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn is(&self, logical: &str) -> bool {
        self.name.as_deref() == Some(logical)
    }

    pub fn decimal_scale(&self) -> u32 {
        self.parameters
            .get(DECIMAL_SCALE)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    }
}
