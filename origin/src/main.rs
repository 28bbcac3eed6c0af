//! `cascade-origin`: see `cascade-origin --help`.

use anyhow::Context;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = cascade_origin::OriginArgs::parse();
    cascade_core::config::check_environment()?;
    let config = args.into_config()?;
    let telemetry = cascade_core::obs::telemetry::init_node(&config.telemetry)?;
    let node = cascade_origin::start(config, None)
        .await
        .context("cannot start the node (its routing store or its HTTP or gRPC listener)")?;
    cascade_core::run_until_signal(node).await;
    // Spans still batched are exported before the process exits.
    telemetry.shutdown().await;
    Ok(())
}
