//! The pages, one module per subject, and the overview.

pub mod connectors;
pub mod groups;
pub mod messages;
pub mod topics;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use crate::error::Result;
use crate::{chart, layout, AppState};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(overview))
        .route("/healthz", get(|| async { "ok" }))
        .route("/topics", get(topics::list).post(topics::create))
        .route("/topics/{name}", get(topics::detail))
        .route("/topics/{name}/delete", post(topics::delete))
        .route("/topics/{name}/messages", get(messages::browse))
        .route(
            "/topics/{name}/produce",
            get(topics::produce_form).post(topics::produce),
        )
        .route("/groups", get(groups::list))
        .route("/groups/{id}", get(groups::detail))
        .route("/groups/{id}/reset", post(groups::reset))
        .route(
            "/connectors",
            get(connectors::list).post(connectors::create),
        )
        .route("/connectors/new", get(connectors::new_form))
        .route("/connectors/{name}", get(connectors::detail))
        .route("/connectors/{name}/{action}", post(connectors::act))
}

/// Form problems by field name.
pub type FormErrors = BTreeMap<&'static str, Vec<String>>;

pub(crate) fn errors_of<'a>(errors: &'a FormErrors, field: &str) -> &'a [String] {
    errors.get(field).map_or(&[], Vec::as_slice)
}

async fn overview(State(state): State<Arc<AppState>>) -> Result<Markup> {
    let info = state.kafka.cluster_info().await?;
    let history = &state.history;
    Ok(layout::page(
        "Overview",
        html! {
            h1 { "Overview" }
            div.kv.card {
                span { "Bootstrap servers" } span { (state.kafka.servers()) }
                span { "Cluster id" } span { (info.cluster_id.as_deref().unwrap_or("-")) }
                span { "Controller" } span { (info.controller) }
                span { "Topics" } span { (info.topics) " (" (info.internal_topics) " internal)" }
                span { "Partitions" } span { (info.partitions) }
                span { "Broker metrics" } span { (state.metrics_url.as_deref().unwrap_or("not configured")) }
                span { "Kafka Connect" } span {
                    @if state.connect.configured() { (state.connect.urls().join(", ")) } @else { "not configured" }
                }
            }
            h2 { "Brokers" }
            table {
                thead { tr { th { "Id" } th { "Address" } th { "Role" } } }
                tbody {
                    @for (id, addr) in &info.brokers {
                        tr { td { (id) } td { (addr) } td { @if *id == info.controller { "controller" } } }
                    }
                }
            }
            h2 { "Last minutes" }
            div.charts {
                @if state.metrics_url.is_some() {
                    (chart::line("Messages in (broker metrics)", "records/s", &history.broker_rate(|c| c.messages_in)))
                    (chart::line("Bytes in (broker metrics)", "bytes/s", &history.broker_rate(|c| c.bytes_in)))
                    (chart::line("Bytes out (broker metrics)", "bytes/s", &history.broker_rate(|c| c.bytes_out)))
                    (chart::line("Open connections", "connections", &history.connections()))
                } @else {
                    (chart::line("Messages in (from end offsets)", "records/s", &history.throughput()))
                }
                (chart::line("Consumer lag, all groups", "records", &history.total_lag()))
            }
        },
    ))
}
