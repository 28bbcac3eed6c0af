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
use crate::session::{self, SessionHandle, UpstreamEnd, UpstreamPeer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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
    /// The recent rate of what the node sends, for status reads.
    pub egress: crate::status::RateMeter,
    /// The UDP mux WHEP viewers are served on, when enabled (see [`Node::start_mux`]).
    mux: std::sync::OnceLock<Arc<crate::mux::Mux>>,
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
            factory: PcFactory::new(config.media.clone()).with_feedback(metrics.feedback.clone()),
            config,
            routing,
            metrics,
            state: Mutex::new(State::default()),
            http_addr,
            grpc_addr,
            shutdown: CancellationToken::new(),
            draining: CancellationToken::new(),
            egress: Default::default(),
            drain_started: AtomicBool::new(false),
            mux: std::sync::OnceLock::new(),
        })
    }

    /// The UDP mux's shards (candidate address, viewers); empty without the mux.
    pub fn mux_shards(&self) -> Vec<(std::net::SocketAddr, usize)> {
        self.mux.get().map(|m| m.shard_loads()).unwrap_or_default()
    }

    /// Binds the UDP mux and serves WHEP viewers on it from now on (until shutdown), when the
    /// configuration asks for it.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start_mux(&self) -> std::io::Result<()> {
        if let Some(settings) = self.config.media.mux
            && self.mux.get().is_none()
        {
            let mux = crate::mux::Mux::start(
                &self.config.media,
                settings,
                self.metrics.mux_send_errors.clone(),
                self.shutdown.clone(),
            )?;
            let _ = self.mux.set(mux);
        }
        Ok(())
    }

    /// The UDP mux's addresses in viewers' ICE candidates (one per shard), when viewers are
    /// served on it.
    pub fn mux_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.mux.get().map(|m| m.candidates()).unwrap_or_default()
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
        // A room whose publisher vanished is resumed by the next one: its viewers stay.
        let (room, resumed) = {
            let mut state = self.state();
            match state.rooms.get(room_id) {
                Some(room) if !room.relayed && !room.is_ended() && room.resume() => {
                    (room.clone(), true)
                }
                Some(_) => {
                    return Err(Error::Conflict(format!(
                        "room {room_id} is already being published"
                    )));
                }
                None => {
                    let room = Room::with_traffic(room_id, false, self.metrics.traffic.clone());
                    state.rooms.insert(room_id.to_owned(), room.clone());
                    (room, false)
                }
            }
        };
        if !resumed {
            let claim = match self.claim(room_id).await {
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
        }
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
                tracing::info!(room = room_id, session = %handle.id, resumed, "publisher joined");
                self.track_session(handle.clone(), SessionKind::Publisher, room);
                Ok((handle.id, answer))
            }
            Err(e) if resumed => {
                room.replace_sources();
                self.clone().await_publisher(room);
                Err(e)
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

    /// Claims a room for this origin. A room still claimed by an origin that does not answer
    /// (it died; its claim has not expired yet) is taken over, so its publisher can come back
    /// here at once. `None` when a live origin holds it.
    async fn claim(&self, room_id: &str) -> crate::routing::RoutingResult<Option<RoomClaim>> {
        let lease = self.config.lease;
        if let Some(claim) = self.routing.claim_room(room_id, self.id(), lease).await? {
            return Ok(Some(claim));
        }
        let Some(owner) = self.routing.room_owner(room_id).await? else {
            return self.routing.claim_room(room_id, self.id(), lease).await;
        };
        let alive = match self.routing.node(&owner).await? {
            _ if owner == self.id() => false,
            Some(node) => reachable(&node.grpc_url).await,
            None => false,
        };
        if alive {
            return Ok(None);
        }
        let claim = self
            .routing
            .take_over_room(room_id, &owner, self.id(), lease)
            .await?;
        if claim.is_some() {
            tracing::info!(room = room_id, from = %owner, "took over the room of an origin that does not answer");
        }
        Ok(claim)
    }

    /// Waits `--failover-timeout` for the publisher of an orphaned room to come back (to this
    /// origin: [`Node::publish`] resumes the room); ends the room if it does not.
    fn await_publisher(self: Arc<Self>, room: Arc<Room>) {
        let outage = room.outages();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(self.config.failover_timeout) => {
                    if room.orphaned_since(outage) {
                        room.end(EndReason {
                            not_found: false,
                            message: "the publisher did not come back".into(),
                        });
                        self.forget_room(&room).await;
                    }
                }
                _ = room.ended() => {
                    if room.is_orphaned() {
                        self.forget_room(&room).await;
                    }
                }
            }
        });
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
        let joined = match (kind, self.mux.get()) {
            (SessionKind::Viewer, Some(mux)) => {
                mux.subscribe(
                    &self.factory,
                    room.clone(),
                    offer,
                    handle.cancel.clone(),
                    handle.finished.clone(),
                )
                .await
            }
            _ => {
                session::subscribe(
                    &self.factory,
                    room.clone(),
                    offer,
                    handle.cancel.clone(),
                    handle.finished.clone(),
                )
                .await
            }
        };
        match joined {
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
                SessionKind::Publisher if room.is_orphaned() && !room.is_ended() => {
                    node.clone().await_publisher(room);
                }
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
    /// routing store knows it. Edges in `avoid` (their link to us just broke) are not chosen;
    /// the owner always may be, since nothing else has the room when it comes back.
    async fn upstream_for(&self, room_id: &str, avoid: &[String]) -> Result<(String, String)> {
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
        let (mut links, mut nodes) =
            tokio::try_join!(self.routing.links(room_id), self.routing.nodes())
                .map_err(|e| Error::Routing(e.to_string()))?;
        links.retain(|l| !avoid.contains(&l.edge_id));
        nodes.retain(|n| n.id == owner || !avoid.contains(&n.id));
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

    /// Pulls a room over relay links and feeds it until the room ends. A link that breaks after
    /// it was up (its upstream died, its peer connection failed) is replaced by one from another
    /// source of the room while the room's subscribers stay attached: their streams continue
    /// (see [`Room::replace_sources`]). The room ends when no source is found within
    /// `--failover-timeout`, or when the first link cannot be set up at all.
    async fn pull(self: Arc<Self>, room: Arc<Room>) {
        let mut failover = Failover::default();
        let mut backoff = FAILOVER_RETRY_MIN;
        let reason = loop {
            let mut tried = None;
            let span = failover.span.clone().unwrap_or_else(tracing::Span::none);
            let result = self
                .pull_once(&room, &mut failover, &mut tried)
                .instrument(span)
                .await;
            match result {
                Ok(Pulled::Over(why)) => {
                    break EndReason {
                        not_found: false,
                        message: why,
                    };
                }
                Ok(Pulled::Lost { upstream, why }) => {
                    tracing::warn!(room = %room.id, %upstream, %why, "relay link lost; failing over");
                    room.replace_sources();
                    failover.begin(&room.id, self.id(), &upstream);
                    failover.failed.push(upstream);
                    backoff = FAILOVER_RETRY_MIN;
                }
                Err(e) if failover.started.is_none() => break end_reason(e),
                Err(e) => {
                    let _enter = failover.span.as_ref().map(|s| s.enter());
                    tracing::info!(room = %room.id, upstream = ?tried, error = %e, "no new upstream yet");
                    if let Some(upstream) = tried {
                        failover.failed.push(upstream);
                    }
                }
            }
            if room.is_ended() || self.shutdown.is_cancelled() {
                break room.end_reason().unwrap_or(EndReason {
                    not_found: false,
                    message: "node shutting down".into(),
                });
            }
            if failover
                .started
                .is_some_and(|t| t.elapsed() >= self.config.failover_timeout)
            {
                break EndReason {
                    not_found: false,
                    message: format!(
                        "upstream lost and no other source within {} s",
                        self.config.failover_timeout.as_secs()
                    ),
                };
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = room.ended() => {}
                _ = self.shutdown.cancelled() => {}
            }
            backoff = (backoff * 2).min(FAILOVER_RETRY_MAX);
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

    /// Sets up one relay link and feeds the room from it until it ends. `tried` is set to the
    /// upstream asked, for the caller to avoid it next time.
    async fn pull_once(
        &self,
        room: &Arc<Room>,
        failover: &mut Failover,
        tried: &mut Option<String>,
    ) -> Result<Pulled> {
        let (url, upstream_id) = self.upstream_for(&room.id, &failover.failed).await?;
        *tried = Some(upstream_id.clone());
        let mut client = relay::connect(&url).await?;
        let description = relay::describe(&mut client, &room.id).await?;
        let kinds: Vec<MediaKind> = description
            .tracks
            .iter()
            .filter_map(|t| MediaKind::parse(&t.kind))
            .collect();
        if failover.started.is_none() {
            room.expect_tracks(kinds.len());
        }
        let (peer, offer) = UpstreamPeer::offer(&self.factory, &kinds).await?;
        let (answer, mut events) =
            relay::subscribe(&mut client, &room.id, self.id(), offer).await?;
        let upstream_id = if upstream_id == "upstream" {
            description.origin_node_id.clone()
        } else {
            upstream_id
        };
        match failover.started.take() {
            Some(since) => {
                tracing::info!(
                    room = %room.id, upstream = %upstream_id,
                    after_ms = since.elapsed().as_millis() as u64,
                    "relay link up again: failed over"
                );
                if let Some(span) = failover.span.take() {
                    span.record("to", upstream_id.as_str());
                }
                failover.failed.clear();
            }
            None => tracing::info!(room = %room.id, upstream = %upstream_id, "relay link up"),
        }
        let link = Link {
            room: room.id.clone(),
            edge_id: self.id().to_owned(),
            upstream_id: upstream_id.clone(),
        };
        let cancel = self.shutdown.child_token();
        let stop = cancel.clone();
        let watch_room = room.clone();
        // The upstream tells us when the room ends; a broken stream means the link is gone.
        let watcher = tokio::spawn(async move {
            let end = relay::wait_end(&mut events).await;
            if let relay::LinkEnd::RoomEnded(why) = &end {
                watch_room.end(EndReason {
                    not_found: false,
                    message: why.clone(),
                });
            }
            stop.cancel();
            end
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
        let end = peer.run(&answer, room.clone(), cancel.clone()).await;
        cancel.cancel();
        let _ = refresher.await;
        let call = if watcher.is_finished() {
            watcher.await.ok()
        } else {
            watcher.abort();
            None
        };
        tracing::info!(room = %room.id, upstream = %upstream_id, ?end, ?call, "relay link down");
        let over = |why: &str| {
            Pulled::Over(
                room.end_reason()
                    .map_or_else(|| why.to_owned(), |r| r.message),
            )
        };
        Ok(match end? {
            UpstreamEnd::RoomEnded => over("room ended"),
            _ if room.is_ended() => over("room ended"),
            _ if self.shutdown.is_cancelled() => over("node shutting down"),
            UpstreamEnd::Failed => Pulled::Lost {
                upstream: upstream_id,
                why: "relay peer connection failed".into(),
            },
            UpstreamEnd::Cancelled => Pulled::Lost {
                upstream: upstream_id,
                why: match call {
                    Some(relay::LinkEnd::Broken(why) | relay::LinkEnd::RoomEnded(why)) => why,
                    None => "relay call ended".into(),
                },
            },
        })
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

/// Waits between attempts to find a new upstream: doubling from the first to the last.
const FAILOVER_RETRY_MIN: Duration = Duration::from_millis(100);
const FAILOVER_RETRY_MAX: Duration = Duration::from_secs(1);

/// How one relay link of a room ended.
#[derive(Debug)]
enum Pulled {
    /// The room is over: its upstream said so, it ended here, or the node is going away.
    Over(String),
    /// The link broke; the room goes on without a source until another link is up.
    Lost { upstream: String, why: String },
}

/// A room's search for a new upstream after its link broke.
#[derive(Debug, Default)]
struct Failover {
    /// When the link broke; `None` while a link is up (or before the first).
    started: Option<Instant>,
    /// Upstreams whose links broke since then.
    failed: Vec<String>,
    /// The `failover` span the attempts run in.
    span: Option<tracing::Span>,
}

impl Failover {
    fn begin(&mut self, room: &str, node: &str, lost: &str) {
        if self.started.is_none() {
            self.started = Some(Instant::now());
            self.span = Some(crate::telemetry::failover_span(room, node, lost));
        }
    }
}

fn end_reason(e: Error) -> EndReason {
    match e {
        Error::NotFound(m) => EndReason {
            not_found: true,
            message: m,
        },
        e => EndReason {
            not_found: false,
            message: e.to_string(),
        },
    }
}

/// Whether a node's gRPC server accepts connections: a dead node's port refuses them (or, on
/// another machine, does not answer).
async fn reachable(grpc_url: &str) -> bool {
    let Ok(uri) = grpc_url.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    matches!(
        tokio::time::timeout(
            REACHABLE_TIMEOUT,
            tokio::net::TcpStream::connect((host, port))
        )
        .await,
        Ok(Ok(_))
    )
}

/// How long a liveness probe of another node waits for its connection.
const REACHABLE_TIMEOUT: Duration = Duration::from_secs(1);

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
