//! Drain: no new sessions, the current ones kept until they leave or the deadline passes,
//! then shutdown.

use super::{DRAIN_POLL, Node};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Node {
    /// Starts draining (idempotent): the node takes no new sessions, tells the routing store,
    /// keeps its sessions until they leave or `drain_timeout` passes, then shuts down (which
    /// removes its routing entries). Returns false when it was already draining.
    pub fn drain(self: &Arc<Self>) -> bool {
        if self.drain_started.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.draining.cancel();
        let node = self.clone();
        tokio::spawn(async move {
            let timeout = node.config.drain_timeout;
            tracing::info!(
                sessions = node.state().sessions.len(),
                timeout_secs = timeout.as_secs(),
                "draining"
            );
            // Leave placement now rather than at the next heartbeat.
            if let Err(e) = node
                .routing
                .heartbeat(&node.info(), node.config.lease)
                .await
            {
                tracing::warn!(error = %e, "could not announce draining");
            }
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            loop {
                let left = node.state().sessions.len();
                if left == 0 {
                    tracing::info!("drained: no sessions left");
                    break;
                }
                tokio::select! {
                    _ = &mut deadline => {
                        tracing::info!(sessions = left, "drain deadline passed; closing sessions");
                        break;
                    }
                    _ = tokio::time::sleep(DRAIN_POLL) => {}
                    _ = node.shutdown.cancelled() => return,
                }
            }
            node.shutdown.cancel();
        });
        true
    }
}
