//! The relay links this node keeps in the routing store, as the edge that pulls a room: each
//! written when its link comes up, then refreshed after every healthy heartbeat, all of them in
//! one batch (`put_links`: a round trip per few hundred links, not one per link), until the
//! link ends. A link nobody refreshes expires with its lease.

use super::Node;
use crate::cluster::routing::{Link, RoutingResult};

impl Node {
    /// Writes `link` to the store now and keeps refreshing it with the heartbeat until
    /// [`Node::drop_link`]. The link is kept even when this first write fails (the next
    /// refresh writes it).
    pub async fn keep_link(&self, link: Link) -> RoutingResult<()> {
        self.state().links.insert(link.room.clone(), link.clone());
        self.routing.put_link(&link, self.config.lease).await
    }

    /// Stops refreshing `link` (only if it is still the room's link here: a newer link to
    /// another upstream stays). The entry expires with its lease unless removed from the store.
    pub fn drop_link(&self, link: &Link) {
        let mut state = self.state();
        if state.links.get(&link.room) == Some(link) {
            state.links.remove(&link.room);
        }
    }

    /// The links this node keeps, sorted by room.
    pub fn kept_links(&self) -> Vec<Link> {
        let mut links: Vec<Link> = self.state().links.values().cloned().collect();
        links.sort_by(|a, b| a.room.cmp(&b.room));
        links
    }

    /// Re-writes every kept link, in one batch.
    pub(super) async fn refresh_links(&self) {
        let links = self.kept_links();
        if links.is_empty() {
            return;
        }
        if let Err(e) = self.routing.put_links(&links, self.config.lease).await {
            tracing::debug!(links = links.len(), error = %e, "could not refresh relay links");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cluster::node::testing::node;
    use crate::cluster::routing::{Link, MemoryStore, Role, RoutingStore};
    use std::sync::Arc;

    fn link(room: &str, upstream: &str) -> Link {
        Link {
            room: room.into(),
            edge_id: "e".into(),
            upstream_id: upstream.into(),
        }
    }

    #[tokio::test]
    async fn kept_links_are_written_refreshed_together_and_dropped_only_by_their_own_link() {
        let store = Arc::new(MemoryStore::new());
        let node = node("e", Role::Edge, store.clone());
        node.keep_link(link("r1", "o")).await.unwrap();
        node.keep_link(link("r2", "o")).await.unwrap();
        assert_eq!(store.links("r1").await.unwrap(), [link("r1", "o")]);
        // A newer link of r1 (failover to another upstream) replaces the old one; dropping the
        // old one later leaves the new one kept.
        node.keep_link(link("r1", "e2")).await.unwrap();
        node.drop_link(&link("r1", "o"));
        assert_eq!(node.kept_links(), [link("r1", "e2"), link("r2", "o")]);
        node.drop_link(&link("r2", "o"));
        assert_eq!(node.kept_links(), [link("r1", "e2")]);
        // A store emptied (a Redis restarted) gets the kept links back at the next refresh.
        store.remove_link("r1", "e").await.unwrap();
        node.refresh_links().await;
        assert_eq!(store.links("r1").await.unwrap(), [link("r1", "e2")]);
    }
}
