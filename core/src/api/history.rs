//! The dashboard's charts: each node keeps its last minutes in a small ring (one sample every
//! [`INTERVAL`], [`SAMPLES`] of them): its CPU, and per room its viewers, the bitrate it receives
//! and the bitrate it forwards. `GET /v1/node/history` serves a node's ring; `GET /v1/history`,
//! answered by any node, puts every node's together into one series per room (viewers and
//! forwarded bitrate summed over the nodes, received bitrate the origin's) and one CPU series
//! per node.

use crate::api::admin::Admin;
use crate::api::openapi::ErrorBody;
use crate::api::status::{NodeReport, fetch_json, node_report};
use crate::cluster::node::Node;
use crate::cluster::routing::unix_ms;
use crate::error::Error;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utoipa::ToSchema;

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// Samples kept: ten minutes.
pub const SAMPLES: usize = 120;

/// One room on one node at one sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RoomSample {
    pub room: String,
    /// Pulled from an upstream node (false: published here, on its origin).
    pub relayed: bool,
    pub viewers: usize,
    /// RTP payload bits per second received for the room (all its tracks).
    pub ingress_bps: u64,
    /// RTP payload bits per second forwarded: each track's received rate times its
    /// subscribers (viewers and relay links).
    pub egress_bps: u64,
}

/// One sample of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct NodeSample {
    /// When it was taken, ms since the Unix epoch (the node's clock).
    pub t_unix_ms: u64,
    /// The node process's CPU (100 = one core busy); null when it is not known.
    #[schema(required, minimum = 0)]
    pub cpu_percent: Option<f64>,
    pub rooms: Vec<RoomSample>,
}

/// `GET /v1/node/history`: the ring of the node answering, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct NodeHistory {
    pub node: String,
    pub interval_ms: u64,
    pub samples: Vec<NodeSample>,
}

/// A point of a room's series in `GET /v1/history`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RoomPoint {
    /// The start of the interval the nodes' samples fell in, ms since the Unix epoch.
    pub t_unix_ms: u64,
    /// Viewers on every node.
    pub viewers: usize,
    /// Received by the room's origin.
    pub ingress_bps: u64,
    /// Forwarded by every node (to viewers and relay links).
    pub egress_bps: u64,
}

/// One room's series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RoomSeries {
    pub room: String,
    pub points: Vec<RoomPoint>,
}

/// A point of a node's CPU series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct CpuPoint {
    pub t_unix_ms: u64,
    #[schema(minimum = 0)]
    pub cpu_percent: f64,
}

/// One node's CPU series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct NodeCpuSeries {
    pub node: String,
    pub points: Vec<CpuPoint>,
}

/// `GET /v1/history`: the cluster's last minutes, for the dashboard's charts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ClusterHistory {
    pub answered_by: String,
    pub interval_ms: u64,
    /// By room name; a room's points are in time order, one per interval any node sampled it.
    pub rooms: Vec<RoomSeries>,
    /// By node id; nodes that did not answer are left out.
    pub nodes: Vec<NodeCpuSeries>,
}

/// A node's ring of samples. Written every [`INTERVAL`] by [`record`], read by the API: the
/// lock is never taken on a media path.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<NodeSample>>,
}

impl History {
    /// Adds a sample, dropping the oldest beyond [`SAMPLES`].
    pub fn push(&self, sample: NodeSample) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<NodeSample> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.iter().cloned().collect()
    }
}

/// What a node's report says about its rooms and CPU now.
pub fn sample(report: &NodeReport, t_unix_ms: u64) -> NodeSample {
    let rooms = report
        .rooms
        .iter()
        .map(|room| {
            let rate = |t: &crate::api::status::TrackReport| t.bitrate_bps.unwrap_or(0);
            RoomSample {
                room: room.room.clone(),
                relayed: room.relayed,
                viewers: room.viewers,
                ingress_bps: room.tracks.iter().map(rate).sum(),
                egress_bps: room
                    .tracks
                    .iter()
                    .map(|t| rate(t) * t.subscribers as u64)
                    .sum(),
            }
        })
        .collect();
    NodeSample {
        t_unix_ms,
        cpu_percent: report.node.cpu_percent,
        rooms,
    }
}

/// Samples `node` into `history` every [`INTERVAL`] until the node shuts down.
pub async fn record(node: Arc<Node>, history: Arc<History>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tick.tick() => history.push(sample(&node_report(&node), unix_ms())),
        }
    }
}

/// Puts the nodes' rings together: per room, samples in the same interval summed (viewers,
/// forwarded bitrate) or taken from the origin (received bitrate); per node, its CPU.
pub fn merge(answered_by: &str, histories: &[NodeHistory]) -> ClusterHistory {
    let step = INTERVAL.as_millis() as u64;
    let mut rooms: BTreeMap<String, BTreeMap<u64, RoomPoint>> = BTreeMap::new();
    let mut nodes = Vec::new();
    for history in histories {
        let mut cpu = Vec::new();
        for sample in &history.samples {
            let t = sample.t_unix_ms / step * step;
            if let Some(cpu_percent) = sample.cpu_percent {
                cpu.push(CpuPoint {
                    t_unix_ms: t,
                    cpu_percent,
                });
            }
            for room in &sample.rooms {
                let point = rooms
                    .entry(room.room.clone())
                    .or_default()
                    .entry(t)
                    .or_insert(RoomPoint {
                        t_unix_ms: t,
                        viewers: 0,
                        ingress_bps: 0,
                        egress_bps: 0,
                    });
                point.viewers += room.viewers;
                point.egress_bps += room.egress_bps;
                if !room.relayed {
                    point.ingress_bps = point.ingress_bps.max(room.ingress_bps);
                }
            }
        }
        nodes.push(NodeCpuSeries {
            node: history.node.clone(),
            points: cpu,
        });
    }
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    ClusterHistory {
        answered_by: answered_by.to_owned(),
        interval_ms: step,
        rooms: rooms
            .into_iter()
            .map(|(room, points)| RoomSeries {
                room,
                points: points.into_values().collect(),
            })
            .collect(),
        nodes,
    }
}

fn own(node: &Node, history: &History) -> NodeHistory {
    NodeHistory {
        node: node.id().to_owned(),
        interval_ms: INTERVAL.as_millis() as u64,
        samples: history.samples(),
    }
}

#[utoipa::path(get, path = "/v1/node/history", operation_id = "getSelfHistory", tag = "status",
    summary = "The last minutes of the node answering: CPU, and per room viewers and bitrates",
    responses(
        (status = 200, description = "oldest sample first", body = NodeHistory),
        (status = 401, description = "the status API is not public and no valid admin credential came", body = ErrorBody),
    ))]
pub(crate) async fn node_history(
    State(node): State<Arc<Node>>,
    State(history): State<Arc<History>>,
) -> Json<NodeHistory> {
    Json(own(&node, &history))
}

#[utoipa::path(get, path = "/v1/history", operation_id = "getHistory", tag = "status",
    summary = "The cluster's last minutes: per room viewers and bitrates, per node CPU",
    responses(
        (status = 200, description = "every node's samples put together", body = ClusterHistory),
        (status = 401, description = "the status API is not public and no valid admin credential came", body = ErrorBody),
        (status = 503, description = "the routing store cannot list the nodes", body = ErrorBody),
    ))]
pub(crate) async fn cluster_history(
    State(node): State<Arc<Node>>,
    State(history): State<Arc<History>>,
    State(admin): State<Arc<Admin>>,
) -> std::result::Result<Json<ClusterHistory>, Error> {
    let infos = crate::api::status::live_nodes(&node).await?;
    let credential = admin.peer_credential();
    let credential = credential.as_deref();
    let fetches = infos.iter().map(|info| {
        let history = &history;
        let node = &node;
        async move {
            if info.id == node.id() {
                Some(own(node, history))
            } else {
                fetch_json(info, "/v1/node/history", credential).await
            }
        }
    });
    let histories: Vec<NodeHistory> = futures::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
        .collect();
    Ok(Json(merge(node.id(), &histories)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(room: &str, relayed: bool, viewers: usize, ingress: u64, egress: u64) -> RoomSample {
        RoomSample {
            room: room.into(),
            relayed,
            viewers,
            ingress_bps: ingress,
            egress_bps: egress,
        }
    }

    fn history(node: &str, samples: Vec<(u64, Option<f64>, Vec<RoomSample>)>) -> NodeHistory {
        NodeHistory {
            node: node.into(),
            interval_ms: 5000,
            samples: samples
                .into_iter()
                .map(|(t, cpu_percent, rooms)| NodeSample {
                    t_unix_ms: t,
                    cpu_percent,
                    rooms,
                })
                .collect(),
        }
    }

    #[test]
    fn the_ring_keeps_the_last_samples() {
        let ring = History::default();
        for t in 0..(SAMPLES as u64 + 5) {
            ring.push(NodeSample {
                t_unix_ms: t,
                cpu_percent: None,
                rooms: vec![],
            });
        }
        let samples = ring.samples();
        assert_eq!(samples.len(), SAMPLES);
        assert_eq!(samples[0].t_unix_ms, 5);
        assert_eq!(samples.last().unwrap().t_unix_ms, SAMPLES as u64 + 4);
    }

    #[test]
    fn rooms_are_summed_over_nodes_in_the_same_interval() {
        let origin = history(
            "origin-1",
            vec![
                (10_100, Some(4.0), vec![room("a", false, 1, 2_000, 6_000)]),
                (15_200, Some(5.0), vec![room("a", false, 1, 2_100, 6_300)]),
            ],
        );
        // The edge samples at other instants of the same intervals, and knows nothing of the
        // origin's ingress: its copy is relayed.
        let edge = history(
            "edge-1",
            vec![
                (11_900, None, vec![room("a", true, 3, 2_000, 6_000)]),
                (16_000, Some(1.5), vec![]),
            ],
        );
        let merged = merge("edge-1", &[edge, origin]);
        assert_eq!(merged.rooms.len(), 1);
        let points = &merged.rooms[0].points;
        assert_eq!(
            points,
            &vec![
                RoomPoint {
                    t_unix_ms: 10_000,
                    viewers: 4,
                    ingress_bps: 2_000,
                    egress_bps: 12_000
                },
                RoomPoint {
                    t_unix_ms: 15_000,
                    viewers: 1,
                    ingress_bps: 2_100,
                    egress_bps: 6_300
                },
            ]
        );
        // Nodes by id, unknown CPU left out.
        assert_eq!(merged.nodes[0].node, "edge-1");
        assert_eq!(merged.nodes[0].points.len(), 1);
        assert_eq!(merged.nodes[1].points[1].cpu_percent, 5.0);
    }
}
