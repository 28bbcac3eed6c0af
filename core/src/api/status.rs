//! The cluster status API's data: what every node can tell about the whole cluster.
//!
//! The cluster's shape (nodes, room owners, relay links) comes from the routing store, which
//! every node reads. What only a node knows (its sessions, its rooms' tracks, bitrates and
//! viewers) it reports at `GET /v1/node` ([`NodeReport`]); a node answering for the cluster asks
//! the other nodes for theirs over HTTP, concurrently, with a short timeout. A node that does not
//! answer is shown as `reachable: false` with what the routing store holds about it.
//!
//! The types here are the API's JSON and are also read back by the `cascade` CLI. They are the
//! one source of its schema: the OpenAPI document (`GET /openapi.json`, [`crate::api::openapi`])
//! is derived from them, doc comments becoming descriptions, and a test holds the gRPC messages
//! (`proto/cascade/status/v1/status.proto`) to their fields.

use crate::api::admin::Admin;
use crate::cluster::node::Node;
use crate::cluster::node::SessionCounts;
use crate::cluster::routing::{Link, NodeInfo, Role};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use utoipa::ToSchema;

/// How long a node waits for another node's `/v1/node`.
pub const PEER_TIMEOUT: Duration = Duration::from_millis(1500);
/// `GET /v1/node`: one node's own state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct NodeReport {
    pub node: NodeInfo,
    pub sessions: SessionCounts,
    pub rooms: Vec<NodeRoom>,
    /// RTP payload bits per second sent to all its subscribers (viewers and relay links),
    /// since the previous read (at least a second); null on the first read.
    #[serde(default)]
    #[schema(required)]
    pub egress_bps: Option<u64>,
    /// Its UDP mux shards (empty with `--udp-mux false`).
    #[serde(default)]
    #[schema(required)]
    pub mux_shards: Vec<MuxShard>,
}

/// One UDP mux shard of a node: a task (up to one core) and a socket for its share of the
/// WHEP viewers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct MuxShard {
    /// The address (`ip:port`) in its viewers' ICE candidates.
    pub address: String,
    /// The viewers it serves.
    pub viewers: usize,
}

/// A room as one node holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct NodeRoom {
    pub room: String,
    /// Pulled from an upstream node (false: published here).
    pub relayed: bool,
    /// Sessions attached or attaching: viewers and downstream relay links.
    pub subscribers: usize,
    pub viewers: usize,
    pub age_seconds: u64,
    pub tracks: Vec<TrackReport>,
}

/// One track of a room as a node holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct TrackReport {
    /// `audio` or `video`.
    #[schema(schema_with = media_kind)]
    pub kind: String,
    /// MIME type, e.g. `video/VP8`.
    pub codec: String,
    pub packets_in: u64,
    /// RTP payload bytes.
    pub bytes_in: u64,
    pub queue_drops: u64,
    pub subscribers: usize,
    /// RTP payload bits per second received, over the last interval between status reads;
    /// null on the first read.
    #[schema(required)]
    pub bitrate_bps: Option<u64>,
    /// The RID of a simulcast layer (each layer is a track of its own); null for a track that
    /// is not one.
    #[serde(default)]
    #[schema(required)]
    pub rid: Option<String>,
    /// True while this node asked its upstream not to send the layer (nothing here takes it;
    /// it flows again as soon as something does).
    #[serde(default)]
    #[schema(required)]
    pub paused_upstream: bool,
}

/// The schema of a track's `kind`: a [`crate::media::MediaKind`] by name.
fn media_kind() -> utoipa::openapi::Object {
    use crate::media::MediaKind;
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(
            [MediaKind::Audio, MediaKind::Video].map(MediaKind::as_str),
        ))
        .build()
}

/// This node's report.
pub fn node_report(node: &Node) -> NodeReport {
    use std::sync::atomic::Ordering::Relaxed;
    let counts: SessionCounts = node.session_counts();
    let viewers = node.viewers_by_room();
    let rooms = node
        .rooms()
        .iter()
        .map(|room| NodeRoom {
            room: room.id.clone(),
            relayed: room.relayed,
            subscribers: room.sessions(),
            viewers: viewers.get(&room.id).copied().unwrap_or(0),
            age_seconds: room.created.elapsed().as_secs(),
            tracks: room
                .tracks()
                .iter()
                .map(|t| {
                    let bytes_in = t.stats.bytes_in.load(Relaxed);
                    TrackReport {
                        kind: t.kind.as_str().to_owned(),
                        codec: t.codec.mime_type.clone(),
                        packets_in: t.stats.packets_in.load(Relaxed),
                        bytes_in,
                        queue_drops: t.stats.queue_drops.load(Relaxed),
                        subscribers: t.subscriber_count(),
                        bitrate_bps: t.stats.rate.bitrate(bytes_in),
                        rid: t.layer.as_ref().map(|l| l.rid.clone()),
                        paused_upstream: t.paused_upstream(),
                    }
                })
                .collect(),
        })
        .collect();
    NodeReport {
        node: node.info(),
        sessions: counts,
        rooms,
        egress_bps: node.egress.bitrate(node.metrics.traffic.bytes_out.get()),
        mux_shards: node
            .mux_shards()
            .into_iter()
            .map(|(address, viewers)| MuxShard {
                address: address.to_string(),
                viewers,
            })
            .collect(),
    }
}

/// Whether a node takes new sessions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Ready,
    Draining,
}

/// One node in `GET /v1/cluster` and `GET /v1/nodes/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct NodeSummary {
    pub id: String,
    pub role: Role,
    pub http_url: String,
    pub grpc_url: String,
    pub version: String,
    pub state: NodeState,
    pub capacity: u32,
    /// What capacity limits: every session served, publishers, viewers and relay links (as
    /// registered at the node's last heartbeat).
    pub load: u32,
    /// Whether the node answered this request (the fields below are null when not).
    pub reachable: bool,
    #[schema(required)]
    pub viewers: Option<usize>,
    #[schema(required)]
    pub publishers: Option<usize>,
    /// Relay links the node feeds.
    #[schema(required)]
    pub relays: Option<usize>,
    /// Its connected sessions whose media travels over UDP, over ICE-TCP, and through a TURN
    /// server.
    #[schema(required)]
    pub sessions_udp: Option<usize>,
    #[schema(required)]
    pub sessions_tcp: Option<usize>,
    #[schema(required)]
    pub sessions_relayed: Option<usize>,
    /// Rooms the node holds (published or relayed).
    #[schema(required)]
    pub rooms: Option<usize>,
    /// RTP payload bits per second received over all its rooms.
    #[schema(required)]
    pub ingress_bps: Option<u64>,
    /// RTP payload bits per second sent to its subscribers (viewers and relay links).
    #[schema(required)]
    pub egress_bps: Option<u64>,
    /// The node process's CPU (100 = one core busy) over its last sampling interval (about a
    /// second or more); from its report, else from its last registration.
    #[schema(required, minimum = 0)]
    pub cpu_percent: Option<f64>,
    /// When the node's routing entry was last refreshed (ms since the Unix epoch, by the
    /// node's clock); null when the routing store does not list it (yet).
    #[schema(required)]
    pub last_heartbeat_unix_ms: Option<u64>,
    /// Milliseconds since that heartbeat, by the answering node's clock (0 when the clocks
    /// disagree the other way).
    #[schema(required)]
    pub heartbeat_age_ms: Option<u64>,
    /// The node's region (`--region`); null when it has none.
    #[serde(default)]
    #[schema(required)]
    pub region: Option<String>,
    /// The node's zone within its region (`--zone`); null when it has none.
    #[serde(default)]
    #[schema(required)]
    pub zone: Option<String>,
}

impl NodeSummary {
    fn new(registered: &NodeInfo, report: Option<&NodeReport>) -> Self {
        // A node's own report is fresher than its last registration.
        let info = report.map_or(registered, |r| &r.node);
        let heartbeat = registered.heartbeat_unix_ms;
        Self {
            cpu_percent: info.cpu_percent.or(registered.cpu_percent),
            last_heartbeat_unix_ms: heartbeat,
            heartbeat_age_ms: heartbeat
                .map(|at| crate::cluster::routing::unix_ms().saturating_sub(at)),
            id: info.id.clone(),
            region: info.region.clone(),
            zone: info.zone.clone(),
            role: info.role,
            http_url: info.http_url.clone(),
            grpc_url: info.grpc_url.clone(),
            version: info.version.clone(),
            state: if info.draining {
                NodeState::Draining
            } else {
                NodeState::Ready
            },
            capacity: info.capacity,
            load: info.load,
            reachable: report.is_some(),
            viewers: report.map(|r| r.sessions.viewers),
            publishers: report.map(|r| r.sessions.publishers),
            relays: report.map(|r| r.sessions.relays),
            sessions_udp: report.map(|r| r.sessions.udp),
            sessions_tcp: report.map(|r| r.sessions.tcp),
            sessions_relayed: report.map(|r| r.sessions.relayed),
            rooms: report.map(|r| r.rooms.len()),
            ingress_bps: report.map(|r| {
                r.rooms
                    .iter()
                    .flat_map(|room| &room.tracks)
                    .filter_map(|t| t.bitrate_bps)
                    .sum()
            }),
            egress_bps: report.and_then(|r| r.egress_bps),
        }
    }
}

/// `GET /v1/cluster`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ClusterReport {
    /// The node that answered.
    pub answered_by: String,
    pub nodes: Vec<NodeSummary>,
    pub totals: Totals,
}

/// The cluster's totals in `GET /v1/cluster`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Totals {
    pub nodes: usize,
    pub origins: usize,
    pub edges: usize,
    /// Rooms being published (owned by an origin).
    pub rooms: usize,
    /// Viewers on every node (an unreachable edge counts its registered load).
    pub viewers: usize,
}

/// `GET /v1/nodes/{id}`: a node's summary and its rooms (null when it did not answer).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct NodeDetail {
    #[serde(flatten)]
    pub summary: NodeSummary,
    /// Its rooms, from its own report; null when it did not answer.
    #[schema(required)]
    pub room_details: Option<Vec<NodeRoom>>,
    /// Its UDP mux shards, from its own report; null when it did not answer.
    #[serde(default)]
    #[schema(required)]
    pub mux_shards: Option<Vec<MuxShard>>,
}

/// One room across the cluster (`GET /v1/rooms/{room}`, and each of `GET /v1/rooms`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RoomReport {
    pub room: String,
    /// The origin node publishing it.
    pub origin: String,
    /// Seconds since the origin started the room (null when the origin did not answer).
    #[schema(required)]
    pub age_seconds: Option<u64>,
    /// The publisher's tracks, as the origin holds them.
    pub tracks: Vec<RoomTrackInfo>,
    /// The relay tree: each edge carrying the room and the node it pulls from.
    pub links: Vec<LinkReport>,
    /// Viewers per node holding the room (origin and edges).
    pub viewers: Vec<NodeViewers>,
    pub viewers_total: usize,
}

/// One of a room's tracks, as its origin holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RoomTrackInfo {
    /// `audio` or `video`.
    #[schema(schema_with = media_kind)]
    pub kind: String,
    /// MIME type, e.g. `video/VP8`.
    pub codec: String,
    /// RTP payload bits per second the origin receives; null on the first read.
    #[schema(required)]
    pub bitrate_bps: Option<u64>,
}

/// A relay link of a room's tree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(as = Link)]
pub struct LinkReport {
    /// The node carrying the room.
    pub edge: String,
    /// The node it pulls the room from (the origin or another edge).
    pub upstream: String,
    /// What flows over the link: the edge's ingress bitrate for the room (null when the edge
    /// did not answer or has no rate yet).
    #[schema(required)]
    pub bitrate_bps: Option<u64>,
    /// The simulcast layers (RIDs) the edge asked its upstream not to send for now, because
    /// nothing it serves takes them (`Relay.PauseLayers`); empty when the edge did not answer.
    #[serde(default)]
    #[schema(required)]
    pub paused_layers: Vec<String>,
}

/// A room's viewers on one node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct NodeViewers {
    pub node: String,
    /// Null when the node did not answer.
    #[schema(required)]
    pub viewers: Option<usize>,
}

/// `GET /v1/sessions`: the sessions of the node that answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct SessionsReport {
    /// The id of the node that answers.
    pub node: String,
    /// By room, then id.
    pub sessions: Vec<crate::cluster::node::SessionInfo>,
}

/// `GET /v1/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RoomsReport {
    pub rooms: Vec<RoomReport>,
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(PEER_TIMEOUT)
            .connect_timeout(PEER_TIMEOUT)
            .build()
            .unwrap_or_default()
    })
}

async fn fetch_report(info: &NodeInfo, credential: Option<&str>) -> Option<NodeReport> {
    fetch_json(info, "/v1/node", credential).await
}

/// `GET path` of another node's status API, showing `credential` (its status API may not be
/// public); `None` when it does not answer in time or answers an error.
pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(
    info: &NodeInfo,
    path: &str,
    credential: Option<&str>,
) -> Option<T> {
    let url = format!("{}{path}", info.http_url.trim_end_matches('/'));
    let mut request = client().get(&url);
    if let Some(value) = credential {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    let response = request.send().await.ok()?;
    match response.error_for_status() {
        Ok(r) => r.json().await.ok(),
        Err(e) => {
            tracing::debug!(node = %info.id, path, error = %e, "node status unavailable");
            None
        }
    }
}

/// The reports of `infos`, from this node directly and from the others over HTTP (showing
/// them this node's credential, as their status API may not be public).
async fn reports(node: &Node, infos: &[NodeInfo], admin: &Admin) -> HashMap<String, NodeReport> {
    let credential = admin.peer_credential();
    let credential = credential.as_deref();
    let fetches = infos.iter().map(|info| async move {
        let report = if info.id == node.id() {
            Some(node_report(node))
        } else {
            fetch_report(info, credential).await
        };
        report.map(|r| (info.id.clone(), r))
    });
    futures::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
        .collect()
}

fn routing<T>(r: crate::cluster::routing::RoutingResult<T>) -> Result<T> {
    r.map_err(|e| Error::Routing(e.to_string()))
}

/// Live nodes, with this node added when the store does not list it (yet).
pub(crate) async fn live_nodes(node: &Node) -> Result<Vec<NodeInfo>> {
    let mut nodes = routing(node.routing.nodes().await)?;
    if !nodes.iter().any(|n| n.id == node.id()) {
        nodes.push(node.info());
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Ok(nodes)
}

/// `GET /v1/cluster`.
pub async fn cluster(node: &Node, admin: &Admin) -> Result<ClusterReport> {
    let (nodes, rooms) = tokio::try_join!(live_nodes(node), async {
        routing(node.routing.rooms().await)
    })?;
    let reports = reports(node, &nodes, admin).await;
    let summaries: Vec<NodeSummary> = nodes
        .iter()
        .map(|n| NodeSummary::new(n, reports.get(&n.id)))
        .collect();
    let totals = Totals {
        nodes: summaries.len(),
        origins: summaries.iter().filter(|n| n.role == Role::Origin).count(),
        edges: summaries.iter().filter(|n| n.role == Role::Edge).count(),
        rooms: rooms.len(),
        viewers: summaries
            .iter()
            .map(|n| match (n.viewers, n.role) {
                (Some(v), _) => v,
                (None, Role::Edge) => n.load as usize,
                (None, Role::Origin) => 0,
            })
            .sum(),
    };
    Ok(ClusterReport {
        answered_by: node.id().to_owned(),
        nodes: summaries,
        totals,
    })
}

/// `POST /v1/nodes/{id}/drain` (and gRPC `DrainNode`): the answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(as = DrainAccepted)]
pub struct DrainReport {
    pub node: String,
    pub draining: bool,
    pub already_draining: bool,
    pub drain_timeout_seconds: u64,
}

/// `DELETE /v1/rooms/{room}`: the answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(as = RoomClosed)]
pub struct CloseReport {
    pub room: String,
    /// The origin that ended it; its relay links end the room on every edge.
    pub closed_by: String,
}

/// Where a room is to be closed: here, or on its origin.
#[derive(Debug)]
pub enum Close {
    /// This node owned the room and ended it.
    Closed(CloseReport),
    /// Another origin owns it: the request goes there.
    Elsewhere(NodeInfo),
}

/// Ends `room` on this node when it is the room's origin: its publisher and every subscriber
/// (viewers, and relay links, which end it on the edges downstream) are disconnected, and its
/// routing entries go as the publisher's session ends. On another node, names the origin
/// the routing store gives. The caller has been let through by [`Admin::drain`]'s rule.
pub async fn close_room(node: &Node, room: &str) -> Result<Close> {
    crate::media::RoomId::validate(room)?;
    if let Some(r) = node.room(room)
        && !r.relayed
        && !r.is_ended()
    {
        r.end(crate::media::room::EndReason {
            not_found: false,
            message: "closed by an operator".into(),
        });
        tracing::warn!(room, "room closed by an operator");
        return Ok(Close::Closed(CloseReport {
            room: room.to_owned(),
            closed_by: node.id().to_owned(),
        }));
    }
    let owner = routing(node.routing.room_owner(room).await)?
        .filter(|owner| owner != node.id())
        .ok_or_else(|| Error::NotFound(format!("room {room} is not being published")))?;
    let info = routing(node.routing.node(&owner).await)?
        .ok_or_else(|| Error::NotFound(format!("room {room}'s origin {owner} is not live")))?;
    Ok(Close::Elsewhere(info))
}

/// Starts draining this node (`id` is its id or `self`). Idempotent. The caller has been
/// let through by [`Admin::drain`] (an admin credential, or loopback).
pub fn drain(node: &Arc<Node>, id: &str) -> Result<DrainReport> {
    if id != "self" && id != node.id() {
        return Err(Error::NotFound(format!(
            "this node is {}, not {id}",
            node.id()
        )));
    }
    let started = node.drain();
    Ok(DrainReport {
        node: node.id().to_owned(),
        draining: true,
        already_draining: !started,
        drain_timeout_seconds: node.config.drain_timeout.as_secs(),
    })
}

/// `GET /v1/nodes/{id}` (`self` is this node).
pub async fn node_detail(node: &Node, id: &str, admin: &Admin) -> Result<NodeDetail> {
    let info = if id == "self" || id == node.id() {
        // The registered entry carries the heartbeat time.
        routing(node.routing.node(node.id()).await)
            .ok()
            .flatten()
            .unwrap_or_else(|| node.info())
    } else {
        routing(node.routing.node(id).await)?
            .ok_or_else(|| Error::NotFound(format!("no live node {id} in the cluster")))?
    };
    let report = reports(node, std::slice::from_ref(&info), admin)
        .await
        .remove(&info.id);
    let summary = NodeSummary::new(&info, report.as_ref());
    let (room_details, mux_shards) = report.map(|r| (r.rooms, r.mux_shards)).unzip();
    Ok(NodeDetail {
        summary,
        room_details,
        mux_shards,
    })
}

fn room_report(
    room: &str,
    origin: &str,
    links: &[Link],
    reports: &HashMap<String, NodeReport>,
) -> RoomReport {
    let held = |node: &str| {
        reports
            .get(node)
            .map(|r| r.rooms.iter().find(|x| x.room == room))
    };
    let origin_room = held(origin).flatten();
    let mut holders: Vec<&str> = std::iter::once(origin)
        .chain(links.iter().map(|l| l.edge_id.as_str()))
        .collect();
    holders.dedup();
    let viewers: Vec<NodeViewers> = holders
        .iter()
        .map(|n| NodeViewers {
            node: (*n).to_owned(),
            viewers: held(n).map(|r| r.map_or(0, |r| r.viewers)),
        })
        .collect();
    RoomReport {
        room: room.to_owned(),
        origin: origin.to_owned(),
        age_seconds: origin_room.map(|r| r.age_seconds),
        tracks: origin_room
            .map(|r| {
                r.tracks
                    .iter()
                    .map(|t| RoomTrackInfo {
                        kind: t.kind.clone(),
                        codec: t.codec.clone(),
                        bitrate_bps: t.bitrate_bps,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        links: links
            .iter()
            .map(|l| LinkReport {
                edge: l.edge_id.clone(),
                upstream: l.upstream_id.clone(),
                bitrate_bps: held(&l.edge_id).flatten().and_then(|r| {
                    r.tracks
                        .iter()
                        .filter_map(|t| t.bitrate_bps)
                        .fold(None, |sum, b| Some(sum.unwrap_or(0) + b))
                }),
                paused_layers: held(&l.edge_id)
                    .flatten()
                    .map(|r| {
                        r.tracks
                            .iter()
                            .filter(|t| t.paused_upstream)
                            .filter_map(|t| t.rid.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect(),
        viewers_total: viewers.iter().filter_map(|v| v.viewers).sum(),
        viewers,
    }
}

/// Nodes holding any of `rooms` (origins and link edges), as the store lists them.
fn involved(
    nodes: &[NodeInfo],
    rooms: &[(String, String)],
    links: &BTreeMap<String, Vec<Link>>,
) -> Vec<NodeInfo> {
    nodes
        .iter()
        .filter(|n| {
            rooms.iter().any(|(_, owner)| owner == &n.id)
                || links.values().flatten().any(|l| l.edge_id == n.id)
        })
        .cloned()
        .collect()
}

/// `GET /v1/rooms`.
pub async fn rooms(node: &Node, admin: &Admin) -> Result<RoomsReport> {
    let (nodes, rooms) = tokio::try_join!(live_nodes(node), async {
        routing(node.routing.rooms().await)
    })?;
    let lookups = rooms.iter().map(|(room, _)| async move {
        routing(node.routing.links(room).await).map(|l| (room.clone(), l))
    });
    let links: BTreeMap<String, Vec<Link>> = futures::future::try_join_all(lookups)
        .await?
        .into_iter()
        .collect();
    let reports = reports(node, &involved(&nodes, &rooms, &links), admin).await;
    Ok(RoomsReport {
        rooms: rooms
            .iter()
            .map(|(room, owner)| {
                room_report(room, owner, links.get(room).map_or(&[], |l| l), &reports)
            })
            .collect(),
    })
}

/// `GET /v1/rooms/{room}`.
pub async fn room(node: &Node, room: &str, admin: &Admin) -> Result<RoomReport> {
    crate::media::RoomId::validate(room)?;
    let owner = routing(node.routing.room_owner(room).await)?
        .ok_or_else(|| Error::NotFound(format!("room {room} is not being published")))?;
    let (nodes, links) = tokio::try_join!(live_nodes(node), async {
        routing(node.routing.links(room).await)
    })?;
    let rooms = [(room.to_owned(), owner.clone())];
    let by_room = BTreeMap::from([(room.to_owned(), links.clone())]);
    let reports = reports(node, &involved(&nodes, &rooms, &by_room), admin).await;
    Ok(room_report(room, &owner, &links, &reports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_report_shows_the_tree_and_viewers_per_node() {
        let info = |id: &str, role| NodeInfo {
            id: id.into(),
            role,
            http_url: String::new(),
            grpc_url: String::new(),
            capacity: 10,
            load: 0,
            draining: false,
            version: "t".into(),
            heartbeat_unix_ms: None,
            cpu_percent: None,
            region: None,
            zone: None,
        };
        let report = |id: &str, role, viewers| NodeReport {
            node: info(id, role),
            sessions: SessionCounts::default(),
            rooms: vec![NodeRoom {
                room: "r".into(),
                relayed: role == Role::Edge,
                subscribers: viewers,
                viewers,
                age_seconds: 5,
                tracks: vec![],
            }],
            egress_bps: None,
            mux_shards: vec![],
        };
        let mut reports = HashMap::from([
            ("o".to_owned(), report("o", Role::Origin, 0)),
            ("e1".to_owned(), report("e1", Role::Edge, 2)),
        ]);
        // e1 takes the low layer of a simulcast group and paused the top one upstream.
        let layer = |rid: &str, paused: bool| TrackReport {
            kind: "video".into(),
            codec: "video/VP8".into(),
            packets_in: 1,
            bytes_in: 1,
            queue_drops: 0,
            subscribers: usize::from(!paused),
            bitrate_bps: Some(1_000),
            rid: Some(rid.into()),
            paused_upstream: paused,
        };
        if let Some(e1) = reports.get_mut("e1") {
            e1.rooms[0].tracks = vec![layer("l", false), layer("h", true)];
        }
        let links = [
            Link {
                room: "r".into(),
                edge_id: "e1".into(),
                upstream_id: "o".into(),
            },
            Link {
                room: "r".into(),
                edge_id: "e2".into(),
                upstream_id: "e1".into(),
            },
        ];
        let r = room_report("r", "o", &links, &reports);
        assert_eq!(r.age_seconds, Some(5));
        assert_eq!(r.viewers_total, 2);
        assert_eq!(
            r.viewers,
            vec![
                NodeViewers {
                    node: "o".into(),
                    viewers: Some(0)
                },
                NodeViewers {
                    node: "e1".into(),
                    viewers: Some(2)
                },
                NodeViewers {
                    node: "e2".into(),
                    viewers: None
                },
            ]
        );
        assert_eq!(r.links[1].upstream, "e1");
        assert_eq!(r.links[0].paused_layers, vec!["h".to_owned()]);
        assert!(r.links[1].paused_layers.is_empty(), "e2 did not answer");
    }
}
