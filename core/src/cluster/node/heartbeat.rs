//! The node's place in the routing store: its registration and room claims renewed every
//! heartbeat, lost claims claimed again, and the liveness probe of another origin.

use super::Node;
use crate::cluster::routing::RoomClaim;
use std::sync::Arc;
use std::time::Duration;

impl Node {
    /// Renews this node's routing entries until shutdown, then removes them.
    ///
    /// A failing store only logs: nothing here ends a session, so running sessions do not
    /// depend on the store. Every round writes the node's whole state again (its registration
    /// and its room claims; each relay link's task re-writes its link), so after an outage, or
    /// a Redis restarted empty, the store matches the node again within one period. A claim
    /// lost meanwhile (it expired) is claimed again with a new token, unless another origin
    /// took the room.
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
                self.renew_claims(lease).await;
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

    /// Renews every room claim; claims a lost one again.
    pub(super) async fn renew_claims(&self, lease: Duration) {
        let claims: Vec<RoomClaim> = self.state().claims.values().cloned().collect();
        for claim in claims {
            match self.routing.renew_room(&claim, lease).await {
                Ok(true) => {}
                Ok(false) => self.reclaim(&claim, lease).await,
                Err(e) => {
                    tracing::warn!(room = %claim.room, error = %e, "room lease renewal failed");
                }
            }
        }
    }

    pub(super) async fn reclaim(&self, lost: &RoomClaim, lease: Duration) {
        match self.routing.claim_room(&lost.room, self.id(), lease).await {
            Ok(Some(claim)) => {
                // Only if the room was not released meanwhile.
                let stale = {
                    let mut state = self.state();
                    if state
                        .claims
                        .get(&lost.room)
                        .is_some_and(|c| c.token == lost.token)
                    {
                        state.claims.insert(lost.room.clone(), claim);
                        None
                    } else {
                        Some(claim)
                    }
                };
                match stale {
                    None => {
                        tracing::info!(room = %lost.room, "room claim had expired; claimed again");
                    }
                    Some(claim) => {
                        let _ = self.routing.release_room(&claim).await;
                    }
                }
            }
            Ok(None) => {
                tracing::error!(
                    room = %lost.room,
                    "room claim lost to another origin; keeping the local publisher"
                );
            }
            Err(e) => tracing::warn!(room = %lost.room, error = %e, "could not claim room again"),
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
