//! The message browser: one partition, from an offset, a timestamp, the beginning or the end,
//! a page of at most [`MAX_PAGE_RECORDS`] records read with one Fetch of at most
//! [`MAX_PAGE_BYTES`], so a page costs the same on a topic of a gigabyte as on an empty one.
//! Keys, values and headers are shown as text (binary as hex), JSON pretty-printed, and Kafka
//! Connect's `{"schema", "payload"}` envelope as a table of fields.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use broker::client::admin::{self, ReadFrom};
use broker::client::records::ConsumedRecord;
use maud::{html, Markup};
use serde_json::Value;

use super::{errors_of, FormErrors};
use crate::error::Result;
use crate::layout::{field_errors, page};
use crate::AppState;

pub const MAX_PAGE_RECORDS: usize = 100;
pub const MAX_PAGE_BYTES: i32 = 1 << 20;
const DEFAULT_PAGE_RECORDS: usize = 20;

/// A UTC date and time (`YYYY-MM-DD HH:MM:SS.mmm`) of a Unix time in milliseconds.
pub fn utc(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) if ms >= 0 => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        _ => "-".into(),
    }
}

/// Bytes as text where they are UTF-8, else as hex.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// A key or value: JSON pretty-printed, Connect's envelope as a table, else text.
pub fn render_value(bytes: Option<&[u8]>) -> Markup {
    let Some(bytes) = bytes else {
        return html! { span.muted { "null" } };
    };
    let Ok(json) = serde_json::from_slice::<Value>(bytes) else {
        return html! { pre { (text(bytes)) } };
    };
    if let Some(table) = connect_envelope(&json) {
        return table;
    }
    if json.is_object() || json.is_array() {
        let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
        return html! { pre.json { (pretty) } };
    }
    html! { pre { (text(bytes)) } }
}

/// Kafka Connect's JsonConverter envelope with a struct schema, as a table of its fields.
fn connect_envelope(json: &Value) -> Option<Markup> {
    let obj = json.as_object()?;
    if obj.len() != 2 {
        return None;
    }
    let schema = obj.get("schema")?.as_object()?;
    let payload = obj.get("payload")?.as_object()?;
    let fields = schema.get("fields")?.as_array()?;
    Some(html! {
        table.envelope {
            caption { "Connect record" @if let Some(n) = schema.get("name").and_then(Value::as_str) { " " (n) } }
            thead { tr { th { "Field" } th { "Type" } th { "Value" } } }
            tbody {
                @for f in fields {
                    @let name = f.get("field").and_then(Value::as_str).unwrap_or_default();
                    tr {
                        td { (name) }
                        td.muted { (f.get("type").and_then(Value::as_str).unwrap_or_default()) @if f.get("optional").and_then(Value::as_bool) == Some(true) { "?" } }
                        td { (payload.get(name).map(|v| match v { Value::String(s) => s.clone(), other => other.to_string() }).unwrap_or_default()) }
                    }
                }
            }
        }
    })
}

fn record_rows(records: &[ConsumedRecord]) -> Markup {
    html! {
        @for r in records {
            tr {
                td.num { (r.offset) }
                td { (utc(r.timestamp)) }
                td { (render_value(r.key.as_deref())) }
                td {
                    @for (k, v) in &r.headers {
                        div { strong { (k) } ": " (v.as_deref().map(text).unwrap_or_else(|| "null".into())) }
                    }
                }
                td.value { (render_value(r.value.as_deref())) }
            }
        }
    }
}

pub async fn browse(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let topic = state.kafka.topic(&name).await?;
    let mut errors = FormErrors::new();
    let q = |k: &str| {
        query
            .get(k)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let partition = match q("partition").as_str() {
        "" => 0,
        p => match p.parse::<i32>() {
            Ok(n) if topic.partitions.iter().any(|tp| tp.partition == n) => n,
            _ => {
                errors.entry("partition").or_default().push(format!(
                    "{name} has partitions 0 to {}",
                    topic.partitions.len().saturating_sub(1)
                ));
                0
            }
        },
    };
    let limit = match q("limit").as_str() {
        "" => DEFAULT_PAGE_RECORDS,
        l => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_RECORDS).contains(&n) => n,
            _ => {
                errors
                    .entry("limit")
                    .or_default()
                    .push(format!("between 1 and {MAX_PAGE_RECORDS} records per page"));
                DEFAULT_PAGE_RECORDS
            }
        },
    };
    let from_kind = match q("from").as_str() {
        "" => "earliest".to_string(),
        f => f.to_string(),
    };
    let value = q("value");
    let from = match from_kind.as_str() {
        "earliest" => ReadFrom::Earliest,
        "latest" => ReadFrom::Latest(limit as i64),
        "offset" => match value.parse::<i64>() {
            Ok(o) if o >= 0 => ReadFrom::Offset(o),
            _ => {
                errors
                    .entry("value")
                    .or_default()
                    .push(format!("{value:?} is not an offset"));
                ReadFrom::Earliest
            }
        },
        "timestamp" => match value.parse::<i64>() {
            Ok(t) if t >= 0 => ReadFrom::Timestamp(t),
            _ => {
                errors.entry("value").or_default().push(format!(
                    "{value:?} is not a timestamp in milliseconds since 1970"
                ));
                ReadFrom::Earliest
            }
        },
        other => {
            errors.entry("from").or_default().push(format!(
                "{other:?}: choose earliest, latest, offset or timestamp"
            ));
            ReadFrom::Earliest
        }
    };
    let page_data = if errors.is_empty() {
        Some(
            state
                .kafka
                .with(async |c| {
                    admin::read_partition(c, &name, partition, from, limit, MAX_PAGE_BYTES).await
                })
                .await?,
        )
    } else {
        None
    };
    let selected = |k: &str| from_kind == k;
    let body = html! {
        h1 { "Messages of " a href={ "/topics/" (name) } { (name) } }
        form.card method="get" id="browse" {
            label for="partition" { "Partition" }
            select #partition name="partition" {
                @for p in &topic.partitions {
                    option value=(p.partition) selected[p.partition == partition] { (p.partition) }
                }
            }
            (field_errors(errors_of(&errors, "partition")))
            label for="from" { "From" }
            select #from name="from" {
                option value="earliest" selected[selected("earliest")] { "the beginning" }
                option value="latest" selected[selected("latest")] { "the end (last page)" }
                option value="offset" selected[selected("offset")] { "offset" }
                option value="timestamp" selected[selected("timestamp")] { "timestamp (ms)" }
            }
            (field_errors(errors_of(&errors, "from")))
            label for="value" { "Offset or timestamp" }
            input #value type="text" name="value" value=(value);
            (field_errors(errors_of(&errors, "value")))
            label for="limit" { "Records per page" }
            input #limit type="number" name="limit" min="1" max=(MAX_PAGE_RECORDS) value=(limit);
            (field_errors(errors_of(&errors, "limit")))
            p { button type="submit" { "Show" } }
        }
        @if let Some(p) = &page_data {
            p.muted #range {
                "Partition " (partition) ": offsets " (p.start) " to " (p.end) "; showing " (p.records.len()) " from offset " (p.first) "."
                @if let Some(last) = p.records.last() {
                    @if last.offset + 1 < p.end {
                        " " a #next href={ "/topics/" (name) "/messages?partition=" (partition) "&from=offset&value=" (last.offset + 1) "&limit=" (limit) } { "Next page" }
                    }
                }
            }
            table #messages {
                thead { tr { th.num { "Offset" } th { "Timestamp (UTC)" } th { "Key" } th { "Headers" } th { "Value" } } }
                tbody { (record_rows(&p.records)) }
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, page(&format!("Messages of {name}"), body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_709_164_800_123), "2024-02-29 00:00:00.123");
        assert_eq!(utc(-5), "-");
    }

    #[test]
    fn values_render_by_kind() {
        let envelope = br#"{"schema":{"type":"struct","name":"orders","fields":[{"field":"order_id","type":"string"},{"field":"qty","type":"int32","optional":true}]},"payload":{"order_id":"o-1","qty":3}}"#;
        let html = render_value(Some(envelope)).into_string();
        assert!(
            html.contains("<caption>Connect record orders</caption>"),
            "{html}"
        );
        assert!(
            html.contains("<td>order_id</td>") && html.contains("<td>o-1</td>"),
            "{html}"
        );
        assert!(html.contains("int32?"), "{html}");
        let pretty = render_value(Some(br#"{"a":[1,2]}"#)).into_string();
        assert!(pretty.contains("&quot;a&quot;: ["), "{pretty}");
        assert_eq!(
            render_value(Some(&[0xff, 0x00])).into_string(),
            "<pre>ff00</pre>"
        );
        assert!(render_value(None).into_string().contains("null"));
        assert_eq!(
            render_value(Some(b"<b>")).into_string(),
            "<pre>&lt;b&gt;</pre>"
        );
    }
}
