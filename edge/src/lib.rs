//! The edge node: serves viewers by WHEP and pulls each room it serves from its upstream (the
//! origin, or a parent edge) once, over a gRPC-negotiated relay link, however many viewers it has.
//!
//! The machinery is in `cascade-core`; this crate is the edge's configuration and start-up.

use cascade_core::RunningNode;
use cascade_core::cluster::routing::{Role, RoutingStore};
use cascade_core::config::{ConfigError, NodeArgs, NodeConfig};
use std::sync::Arc;

/// The edge's flags (`cascade-edge --help`).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "cascade-edge",
    version,
    about = "Cascade edge node: relay in, WHEP out"
)]
pub struct EdgeArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// gRPC URL of the node to pull rooms from (an origin or a parent edge). Optional with
    /// `--redis`, where each room's origin is looked up. Example: http://127.0.0.1:9090
    #[arg(long, env = "CASCADE_UPSTREAM")]
    pub upstream: Option<String>,
}

impl EdgeArgs {
    /// Validates the flags; an edge needs `--upstream`, `--redis`, or both.
    pub fn into_config(self) -> Result<NodeConfig, ConfigError> {
        self.node.check_edge_source(&self.upstream)?;
        self.node.into_config(Role::Edge, self.upstream)
    }
}

/// Starts an edge with the given routing store (when none is given: Redis with `--redis`,
/// else in memory).
pub async fn start(
    config: NodeConfig,
    routing: Option<Arc<dyn RoutingStore>>,
) -> std::io::Result<RunningNode> {
    let routing = match routing {
        Some(r) => r,
        None => cascade_core::routing_store_checked(&config.routing).await?,
    };
    cascade_core::serve(config, routing).await
}
