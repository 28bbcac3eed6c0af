//! The node's place in the routing store: its registration renewed every heartbeat, its room
//! claims ticked after each healthy one (the claim machines renew them, claim lost ones again;
//! see `claims`), and the liveness probe of another origin.

use super::Node;
use std::sync::Arc;
use std::time::Duration;

impl Node {
    /// Renews this node's routing entries until shutdown, then removes them.
    ///
    /// A failing store only logs: nothing here ends a session, so running sessions do not
    /// depend on the store. Every round writes the node's whole state again (its registration
    /// and its room claims; each relay link's task re-writes its link), so after an outage, or
    /// a Redis restarted empty, the store matches the node again within one period. A claim
    /// lost meanwhile (it expired) is claimed again with a new token; if another origin took
    /// the room, the room ends here (no two origins serve one room).
    pub async fn heartbeat_loop(self: Arc<Self>) {
        let (lease, period) = (self.config.lease, self.config.heartbeat());
        let mut healthy = true;
        loop {
            let info = self.info();
            match self.routing.heartbeat(&info, lease).await {
                Ok(()) if !healthy => {
                    tracing::info!("routing store reachable again; node re-registered");
                    healthy = true;
                }
                Ok(()) => {}
                Err(e) => {
                    if healthy {
                        tracing::warn!(error = %e, "heartbeat failed; sessions continue");
                    } else {
                        tracing::debug!(error = %e, "heartbeat failed");
                    }
                    healthy = false;
                }
            }
            if healthy {
                self.tick_claims().await;
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = self.shutdown.cancelled() => break,
            }
        }
        if let Err(e) = self.routing.remove_node(self.id()).await {
            tracing::warn!(error = %e, "could not deregister");
        }
    }
}

/// Whether a node's gRPC server accepts connections: a dead node's port refuses them (or, on
/// another machine, does not answer).
pub(super) async fn reachable(grpc_url: &str) -> bool {
    let Ok(uri) = grpc_url.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    matches!(
        tokio::time::timeout(
            REACHABLE_TIMEOUT,
            tokio::net::TcpStream::connect((host, port))
        )
        .await,
        Ok(Ok(_))
    )
}

/// How long a liveness probe of another node waits for its connection.
const REACHABLE_TIMEOUT: Duration = Duration::from_secs(1);
