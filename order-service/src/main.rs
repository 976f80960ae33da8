//! Thin binary: parse the configuration, bind the port, run until Ctrl-C or SIGTERM.

use clap::Parser;
use order_service::Config;
use service_common::process;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_tracing();
    let config = Config::parse();
    let listener = process::bind(&config.common).await?;
    order_service::run(config, listener, process::shutdown_signal()).await?;
    Ok(())
}
