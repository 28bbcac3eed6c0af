//! The cluster's routing: which nodes exist (and how to reach them), which node owns which room,
//! and which edges carry a room from which upstream.
//!
//! Behind the [`RoutingStore`] trait: [`MemoryStore`] keeps it in one process (the embedded
//! default, and the demo's three nodes share one); a Redis store shares it across machines.
//! Everything a node writes is a lease: it disappears unless renewed, so a node that dies
//! without a word leaves no routing behind. Room ownership is claimed with a token and released
//! only by the token's holder.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub mod metered;
pub mod query;
pub mod redis;
pub use self::metered::{MeteredStore, RoutingOp};
pub use self::query::NodeQuery;
pub use self::redis::{RedisOptions, RedisStore};

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Origin,
    Edge,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Origin => "origin",
            Role::Edge => "edge",
        }
    }
}

/// What a node publishes about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeInfo {
    pub id: String,
    pub role: Role,
    /// Base URL of its HTTP API (WHIP/WHEP, status), as other nodes and clients reach it.
    pub http_url: String,
    /// URL of its gRPC relay service.
    pub grpc_url: String,
    /// Sessions it serves at most (publishers, viewers and relay links).
    pub capacity: u32,
    /// Sessions it holds now.
    pub load: u32,
    pub draining: bool,
    pub version: String,
    /// When this entry was last written (the node's last heartbeat), in ms since the Unix
    /// epoch by the writing node's clock. Stamped by the store; absent from the entry a node
    /// makes of itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub heartbeat_unix_ms: Option<u64>,
    /// The node's process CPU (100 = one core busy) over its last sampling interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub cpu_percent: Option<f64>,
    /// The node's region (`--region`); absent when not set (and from nodes that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub region: Option<String>,
    /// The node's zone within its region (`--zone`); absent when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub zone: Option<String>,
}

/// Milliseconds since the Unix epoch by this machine's clock (0 before 1970).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl NodeInfo {
    /// This entry as a heartbeat writes it: stamped with the time of writing.
    pub fn stamped(&self) -> Self {
        Self {
            heartbeat_unix_ms: Some(unix_ms()),
            ..self.clone()
        }
    }
}

/// Proof of owning a room: only the holder of the token may renew or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomClaim {
    pub room: String,
    pub node_id: String,
    pub token: String,
}

/// An edge carrying a room, and where it pulls it from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub room: String,
    pub edge_id: String,
    pub upstream_id: String,
}

/// Why a routing operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The store cannot be reached; a retry later may succeed.
    #[error("routing store unavailable: {0}")]
    Unavailable(String),
    /// The store answered something we cannot read.
    #[error("routing store data is corrupt: {0}")]
    Corrupt(String),
}

pub type RoutingResult<T> = Result<T, RoutingError>;

/// The cluster's shared routing state.
#[async_trait::async_trait]
pub trait RoutingStore: Send + Sync + std::fmt::Debug {
    /// Registers or refreshes a node for `lease`.
    async fn heartbeat(&self, node: &NodeInfo, lease: Duration) -> RoutingResult<()>;
    /// Removes a node and everything it wrote.
    async fn remove_node(&self, node_id: &str) -> RoutingResult<()>;
    /// Live nodes.
    async fn nodes(&self) -> RoutingResult<Vec<NodeInfo>>;
    async fn node(&self, node_id: &str) -> RoutingResult<Option<NodeInfo>>;
    /// The live nodes a decision needs ([`NodeQuery`]): the least-loaded few with room per
    /// place, and the nodes named; sorted by id. What placement and the relay tree read per
    /// join, so a store with many nodes answers it without reading them all. The default
    /// reads them all and selects.
    async fn nodes_for(&self, query: &NodeQuery) -> RoutingResult<Vec<NodeInfo>> {
        Ok(query.select(self.nodes().await?))
    }

    /// Claims `room` for `node_id`; `None` when another node holds it.
    async fn claim_room(
        &self,
        room: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>>;
    /// Claims `room` for `node_id` if it is free or still claimed by `dead_node` (an owner
    /// found dead before its claim expired); `None` when anyone else holds it.
    async fn take_over_room(
        &self,
        room: &str,
        dead_node: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>>;
    /// Extends a claim; false when it was lost (expired and taken, or released).
    async fn renew_room(&self, claim: &RoomClaim, lease: Duration) -> RoutingResult<bool>;
    /// Extends many claims (a node's renewals of one heartbeat): one answer per claim, in
    /// order, as [`renew_room`](Self::renew_room) would give it. A store that can do it in
    /// fewer round trips than one per claim overrides this; the default renews one by one.
    async fn renew_rooms(&self, claims: &[RoomClaim], lease: Duration) -> RoutingResult<Vec<bool>> {
        let mut renewed = Vec::with_capacity(claims.len());
        for claim in claims {
            renewed.push(self.renew_room(claim, lease).await?);
        }
        Ok(renewed)
    }
    /// Releases a claim if still held by its token.
    async fn release_room(&self, claim: &RoomClaim) -> RoutingResult<bool>;
    /// The node owning `room`, if any.
    async fn room_owner(&self, room: &str) -> RoutingResult<Option<String>>;
    /// Every owned room and its owner.
    async fn rooms(&self) -> RoutingResult<Vec<(String, String)>>;

    /// Records (or refreshes) that an edge carries a room from an upstream.
    async fn put_link(&self, link: &Link, lease: Duration) -> RoutingResult<()>;
    /// Records (or refreshes) many links (a node's refreshes of one heartbeat), as
    /// [`put_link`](Self::put_link) each. The default puts them one by one.
    async fn put_links(&self, links: &[Link], lease: Duration) -> RoutingResult<()> {
        for link in links {
            self.put_link(link, lease).await?;
        }
        Ok(())
    }
    async fn remove_link(&self, room: &str, edge_id: &str) -> RoutingResult<()>;
    /// The edges carrying `room`.
    async fn links(&self, room: &str) -> RoutingResult<Vec<Link>>;
}

#[derive(Debug)]
struct Leased<T> {
    value: T,
    expires: Instant,
}

#[derive(Debug, Default)]
struct MemoryState {
    nodes: HashMap<String, Leased<NodeInfo>>,
    rooms: HashMap<String, Leased<(String, String)>>,
    links: HashMap<(String, String), Leased<Link>>,
}

impl MemoryState {
    /// Makes `node_id` the owner of `room` with a new token, whoever held it.
    fn claim(&mut self, room: &str, node_id: &str, expires: Instant) -> RoomClaim {
        let token = uuid::Uuid::new_v4().to_string();
        self.rooms.insert(
            room.to_owned(),
            Leased {
                value: (node_id.to_owned(), token.clone()),
                expires,
            },
        );
        RoomClaim {
            room: room.to_owned(),
            node_id: node_id.to_owned(),
            token,
        }
    }
}

/// The routing store of a single process: a map behind a mutex, leases checked on read.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryState, Instant) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        state.nodes.retain(|_, v| v.expires > now);
        state.rooms.retain(|_, v| v.expires > now);
        state.links.retain(|_, v| v.expires > now);
        f(&mut state, now)
    }
}

#[async_trait::async_trait]
impl RoutingStore for MemoryStore {
    async fn heartbeat(&self, node: &NodeInfo, lease: Duration) -> RoutingResult<()> {
        self.with(|s, now| {
            s.nodes.insert(
                node.id.clone(),
                Leased {
                    value: node.stamped(),
                    expires: now + lease,
                },
            );
        });
        Ok(())
    }

    async fn remove_node(&self, node_id: &str) -> RoutingResult<()> {
        self.with(|s, _| {
            s.nodes.remove(node_id);
            s.rooms.retain(|_, v| v.value.0 != node_id);
            s.links
                .retain(|_, v| v.value.edge_id != node_id && v.value.upstream_id != node_id);
        });
        Ok(())
    }

    async fn nodes(&self) -> RoutingResult<Vec<NodeInfo>> {
        Ok(self.with(|s, _| {
            let mut nodes: Vec<_> = s.nodes.values().map(|v| v.value.clone()).collect();
            nodes.sort_by(|a, b| a.id.cmp(&b.id));
            nodes
        }))
    }

    async fn node(&self, node_id: &str) -> RoutingResult<Option<NodeInfo>> {
        Ok(self.with(|s, _| s.nodes.get(node_id).map(|v| v.value.clone())))
    }

    async fn claim_room(
        &self,
        room: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>> {
        Ok(self.with(|s, now| {
            (!s.rooms.contains_key(room)).then(|| s.claim(room, node_id, now + lease))
        }))
    }

    async fn take_over_room(
        &self,
        room: &str,
        dead_node: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>> {
        Ok(self.with(|s, now| {
            let held = s.rooms.get(room).is_some_and(|o| o.value.0 != dead_node);
            (!held).then(|| s.claim(room, node_id, now + lease))
        }))
    }

    async fn renew_room(&self, claim: &RoomClaim, lease: Duration) -> RoutingResult<bool> {
        Ok(self.with(|s, now| match s.rooms.get_mut(&claim.room) {
            Some(v) if v.value.1 == claim.token => {
                v.expires = now + lease;
                true
            }
            _ => false,
        }))
    }

    async fn release_room(&self, claim: &RoomClaim) -> RoutingResult<bool> {
        Ok(self.with(|s, _| {
            if s.rooms
                .get(&claim.room)
                .is_some_and(|v| v.value.1 == claim.token)
            {
                s.rooms.remove(&claim.room);
                s.links.retain(|(room, _), _| room != &claim.room);
                true
            } else {
                false
            }
        }))
    }

    async fn room_owner(&self, room: &str) -> RoutingResult<Option<String>> {
        Ok(self.with(|s, _| s.rooms.get(room).map(|v| v.value.0.clone())))
    }

    async fn rooms(&self) -> RoutingResult<Vec<(String, String)>> {
        Ok(self.with(|s, _| {
            let mut rooms: Vec<_> = s
                .rooms
                .iter()
                .map(|(k, v)| (k.clone(), v.value.0.clone()))
                .collect();
            rooms.sort();
            rooms
        }))
    }

    async fn put_link(&self, link: &Link, lease: Duration) -> RoutingResult<()> {
        self.with(|s, now| {
            s.links.insert(
                (link.room.clone(), link.edge_id.clone()),
                Leased {
                    value: link.clone(),
                    expires: now + lease,
                },
            );
        });
        Ok(())
    }

    async fn remove_link(&self, room: &str, edge_id: &str) -> RoutingResult<()> {
        self.with(|s, _| {
            s.links.remove(&(room.to_owned(), edge_id.to_owned()));
        });
        Ok(())
    }

    async fn links(&self, room: &str) -> RoutingResult<Vec<Link>> {
        Ok(self.with(|s, _| {
            let mut links: Vec<_> = s
                .links
                .values()
                .filter(|v| v.value.room == room)
                .map(|v| v.value.clone())
                .collect();
            links.sort_by(|a, b| a.edge_id.cmp(&b.edge_id));
            links
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            role: Role::Edge,
            http_url: "http://127.0.0.1:1".into(),
            grpc_url: "http://127.0.0.1:2".into(),
            capacity: 10,
            load: 0,
            draining: false,
            version: "test".into(),
            heartbeat_unix_ms: None,
            cpu_percent: None,
            region: None,
            zone: None,
        }
    }

    #[test]
    fn an_entry_without_region_or_zone_still_parses_and_they_round_trip() {
        // As a node from before regions wrote it.
        let old = r#"{"id":"e1","role":"edge","http_url":"http://h","grpc_url":"http://g",
            "capacity":10,"load":1,"draining":false,"version":"0.1.0"}"#;
        let info: NodeInfo = serde_json::from_str(old).unwrap();
        assert_eq!((info.region.as_deref(), info.zone.as_deref()), (None, None));
        assert!(!serde_json::to_string(&info).unwrap().contains("region"));
        let placed = NodeInfo {
            region: Some("eu-west".into()),
            zone: Some("eu-west-1a".into()),
            ..info
        };
        let text = serde_json::to_string(&placed).unwrap();
        assert_eq!(serde_json::from_str::<NodeInfo>(&text).unwrap(), placed);
    }

    #[tokio::test]
    async fn a_room_has_one_owner_and_only_the_token_releases_it() {
        let store = MemoryStore::new();
        let lease = Duration::from_secs(10);
        let claim = store.claim_room("r", "a", lease).await.unwrap().unwrap();
        assert!(store.claim_room("r", "b", lease).await.unwrap().is_none());
        let forged = RoomClaim {
            token: "nope".into(),
            ..claim.clone()
        };
        assert!(!store.release_room(&forged).await.unwrap());
        assert_eq!(store.room_owner("r").await.unwrap().as_deref(), Some("a"));
        assert!(store.release_room(&claim).await.unwrap());
        assert!(store.room_owner("r").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn leases_expire() {
        let store = MemoryStore::new();
        let short = Duration::from_millis(1);
        store.heartbeat(&node("e1"), short).await.unwrap();
        let stamped = store.node("e1").await.unwrap().unwrap();
        assert!(stamped.heartbeat_unix_ms.unwrap() + 60_000 > unix_ms());
        store.claim_room("r", "e1", short).await.unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(store.nodes().await.unwrap().is_empty());
        assert!(store.room_owner("r").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn removing_a_node_removes_its_rooms_and_links() {
        let store = MemoryStore::new();
        let lease = Duration::from_secs(10);
        store.heartbeat(&node("o"), lease).await.unwrap();
        store.claim_room("r", "o", lease).await.unwrap().unwrap();
        let link = Link {
            room: "r".into(),
            edge_id: "e".into(),
            upstream_id: "o".into(),
        };
        store.put_link(&link, lease).await.unwrap();
        assert_eq!(store.links("r").await.unwrap(), vec![link]);
        store.remove_node("o").await.unwrap();
        assert!(store.room_owner("r").await.unwrap().is_none());
        assert!(store.links("r").await.unwrap().is_empty());
    }
}
