//! A routing store that times and counts every operation of the store it wraps
//! (`cascade_routing_duration_seconds`, `cascade_routing_errors_total`, by `op`).

use super::{Link, NodeInfo, NodeQuery, RoomClaim, RoutingResult, RoutingStore};
use crate::obs::metrics::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One operation of [`RoutingStore`], as its metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingOp {
    Heartbeat,
    RemoveNode,
    Nodes,
    Node,
    NodesFor,
    ClaimRoom,
    TakeOverRoom,
    RenewRoom,
    RenewRooms,
    ReleaseRoom,
    RoomOwner,
    Rooms,
    PutLink,
    PutLinks,
    RemoveLink,
    Links,
}

impl RoutingOp {
    /// Every operation: each one's series is created at start-up.
    pub const ALL: [RoutingOp; 16] = [
        RoutingOp::Heartbeat,
        RoutingOp::RemoveNode,
        RoutingOp::Nodes,
        RoutingOp::Node,
        RoutingOp::NodesFor,
        RoutingOp::ClaimRoom,
        RoutingOp::TakeOverRoom,
        RoutingOp::RenewRoom,
        RoutingOp::RenewRooms,
        RoutingOp::ReleaseRoom,
        RoutingOp::RoomOwner,
        RoutingOp::Rooms,
        RoutingOp::PutLink,
        RoutingOp::PutLinks,
        RoutingOp::RemoveLink,
        RoutingOp::Links,
    ];

    /// The `op` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingOp::Heartbeat => "heartbeat",
            RoutingOp::RemoveNode => "remove_node",
            RoutingOp::Nodes => "nodes",
            RoutingOp::Node => "node",
            RoutingOp::NodesFor => "nodes_for",
            RoutingOp::ClaimRoom => "claim_room",
            RoutingOp::TakeOverRoom => "take_over_room",
            RoutingOp::RenewRoom => "renew_room",
            RoutingOp::RenewRooms => "renew_rooms",
            RoutingOp::ReleaseRoom => "release_room",
            RoutingOp::RoomOwner => "room_owner",
            RoutingOp::Rooms => "rooms",
            RoutingOp::PutLink => "put_link",
            RoutingOp::PutLinks => "put_links",
            RoutingOp::RemoveLink => "remove_link",
            RoutingOp::Links => "links",
        }
    }
}

/// A routing store that times and counts every operation of the store it wraps.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn RoutingStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps `inner`; every operation's series exists in `metrics` from now on.
    pub fn wrap(inner: Arc<dyn RoutingStore>, metrics: Arc<Metrics>) -> Arc<dyn RoutingStore> {
        for op in RoutingOp::ALL {
            metrics.routing_op_series(op.as_str());
        }
        Arc::new(Self { inner, metrics })
    }

    async fn timed<T>(
        &self,
        op: RoutingOp,
        f: impl Future<Output = RoutingResult<T>>,
    ) -> RoutingResult<T> {
        let start = Instant::now();
        let result = f.await;
        self.metrics
            .routing_op(op.as_str(), start.elapsed(), result.is_ok());
        result
    }
}

#[async_trait::async_trait]
impl RoutingStore for MeteredStore {
    async fn heartbeat(&self, node: &NodeInfo, lease: Duration) -> RoutingResult<()> {
        self.timed(RoutingOp::Heartbeat, self.inner.heartbeat(node, lease))
            .await
    }
    async fn remove_node(&self, node_id: &str) -> RoutingResult<()> {
        self.timed(RoutingOp::RemoveNode, self.inner.remove_node(node_id))
            .await
    }
    async fn nodes(&self) -> RoutingResult<Vec<NodeInfo>> {
        self.timed(RoutingOp::Nodes, self.inner.nodes()).await
    }
    async fn node(&self, node_id: &str) -> RoutingResult<Option<NodeInfo>> {
        self.timed(RoutingOp::Node, self.inner.node(node_id)).await
    }
    async fn nodes_for(&self, query: &NodeQuery) -> RoutingResult<Vec<NodeInfo>> {
        self.timed(RoutingOp::NodesFor, self.inner.nodes_for(query))
            .await
    }
    async fn claim_room(
        &self,
        room: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>> {
        self.timed(
            RoutingOp::ClaimRoom,
            self.inner.claim_room(room, node_id, lease),
        )
        .await
    }
    async fn take_over_room(
        &self,
        room: &str,
        dead_node: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>> {
        self.timed(
            RoutingOp::TakeOverRoom,
            self.inner.take_over_room(room, dead_node, node_id, lease),
        )
        .await
    }
    async fn renew_room(&self, claim: &RoomClaim, lease: Duration) -> RoutingResult<bool> {
        self.timed(RoutingOp::RenewRoom, self.inner.renew_room(claim, lease))
            .await
    }
    async fn renew_rooms(&self, claims: &[RoomClaim], lease: Duration) -> RoutingResult<Vec<bool>> {
        self.timed(RoutingOp::RenewRooms, self.inner.renew_rooms(claims, lease))
            .await
    }
    async fn release_room(&self, claim: &RoomClaim) -> RoutingResult<bool> {
        self.timed(RoutingOp::ReleaseRoom, self.inner.release_room(claim))
            .await
    }
    async fn room_owner(&self, room: &str) -> RoutingResult<Option<String>> {
        self.timed(RoutingOp::RoomOwner, self.inner.room_owner(room))
            .await
    }
    async fn rooms(&self) -> RoutingResult<Vec<(String, String)>> {
        self.timed(RoutingOp::Rooms, self.inner.rooms()).await
    }
    async fn put_link(&self, link: &Link, lease: Duration) -> RoutingResult<()> {
        self.timed(RoutingOp::PutLink, self.inner.put_link(link, lease))
            .await
    }
    async fn put_links(&self, links: &[Link], lease: Duration) -> RoutingResult<()> {
        self.timed(RoutingOp::PutLinks, self.inner.put_links(links, lease))
            .await
    }
    async fn remove_link(&self, room: &str, edge_id: &str) -> RoutingResult<()> {
        self.timed(RoutingOp::RemoveLink, self.inner.remove_link(room, edge_id))
            .await
    }
    async fn links(&self, room: &str) -> RoutingResult<Vec<Link>> {
        self.timed(RoutingOp::Links, self.inner.links(room)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::routing::MemoryStore;

    #[tokio::test]
    async fn every_operation_has_its_series_from_the_start() {
        let metrics = Arc::new(Metrics::new());
        let store = MeteredStore::wrap(Arc::new(MemoryStore::new()), metrics.clone());
        let before = metrics.render(&Default::default());
        for op in RoutingOp::ALL {
            let series = format!("cascade_routing_errors_total{{op=\"{}\"}} 0", op.as_str());
            assert!(before.contains(&series), "{series} missing");
        }
        store.nodes().await.unwrap();
        let after = metrics.render(&Default::default());
        assert!(after.contains("cascade_routing_duration_seconds_count{op=\"nodes\"} 1"));
    }
}
