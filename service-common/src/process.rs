//! What the services' binaries do around `run`: logging, binding the configured address, and
//! the shutdown signal. Only `main.rs` uses it; `run` itself takes a bound listener and a
//! shutdown future, so tests start services without any of this.

use crate::config::CommonConfig;

/// Logs to stdout, filtered by `RUST_LOG` (default: `info,librdkafka=warn`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .init();
}

/// Binds `--host` and `--port`.
pub async fn bind(config: &CommonConfig) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
