//! The edge node: serves viewers by WHEP and pulls each room it serves from its upstream (the
//! origin, or a parent edge) once, over a gRPC-negotiated relay link, however many viewers it has.
//!
//! The machinery is in `cascade-core`; this crate is the edge's configuration and start-up.

use cascade_core::RunningNode;
use cascade_core::config::{ConfigError, NodeArgs, NodeConfig};
use cascade_core::routing::{MemoryStore, Role, RoutingStore};
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

    /// gRPC URL of the node to pull rooms from (an origin or a parent edge), when no shared
    /// routing store says where rooms are. Example: http://127.0.0.1:9090
    #[arg(long, env = "CASCADE_UPSTREAM")]
    pub upstream: Option<String>,
}

impl EdgeArgs {
    pub fn into_config(self) -> Result<NodeConfig, ConfigError> {
        if self.upstream.is_none() {
            return Err(ConfigError {
                key: "--upstream",
                env: "CASCADE_UPSTREAM",
                message:
                    "an edge needs an upstream to pull rooms from (e.g. http://127.0.0.1:9090)"
                        .into(),
            });
        }
        self.node.into_config(Role::Edge, self.upstream)
    }
}

/// Starts an edge with the given routing store (in-memory when none is shared).
pub async fn start(
    config: NodeConfig,
    routing: Option<Arc<dyn RoutingStore>>,
) -> std::io::Result<RunningNode> {
    let routing = routing.unwrap_or_else(|| Arc::new(MemoryStore::new()));
    cascade_core::serve(config, routing).await
}
