//! Consumer groups: state, members and lag per partition (charted over the last minutes), and
//! resetting the offsets of a group without members, as kafka-consumer-groups.sh
//! `--reset-offsets` does (to the earliest, the latest, a timestamp or an offset).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use broker::client::admin::{self, GroupDescription};
use maud::{html, Markup};

use super::{errors_of, FormErrors};
use crate::error::Result;
use crate::kafka::ResetTo;
use crate::layout::{field_errors, page};
use crate::{chart, AppState};

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Markup> {
    let groups = state.kafka.groups().await?;
    Ok(page(
        "Consumer groups",
        html! {
            h1 { "Consumer groups" }
            table #groups {
                thead { tr { th { "Group" } th { "State" } th.num { "Members" } th.num { "Partitions" } th.num { "Lag" } } }
                tbody {
                    @for g in &groups {
                        tr {
                            td { a href={ "/groups/" (g.group_id) } { (g.group_id) } }
                            td { span class={ "state-" (g.state) } { (g.state) } }
                            td.num { (g.members.len()) }
                            td.num { (g.partitions.len()) }
                            td.num.lag { (g.total_lag()) }
                        }
                    }
                }
            }
            @if groups.is_empty() { p.muted { "No consumer groups." } }
        },
    ))
}

fn detail_page(
    state: &AppState,
    g: &GroupDescription,
    values: &HashMap<String, String>,
    errors: &FormErrors,
) -> Markup {
    let v = |k: &str| values.get(k).cloned().unwrap_or_default();
    let to = v("to");
    html! {
        h1 { "Consumer group " (g.group_id) }
        div.kv.card {
            span { "State" } span #state class={ "state-" (g.state) } { (g.state) }
            span { "Members" } span { (g.members.len()) }
            span { "Total lag" } span #total-lag { (g.total_lag()) }
        }
        div.charts { (chart::line("Lag of this group", "records", &state.history.lag_of(&g.group_id))) }
        h2 { "Partitions" }
        table #lag {
            thead { tr { th { "Topic" } th.num { "Partition" } th.num { "Committed" } th.num { "End" } th.num { "Lag" } th { "Owner" } } }
            tbody {
                @for p in &g.partitions {
                    tr {
                        td { a href={ "/topics/" (p.topic) } { (p.topic) } }
                        td.num { (p.partition) }
                        td.num { (p.committed.map_or("-".into(), |o| o.to_string())) }
                        td.num { (p.end.map_or("-".into(), |o| o.to_string())) }
                        td.num { (p.lag().map_or("-".into(), |o| o.to_string())) }
                        td { @if let Some(m) = p.owner.and_then(|i| g.members.get(i)) { (m.client_id) " " span.muted { (m.host) } } }
                    }
                }
            }
        }
        h2 { "Members" }
        table #members {
            thead { tr { th { "Member" } th { "Client" } th { "Host" } th.num { "Partitions" } } }
            tbody {
                @for m in &g.members {
                    tr { td { (m.member_id) } td { (m.client_id) } td { (m.host) } td.num { (m.partitions.len()) } }
                }
            }
        }
        @if !state.read_only {
            form.card method="post" action={ "/groups/" (g.group_id) "/reset" } id="reset" {
                h2 { "Reset offsets" }
                @if g.members.is_empty() {
                    p.muted { "Moves the committed offset of every partition the group has committed." }
                } @else {
                    p.muted { "Only a group without members can be reset: stop its consumers first." }
                }
                @if let Some(e) = errors.get("") { (field_errors(e)) }
                label for="to" { "To" }
                select #to name="to" {
                    option value="earliest" selected[to == "earliest"] { "the earliest offset" }
                    option value="latest" selected[to == "latest"] { "the latest offset" }
                    option value="timestamp" selected[to == "timestamp"] { "the first offset at a timestamp (ms)" }
                    option value="offset" selected[to == "offset"] { "an offset" }
                }
                (field_errors(errors_of(errors, "to")))
                label for="value" { "Timestamp or offset" }
                input #value type="text" name="value" value=(v("value"));
                (field_errors(errors_of(errors, "value")))
                p { button type="submit" disabled[!g.members.is_empty()] { "Reset" } }
            }
        }
    }
}

pub async fn detail(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Markup> {
    let g = state.kafka.group(&id).await?;
    Ok(page(
        &id,
        detail_page(&state, &g, &HashMap::new(), &FormErrors::new()),
    ))
}

pub async fn reset(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    state.writable()?;
    let g = state.kafka.group(&id).await?;
    let mut errors = FormErrors::new();
    let value = form.get("value").map(|s| s.trim()).unwrap_or_default();
    let number = |what: &str, errors: &mut FormErrors| match value.parse::<i64>() {
        Ok(n) if n >= 0 => Some(n),
        _ => {
            errors
                .entry("value")
                .or_default()
                .push(format!("{value:?} is not {what}"));
            None
        }
    };
    let to = match form.get("to").map(String::as_str).unwrap_or_default() {
        "earliest" => Some(ResetTo::Earliest),
        "latest" => Some(ResetTo::Latest),
        "timestamp" => number("a timestamp in milliseconds", &mut errors).map(ResetTo::Timestamp),
        "offset" => number("an offset", &mut errors).map(ResetTo::Offset),
        other => {
            errors.entry("to").or_default().push(format!(
                "{other:?}: choose earliest, latest, timestamp or offset"
            ));
            None
        }
    };
    if !g.members.is_empty() {
        errors.entry("").or_default().push(format!(
            "group {id} has {} active member(s); only a group without members can be reset",
            g.members.len()
        ));
    }
    if let (Some(to), true) = (to, errors.is_empty()) {
        let targets = state.kafka.reset_targets(&id, to).await?;
        let result = state
            .kafka
            .with(async |c| admin::commit_offsets(c, &id, &targets).await)
            .await;
        match result {
            Ok(()) => return Ok(Redirect::to(&format!("/groups/{id}")).into_response()),
            Err(e) if e.status().is_client_error() => {
                errors.entry("").or_default().push(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    let body = detail_page(&state, &g, &form, &errors);
    Ok((StatusCode::BAD_REQUEST, page(&id, body)).into_response())
}
