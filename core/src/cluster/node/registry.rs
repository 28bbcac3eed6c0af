//! What a node reads of the registry for one decision: the few nodes it can choose from, not
//! all of them.
//!
//! Placement picks the least-loaded edge (or origin) with room in the viewer's tier, or one of
//! the room's carriers; the relay tree looks only at the room's owner and carriers. So each
//! join asks the store for those ([`NodeQuery`]): the [`LEAST_LOADED`] least-loaded nodes with
//! room of each place the viewer's hint names, and the carriers by id. On Redis that is one
//! script reading a sorted set per place and a handful of entries, O(log N) in the nodes,
//! where reading every node's entry per join (or once a second per node, a copy that misses
//! when joins spread over many edges) was what broke first at 1,000 nodes (BENCHMARKS.md,
//! "Control plane at scale").
//!
//! The answer is as fresh as the nodes' last heartbeats, as the full registry was: a node's
//! load changes in the store only at its heartbeat.

use super::Node;
use crate::cluster::locality::Locality;
use crate::cluster::routing::{NodeInfo, NodeQuery, Role, RoutingResult};

/// Least-loaded nodes read per place. Placement needs the least-loaded one other than this
/// node (which may be the first), so two would do; the third is a margin for a node that
/// changed its place or filled up since its entry in the list was written.
pub const LEAST_LOADED: usize = 3;

/// The places a join with hint `near` can be sent to, nearest first: its region and zone, its
/// region, anywhere (the tiers of `locality::tier`), each once.
fn places(near: &Locality) -> Vec<Locality> {
    let mut places = vec![near.clone()];
    if near.region.is_some() && near.zone.is_some() {
        places.push(Locality {
            region: near.region.clone(),
            zone: None,
        });
    }
    if !near.is_empty() {
        places.push(Locality::default());
    }
    places
}

impl Node {
    /// The nodes a placement can choose from: the least-loaded nodes of `role` with room in
    /// each tier of the hint `near`, and the nodes in `ids` (the room's carriers), if live.
    pub(super) async fn placement_nodes(
        &self,
        role: Role,
        near: &Locality,
        ids: Vec<String>,
    ) -> RoutingResult<Vec<NodeInfo>> {
        let query = NodeQuery {
            role: Some(role),
            places: places(near),
            least_loaded: LEAST_LOADED,
            ids,
        };
        self.routing.nodes_for(&query).await
    }

    /// The nodes in `ids` that are live (the relay tree's owner and carriers).
    pub(super) async fn named_nodes(&self, ids: Vec<String>) -> RoutingResult<Vec<NodeInfo>> {
        let query = NodeQuery {
            ids,
            ..NodeQuery::default()
        };
        self.routing.nodes_for(&query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::node::testing::{counted, info, node};
    use crate::cluster::placement::Placement;
    use crate::cluster::routing::{Link, MemoryStore, RoutingStore};
    use std::sync::Arc;
    use std::time::Duration;

    const LEASE: Duration = Duration::from_secs(30);

    #[test]
    fn a_hint_names_its_tiers_nearest_first() {
        let eu = |zone: Option<&str>| Locality {
            region: Some("eu".into()),
            zone: zone.map(Into::into),
        };
        assert_eq!(places(&Locality::default()), [Locality::default()]);
        assert_eq!(places(&eu(None)), [eu(None), Locality::default()]);
        assert_eq!(
            places(&eu(Some("a"))),
            [eu(Some("a")), eu(None), Locality::default()]
        );
    }

    #[tokio::test]
    async fn joins_read_a_few_nodes_and_follow_the_stores_state() {
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
        assert_eq!(counted(&edge, "nodes_for"), 1, "one read per join");
        assert_eq!(counted(&edge, "nodes"), 0, "never the whole registry");
        // e2 starts draining: the next join sees it at once.
        store.heartbeat(&info("e2", 0, true), LEASE).await.unwrap();
        assert_eq!(
            redirected_to(edge.place_viewer("r", &Default::default()).await.unwrap()),
            "e3"
        );
        // e3 leaves: nobody else carries r, so e1 takes the viewer itself.
        store.remove_node("e3").await.unwrap();
        assert_eq!(
            edge.place_viewer("r", &Default::default()).await.unwrap(),
            Placement::Here
        );
    }
}
