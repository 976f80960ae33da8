//! The MariaDB/MySQL dialect: identifier quoting and Connect-schema-to-column-type mapping.
//! Every identifier that reaches SQL (tables from `table.name.format` and topics, columns from
//! record schemas) goes through [`quote`], which doubles backticks, so no name can inject SQL.

use crate::data::schema::{DATE, DECIMAL, TIME, TIMESTAMP};
use crate::data::{Schema, SchemaType};

/// A quoted identifier; `db.table` is quoted per part.
pub fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

pub fn quote_table(name: &str) -> String {
    name.split('.').map(quote).collect::<Vec<_>>().join(".")
}

/// Column type for a field (Confluent's MySQL dialect).
pub fn column_type(schema: &Schema, is_key: bool) -> Result<String, String> {
    if schema.is(DECIMAL) {
        return Ok(format!("DECIMAL(65,{})", schema.decimal_scale().min(30)));
    }
    if schema.is(DATE) {
        return Ok("DATE".into());
    }
    if schema.is(TIME) {
        return Ok("TIME(3)".into());
    }
    if schema.is(TIMESTAMP) {
        return Ok("DATETIME(3)".into());
    }
    Ok(match schema.kind {
        SchemaType::Int8 => "TINYINT",
        SchemaType::Int16 => "SMALLINT",
        SchemaType::Int32 => "INT",
        SchemaType::Int64 => "BIGINT",
        SchemaType::Float32 => "FLOAT",
        SchemaType::Float64 => "DOUBLE",
        SchemaType::Boolean => "TINYINT",
        SchemaType::String if is_key => "VARCHAR(256)",
        SchemaType::String => "TEXT",
        SchemaType::Bytes if is_key => "VARBINARY(767)",
        SchemaType::Bytes => "BLOB",
        other => return Err(format!("No SQL type for {} fields", other.name())),
    }
    .to_string())
}
