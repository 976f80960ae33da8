//! Topics: the list with a create form, one topic's partitions, offsets and configs with a
//! delete that asks for the name again, and producing a message.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use broker::client::admin;
use bytes::Bytes;
use maud::{html, Markup};

use super::{errors_of, FormErrors};
use crate::error::{ConsoleError, Result};
use crate::layout::{field_errors, page};
use crate::AppState;

/// A size in bytes for people (`-` when unknown).
fn bytes(size: Option<i64>) -> String {
    let Some(b) = size else {
        return "-".into();
    };
    let b = b as f64;
    match b {
        _ if b >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GiB", b / 1024.0 / 1024.0 / 1024.0),
        _ if b >= 1024.0 * 1024.0 => format!("{:.1} MiB", b / 1024.0 / 1024.0),
        _ if b >= 1024.0 => format!("{:.1} KiB", b / 1024.0),
        _ => format!("{b} B"),
    }
}

/// Kafka's rule for topic names.
fn topic_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a topic needs a name".into());
    }
    if name.len() > 249 {
        return Some("a topic name has at most 249 characters".into());
    }
    if name == "." || name == ".." {
        return Some("a topic cannot be named \".\" or \"..\"".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Some("only ASCII letters, digits, '.', '_' and '-' are allowed".into());
    }
    None
}

/// `key=value` lines (blank lines ignored).
fn parse_pairs(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("{l:?} is not key=value")),
        })
        .collect()
}

fn create_form(values: &HashMap<String, String>, errors: &FormErrors) -> Markup {
    let v = |k: &str| values.get(k).cloned().unwrap_or_default();
    html! {
        form.card method="post" action="/topics" id="create-topic" {
            h2 { "Create a topic" }
            @if let Some(e) = errors.get("") { (field_errors(e)) }
            label for="name" { "Name" }
            input #name type="text" name="name" value=(v("name")) required;
            (field_errors(errors_of(errors, "name")))
            label for="partitions" { "Partitions" }
            input #partitions type="number" name="partitions" min="1" value=(if v("partitions").is_empty() { "1".to_string() } else { v("partitions") });
            (field_errors(errors_of(errors, "partitions")))
            label for="configs" { "Configs (key=value per line)" }
            textarea #configs name="configs" rows="3" style="min-height:4rem" { (v("configs")) }
            (field_errors(errors_of(errors, "configs")))
            p { button type="submit" { "Create" } }
        }
    }
}

async fn list_page(
    state: &AppState,
    values: &HashMap<String, String>,
    errors: &FormErrors,
) -> Result<Markup> {
    let topics = state.kafka.topics(None, true).await?;
    Ok(page(
        "Topics",
        html! {
            h1 { "Topics" }
            table #topics {
                thead { tr { th { "Name" } th.num { "Partitions" } th.num { "Records" } th.num { "Size" } th { "" } } }
                tbody {
                    @for t in &topics {
                        tr {
                            td { a href={ "/topics/" (t.name) } { (t.name) } @if t.internal { " " span.muted { "(internal)" } } }
                            td.num { (t.partitions.len()) }
                            td.num { (t.records()) }
                            td.num { (bytes(t.size())) }
                            td { a href={ "/topics/" (t.name) "/messages" } { "messages" } }
                        }
                    }
                }
            }
            @if !state.read_only { (create_form(values, errors)) }
        },
    ))
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Markup> {
    list_page(&state, &HashMap::new(), &FormErrors::new()).await
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    state.writable()?;
    let mut errors = FormErrors::new();
    let name = form.get("name").map(|s| s.trim()).unwrap_or_default();
    if let Some(p) = topic_name_problem(name) {
        errors.entry("name").or_default().push(p);
    }
    let partitions = match form.get("partitions").map(|s| s.trim()).unwrap_or("1") {
        "" => None,
        p => match p.parse::<i32>() {
            Ok(n) if (1..=100_000).contains(&n) => Some(n),
            _ => {
                errors
                    .entry("partitions")
                    .or_default()
                    .push(format!("{p:?} is not a number of partitions (1 to 100000)"));
                None
            }
        },
    };
    let configs = match parse_pairs(form.get("configs").map_or("", String::as_str)) {
        Ok(c) => c,
        Err(e) => {
            errors.entry("configs").or_default().push(e);
            Vec::new()
        }
    };
    if errors.is_empty() {
        let name = name.to_string();
        let result = state
            .kafka
            .with(async |c| admin::create_topic(c, &name, partitions, None, &configs).await)
            .await;
        match result {
            Ok(()) => return Ok(Redirect::to(&format!("/topics/{name}")).into_response()),
            Err(e @ ConsoleError::Kafka(_)) if e.status() == StatusCode::BAD_REQUEST => {
                errors.entry("name").or_default().push(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    let page = list_page(&state, &form, &errors).await?;
    Ok((StatusCode::BAD_REQUEST, page).into_response())
}

pub async fn detail(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Markup> {
    let topic = state.kafka.topic(&name).await?;
    let configs = state.kafka.topic_configs(&name).await?;
    Ok(page(
        &name,
        html! {
            h1 { "Topic " (name) }
            p {
                a href={ "/topics/" (name) "/messages" } { "Browse messages" }
                @if !state.read_only { " · " a href={ "/topics/" (name) "/produce" } { "Produce a message" } }
            }
            h2 { "Partitions" }
            table #partitions {
                thead { tr { th { "Partition" } th { "Leader" } th.num { "Replicas" } th.num { "Start offset" } th.num { "End offset" } th.num { "Records" } th.num { "Size" } } }
                tbody {
                    @for p in &topic.partitions {
                        tr {
                            td { a href={ "/topics/" (name) "/messages?partition=" (p.partition) } { (p.partition) } }
                            td { (p.leader) }
                            td.num { (p.replicas) }
                            td.num { (p.start.map_or("-".into(), |o| o.to_string())) }
                            td.num { (p.end.map_or("-".into(), |o| o.to_string())) }
                            td.num { (match (p.start, p.end) { (Some(s), Some(e)) => (e - s).to_string(), _ => "-".into() }) }
                            td.num { (bytes(p.size)) }
                        }
                    }
                }
            }
            h2 { "Configs" }
            table #configs {
                thead { tr { th { "Name" } th { "Value" } th { "" } } }
                tbody {
                    @for c in &configs {
                        tr {
                            td { (c.name) }
                            td { @if c.is_sensitive { "(sensitive)" } @else { (c.value.as_deref().unwrap_or("null")) } }
                            td { @if c.is_override { strong { "set on topic" } } @else { span.muted { "default" } } }
                        }
                    }
                }
            }
            @if !state.read_only && !topic.internal {
                form.card method="post" action={ "/topics/" (name) "/delete" } id="delete-topic" {
                    h2 { "Delete this topic" }
                    p { "Every message of " strong { (name) } " is removed. Type the topic's name to confirm." }
                    input #confirm type="text" name="confirm" autocomplete="off";
                    p { button.danger type="submit" { "Delete topic" } }
                }
            }
        },
    ))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    state.writable()?;
    if form.get("confirm").map(|s| s.trim()) != Some(name.as_str()) {
        return Err(ConsoleError::BadRequest(format!(
            "type the topic's name ({name}) to confirm its deletion"
        )));
    }
    state
        .kafka
        .with(async |c| admin::delete_topic(c, &name).await)
        .await?;
    Ok(Redirect::to("/topics").into_response())
}

fn produce_page(
    name: &str,
    values: &HashMap<String, String>,
    errors: &FormErrors,
    produced: Option<(i32, i64)>,
) -> Markup {
    let v = |k: &str| values.get(k).cloned().unwrap_or_default();
    page(
        "Produce",
        html! {
            h1 { "Produce to " a href={ "/topics/" (name) } { (name) } }
            @if let Some((p, o)) = produced {
                div.notice role="status" #produced {
                    "Produced to partition " (p) " at offset " (o) ". "
                    a href={ "/topics/" (name) "/messages?partition=" (p) "&from=offset&value=" (o) } { "See it" }
                }
            }
            form.card method="post" action={ "/topics/" (name) "/produce" } id="produce" {
                @if let Some(e) = errors.get("") { (field_errors(e)) }
                label for="partition" { "Partition (empty: by key)" }
                input #partition type="number" name="partition" min="0" value=(v("partition"));
                (field_errors(errors_of(errors, "partition")))
                label for="key" { "Key (empty: none)" }
                input #key type="text" name="key" value=(v("key"));
                label for="value" { "Value" }
                textarea #value name="value" { (v("value")) }
                label for="headers" { "Headers (key=value per line)" }
                textarea #headers name="headers" rows="2" style="min-height:3rem" { (v("headers")) }
                (field_errors(errors_of(errors, "headers")))
                p { button type="submit" { "Produce" } }
            }
        },
    )
}

pub async fn produce_form(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Markup> {
    state.writable()?;
    state.kafka.topic(&name).await?;
    Ok(produce_page(
        &name,
        &HashMap::new(),
        &FormErrors::new(),
        None,
    ))
}

pub async fn produce(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    state.writable()?;
    let mut errors = FormErrors::new();
    let partition = match form.get("partition").map(|s| s.trim()).unwrap_or("") {
        "" => None,
        p => match p.parse::<i32>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                errors
                    .entry("partition")
                    .or_default()
                    .push(format!("{p:?} is not a partition number"));
                None
            }
        },
    };
    let headers = match parse_pairs(form.get("headers").map_or("", String::as_str)) {
        Ok(h) => h
            .into_iter()
            .map(|(k, v)| (k, Some(Bytes::from(v))))
            .collect(),
        Err(e) => {
            errors.entry("headers").or_default().push(e);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            produce_page(&name, &form, &errors, None),
        )
            .into_response());
    }
    let key = form
        .get("key")
        .filter(|k| !k.is_empty())
        .map(|k| Bytes::from(k.clone()));
    let value = Some(Bytes::from(form.get("value").cloned().unwrap_or_default()));
    let result = state
        .kafka
        .with(async |c| admin::produce_record(c, &name, partition, (key, value, headers)).await)
        .await;
    match result {
        Ok(at) => {
            Ok(produce_page(&name, &HashMap::new(), &FormErrors::new(), Some(at)).into_response())
        }
        Err(e) if e.status().is_client_error() => {
            errors.entry("").or_default().push(e.to_string());
            Ok((
                StatusCode::BAD_REQUEST,
                produce_page(&name, &form, &errors, None),
            )
                .into_response())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(bytes(None), "-");
        assert_eq!(bytes(Some(512)), "512 B");
        assert_eq!(bytes(Some(1536)), "1.5 KiB");
        assert_eq!(bytes(Some(1 << 30)), "1.0 GiB");
    }

    #[test]
    fn topic_names_follow_kafka() {
        assert!(topic_name_problem("orders.v1_x-2").is_none());
        assert!(topic_name_problem("").is_some());
        assert!(topic_name_problem("a b").is_some());
        assert!(topic_name_problem("..").is_some());
        assert!(topic_name_problem(&"x".repeat(250)).is_some());
    }

    #[test]
    fn pairs_parse_line_by_line() {
        assert_eq!(
            parse_pairs("a=1\n\n b = two=2 \n").unwrap(),
            vec![("a".into(), "1".into()), ("b".into(), "two=2".into())]
        );
        assert!(parse_pairs("novalue").is_err());
        assert!(parse_pairs("=x").is_err());
    }
}
