//! Thin binary: parse the configuration, bind the port, run until Ctrl-C or SIGTERM.

use clap::Parser;
use service_common::process;
use user_service::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_tracing();
    let config = Config::parse();
    let listener = process::bind(&config.common).await?;
    user_service::run(config, listener, process::shutdown_signal()).await?;
    Ok(())
}
