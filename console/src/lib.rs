//! A web console for datasync, or any Kafka cluster with Kafka Connect, in the spirit of
//! kafdrop and AKHQ: topics and their messages, consumer groups with their lag, connectors.
//! It speaks only the Kafka protocol and Connect's REST API, so it needs nothing of the broker
//! beyond what Kafka offers.
//!
//! Pages are rendered on the server with `maud`; charts are SVG drawn on the server
//! ([`chart`]); there is no script. Every read is bounded by what the page shows (a message
//! page is one Fetch of at most [`routes::messages::MAX_PAGE_BYTES`]).

pub mod chart;
mod config;
pub mod connect;
pub mod error;
pub mod history;
pub mod kafka;
mod layout;
pub mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// What every handler shares.
pub struct AppState {
    pub kafka: Arc<kafka::Kafka>,
    pub connect: connect::Connect,
    pub history: Arc<history::History>,
    pub read_only: bool,
    /// The broker's `/metrics`, if configured.
    pub metrics_url: Option<String>,
    /// `Basic <base64(user:password)>`, when basic auth is on.
    pub authorization: Option<String>,
}

impl AppState {
    /// Refuses changes on a read-only console.
    pub fn writable(&self) -> error::Result<()> {
        if self.read_only {
            Err(error::ConsoleError::ReadOnly)
        } else {
            Ok(())
        }
    }
}

/// Why the console did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("--basic-auth must be user:password")]
    BasicAuth,
    #[error("--connect-basic-auth must be user:password")]
    ConnectBasicAuth,
    #[error("the Kafka client settings: {0}")]
    KafkaSecurity(String),
    #[error("--connect-ssl-ca-location: {0}")]
    ConnectCa(String),
    #[error("serving HTTP: {0}")]
    Serve(#[from] std::io::Error),
}

async fn basic_auth(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(expected) = &state.authorization else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(expected.as_str()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"datasync console\"")],
            "authentication required",
        )
            .into_response()
    }
}

/// The router over `state` (tests drive it with `oneshot`).
pub fn app(state: Arc<AppState>) -> axum::Router {
    routes::router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            basic_auth,
        ))
        .with_state(state)
}

/// Serves the console on `listener` until `shutdown` completes; binds nothing itself.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let authorization = match &config.basic_auth {
        None => None,
        Some(pair) if pair.contains(':') => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )),
        Some(_) => return Err(StartupError::BasicAuth),
    };
    let security = config
        .kafka
        .pairs()
        .map_err(|e| StartupError::KafkaSecurity(e.to_string()))
        .and_then(|pairs| {
            broker::client::ClientSecurity::from_properties(pairs)
                .map_err(|e| StartupError::KafkaSecurity(e.to_string()))
        })?;
    let kafka = Arc::new(kafka::Kafka::with_security(
        &config.bootstrap_servers,
        config.request_timeout(),
        security,
    ));
    let connect_auth = match &config.connect_basic_auth {
        None => None,
        Some(pair) => match pair.split_once(':') {
            Some((user, password)) => Some((user.to_string(), password.to_string())),
            None => return Err(StartupError::ConnectBasicAuth),
        },
    };
    let connect = connect::Connect::secured(
        &config.connect_urls,
        config.request_timeout(),
        connect_auth,
        config.connect_ssl_ca_location.as_deref(),
    )
    .map_err(StartupError::ConnectCa)?;
    let history = Arc::new(history::History::default());
    let stop = CancellationToken::new();
    let sampler = tokio::spawn(history::run(
        kafka.clone(),
        history.clone(),
        config.metrics_url.clone(),
        std::time::Duration::from_millis(config.sample_interval_ms),
        stop.clone(),
    ));
    let state = Arc::new(AppState {
        kafka,
        connect,
        history,
        read_only: config.read_only,
        metrics_url: config.metrics_url.clone(),
        authorization,
    });
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    stop.cancel();
    let _ = sampler.await;
    served?;
    Ok(())
}
