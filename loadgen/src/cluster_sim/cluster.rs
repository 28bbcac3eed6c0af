//! The simulated cluster: real cascade-core [`Node`]s (origins and edges, no media) sharing one
//! Redis through real [`RedisStore`]s, one store and one connection per node as in production.
//!
//! What runs is the nodes' own code: `Node::heartbeat_loop` (registration every `lease / 3`,
//! then the claim machines' ticks: renewals), `Node::place_publisher` / `Node::place_viewer`
//! (the admission machine and its store lookup), `Node::open_room` / `Node::close_room` (the
//! claim machine: `claim_room`, the owner probe and take-over, `release_room`) and
//! `Node::upstream_for` (the relay tree's choice of upstream) and `Node::keep_link` (the link
//! written, then refreshed with the heartbeat). The only thing the simulation plays itself is
//! the relay link, which needs media: an edge that "carries" a room has chosen its upstream and
//! keeps its link in the store, with no media behind it.
//!
//! A node is killed by aborting its heartbeat task: it stops renewing anything, as a process
//! that died without a word, and its entries must expire by themselves.

use cascade_core::cluster::credential::Credential;
use cascade_core::cluster::node::Node;
use cascade_core::cluster::placement::Placement;
use cascade_core::cluster::routing::{Link, RedisStore, Role, RoutingStore};
use cascade_core::cluster::settings::NodeSettings;
use cascade_core::rtc::pc::MediaSettings;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The shape of a simulated cluster.
#[derive(Debug, Clone)]
pub struct ClusterShape {
    pub nodes: usize,
    /// The first `origins` nodes are origins, the rest edges.
    pub origins: usize,
    /// How long routing entries live without a heartbeat; heartbeats every third of it.
    pub lease: Duration,
    /// Each node's capacity (sessions); large, so that placement is never "full".
    pub capacity: u32,
    /// Redis key prefix of the run.
    pub prefix: String,
}

/// Why an operation of the simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("routing store: {0}")]
    Routing(#[from] cascade_core::cluster::routing::RoutingError),
    #[error("node: {0}")]
    Node(#[from] cascade_core::error::Error),
    #[error("placement refused the join (draining: {draining})")]
    Refused { draining: bool },
    #[error("redirected to {0}, which is not a live simulated node")]
    UnknownNode(String),
}

/// One simulated node.
#[derive(Debug)]
pub struct SimNode {
    pub node: Arc<Node>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    dead: AtomicBool,
    /// Rooms this edge carries, and the upstream each is pulled from.
    carried: Arc<Mutex<HashMap<String, String>>>,
}

impl SimNode {
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    pub fn carried(&self) -> Vec<String> {
        lock(&self.carried).keys().cloned().collect()
    }

    pub fn carries(&self, room: &str) -> bool {
        lock(&self.carried).contains_key(room)
    }
}

/// A room the simulation opened: its owner and the edges that carry it (node indices).
#[derive(Debug, Clone)]
pub struct RoomEntry {
    pub owner: usize,
    pub edges: Vec<usize>,
}

/// The open rooms, pickable at random in O(1).
#[derive(Debug, Default)]
struct Rooms {
    order: Vec<String>,
    entries: HashMap<String, (usize, RoomEntry)>,
    next: u64,
}

impl Rooms {
    fn insert(&mut self, room: String, entry: RoomEntry) {
        self.entries.insert(room.clone(), (self.order.len(), entry));
        self.order.push(room);
    }

    fn remove(&mut self, room: &str) -> Option<RoomEntry> {
        let (pos, entry) = self.entries.remove(room)?;
        self.order.swap_remove(pos);
        if let Some(moved) = self.order.get(pos) {
            self.entries.get_mut(moved).expect("indexed").0 = pos;
        }
        Some(entry)
    }
}

/// The simulated cluster.
#[derive(Debug)]
pub struct Cluster {
    pub shape: ClusterShape,
    pub nodes: Vec<SimNode>,
    rooms: Mutex<Rooms>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn settings(shape: &ClusterShape, index: usize) -> NodeSettings {
    let (role, id) = if index < shape.origins {
        (Role::Origin, format!("origin-{index:04}"))
    } else {
        (Role::Edge, format!("edge-{index:04}"))
    };
    // Never bound: the simulation serves no HTTP, gRPC or media.
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
    NodeSettings {
        role,
        http_listen: addr,
        grpc_listen: addr,
        media: MediaSettings {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertise_ip: None,
            udp_ports: None,
            ice_tcp_port: None,
            mux: None,
        },
        http_advertise: Some(format!("http://{id}.sim:8080")),
        grpc_advertise: Some(format!("http://{id}.sim:9090")),
        node_id: id,
        upstream: None,
        capacity: shape.capacity,
        connect_timeout: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(30),
        lease: shape.lease,
        max_fanout: 16,
        max_depth: 4,
        failover_timeout: Duration::from_secs(10),
        credential: Credential::default(),
        grpc_tls: None,
        locality: Default::default(),
    }
}

impl Cluster {
    /// Connects `shape.nodes` stores to `url` (a few at a time) and builds the nodes; nothing
    /// runs until [`Cluster::start`].
    pub async fn connect(url: &str, shape: ClusterShape) -> Result<Self, SimError> {
        let mut nodes = Vec::with_capacity(shape.nodes);
        for chunk in (0..shape.nodes).collect::<Vec<_>>().chunks(64) {
            let mut set = tokio::task::JoinSet::new();
            for &i in chunk {
                let (url, prefix) = (url.to_owned(), shape.prefix.clone());
                set.spawn(async move { (i, RedisStore::connect(&url, &prefix).await) });
            }
            let mut stores: Vec<_> = set.join_all().await;
            stores.sort_by_key(|(i, _)| *i);
            for (i, store) in stores {
                let routing: Arc<dyn RoutingStore> = Arc::new(store?);
                let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
                let node = Node::new(settings(&shape, i), routing, addr, addr);
                nodes.push(SimNode {
                    node,
                    tasks: Mutex::new(Vec::new()),
                    dead: AtomicBool::new(false),
                    carried: Arc::default(),
                });
            }
        }
        Ok(Self {
            shape,
            nodes,
            rooms: Mutex::default(),
        })
    }

    /// Routing store calls that failed so far, over all nodes (their
    /// `cascade_routing_errors_total`): timeouts show here when Redis cannot keep up.
    pub fn store_errors(&self) -> u64 {
        let errors = |text: String| -> f64 {
            text.lines()
                .filter(|l| l.starts_with("cascade_routing_errors_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        self.nodes
            .iter()
            .map(|n| errors(n.node.metrics.render(&Default::default())) as u64)
            .sum()
    }

    /// The heartbeat period the nodes use (`NodeSettings::heartbeat`).
    pub fn period(&self) -> Duration {
        self.nodes[0].node.config.heartbeat()
    }

    /// Starts every node's heartbeat (at a random phase within one period, as nodes started
    /// at different times have).
    pub fn start(&self) {
        let period = self.period();
        for sim in &self.nodes {
            let phase = period.mul_f64(rand::random_range(0.0..1.0));
            let node = sim.node.clone();
            let heartbeat = tokio::spawn(async move {
                tokio::time::sleep(phase).await;
                node.heartbeat_loop().await;
            });
            lock(&sim.tasks).push(heartbeat);
        }
    }

    /// Waits until the store lists every node, or `within` passes; returns how many it lists.
    pub async fn wait_registered(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let listed = self.nodes[0]
                .node
                .routing
                .nodes()
                .await
                .map_or(0, |n| n.len());
            if listed >= self.nodes.len() || Instant::now() > deadline {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn origin_indices(&self) -> std::ops::Range<usize> {
        0..self.shape.origins
    }

    pub fn edge_indices(&self) -> std::ops::Range<usize> {
        self.shape.origins..self.nodes.len()
    }

    /// A live node among `range`, at random.
    pub fn pick(&self, range: std::ops::Range<usize>) -> Option<usize> {
        let live: Vec<usize> = range.filter(|&i| !self.nodes[i].is_dead()).collect();
        (!live.is_empty()).then(|| live[rand::random_range(0..live.len())])
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.node.id() == id && !n.is_dead())
    }

    /// A new room's name.
    pub fn new_room_name(&self) -> String {
        let mut rooms = lock(&self.rooms);
        rooms.next += 1;
        format!("room-{:07}", rooms.next)
    }

    /// A publisher arrives at origin `at`: placement (`place_publisher`, following one
    /// redirect), then the claim (`open_room`). Returns the owner's index; the room is
    /// recorded as open.
    pub async fn publish(&self, at: usize, room: &str) -> Result<usize, SimError> {
        let owner = match self.nodes[at].node.place_publisher().await? {
            Placement::Here => at,
            Placement::Redirect(info) => {
                let to = self
                    .index_of(&info.id)
                    .ok_or(SimError::UnknownNode(info.id))?;
                // The client follows the 307: the other origin places it (here, normally).
                match self.nodes[to].node.place_publisher().await? {
                    Placement::Here => to,
                    Placement::Refuse { draining } => return Err(SimError::Refused { draining }),
                    Placement::Redirect(again) => return Err(SimError::UnknownNode(again.id)),
                }
            }
            Placement::Refuse { draining } => return Err(SimError::Refused { draining }),
        };
        self.nodes[owner].node.open_room(room).await?;
        let entry = RoomEntry {
            owner,
            edges: Vec::new(),
        };
        lock(&self.rooms).insert(room.to_owned(), entry);
        Ok(owner)
    }

    /// Edge `edge` starts carrying `room`: chooses its upstream (`upstream_for`) and keeps
    /// its link (`keep_link`: written now, refreshed with every heartbeat).
    pub async fn carry(&self, edge: usize, room: &str) -> Result<(), SimError> {
        let sim = &self.nodes[edge];
        let (_, source) = sim.node.upstream_for(room, &[]).await?;
        let link = Link {
            room: room.to_owned(),
            edge_id: sim.node.id().to_owned(),
            upstream_id: source.id.clone(),
        };
        sim.node.keep_link(link).await?;
        lock(&sim.carried).insert(room.to_owned(), source.id);
        if let Some((_, entry)) = lock(&self.rooms).entries.get_mut(room) {
            entry.edges.push(edge);
        }
        Ok(())
    }

    /// The placement of a viewer alone, without acting on its answer.
    pub async fn place_viewer(&self, edge: usize, room: &str) -> Result<Placement, SimError> {
        Ok(self.nodes[edge]
            .node
            .place_viewer(room, &Default::default())
            .await?)
    }

    /// The publisher of a random open room leaves: its owner closes it (`close_room`: the
    /// claim released) and the edges carrying it drop their links. Returns the room.
    pub async fn leave_random(&self) -> Option<String> {
        let (room, entry) = {
            let mut rooms = lock(&self.rooms);
            if rooms.order.is_empty() {
                return None;
            }
            let room = rooms.order[rand::random_range(0..rooms.order.len())].clone();
            let entry = rooms.remove(&room)?;
            (room, entry)
        };
        self.nodes[entry.owner].node.close_room(&room).await;
        for edge in entry.edges {
            let sim = &self.nodes[edge];
            if let Some(upstream_id) = lock(&sim.carried).remove(&room) {
                sim.node.drop_link(&Link {
                    room: room.clone(),
                    edge_id: sim.node.id().to_owned(),
                    upstream_id,
                });
            }
            let _ = sim.node.routing.remove_link(&room, sim.node.id()).await;
        }
        Some(room)
    }

    /// A random open room whose owner is alive.
    pub fn random_room(&self) -> Option<String> {
        let rooms = lock(&self.rooms);
        (!rooms.order.is_empty())
            .then(|| rooms.order[rand::random_range(0..rooms.order.len())].clone())
    }

    /// The open rooms and their entries.
    pub fn rooms(&self) -> HashMap<String, RoomEntry> {
        lock(&self.rooms)
            .entries
            .iter()
            .map(|(room, (_, entry))| (room.clone(), entry.clone()))
            .collect()
    }

    /// The publisher of `room`, whose origin died, publishes it again at origin `at`
    /// (placement, then the claim, which finds the dead owner's claim and takes it over once
    /// that owner's registration has expired). Returns the new owner.
    pub async fn republish(&self, at: usize, room: &str) -> Result<usize, SimError> {
        let owner = match self.nodes[at].node.place_publisher().await? {
            Placement::Here => at,
            Placement::Redirect(info) => return Err(SimError::UnknownNode(info.id)),
            Placement::Refuse { draining } => return Err(SimError::Refused { draining }),
        };
        self.nodes[owner].node.open_room(room).await?;
        if let Some((_, entry)) = lock(&self.rooms).entries.get_mut(room) {
            entry.owner = owner;
        }
        Ok(owner)
    }

    /// Kills node `index`: its heartbeat (and the claim renewals and link refreshes that
    /// follow it) stop at once, without removing anything from the store.
    pub fn kill(&self, index: usize) {
        let sim = &self.nodes[index];
        sim.dead.store(true, Ordering::Relaxed);
        for task in lock(&sim.tasks).drain(..) {
            task.abort();
        }
    }

    /// Stops every live node as a shutdown does (each heartbeat loop deregisters its node) and
    /// waits up to `within` for them.
    pub async fn shutdown(&self, within: Duration) {
        let mut tasks = Vec::new();
        for sim in &self.nodes {
            sim.node.shutdown.cancel();
            tasks.extend(lock(&sim.tasks).drain(..));
        }
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        let _ = tokio::time::timeout(within, all).await;
    }
}
