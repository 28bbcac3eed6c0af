//! The node's place in the routing store: its registration renewed every heartbeat, its room
//! claims ticked after each healthy one (the claim machines renew them, claim lost ones again,
//! give up those another origin took; see `claims`), then its relay links refreshed (see
//! `links`); renewals and refreshes each go as one batch. The registration is this node's lease:
//! other origins judge it alive by that alone.

use super::Node;
use std::sync::Arc;

impl Node {
    /// Renews this node's routing entries until shutdown, then removes them.
    ///
    /// A failing store only logs: nothing here ends a session, so running sessions do not
    /// depend on the store. Every round writes the node's whole state again (its registration
    /// its room claims and its relay links), so after an outage, or
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
                self.refresh_links().await;
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
