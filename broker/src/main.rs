//! The `broker` binary: parses flags, binds the listener, and runs the broker until SIGINT or
//! SIGTERM. With a subcommand (`topics`, `groups`, `produce`, `consume`) it is instead a Kafka
//! client for this or any Kafka-compatible cluster (see [`broker::cli`]).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A durable single-node broker that speaks the Apache Kafka wire protocol.
///
/// Without a subcommand, runs the broker; the subcommands are admin and console clients.
#[derive(Parser)]
#[command(
    name = "broker",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<broker::cli::Command>,

    #[command(flatten)]
    config: broker::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(command) = cli.command {
        // Client output belongs to stdout; only warnings and errors go to stderr.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
            )
            .init();
        return Ok(broker::cli::run(command).await);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let listener = tokio::net::TcpListener::bind(cli.config.listen.addr)
        .await
        .with_context(|| format!("could not listen on {}", cli.config.listen))?;
    let mut extra = Vec::new();
    for spec in cli.config.extra_listener.iter().flat_map(|s| s.split(',')) {
        let (protocol, addr, advertised) = broker::parse_listener(spec)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("could not listen on {addr}"))?;
        extra.push(broker::Listener {
            listener,
            advertised,
            protocol,
        });
    }
    let http = match broker::parse_http_listen(&cli.config.http_listen)? {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("could not listen on {addr} (--http-listen)"))?,
        ),
        None => None,
    };
    let listeners = broker::Listeners {
        kafka: listener,
        extra,
        http,
    };
    broker::run_with(cli.config, listeners, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; only SIGINT stops the broker");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
