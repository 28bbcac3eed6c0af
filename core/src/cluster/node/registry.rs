//! The node's copy of the registry: the live nodes, as placement and the relay tree read them.
//!
//! Reading the registry is O(N): every node's entry (a few hundred bytes of JSON each), on
//! Redis and in this process. At 1,000 nodes and 250 joins a second that read alone kept Redis
//! half busy and joins waiting most of a second (`cascade-loadgen cluster-sim`, see
//! BENCHMARKS.md). A node's entry changes only at its heartbeats (a third of the lease), so a
//! copy younger than [`MAX_AGE`] (or the heartbeat, if shorter) chooses as well as the store:
//! reads within it share one copy, and the registry is read at most about once a second per
//! node however many joins arrive.
//!
//! A copy can name a node that has left or started draining since. Placement checks the node
//! it would redirect to against that node's own entry (one O(1) read) and, when it is gone,
//! draining or full, or when the copy left nobody to take the join, decides again from the
//! registry read afresh (see `admit`).

use super::Node;
use crate::cluster::routing::{NodeInfo, RoutingResult};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The oldest copy of the registry a node decides from.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// The last copy read, and when.
#[derive(Debug, Default)]
pub(super) struct Registry {
    copy: Mutex<Option<(Instant, Arc<Vec<NodeInfo>>)>>,
}

impl Node {
    /// The live nodes: the copy when it is younger than [`MAX_AGE`] and `fresh` is false,
    /// else read from the store (and kept). Also says whether it is the copy.
    pub(super) async fn live_nodes(
        &self,
        fresh: bool,
    ) -> RoutingResult<(Arc<Vec<NodeInfo>>, bool)> {
        let max_age = MAX_AGE.min(self.config.heartbeat());
        if !fresh {
            let copy = self.registry.copy.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, nodes)) = copy.as_ref()
                && at.elapsed() < max_age
            {
                return Ok((nodes.clone(), true));
            }
        }
        let read_at = Instant::now();
        let nodes = Arc::new(self.routing.nodes().await?);
        let mut copy = self.registry.copy.lock().unwrap_or_else(|p| p.into_inner());
        // Two reads racing: keep the later one.
        if copy.as_ref().is_none_or(|(at, _)| *at <= read_at) {
            *copy = Some((read_at, nodes.clone()));
        }
        Ok((nodes, false))
    }
}

#[cfg(test)]
mod tests {
    use crate::cluster::node::testing::{counted, info, node};
    use crate::cluster::placement::Placement;
    use crate::cluster::routing::{Link, MemoryStore, Role, RoutingStore};
    use std::sync::Arc;
    use std::time::Duration;

    const LEASE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn joins_share_a_copy_and_a_stale_redirect_is_decided_again_afresh() {
        let store = Arc::new(MemoryStore::new());
        let edge = node("e1", Role::Edge, store.clone());
        for (id, load) in [("e1", 0), ("e2", 0), ("e3", 5)] {
            store
                .heartbeat(&info(id, load, false), LEASE)
                .await
                .unwrap();
        }
        for carrier in ["e2", "e3"] {
            let link = Link {
                room: "r".into(),
                edge_id: carrier.into(),
                upstream_id: "o".into(),
            };
            store.put_link(&link, LEASE).await.unwrap();
        }
        let redirected_to = |p: Placement| match p {
            Placement::Redirect(n) => n.id,
            other => panic!("expected a redirect, got {other:?}"),
        };
        // e1 does not carry r: the least-loaded carrier, e2.
        assert_eq!(
            redirected_to(edge.place_viewer("r", &Default::default()).await.unwrap()),
            "e2"
        );
        assert_eq!(
            redirected_to(edge.place_viewer("r", &Default::default()).await.unwrap()),
            "e2"
        );
        assert_eq!(counted(&edge, "nodes"), 1, "the second join used the copy");
        // e2 starts draining: the copy still says it takes viewers, its own entry says not.
        store.heartbeat(&info("e2", 0, true), LEASE).await.unwrap();
        assert_eq!(
            redirected_to(edge.place_viewer("r", &Default::default()).await.unwrap()),
            "e3"
        );
        assert_eq!(
            counted(&edge, "nodes"),
            2,
            "decided again from a fresh read"
        );
        // e3 leaves: nobody else carries r, so e1 takes the viewer itself.
        store.remove_node("e3").await.unwrap();
        assert_eq!(
            edge.place_viewer("r", &Default::default()).await.unwrap(),
            Placement::Here
        );
    }
}
