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

/// Which node an edge should pull a room from, to keep the relay tree bounded: the room's
/// origin while it feeds fewer than `fanout` relay links of that room, else the shallowest edge
/// carrying the room that feeds fewer than `fanout` and sits less than `max_depth` hops below
/// the origin (ties: fewest children, then smallest id). Edges that are draining, gone from
/// the registry, or `me` itself (and its descendants, which would make a loop) are skipped.
/// When nobody has a free slot the origin is chosen anyway: an over-full origin is better than a
/// viewer with no picture.
pub fn choose_upstream(
    me: &str,
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
    if fanout == 0 || children(owner) < fanout {
        return owner.to_owned();
    }
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
    let live = |id: &str| nodes.iter().any(|n| n.id == id && !n.draining);
    links
        .iter()
        .filter(|l| l.edge_id != me && live(&l.edge_id))
        .filter_map(|l| depth(&l.edge_id).map(|d| (d, children(&l.edge_id), &l.edge_id)))
        .filter(|&(d, c, _)| d < max_depth && c < fanout)
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
        assert_eq!(choose_upstream("a", "o", &[], &nodes, 2, 3), "o");
        let mut links = vec![tree_link("a", "o")];
        assert_eq!(choose_upstream("b", "o", &links, &nodes, 2, 3), "o");
        links.push(tree_link("b", "o"));
        // The origin is full: the first-level edge with fewest children, smallest id first.
        assert_eq!(choose_upstream("c", "o", &links, &nodes, 2, 3), "a");
        links.push(tree_link("c", "a"));
        assert_eq!(choose_upstream("d", "o", &links, &nodes, 2, 3), "b");
        links.push(tree_link("d", "b"));
        links.push(tree_link("e", "a"));
        links.push(tree_link("f", "b"));
        // a and b full: second level (depth 2 < 3).
        assert_eq!(choose_upstream("x", "o", &links, &nodes, 2, 3), "c");
        // Depth limit 2: nothing below the first level may feed, so the origin is used.
        assert_eq!(choose_upstream("x", "o", &links, &nodes, 2, 2), "o");
        // Fanout 0 means unlimited.
        assert_eq!(choose_upstream("x", "o", &links, &nodes, 0, 3), "o");
    }

    #[test]
    fn draining_dead_and_descendant_edges_are_not_chosen() {
        let mut nodes: Vec<_> = ["a", "b"].into_iter().map(|id| edge(id, 0, 10)).collect();
        let links = vec![tree_link("a", "o"), tree_link("b", "a")];
        nodes[0].draining = true;
        assert_eq!(choose_upstream("c", "o", &links, &nodes, 1, 5), "b");
        // a pulling again (its old link still listed) must not pick b, its own child.
        nodes[0].draining = false;
        assert_eq!(choose_upstream("a", "o", &links, &nodes, 1, 5), "o");
        // b gone from the registry: the origin.
        assert_eq!(choose_upstream("c", "o", &links, &nodes[..1], 1, 5), "o");
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
        }
    }

    fn edge(id: &str, load: u32, capacity: u32) -> NodeInfo {
        node(id, Role::Edge, load, capacity)
    }
}
