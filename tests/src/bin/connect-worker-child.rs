//! `connect-worker`'s main, built inside this crate so that the fault tests can run the worker as
//! a child process (`env!("CARGO_BIN_EXE_connect-worker-child")`) and `kill -9` it. Configured
//! by the same environment variables as `connect-worker`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,librdkafka=off".into()),
        )
        .init();
    let config = connect_worker::Config::parse();
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    connect_worker::run(config, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
