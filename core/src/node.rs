//! A running Cascade node: its rooms, its sessions, its place in the routing store, and the
//! servers (HTTP, gRPC) in front of them.
//!
//! Origins and edges are the same machine with a different [`Role`]: an origin accepts
//! publishers (WHIP) and owns their rooms; an edge takes rooms from an upstream node over a
//! relay link. Both serve viewers (WHEP) and downstream relay links from the rooms they hold.

use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::pc::{MediaKind, PcFactory};
use crate::placement::{self, Placement};
use crate::relay;
use crate::room::{EndReason, Room};
use crate::routing::{Link, NodeInfo, Role, RoomClaim, RoutingStore};
use crate::session::{self, SessionHandle, UpstreamPeer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a node's routing entries live without a heartbeat, by default (`--lease-secs`).
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a node renews its entries, by default (a third of the lease).
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// How often a draining node checks whether its last session has left.
const DRAIN_POLL: Duration = Duration::from_millis(250);

/// What kind of session a handle belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Publisher,
    Viewer,
    Relay,
}

#[derive(Debug)]
struct SessionEntry {
    handle: SessionHandle,
    kind: SessionKind,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<String, Arc<Room>>,
    claims: HashMap<String, RoomClaim>,
    sessions: HashMap<String, SessionEntry>,
}

/// One node.
#[derive(Debug)]
pub struct Node {
    pub config: NodeConfig,
    pub factory: PcFactory,
    pub routing: Arc<dyn RoutingStore>,
    state: Mutex<State>,
    /// Addresses the servers actually bound (port 0 resolved).
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// Cancelled when the node should stop: servers stop, sessions close, routing entries go.
    pub shutdown: CancellationToken,
    /// Cancelled when the node starts draining: no new sessions, current ones continue.
    pub draining: CancellationToken,
    drain_started: AtomicBool,
    /// This node's Prometheus registry (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Node {
    pub fn new(
        config: NodeConfig,
        routing: Arc<dyn RoutingStore>,
        http_addr: SocketAddr,
        grpc_addr: SocketAddr,
    ) -> Arc<Self> {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let routing = crate::metrics::MeteredStore::wrap(routing, metrics.clone());
        Arc::new(Self {
            factory: PcFactory::new(config.media.clone()),
            config,
            routing,
            metrics,
            state: Mutex::new(State::default()),
            http_addr,
            grpc_addr,
            shutdown: CancellationToken::new(),
            draining: CancellationToken::new(),
            drain_started: AtomicBool::new(false),
        })
    }

    pub fn id(&self) -> &str {
        &self.config.node_id
    }

    pub fn role(&self) -> Role {
        self.config.role
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The URL other nodes and redirected clients use for this node's HTTP API.
    pub fn http_url(&self) -> String {
        self.config
            .http_advertise
            .clone()
            .unwrap_or_else(|| format!("http://{}", advertised(self.http_addr, &self.config)))
    }

    /// The URL other nodes use for this node's relay service.
    pub fn grpc_url(&self) -> String {
        self.config
            .grpc_advertise
            .clone()
            .unwrap_or_else(|| format!("http://{}", advertised(self.grpc_addr, &self.config)))
    }

    /// This node as the routing store shows it. Its load is what its capacity limits: viewers
    /// on an edge, rooms it owns on an origin.
    pub fn info(&self) -> NodeInfo {
        let state = self.state();
        let load = match self.config.role {
            Role::Edge => state
                .sessions
                .values()
                .filter(|s| s.kind == SessionKind::Viewer)
                .count(),
            Role::Origin => state.rooms.values().filter(|r| !r.relayed).count(),
        };
        NodeInfo {
            id: self.config.node_id.clone(),
            role: self.config.role,
            http_url: self.http_url(),
            grpc_url: self.grpc_url(),
            capacity: self.config.capacity,
            load: u32::try_from(load).unwrap_or(u32::MAX),
            draining: self.is_draining(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            heartbeat_unix_ms: None,
            cpu_percent: crate::cpu::process_cpu_percent(),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled() || self.shutdown.is_cancelled()
    }

    /// Where a new viewer of `room_id` should go (see [`placement`]). Asks the routing store
    /// only when the answer may not be "here": an edge that does not hold the room, or a node
    /// that is draining or full. When the store cannot answer, a node that could serve the
    /// viewer anyway does; one that would need the store to find the room fails with
    /// [`Error::Routing`] (503).
    pub async fn place_viewer(&self, room_id: &str) -> Result<Placement> {
        let me = self.info();
        let carries = self.room(room_id).is_some_and(|r| !r.is_ended());
        let open = placement::has_room(&me);
        if open && (self.role() == Role::Origin || carries) {
            return Ok(Placement::Here);
        }
        let lookup = async {
            let nodes = self.routing.nodes().await?;
            let links = self.routing.links(room_id).await?;
            Ok::<_, crate::routing::RoutingError>((nodes, links))
        };
        match lookup.await {
            Ok((nodes, links)) => Ok(placement::place_viewer(&me, carries, &nodes, &links)),
            Err(e) if open && self.config.upstream.is_some() => {
                tracing::debug!(room = room_id, error = %e, "placement lookup failed; serving here");
                Ok(Placement::Here)
            }
            Err(e) => Err(Error::Routing(e.to_string())),
        }
    }

    /// Where a new publisher of a room should go (see [`placement`]).
    pub async fn place_publisher(&self) -> Result<Placement> {
        let me = self.info();
        if placement::has_room(&me) {
            return Ok(Placement::Here);
        }
        let nodes = self
            .routing
            .nodes()
            .await
            .map_err(|e| Error::Routing(e.to_string()))?;
        Ok(placement::place_publisher(&me, &nodes))
    }

    /// Starts draining (idempotent): the node takes no new sessions, tells the routing store,
    /// keeps its sessions until they leave or `drain_timeout` passes, then shuts down (which
    /// removes its routing entries). Returns false when it was already draining.
    pub fn drain(self: &Arc<Self>) -> bool {
        if self.drain_started.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.draining.cancel();
        let node = self.clone();
        tokio::spawn(async move {
            let timeout = node.config.drain_timeout;
            tracing::info!(
                sessions = node.state().sessions.len(),
                timeout_secs = timeout.as_secs(),
                "draining"
            );
            // Leave placement now rather than at the next heartbeat.
            if let Err(e) = node
                .routing
                .heartbeat(&node.info(), node.config.lease)
                .await
            {
                tracing::warn!(error = %e, "could not announce draining");
            }
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            loop {
                let left = node.state().sessions.len();
                if left == 0 {
                    tracing::info!("drained: no sessions left");
                    break;
                }
                tokio::select! {
                    _ = &mut deadline => {
                        tracing::info!(sessions = left, "drain deadline passed; closing sessions");
                        break;
                    }
                    _ = tokio::time::sleep(DRAIN_POLL) => {}
                    _ = node.shutdown.cancelled() => return,
                }
            }
            node.shutdown.cancel();
        });
        true
    }

    /// Rooms this node holds now.
    pub fn rooms(&self) -> Vec<Arc<Room>> {
        let mut rooms: Vec<_> = self.state().rooms.values().cloned().collect();
        rooms.sort_by(|a, b| a.id.cmp(&b.id));
        rooms
    }

    pub fn room(&self, id: &str) -> Option<Arc<Room>> {
        self.state().rooms.get(id).cloned()
    }

    /// Counts sessions by kind.
    pub fn session_counts(&self) -> HashMap<&'static str, usize> {
        let mut counts = HashMap::new();
        for s in self.state().sessions.values() {
            let key = match s.kind {
                SessionKind::Publisher => "publishers",
                SessionKind::Viewer => "viewers",
                SessionKind::Relay => "relays",
            };
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    }

    /// Viewer sessions per room.
    pub fn viewers_by_room(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for s in self.state().sessions.values() {
            if s.kind == SessionKind::Viewer {
                *counts.entry(s.handle.room.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// WHIP: starts a publisher session for `room_id`. Returns the session id and SDP answer.
    pub async fn publish(self: &Arc<Self>, room_id: &str, offer: &str) -> Result<(String, String)> {
        if self.role() != Role::Origin {
            return Err(Error::BadRequest(
                "this node is an edge: publish to an origin".into(),
            ));
        }
        crate::pc::scan_offer(offer)?;
        let room = {
            let mut state = self.state();
            if state.rooms.contains_key(room_id) {
                return Err(Error::Conflict(format!(
                    "room {room_id} is already being published"
                )));
            }
            let room = Room::with_traffic(room_id, false, self.metrics.traffic.clone());
            state.rooms.insert(room_id.to_owned(), room.clone());
            room
        };
        let claim = match self
            .routing
            .claim_room(room_id, self.id(), self.config.lease)
            .await
        {
            Ok(Some(claim)) => claim,
            Ok(None) => {
                self.state().rooms.remove(room_id);
                return Err(Error::Conflict(format!(
                    "room {room_id} is already being published on another origin"
                )));
            }
            Err(e) => {
                self.state().rooms.remove(room_id);
                return Err(Error::Routing(e.to_string()));
            }
        };
        self.state().claims.insert(room_id.to_owned(), claim);
        let handle = self.new_handle(room_id);
        match session::publish(
            &self.factory,
            room.clone(),
            offer,
            handle.cancel.clone(),
            handle.finished.clone(),
        )
        .await
        {
            Ok(answer) => {
                tracing::info!(room = room_id, session = %handle.id, "publisher joined");
                self.track_session(handle.clone(), SessionKind::Publisher, room);
                Ok((handle.id, answer))
            }
            Err(e) => {
                room.end(EndReason {
                    not_found: false,
                    message: "publish failed".into(),
                });
                self.forget_room(&room).await;
                Err(e)
            }
        }
    }

    /// WHEP, and the upstream end of a relay link: attaches a subscriber to `room_id`, pulling
    /// the room from upstream first when this node does not hold it.
    pub async fn subscribe(
        self: &Arc<Self>,
        room_id: &str,
        offer: &str,
        kind: SessionKind,
    ) -> Result<(SessionHandle, String)> {
        crate::pc::scan_offer(offer)?;
        let room = self.reserve_room(room_id)?;
        let handle = self.new_handle(room_id);
        match session::subscribe(
            &self.factory,
            room.clone(),
            offer,
            handle.cancel.clone(),
            handle.finished.clone(),
        )
        .await
        {
            Ok(answer) => {
                tracing::info!(room = room_id, session = %handle.id, ?kind, "subscriber joined");
                self.track_session(handle.clone(), kind, room);
                Ok((handle, answer))
            }
            Err(e) => {
                self.release_room(&room).await;
                Err(e)
            }
        }
    }

    /// Ends a session (WHIP/WHEP `DELETE`). Errors when no such session is in that room.
    pub fn end_session(&self, room_id: &str, session_id: &str) -> Result<()> {
        let state = self.state();
        match state.sessions.get(session_id) {
            Some(s) if s.handle.room == room_id => {
                s.handle.cancel.cancel();
                Ok(())
            }
            _ => Err(Error::NotFound(format!(
                "no session {session_id} in room {room_id}"
            ))),
        }
    }

    fn new_handle(&self, room_id: &str) -> SessionHandle {
        SessionHandle {
            id: uuid::Uuid::new_v4().simple().to_string(),
            room: room_id.to_owned(),
            cancel: self.shutdown.child_token(),
            finished: CancellationToken::new(),
        }
    }

    /// Keeps a session until it finishes, then lets go of what it held.
    fn track_session(self: &Arc<Self>, handle: SessionHandle, kind: SessionKind, room: Arc<Room>) {
        self.state().sessions.insert(
            handle.id.clone(),
            SessionEntry {
                handle: handle.clone(),
                kind,
            },
        );
        let node = self.clone();
        tokio::spawn(async move {
            handle.finished.cancelled().await;
            node.state().sessions.remove(&handle.id);
            tracing::info!(room = %handle.room, session = %handle.id, ?kind, "session ended");
            match kind {
                SessionKind::Publisher => node.forget_room(&room).await,
                SessionKind::Viewer | SessionKind::Relay => node.release_room(&room).await,
            }
        });
    }

    /// Takes a reservation on a room this node holds, or starts pulling it from upstream.
    /// Holds a room for `linger` (pulling it when this node does not carry it), so that a
    /// downstream node's `DescribeRoom` is answered and its `Subscribe`, which follows, finds
    /// the room still here: what lets a static `--upstream` chain of edges form a tree.
    pub fn hold_room(self: &Arc<Self>, room_id: &str, linger: Duration) -> Result<Arc<Room>> {
        let room = self.reserve_room(room_id)?;
        let node = self.clone();
        let held = room.clone();
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            node.release_room(&held).await;
        });
        Ok(room)
    }

    fn reserve_room(self: &Arc<Self>, room_id: &str) -> Result<Arc<Room>> {
        let mut state = self.state();
        if let Some(room) = state.rooms.get(room_id)
            && !room.is_ended()
        {
            room.reserve();
            return Ok(room.clone());
        }
        let room = Room::with_traffic(room_id, true, self.metrics.traffic.clone());
        room.reserve();
        state.rooms.insert(room_id.to_owned(), room.clone());
        drop(state);
        let node = self.clone();
        let pulled = room.clone();
        // Part of the trace of the join that asked for the room, without holding its span open.
        tokio::spawn(crate::trace_ctx::detach(
            async move { node.pull(pulled).await },
        ));
        Ok(room)
    }

    /// Drops a reservation; the last one to leave a relayed room ends it, which tears down its
    /// relay link.
    async fn release_room(&self, room: &Arc<Room>) {
        let last = {
            let mut state = self.state();
            let left = room.release();
            if left == 0 && room.relayed {
                if state
                    .rooms
                    .get(&room.id)
                    .is_some_and(|r| Arc::ptr_eq(r, room))
                {
                    state.rooms.remove(&room.id);
                }
                true
            } else {
                false
            }
        };
        if last {
            room.end(EndReason {
                not_found: false,
                message: "no subscribers left".into(),
            });
        }
    }

    /// Forgets an origin room: out of the map and out of the routing store.
    async fn forget_room(&self, room: &Arc<Room>) {
        let claim = {
            let mut state = self.state();
            if state
                .rooms
                .get(&room.id)
                .is_some_and(|r| Arc::ptr_eq(r, room))
            {
                state.rooms.remove(&room.id);
            }
            state.claims.remove(&room.id)
        };
        if let Some(claim) = claim
            && let Err(e) = self.routing.release_room(&claim).await
        {
            tracing::warn!(room = %room.id, error = %e, "could not release room claim");
        }
    }

    /// Where to pull `room_id` from: the configured upstream, or the room's owner as the
    /// routing store knows it.
    async fn upstream_for(&self, room_id: &str) -> Result<(String, String)> {
        if let Some(url) = &self.config.upstream {
            return Ok((url.clone(), "upstream".to_owned()));
        }
        let owner = self
            .routing
            .room_owner(room_id)
            .await
            .map_err(|e| Error::Routing(e.to_string()))?
            .ok_or_else(|| Error::NotFound(format!("room {room_id} is not being published")))?;
        if owner == self.id() {
            return Err(Error::NotFound(format!(
                "room {room_id} is not being published"
            )));
        }
        // A bounded relay tree: the origin feeds at most `max_fanout` edges per room, further
        // edges pull from an edge that carries it.
        let (links, nodes) = tokio::try_join!(self.routing.links(room_id), self.routing.nodes())
            .map_err(|e| Error::Routing(e.to_string()))?;
        let upstream = crate::placement::choose_upstream(
            self.id(),
            &owner,
            &links,
            &nodes,
            self.config.max_fanout,
            self.config.max_depth,
        );
        let node = nodes
            .into_iter()
            .find(|n| n.id == upstream)
            .ok_or_else(|| {
                Error::Unavailable(format!("upstream {upstream} of room {room_id} is gone"))
            })?;
        Ok((node.grpc_url, upstream))
    }

    /// Pulls a room over a relay link and feeds it until the link or the room ends.
    async fn pull(self: Arc<Self>, room: Arc<Room>) {
        let result = self.pull_inner(&room).await;
        let reason = match result {
            Ok(why) => EndReason {
                not_found: false,
                message: why.to_owned(),
            },
            Err(Error::NotFound(m)) => EndReason {
                not_found: true,
                message: m,
            },
            Err(e) => EndReason {
                not_found: false,
                message: e.to_string(),
            },
        };
        {
            let mut state = self.state();
            if state
                .rooms
                .get(&room.id)
                .is_some_and(|r| Arc::ptr_eq(r, &room))
            {
                state.rooms.remove(&room.id);
            }
        }
        room.end(reason);
        if let Err(e) = self.routing.remove_link(&room.id, self.id()).await {
            tracing::debug!(error = %e, "could not remove link");
        }
    }

    async fn pull_inner(&self, room: &Arc<Room>) -> Result<&'static str> {
        let (url, upstream_id) = self.upstream_for(&room.id).await?;
        let mut client = relay::connect(&url).await?;
        let description = relay::describe(&mut client, &room.id).await?;
        let kinds: Vec<MediaKind> = description
            .tracks
            .iter()
            .filter_map(|t| MediaKind::parse(&t.kind))
            .collect();
        room.expect_tracks(kinds.len());
        let (peer, offer) = UpstreamPeer::offer(&self.factory, &kinds).await?;
        let (answer, mut events) =
            relay::subscribe(&mut client, &room.id, self.id(), offer).await?;
        tracing::info!(room = %room.id, upstream = %upstream_id, "relay link up");
        let link = Link {
            room: room.id.clone(),
            edge_id: self.id().to_owned(),
            upstream_id: if upstream_id == "upstream" {
                description.origin_node_id.clone()
            } else {
                upstream_id
            },
        };
        let cancel = self.shutdown.child_token();
        let stop = cancel.clone();
        let watch_room = room.clone();
        // The upstream tells us when the room ends; a broken stream means the link is gone.
        let watcher = tokio::spawn(async move {
            let why = relay::wait_end(&mut events).await;
            watch_room.end(EndReason {
                not_found: false,
                message: why,
            });
            stop.cancel();
        });
        let routing = self.routing.clone();
        let (lease, period) = (self.config.lease, self.config.heartbeat());
        let link_refresh = link.clone();
        let refresher_stop = cancel.clone();
        let refresher = tokio::spawn(async move {
            loop {
                // Failures only log: the link runs without the store, and the next
                // refresh after an outage writes it again.
                if let Err(e) = routing.put_link(&link_refresh, lease).await {
                    tracing::debug!(error = %e, "could not record relay link");
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = refresher_stop.cancelled() => break,
                }
            }
        });
        let why = peer.run(&answer, room.clone(), cancel.clone()).await;
        cancel.cancel();
        watcher.abort();
        let _ = refresher.await;
        tracing::info!(room = %room.id, "relay link down");
        why
    }

    /// Renews this node's routing entries until shutdown, then removes them.
    ///
    /// A failing store only logs: nothing here ends a session, so running sessions do not
    /// depend on the store. Every round writes the node's whole state again (its registration
    /// and its room claims; each relay link's task re-writes its link), so after an outage, or
    /// a Redis restarted empty, the store matches the node again within one period. A claim
    /// lost meanwhile (it expired) is claimed again with a new token, unless another origin
    /// took the room.
    pub async fn heartbeat_loop(self: Arc<Self>) {
        let (lease, period) = (self.config.lease, self.config.heartbeat());
        let mut healthy = true;
        loop {
            let info = self.info();
            match self.routing.heartbeat(&info, lease).await {
                Ok(()) if !healthy => {
                    tracing::info!("routing store reachable again; node re-registered");
                    healthy = true;
                }
                Ok(()) => {}
                Err(e) => {
                    if healthy {
                        tracing::warn!(error = %e, "heartbeat failed; sessions continue");
                    } else {
                        tracing::debug!(error = %e, "heartbeat failed");
                    }
                    healthy = false;
                }
            }
            if healthy {
                self.renew_claims(lease).await;
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = self.shutdown.cancelled() => break,
            }
        }
        if let Err(e) = self.routing.remove_node(self.id()).await {
            tracing::warn!(error = %e, "could not deregister");
        }
    }

    /// Renews every room claim; claims a lost one again.
    async fn renew_claims(&self, lease: Duration) {
        let claims: Vec<RoomClaim> = self.state().claims.values().cloned().collect();
        for claim in claims {
            match self.routing.renew_room(&claim, lease).await {
                Ok(true) => {}
                Ok(false) => self.reclaim(&claim, lease).await,
                Err(e) => {
                    tracing::warn!(room = %claim.room, error = %e, "room lease renewal failed");
                }
            }
        }
    }

    async fn reclaim(&self, lost: &RoomClaim, lease: Duration) {
        match self.routing.claim_room(&lost.room, self.id(), lease).await {
            Ok(Some(claim)) => {
                // Only if the room was not released meanwhile.
                let stale = {
                    let mut state = self.state();
                    if state
                        .claims
                        .get(&lost.room)
                        .is_some_and(|c| c.token == lost.token)
                    {
                        state.claims.insert(lost.room.clone(), claim);
                        None
                    } else {
                        Some(claim)
                    }
                };
                match stale {
                    None => {
                        tracing::info!(room = %lost.room, "room claim had expired; claimed again");
                    }
                    Some(claim) => {
                        let _ = self.routing.release_room(&claim).await;
                    }
                }
            }
            Ok(None) => {
                tracing::error!(
                    room = %lost.room,
                    "room claim lost to another origin; keeping the local publisher"
                );
            }
            Err(e) => tracing::warn!(room = %lost.room, error = %e, "could not claim room again"),
        }
    }
}

/// The address to advertise for a bound socket: a wildcard bind is reached through the
/// advertised media IP (or loopback when none is set).
fn advertised(addr: SocketAddr, config: &NodeConfig) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = config
            .media
            .advertise_ip
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}
