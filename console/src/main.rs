//! Thin binary: parse the configuration, bind the port, run until Ctrl-C or SIGTERM.

use clap::Parser;
use console::Config;
use service_common::process;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_tracing();
    let config = Config::parse();
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "console listening");
    console::run(config, listener, process::shutdown_signal()).await?;
    Ok(())
}
