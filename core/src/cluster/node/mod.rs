//! A running Cascade node: its rooms, its sessions, its place in the routing store, and the
//! servers (HTTP, gRPC) in front of them.
//!
//! Origins and edges are the same machine with a different [`Role`]: an origin accepts
//! publishers (WHIP) and owns their rooms; an edge takes rooms from an upstream node over a
//! relay link. Both serve viewers (WHEP) and downstream relay links from the rooms they hold.
//!
//! The node decides nothing about the cluster itself: it drives the state machines of
//! [`crate::cluster::decide`], feeding them events with the time and carrying out the actions
//! they return (store writes, probes, relay links, shutdown). Which task feeds which machine:
//!
//! - `admit`: each join feeds the node's [`Admission`](crate::cluster::decide::admission)
//!   (`Join`, the store lookup's answer); the slot an admitted session holds sends `Leave`
//!   when it is dropped.
//! - `links`: the relay links this node keeps in the store, written when a link comes up and
//!   refreshed with every heartbeat, all in one batch.
//! - `claims` (called from `join` and `heartbeat`): each published room's
//!   [`Claim`](crate::cluster::decide::claims), fed by the publish (`Claim`), the heartbeat
//!   (`Tick`), `forget_room` (`Release`) and the store's answers.
//! - `pull`: each relayed room's [`Upstream`](crate::cluster::decide::upstream), fed by one
//!   task per room (its store reads, link attempts and link ends, its timer).
//! - `registry`: the few nodes placement and `pull` decide from, read from the store per
//!   decision (the least-loaded per place and the room's carriers, not every node).
//! - `drain`: the node's [`Drain`](crate::cluster::decide::drain), fed by `drain()`, every
//!   session joining or leaving, and its deadline.

use crate::cluster::decide::drain::DrainEvent;
use crate::cluster::routing::{NodeInfo, Role, RoutingStore};
use crate::cluster::settings::NodeSettings;
use crate::error::{Error, Result};
use crate::media::room::Room;
use crate::rtc::pc::PcFactory;
use crate::rtc::session::SessionHandle;
use crate::rtc::transport::Transport;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod admit;
mod claims;
mod drain;
mod heartbeat;
mod join;
mod links;
mod pull;
pub mod registry;
#[cfg(test)]
mod testing;

pub use join::Published;

/// How long a node's routing entries live without a heartbeat, by default (`--lease-secs`).
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a node renews its entries, by default (a third of the lease).
pub const HEARTBEAT: Duration = Duration::from_secs(3);

/// What kind of session a handle belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Publisher,
    Viewer,
    Relay,
}

/// A node's sessions by kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SessionCounts {
    pub publishers: usize,
    pub viewers: usize,
    /// Relay links this node feeds (downstream).
    pub relays: usize,
    /// Connected sessions (of every kind) whose media travels over UDP...
    pub udp: usize,
    /// ... over ICE-TCP ...
    pub tcp: usize,
    /// ... or through a TURN server.
    pub relayed: usize,
}

/// One session of this node (`GET /v1/sessions`, `DELETE /v1/sessions/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SessionInfo {
    /// The id in its resource URL (`/whip/{room}/{id}`, `/whep/{room}/{id}`).
    pub id: String,
    pub room: String,
    /// `publisher`, `viewer`, or `relay` (a link feeding another node).
    pub kind: SessionKind,
    /// Whether its ICE and DTLS are done.
    pub connected: bool,
    /// How its media travels, once connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub transport: Option<crate::rtc::transport::Transport>,
    /// A mux viewer's bandwidth estimate (kbit/s), from its congestion control feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub estimate_kbps: Option<u32>,
    /// The RID of the simulcast layer a viewer is sent now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub layer: Option<String>,
    /// Whether a viewer's video is paused because its link cannot carry it (a publisher
    /// without simulcast: it is sent audio until a probe shows the video fits again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub video_paused: bool,
}

#[derive(Debug)]
struct SessionEntry {
    handle: SessionHandle,
    kind: SessionKind,
    /// The capacity slot it was admitted with; dropped with the entry (`Leave`).
    _slot: Option<admit::Slot>,
}

impl SessionEntry {
    fn info(&self) -> SessionInfo {
        SessionInfo {
            id: self.handle.id.clone(),
            room: self.handle.room.clone(),
            kind: self.kind,
            connected: self.handle.connected.is_cancelled(),
            transport: self.handle.transport.get(),
            estimate_kbps: self.handle.transport.estimate_kbps(),
            layer: self.handle.transport.layer(),
            video_paused: self.handle.transport.video_paused(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<String, Arc<Room>>,
    /// Each published room's claim (an origin's), by room id.
    claims: HashMap<String, claims::ClaimEntry>,
    sessions: HashMap<String, SessionEntry>,
    /// The relay links this node keeps in the store (it is their edge), by room.
    links: HashMap<String, crate::cluster::routing::Link>,
}

/// One node.
#[derive(Debug)]
pub struct Node {
    pub config: NodeSettings,
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
    /// The drain machine and the queue of its actions.
    drain: Mutex<drain::DrainDriver>,
    /// The admission machine and the slots handed from placement to the session.
    admission: admit::Admitter,
    /// This node's Prometheus registry (`/metrics`).
    pub metrics: Arc<crate::obs::metrics::Metrics>,
    /// The recent rate of what the node sends, for status reads.
    pub egress: crate::obs::rate::RateMeter,
    /// The UDP mux WHEP viewers are served on, when enabled (see [`Node::start_mux`]).
    mux: std::sync::OnceLock<Arc<crate::rtc::mux::Mux>>,
}

impl Node {
    pub fn new(
        config: NodeSettings,
        routing: Arc<dyn RoutingStore>,
        http_addr: SocketAddr,
        grpc_addr: SocketAddr,
    ) -> Arc<Self> {
        let metrics = Arc::new(crate::obs::metrics::Metrics::new());
        let routing = crate::cluster::routing::MeteredStore::wrap(routing, metrics.clone());
        Arc::new(Self {
            factory: PcFactory::new(config.media.clone())
                .with_feedback(metrics.feedback.clone())
                .with_connect_timeout(config.connect_timeout),
            drain: Mutex::new(drain::DrainDriver::new(config.drain_timeout)),
            admission: admit::Admitter::new(&config),
            config,
            routing,
            metrics,
            state: Mutex::new(State::default()),
            http_addr,
            grpc_addr,
            shutdown: CancellationToken::new(),
            draining: CancellationToken::new(),
            egress: Default::default(),
            mux: std::sync::OnceLock::new(),
        })
    }

    /// The UDP mux's shards (candidate address, viewers); empty without the mux.
    pub fn mux_shards(&self) -> Vec<(std::net::SocketAddr, usize)> {
        self.mux.get().map(|m| m.shard_loads()).unwrap_or_default()
    }

    /// Opens the ICE-TCP port and binds the UDP mux, which serves WHEP viewers from now on
    /// (until shutdown), as far as the configuration asks for them.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start_mux(&self) -> std::io::Result<()> {
        let media = &self.config.media;
        if let Some(port) = media.ice_tcp_port
            && self.factory.ice_tcp().is_none()
        {
            self.factory.set_ice_tcp(crate::rtc::ice_tcp::IceTcp::start(
                std::net::SocketAddr::new(media.bind_ip, port),
                media.advertise_ip,
                self.shutdown.clone(),
            )?);
        }
        if let Some(settings) = media.mux
            && self.mux.get().is_none()
        {
            let mux = crate::rtc::mux::Mux::start(
                media,
                settings,
                self.metrics.mux.clone(),
                self.factory.ice_tcp().cloned(),
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

    /// The ICE-TCP port's address in sessions' candidates, when it is open.
    pub fn ice_tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.factory.ice_tcp().map(|t| t.candidate())
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
        self.config.grpc_advertise.clone().unwrap_or_else(|| {
            let scheme = if self.config.grpc_tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}", advertised(self.grpc_addr, &self.config))
        })
    }

    /// This node as the routing store shows it. Its load is what its capacity limits, the
    /// slots admission has handed out: every session it serves (publishers, viewers, relay
    /// links), connected or still connecting.
    pub fn info(&self) -> NodeInfo {
        let load = self.admission.load();
        NodeInfo {
            id: self.config.node_id.clone(),
            role: self.config.role,
            http_url: self.http_url(),
            grpc_url: self.grpc_url(),
            capacity: self.config.capacity,
            load,
            draining: self.is_draining(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            heartbeat_unix_ms: None,
            cpu_percent: crate::obs::cpu::process_cpu_percent(),
            region: self.config.locality.region.clone(),
            zone: self.config.locality.zone.clone(),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled() || self.shutdown.is_cancelled()
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

    /// Counts sessions by kind, and connected ones by transport.
    pub fn session_counts(&self) -> SessionCounts {
        let mut counts = SessionCounts::default();
        for s in self.state().sessions.values() {
            *match s.kind {
                SessionKind::Publisher => &mut counts.publishers,
                SessionKind::Viewer => &mut counts.viewers,
                SessionKind::Relay => &mut counts.relays,
            } += 1;
            if let Some(t) = s.handle.transport.get() {
                *match t {
                    Transport::Udp => &mut counts.udp,
                    Transport::Tcp => &mut counts.tcp,
                    Transport::Relayed => &mut counts.relayed,
                } += 1;
            }
        }
        counts
    }

    /// The node's gauges now, for a metrics scrape.
    pub fn gauges(&self) -> crate::obs::metrics::Gauges {
        let sessions = self.session_counts();
        let rooms = self.rooms();
        crate::obs::metrics::Gauges {
            viewers: sessions.viewers,
            publishers: sessions.publishers,
            rooms: rooms.len(),
            relays_upstream: rooms.iter().filter(|r| r.relayed && !r.is_ended()).count(),
            relays_downstream: sessions.relays,
            udp: sessions.udp,
            tcp: sessions.tcp,
            relayed: sessions.relayed,
        }
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

    /// This node's sessions, by room and id.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut sessions: Vec<SessionInfo> = self
            .state()
            .sessions
            .values()
            .map(SessionEntry::info)
            .collect();
        sessions.sort_by(|a, b| (&a.room, &a.id).cmp(&(&b.room, &b.id)));
        sessions
    }

    /// Ends one session of this node, whatever its room and kind (an operator's
    /// `DELETE /v1/sessions/{id}`): a publisher's room then waits for it as after a network
    /// loss, a relay link's downstream node re-attaches.
    pub fn close_session(&self, id: &str) -> Result<SessionInfo> {
        let state = self.state();
        let entry = state.sessions.get(id).ok_or_else(|| {
            Error::NotFound(format!("no session {id} on node {}", self.config.node_id))
        })?;
        entry.handle.cancel.cancel();
        tracing::warn!(session = id, room = %entry.handle.room, kind = ?entry.kind, "session closed by an operator");
        Ok(entry.info())
    }

    fn new_handle(&self, room_id: &str) -> SessionHandle {
        SessionHandle::new(
            uuid::Uuid::new_v4().simple().to_string(),
            room_id.to_owned(),
            self.shutdown.child_token(),
        )
    }

    /// The downstream relay link `id` in room `room_id`, if it is open here.
    pub fn relay_link(&self, room_id: &str, id: &str) -> Option<SessionHandle> {
        self.state()
            .sessions
            .get(id)
            .filter(|s| s.kind == SessionKind::Relay && s.handle.room == room_id)
            .map(|s| s.handle.clone())
    }

    /// Keeps a session until it finishes, then lets go of what it held (its admission slot
    /// among it). The drain machine hears of every session that comes and goes.
    fn track_session(
        self: &Arc<Self>,
        handle: SessionHandle,
        kind: SessionKind,
        room: Arc<Room>,
        slot: Option<admit::Slot>,
    ) {
        {
            let mut state = self.state();
            let entry = SessionEntry {
                handle: handle.clone(),
                kind,
                _slot: slot,
            };
            state.sessions.insert(handle.id.clone(), entry);
            // Under the lock, so that the counts reach the drain machine in order.
            self.drain_event(DrainEvent::SessionsChanged(state.sessions.len()));
        }
        let node = self.clone();
        tokio::spawn(async move {
            handle.finished.cancelled().await;
            {
                let mut state = node.state();
                state.sessions.remove(&handle.id);
                node.drain_event(DrainEvent::SessionsChanged(state.sessions.len()));
            }
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
}

/// The address to advertise for a bound socket: a wildcard bind is reached through the
/// advertised media IP (or loopback when none is set).
fn advertised(addr: SocketAddr, config: &NodeSettings) -> SocketAddr {
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
