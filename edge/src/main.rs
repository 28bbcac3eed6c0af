//! `cascade-edge`: see `cascade-edge --help`.

use anyhow::Context;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = cascade_edge::EdgeArgs::parse();
    cascade_core::telemetry::init(&args.node.log_format);
    cascade_core::config::check_environment()?;
    let node = cascade_edge::start(args.into_config()?, None)
        .await
        .context("cannot bind the HTTP or gRPC listener")?;
    cascade_core::run_until_signal(node).await;
    Ok(())
}
