//! `cascade-loadgen`: see `cascade-loadgen --help` and the library's documentation.

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "cascade-loadgen",
    version,
    about = "Load generator for Cascade: a WebRTC publisher and many WebRTC viewers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand, each with its own flags struct and entry point.
#[derive(Debug, Subcommand)]
enum Command {
    /// Publish to an origin and watch on edges with N viewers; report loss, latency, join time,
    /// skew and the nodes' CPU and memory.
    Run(cascade_loadgen::run::RunArgs),
    /// Measure this machine's ceiling: datagrams per second one core sends on loopback
    /// (sendto, UDP GSO) and what SRTP protection costs per packet.
    Limit(cascade_loadgen::limit::LimitArgs),
    /// Simulate N nodes (the real routing, placement, claim and heartbeat code, no media) with
    /// M rooms and a rate of joins and leaves against one real redis-server; report Redis's
    /// load, placement and claim latency, and how long a dead node's entries take to go.
    ClusterSim(cascade_loadgen::cluster_sim::ClusterSimArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cascade_loadgen::logger::init();
    match Cli::parse().command {
        Command::Run(args) => {
            cascade_loadgen::run::execute(&args).await?;
        }
        Command::Limit(args) => {
            cascade_loadgen::limit::execute(&args)?;
        }
        Command::ClusterSim(args) => {
            cascade_loadgen::cluster_sim::execute(&args).await?;
        }
    }
    Ok(())
}
