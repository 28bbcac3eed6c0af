//! Where a new session should go: here, or another node (a `307 Temporary Redirect`, which
//! WHIP and WHEP clients follow).
//!
//! A pure function of what the routing store says (this node, the live nodes, the edges that
//! carry the room) so that every rule is unit-tested without a cluster. The node gathers the
//! inputs ([`crate::cluster::node::Node::place`]); this module only decides.
//!
//! Rules, for a viewer (`POST /whep/{room}`):
//! 1. A node that is draining or full does not take it: it goes to the least-loaded edge
//!    carrying the room with room to spare, else to the least-loaded edge with room to spare,
//!    else it is refused (503).
//! 2. An edge that does not carry the room sends the viewer to an edge that does and has room
//!    to spare (no second upstream copy of the room); when none does, it takes it.
//! 3. Otherwise the node takes it.
//!
//! For a publisher (`POST /whip/{room}`), only rule 1 applies, across origins.
//!
//! "Least loaded" compares `load / capacity`, so nodes of different sizes fill evenly.

use crate::cluster::routing::{Link, NodeInfo, Role};

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

/// Whether a node takes new sessions at all.
pub fn has_room(node: &NodeInfo) -> bool {
    !node.draining && node.load < node.capacity
}

/// `load / capacity` compared without floats: `a` is less loaded than `b` when
/// `a.load * b.capacity < b.load * a.capacity`. Ties go to the smaller id, so every node picks
/// the same one.
fn less_loaded<'a>(nodes: impl Iterator<Item = &'a NodeInfo>) -> Option<&'a NodeInfo> {
    nodes.min_by(|a, b| {
        let left = u64::from(a.load) * u64::from(b.capacity.max(1));
        let right = u64::from(b.load) * u64::from(a.capacity.max(1));
        left.cmp(&right).then_with(|| a.id.cmp(&b.id))
    })
}

/// Where a new viewer of a room goes. `me` is this node as it would register now;
/// `carries_room` whether it holds the room; `nodes` the live nodes (may include `me`, which is
/// ignored); `links` the edges carrying the room.
pub fn place_viewer(
    me: &NodeInfo,
    carries_room: bool,
    nodes: &[NodeInfo],
    links: &[Link],
) -> Placement {
    let others = || {
        nodes
            .iter()
            .filter(|n| n.id != me.id && n.role == Role::Edge && has_room(n))
    };
    let carriers = || others().filter(|n| links.iter().any(|l| l.edge_id == n.id));
    if !has_room(me) {
        return match less_loaded(carriers()).or_else(|| less_loaded(others())) {
            Some(n) => Placement::Redirect(n.clone()),
            None => Placement::Refuse {
                draining: me.draining,
            },
        };
    }
    if me.role == Role::Edge
        && !carries_room
        && let Some(n) = less_loaded(carriers())
    {
        return Placement::Redirect(n.clone());
    }
    Placement::Here
}

/// Where a new publisher goes: here unless this origin is draining or full, then the
/// least-loaded origin with room to spare.
pub fn place_publisher(me: &NodeInfo, nodes: &[NodeInfo]) -> Placement {
    if has_room(me) {
        return Placement::Here;
    }
    let others = nodes
        .iter()
        .filter(|n| n.id != me.id && n.role == Role::Origin && has_room(n));
    match less_loaded(others) {
        Some(n) => Placement::Redirect(n.clone()),
        None => Placement::Refuse {
            draining: me.draining,
        },
    }
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

    fn link(edge: &str) -> Link {
        Link {
            room: "r".into(),
            edge_id: edge.into(),
            upstream_id: "o".into(),
        }
    }

    fn redirect_id(p: Placement) -> String {
        match p {
            Placement::Redirect(n) => n.id,
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn a_node_with_room_that_carries_the_room_takes_the_viewer() {
        let me = edge("a", 5, 10);
        let nodes = [me.clone(), edge("b", 0, 10)];
        assert_eq!(
            place_viewer(&me, true, &nodes, &[link("a"), link("b")]),
            Placement::Here
        );
    }

    #[test]
    fn an_edge_not_carrying_the_room_sends_viewers_to_one_that_does() {
        let me = edge("a", 0, 10);
        let nodes = [
            me.clone(),
            edge("b", 9, 10),
            edge("c", 3, 10),
            edge("d", 0, 10),
        ];
        // b and c carry it; c is less loaded; d is idle but would need a second copy.
        let p = place_viewer(&me, false, &nodes, &[link("b"), link("c")]);
        assert_eq!(redirect_id(p), "c");
    }

    #[test]
    fn full_or_draining_carriers_do_not_count() {
        let me = edge("a", 0, 10);
        let mut draining = edge("c", 0, 10);
        draining.draining = true;
        let nodes = [me.clone(), edge("b", 10, 10), draining];
        assert_eq!(
            place_viewer(&me, false, &nodes, &[link("b"), link("c")]),
            Placement::Here
        );
    }

    #[test]
    fn nobody_carries_the_room_so_the_edge_asked_takes_it() {
        let me = edge("a", 0, 10);
        let nodes = [me.clone(), edge("b", 0, 10)];
        assert_eq!(place_viewer(&me, false, &nodes, &[]), Placement::Here);
    }

    #[test]
    fn a_full_edge_prefers_carriers_then_the_least_loaded_edge() {
        let me = edge("a", 10, 10);
        let nodes = [
            me.clone(),
            edge("b", 50, 100),
            edge("c", 1, 10),
            edge("d", 9, 10),
        ];
        // d carries the room and has room: preferred over the idler c.
        assert_eq!(
            redirect_id(place_viewer(&me, true, &nodes, &[link("a"), link("d")])),
            "d"
        );
        // Nobody else carries it: least loaded by ratio (c: 10 %, b: 50 %).
        assert_eq!(
            redirect_id(place_viewer(&me, true, &nodes, &[link("a")])),
            "c"
        );
    }

    #[test]
    fn a_draining_edge_redirects_or_refuses() {
        let mut me = edge("a", 0, 10);
        me.draining = true;
        let nodes = [me.clone(), edge("b", 2, 10)];
        assert_eq!(redirect_id(place_viewer(&me, true, &nodes, &[])), "b");
        assert_eq!(
            place_viewer(&me, true, &[me.clone()], &[]),
            Placement::Refuse { draining: true }
        );
        let full = edge("a", 10, 10);
        assert_eq!(
            place_viewer(&full, true, &[edge("b", 10, 10)], &[]),
            Placement::Refuse { draining: false }
        );
    }

    #[test]
    fn viewers_are_never_sent_to_origins_and_origins_keep_their_viewers() {
        let me = node("o", Role::Origin, 0, 10);
        let nodes = [me.clone(), edge("b", 0, 10)];
        assert_eq!(
            place_viewer(&me, false, &nodes, &[link("b")]),
            Placement::Here
        );
        let full = edge("a", 10, 10);
        let only_origins = [full.clone(), node("o", Role::Origin, 0, 10)];
        assert!(matches!(
            place_viewer(&full, false, &only_origins, &[]),
            Placement::Refuse { .. }
        ));
    }

    #[test]
    fn publishers_go_to_the_least_loaded_origin_when_this_one_cannot_take_them() {
        let me = node("o1", Role::Origin, 5, 5);
        let nodes = [
            me.clone(),
            node("o2", Role::Origin, 4, 5),
            node("o3", Role::Origin, 1, 5),
            edge("e", 0, 100),
        ];
        assert_eq!(redirect_id(place_publisher(&me, &nodes)), "o3");
        let ok = node("o1", Role::Origin, 1, 5);
        assert_eq!(place_publisher(&ok, &nodes), Placement::Here);
        assert_eq!(
            place_publisher(&me, &[me.clone(), edge("e", 0, 100)]),
            Placement::Refuse { draining: false }
        );
    }
}
