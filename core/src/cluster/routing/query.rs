//! [`NodeQuery`]: the few nodes a placement or a choice of upstream needs from the registry,
//! instead of all of them.
//!
//! Placement only ever picks the least-loaded node with room of a role within a place (the
//! viewer's region and zone, its region, anywhere), or one of the room's carriers; the relay
//! tree only looks at the room's owner and carriers. So a store answers with the least-loaded
//! few of each place and the nodes named, and a join costs O(log N + k) on a store that keeps
//! the nodes sorted by load (Redis: a sorted set per role and place, written by heartbeats),
//! not O(N). [`NodeQuery::select`] is the answer over a full list, for stores that have one
//! (the in-memory store) and as the reference the Redis store is tested against.

use super::{NodeInfo, Role};
use crate::cluster::locality::Locality;
use std::collections::BTreeMap;

/// What to read of the registry for one decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeQuery {
    /// The role whose least-loaded nodes are wanted; `None`: only [`ids`](Self::ids).
    pub role: Option<Role>,
    /// The places to look in; in each, the [`least_loaded`](Self::least_loaded) live nodes of
    /// [`role`](Self::role) with room (not draining, load below capacity), least
    /// `load / capacity` first, ties to the smaller id. A place's `None` region or zone
    /// matches any.
    pub places: Vec<Locality>,
    /// How many nodes per place.
    pub least_loaded: usize,
    /// These nodes too, whatever their role, place or load, if they are live.
    pub ids: Vec<String>,
}

/// Whether `node` is in `place` (an unsaid region or zone matches any).
pub fn in_place(node: &NodeInfo, place: &Locality) -> bool {
    let matches = |want: &Option<String>, got: &Option<String>| want.is_none() || want == got;
    matches(&place.region, &node.region) && matches(&place.zone, &node.zone)
}

/// Every place a node is found in by a query: anywhere, and its region, its region and zone,
/// its zone, as far as it has them. A store keeping the nodes sorted by load keeps one list
/// per role and place.
pub fn places_of(node: &NodeInfo) -> Vec<Locality> {
    let place = |region: Option<&String>, zone: Option<&String>| Locality {
        region: region.cloned(),
        zone: zone.cloned(),
    };
    let (region, zone) = (node.region.as_ref(), node.zone.as_ref());
    let mut places = vec![place(None, None)];
    if region.is_some() {
        places.push(place(region, None));
    }
    if zone.is_some() {
        places.push(place(None, zone));
    }
    if region.is_some() && zone.is_some() {
        places.push(place(region, zone));
    }
    places
}

/// Whether a node takes new sessions: the nodes a place's least-loaded list holds.
pub fn has_room(node: &NodeInfo) -> bool {
    !node.draining && node.load < node.capacity
}

/// A node's position in a least-loaded list: `load / capacity` as a float (what a store can
/// sort by; equal fractions give equal floats), then its id.
pub fn load_score(node: &NodeInfo) -> f64 {
    f64::from(node.load) / f64::from(node.capacity.max(1))
}

impl NodeQuery {
    /// The answer to this query from the list of every live node: the nodes it names, by id.
    pub fn select(&self, nodes: Vec<NodeInfo>) -> Vec<NodeInfo> {
        let mut wanted = BTreeMap::new();
        for place in &self.places {
            let mut sorted: Vec<&NodeInfo> = nodes
                .iter()
                .filter(|n| Some(n.role) == self.role && has_room(n) && in_place(n, place))
                .collect();
            sorted.sort_by(|a, b| {
                load_score(a)
                    .total_cmp(&load_score(b))
                    .then_with(|| a.id.cmp(&b.id))
            });
            for node in sorted.into_iter().take(self.least_loaded) {
                wanted.insert(node.id.clone(), node.clone());
            }
        }
        for node in nodes {
            if self.ids.contains(&node.id) {
                wanted.insert(node.id.clone(), node);
            }
        }
        wanted.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, role: Role, load: u32, region: Option<&str>, zone: Option<&str>) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            role,
            http_url: String::new(),
            grpc_url: String::new(),
            capacity: 10,
            load,
            draining: false,
            version: "test".into(),
            heartbeat_unix_ms: None,
            cpu_percent: None,
            region: region.map(Into::into),
            zone: zone.map(Into::into),
        }
    }

    fn ids(nodes: &[NodeInfo]) -> Vec<&str> {
        nodes.iter().map(|n| n.id.as_str()).collect()
    }

    #[test]
    fn a_query_names_the_least_loaded_with_room_per_place_and_the_nodes_asked_for() {
        let mut full = node("e-full", Role::Edge, 10, Some("eu"), Some("a"));
        full.capacity = 10;
        let mut draining = node("e-drain", Role::Edge, 0, Some("eu"), Some("a"));
        draining.draining = true;
        let nodes = vec![
            node("e1", Role::Edge, 5, Some("eu"), Some("a")),
            node("e2", Role::Edge, 1, Some("eu"), Some("b")),
            node("e3", Role::Edge, 1, Some("us"), None),
            node("e4", Role::Edge, 0, None, None),
            node("e5", Role::Edge, 2, Some("eu"), Some("a")),
            node("o1", Role::Origin, 0, Some("eu"), Some("a")),
            full,
            draining,
        ];
        let eu_a = Locality {
            region: Some("eu".into()),
            zone: Some("a".into()),
        };
        let query = NodeQuery {
            role: Some(Role::Edge),
            places: vec![eu_a.clone()],
            least_loaded: 1,
            ids: vec!["e-full".into(), "nobody".into()],
        };
        // e5 (2/10) before e1 (5/10); the full and draining ones only by name.
        assert_eq!(ids(&query.select(nodes.clone())), ["e-full", "e5"]);
        let query = NodeQuery {
            places: vec![eu_a, Locality::default()],
            least_loaded: 2,
            ids: Vec::new(),
            ..query
        };
        // Ties (e2, e3 at 1/10) go to the smaller id.
        assert_eq!(ids(&query.select(nodes)), ["e1", "e2", "e4", "e5"]);
    }

    #[test]
    fn a_node_is_found_in_every_place_it_has() {
        let n = node("n", Role::Edge, 0, Some("eu"), Some("a"));
        let places = places_of(&n);
        assert_eq!(places.len(), 4);
        assert!(places.iter().all(|p| in_place(&n, p)));
        let bare = node("b", Role::Edge, 0, None, None);
        assert_eq!(places_of(&bare), [Locality::default()]);
        assert!(!in_place(&bare, &places[1]));
    }
}
