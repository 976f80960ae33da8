//! Connectors through Kafka Connect's REST API: status with the worker running each task,
//! config, create from JSON (Connect's validation errors shown next to the fields), pause,
//! resume, restart and delete.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::Value;

use crate::connect::FieldErrors;
use crate::error::Result;
use crate::layout::{field_errors, page};
use crate::AppState;

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Markup> {
    let connectors = state.connect.connectors().await?;
    Ok(page(
        "Connectors",
        html! {
            h1 { "Connectors" }
            @if !state.read_only { p { a href="/connectors/new" { "New connector" } } }
            table #connectors {
                thead { tr { th { "Name" } th { "Type" } th { "State" } th { "Worker" } th { "Tasks" } } }
                tbody {
                    @for c in &connectors {
                        tr {
                            td { a href={ "/connectors/" (c.name) } { (c.name) } }
                            td { (c.kind) }
                            td { span class={ "state-" (c.state) } { (c.state) } }
                            td { (c.worker_id) }
                            td {
                                @for t in &c.tasks {
                                    span class={ "state-" (t.state) } { "#" (t.id) " " (t.state) } " "
                                }
                            }
                        }
                    }
                }
            }
            @if connectors.is_empty() { p.muted { "No connectors." } }
        },
    ))
}

pub async fn detail(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Markup> {
    let (status, config) = state.connect.connector(&name).await?;
    Ok(page(
        &name,
        html! {
            h1 { "Connector " (name) }
            div.kv.card {
                span { "Type" } span { (status.kind) }
                span { "State" } span #state class={ "state-" (status.state) } { (status.state) }
                span { "Worker" } span { (status.worker_id) }
            }
            @if let Some(trace) = &status.trace { h2 { "Error" } pre.error { (trace) } }
            @if !state.read_only {
                p #actions {
                    @for action in ["pause", "resume", "restart"] {
                        form.inline method="post" action={ "/connectors/" (name) "/" (action) } {
                            button.plain type="submit" id={ "action-" (action) } { (action) }
                        } " "
                    }
                    form.inline method="post" action={ "/connectors/" (name) "/delete" } {
                        button.danger type="submit" id="action-delete" { "delete" }
                    }
                }
            }
            h2 { "Tasks" }
            table #tasks {
                thead { tr { th.num { "Task" } th { "State" } th { "Worker" } th { "Trace" } } }
                tbody {
                    @for t in &status.tasks {
                        tr {
                            td.num { (t.id) }
                            td { span class={ "state-" (t.state) } { (t.state) } }
                            td { (t.worker_id) }
                            td { @if let Some(tr) = &t.trace { pre { (tr) } } }
                        }
                    }
                }
            }
            h2 { "Config" }
            table #config {
                tbody { @for (k, v) in &config { tr { td { (k) } td { (v) } } } }
            }
        },
    ))
}

const EXAMPLE: &str = r#"{
  "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
  "connection.url": "jdbc:mysql://mariadb:3306/mydb",
  "connection.user": "root",
  "connection.password": "test1357",
  "topics": "orders",
  "auto.create": "true",
  "auto.evolve": "true",
  "delete.enabled": "false",
  "tasks.max": "1"
}"#;

fn new_page(values: &HashMap<String, String>, errors: &FieldErrors) -> Markup {
    let name = values.get("name").cloned().unwrap_or_default();
    let config = values
        .get("config")
        .cloned()
        .unwrap_or_else(|| EXAMPLE.to_string());
    let field = |k: &str| errors.get(k).map_or(&[][..], Vec::as_slice);
    // Problems of config keys, listed beside the JSON they came from.
    let by_key: BTreeMap<&String, &Vec<String>> = errors
        .iter()
        .filter(|(k, _)| !k.is_empty() && k.as_str() != "name" && k.as_str() != "config")
        .collect();
    page(
        "New connector",
        html! {
            h1 { "New connector" }
            form.card method="post" action="/connectors" id="new-connector" {
                (field_errors(field("")))
                label for="name" { "Name" }
                input #name type="text" name="name" value=(name) required;
                (field_errors(field("name")))
                label for="config" { "Config (JSON object, as in POST /connectors)" }
                textarea #config name="config" rows="14" { (config) }
                (field_errors(field("config")))
                @if !by_key.is_empty() {
                    table #config-errors {
                        caption { "Connect refused these settings" }
                        thead { tr { th { "Setting" } th { "Problem" } } }
                        tbody {
                            @for (k, problems) in &by_key {
                                tr { td { code { (k) } } td { (field_errors(problems)) } }
                            }
                        }
                    }
                }
                p { button type="submit" { "Create" } }
            }
        },
    )
}

pub async fn new_form(State(state): State<Arc<AppState>>) -> Result<Markup> {
    state.writable()?;
    Ok(new_page(&HashMap::new(), &FieldErrors::new()))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    state.writable()?;
    let mut errors = FieldErrors::new();
    let name = form.get("name").map(|s| s.trim()).unwrap_or_default();
    if name.is_empty() {
        errors
            .entry("name".into())
            .or_default()
            .push("a connector needs a name".into());
    }
    let config = match serde_json::from_str::<Value>(form.get("config").map_or("", String::as_str))
    {
        Ok(Value::Object(m)) => Some(m),
        Ok(_) => {
            errors
                .entry("config".into())
                .or_default()
                .push("the config must be a JSON object of string settings".into());
            None
        }
        Err(e) => {
            errors
                .entry("config".into())
                .or_default()
                .push(format!("not JSON: {e}"));
            None
        }
    };
    if let (Some(config), true) = (config, errors.is_empty()) {
        match state.connect.create(name, config).await? {
            Ok(()) => return Ok(Redirect::to(&format!("/connectors/{name}")).into_response()),
            Err(problems) => errors = problems,
        }
    }
    Ok((StatusCode::BAD_REQUEST, new_page(&form, &errors)).into_response())
}

pub async fn act(
    State(state): State<Arc<AppState>>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response> {
    state.writable()?;
    state.connect.act(&name, &action).await?;
    let to = if action == "delete" {
        "/connectors".to_string()
    } else {
        format!("/connectors/{name}")
    };
    Ok(Redirect::to(&to).into_response())
}
