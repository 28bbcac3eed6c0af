//! The origin node: takes publishers by WHIP (RFC 9725), owns their rooms, and relays them to
//! edges over gRPC-negotiated links. Also serves viewers directly by WHEP.
//!
//! The machinery is in `cascade-core`; this crate is the origin's configuration and start-up.

use cascade_core::RunningNode;
use cascade_core::cluster::routing::{Role, RoutingStore};
use cascade_core::config::{ConfigError, NodeArgs, NodeConfig};
use std::sync::Arc;

/// The origin's flags (`cascade-origin --help`).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "cascade-origin",
    version,
    about = "Cascade origin node: WHIP in, relay out"
)]
pub struct OriginArgs {
    #[command(flatten)]
    pub node: NodeArgs,
}

impl OriginArgs {
    pub fn into_config(self) -> Result<NodeConfig, ConfigError> {
        self.node.into_config(Role::Origin, None)
    }
}

/// Starts an origin with the given routing store (when none is given: Redis with `--redis`,
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
