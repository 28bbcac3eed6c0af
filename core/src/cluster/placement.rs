//! Where a new session goes, as the answer a join gets: here, or another node (a
//! `307 Temporary Redirect`, which WHIP and WHEP clients follow), or nobody (`503`); and which
//! node an edge pulls a room from, to keep the relay tree bounded.
//!
//! The decision itself (the rules, the reservations) is the admission machine's,
//! [`crate::cluster::decide::admission`]; the node turns its answer into a [`Placement`].
//! [`choose_upstream`] is a pure function of what the routing store says, used by the node
//! for the upstream machine's [`crate::cluster::decide::upstream`] choice.

use crate::cluster::routing::{Link, NodeInfo};

/// The decision for one new session.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Serve it here.
    Here,
    /// Send the client to this node.
    Redirect(NodeInfo),
    /// Nobody can take it now (this node is draining or full and no other node has room).
    Refuse { draining: bool },
}

/// Which node an edge should pull a room from, to keep the relay tree bounded and crossing
/// regions once per region:
///
/// 1. When `region` (the pulling edge's) is set and the room's owner is not in it: the
///    shallowest edge of that region that carries the room and has a free slot, so that a region
///    pulls one copy across regions and fans it out inside.
/// 2. The room's owner (origin), while it feeds fewer than `fanout` relay links of the room.
/// 3. The shallowest edge carrying the room that feeds fewer than `fanout`.
///
/// An edge feeding another must sit less than `max_depth` hops below the owner (ties: fewest
/// children, then smallest id). Edges that are draining, gone from the registry, or `me` itself
/// (and its descendants, which would make a loop: the links record each edge's upstream) are
/// skipped. When nobody has a free slot the owner is chosen anyway: an over-full origin is
/// better than a viewer with no picture.
pub fn choose_upstream(
    me: &str,
    region: Option<&str>,
    owner: &str,
    links: &[Link],
    nodes: &[NodeInfo],
    fanout: usize,
    max_depth: usize,
) -> String {
    // My own (stale) link does not count: I am the one looking for a place.
    let children = |id: &str| {
        links
            .iter()
            .filter(|l| l.upstream_id == id && l.edge_id != me)
            .count()
    };
    let free = |id: &str| fanout == 0 || children(id) < fanout;
    // Depth of each carrying edge below the owner, following upstream links (bounded walk).
    let depth = |start: &str| -> Option<usize> {
        let mut id = start.to_owned();
        for d in 1..=links.len() + 1 {
            let link = links.iter().find(|l| l.edge_id == id)?;
            if link.edge_id == me {
                return None; // under me: pulling from it would make a loop
            }
            if link.upstream_id == owner {
                return Some(d);
            }
            id.clone_from(&link.upstream_id);
        }
        None
    };
    let live = |id: &str| nodes.iter().find(|n| n.id == id && !n.draining);
    let in_region =
        |id: &str| region.is_some() && live(id).is_some_and(|n| n.region.as_deref() == region);
    let feeders = || {
        links
            .iter()
            .filter(|l| l.edge_id != me && live(&l.edge_id).is_some())
            .filter_map(|l| depth(&l.edge_id).map(|d| (d, children(&l.edge_id), &l.edge_id)))
            .filter(|&(d, _, id)| d < max_depth && free(id))
    };
    if region.is_some() && !in_region(owner) {
        let near = feeders().filter(|&(_, _, id)| in_region(id)).min();
        if let Some((_, _, id)) = near {
            return id.clone();
        }
    }
    if free(owner) {
        return owner.to_owned();
    }
    feeders()
        .min()
        .map_or_else(|| owner.to_owned(), |(_, _, id)| id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::routing::Role;

    fn tree_link(edge: &str, upstream: &str) -> Link {
        Link {
            room: "r".into(),
            edge_id: edge.into(),
            upstream_id: upstream.into(),
        }
    }

    #[test]
    fn the_origin_feeds_edges_up_to_the_fanout_then_edges_feed_edges() {
        let nodes: Vec<_> = ["a", "b", "c", "d", "e"]
            .into_iter()
            .map(|id| edge(id, 0, 10))
            .collect();
        assert_eq!(choose_upstream("a", None, "o", &[], &nodes, 2, 3), "o");
        let mut links = vec![tree_link("a", "o")];
        assert_eq!(choose_upstream("b", None, "o", &links, &nodes, 2, 3), "o");
        links.push(tree_link("b", "o"));
        // The origin is full: the first-level edge with fewest children, smallest id first.
        assert_eq!(choose_upstream("c", None, "o", &links, &nodes, 2, 3), "a");
        links.push(tree_link("c", "a"));
        assert_eq!(choose_upstream("d", None, "o", &links, &nodes, 2, 3), "b");
        links.push(tree_link("d", "b"));
        links.push(tree_link("e", "a"));
        links.push(tree_link("f", "b"));
        // a and b full: second level (depth 2 < 3).
        assert_eq!(choose_upstream("x", None, "o", &links, &nodes, 2, 3), "c");
        // Depth limit 2: nothing below the first level may feed, so the origin is used.
        assert_eq!(choose_upstream("x", None, "o", &links, &nodes, 2, 2), "o");
        // Fanout 0 means unlimited.
        assert_eq!(choose_upstream("x", None, "o", &links, &nodes, 0, 3), "o");
    }

    #[test]
    fn draining_dead_and_descendant_edges_are_not_chosen() {
        let mut nodes: Vec<_> = ["a", "b"].into_iter().map(|id| edge(id, 0, 10)).collect();
        let links = vec![tree_link("a", "o"), tree_link("b", "a")];
        nodes[0].draining = true;
        assert_eq!(choose_upstream("c", None, "o", &links, &nodes, 1, 5), "b");
        // a pulling again (its old link still listed) must not pick b, its own child.
        nodes[0].draining = false;
        assert_eq!(choose_upstream("a", None, "o", &links, &nodes, 1, 5), "o");
        // b gone from the registry: the origin.
        assert_eq!(
            choose_upstream("c", None, "o", &links, &nodes[..1], 1, 5),
            "o"
        );
    }

    fn placed(id: &str, role: Role, region: &str) -> NodeInfo {
        NodeInfo {
            region: Some(region.into()),
            ..node(id, role, 0, 10)
        }
    }

    #[test]
    fn an_edge_pulls_from_an_edge_of_its_region_that_carries_the_room_before_the_origin() {
        let mut nodes = vec![
            placed("o", Role::Origin, "us"),
            placed("a", Role::Edge, "eu"),
            placed("b", Role::Edge, "eu"),
            placed("c", Role::Edge, "us"),
            placed("d", Role::Edge, "ap"),
            placed("e", Role::Edge, "eu"),
        ];
        let eu = Some("eu");
        // The region's first edge crosses to the origin.
        assert_eq!(choose_upstream("a", eu, "o", &[], &nodes, 16, 4), "o");
        let mut links = vec![tree_link("a", "o")];
        // The region's next edges pull from it, though the origin has free slots.
        assert_eq!(choose_upstream("b", eu, "o", &links, &nodes, 16, 4), "a");
        // Other regions cross to the origin; so do edges that say no region.
        assert_eq!(
            choose_upstream("d", Some("ap"), "o", &links, &nodes, 16, 4),
            "o"
        );
        assert_eq!(choose_upstream("b", None, "o", &links, &nodes, 16, 4), "o");
        // In the origin's own region the origin is near enough.
        assert_eq!(
            choose_upstream("c", Some("us"), "o", &links, &nodes, 16, 4),
            "o"
        );
        links.push(tree_link("b", "a"));
        // a pulling again (its old link listed) never picks b, which pulls from it.
        assert_eq!(choose_upstream("a", eu, "o", &links, &nodes, 16, 4), "o");
        // a full (fan-out 1): the shallowest in-region edge with a free slot, b.
        assert_eq!(choose_upstream("e", eu, "o", &links, &nodes, 1, 4), "b");
        // ... unless b is too deep to feed: then the origin (it has a free slot).
        assert_eq!(choose_upstream("e", eu, "o", &links, &nodes, 1, 2), "o");
        // A draining edge feeds nobody new: b, below it, still carries the room.
        nodes[1].draining = true;
        assert_eq!(choose_upstream("e", eu, "o", &links, &nodes, 16, 4), "b");
        // a and b gone from the registry (their links not yet expired): the origin.
        nodes.retain(|n| n.id != "a" && n.id != "b");
        assert_eq!(choose_upstream("e", eu, "o", &links, &nodes, 16, 4), "o");
    }

    fn node(id: &str, role: Role, load: u32, capacity: u32) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            role,
            http_url: format!("http://{id}"),
            grpc_url: format!("http://{id}:9"),
            capacity,
            load,
            draining: false,
            version: "test".into(),
            heartbeat_unix_ms: None,
            cpu_percent: None,
            region: None,
            zone: None,
        }
    }

    fn edge(id: &str, load: u32, capacity: u32) -> NodeInfo {
        node(id, Role::Edge, load, capacity)
    }
}
