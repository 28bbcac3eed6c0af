//! The cluster status API over gRPC (`cascade.status.v1.Status`, in
//! `proto/cascade/status/v1/status.proto`), served beside the relay service on every node's
//! gRPC port. The answers are built by [`crate::api::status`], exactly as for the HTTP JSON API;
//! this module only converts them to protobuf and errors to gRPC codes
//! ([`crate::Error`]'s `From` for `tonic::Status`: NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE,
//! PERMISSION_DENIED).
//!
//! Each method checks its caller first, as over HTTP ([`crate::api::admin`]): the reads need an
//! admin credential (an admin JWT or a cluster credential in `authorization` metadata) on a
//! node with a cluster secret or whose status is not public; `DrainNode` needs one unless it
//! comes from loopback while `--drain-from-loopback`. The checks are in the methods, not in an
//! interceptor, because an interceptor does not know which method is called and drain's rule
//! differs. A method added here checks its caller the same way.

use crate::api::admin::{Admin, Caller};
use crate::api::status;
use crate::cluster::node::Node;
use cascade_proto::status::v1 as pb;
use cascade_proto::status::v1::status_server::Status;
use std::sync::Arc;
use tonic::{Request, Response};

pub use cascade_proto::status::v1::status_server::StatusServer;

/// The status service one node offers.
#[derive(Debug, Clone)]
pub struct StatusService {
    node: Arc<Node>,
    admin: Arc<Admin>,
}

impl StatusService {
    pub fn new(node: Arc<Node>, admin: Arc<Admin>) -> Self {
        Self { node, admin }
    }

    /// A status read's check ([`Admin::status_grpc`]).
    fn read<T>(&self, request: &Request<T>) -> Result<(), tonic::Status> {
        self.admin
            .status_grpc(authorization(request))
            .map_err(|e| crate::Error::from(e).into())
    }
}

/// A call's `authorization` metadata.
fn authorization<T>(request: &Request<T>) -> Option<&str> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
}

type Answer<T> = Result<Response<T>, tonic::Status>;

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn node_summary(n: &status::NodeSummary) -> pb::NodeSummary {
    pb::NodeSummary {
        id: n.id.clone(),
        role: n.role.as_str().to_owned(),
        http_url: n.http_url.clone(),
        grpc_url: n.grpc_url.clone(),
        version: n.version.clone(),
        state: match n.state {
            status::NodeState::Ready => "ready",
            status::NodeState::Draining => "draining",
        }
        .to_owned(),
        capacity: n.capacity,
        load: n.load,
        reachable: n.reachable,
        viewers: n.viewers.map(count),
        publishers: n.publishers.map(count),
        relays: n.relays.map(count),
        sessions_udp: n.sessions_udp.map(count),
        sessions_tcp: n.sessions_tcp.map(count),
        sessions_relayed: n.sessions_relayed.map(count),
        rooms: n.rooms.map(count),
        ingress_bps: n.ingress_bps,
        egress_bps: n.egress_bps,
        cpu_percent: n.cpu_percent,
        last_heartbeat_unix_ms: n.last_heartbeat_unix_ms,
        heartbeat_age_ms: n.heartbeat_age_ms,
        region: n.region.clone(),
        zone: n.zone.clone(),
    }
}

fn cluster(c: &status::ClusterReport) -> pb::Cluster {
    pb::Cluster {
        answered_by: c.answered_by.clone(),
        nodes: c.nodes.iter().map(node_summary).collect(),
        totals: Some(pb::Totals {
            nodes: count(c.totals.nodes),
            origins: count(c.totals.origins),
            edges: count(c.totals.edges),
            rooms: count(c.totals.rooms),
            viewers: count(c.totals.viewers),
        }),
    }
}

fn node_room(r: &status::NodeRoom) -> pb::NodeRoom {
    pb::NodeRoom {
        room: r.room.clone(),
        relayed: r.relayed,
        subscribers: count(r.subscribers),
        viewers: count(r.viewers),
        age_seconds: r.age_seconds,
        tracks: r
            .tracks
            .iter()
            .map(|t| pb::TrackReport {
                kind: t.kind.clone(),
                codec: t.codec.clone(),
                packets_in: t.packets_in,
                bytes_in: t.bytes_in,
                queue_drops: t.queue_drops,
                subscribers: count(t.subscribers),
                bitrate_bps: t.bitrate_bps,
                rid: t.rid.clone(),
                paused_upstream: t.paused_upstream,
            })
            .collect(),
    }
}

fn node_detail(d: &status::NodeDetail) -> pb::NodeDetail {
    pb::NodeDetail {
        summary: Some(node_summary(&d.summary)),
        room_details: d.room_details.as_ref().map(|rooms| pb::NodeRooms {
            rooms: rooms.iter().map(node_room).collect(),
        }),
        mux_shards: d.mux_shards.as_ref().map(|shards| pb::MuxShards {
            shards: shards
                .iter()
                .map(|s| pb::MuxShard {
                    address: s.address.clone(),
                    viewers: count(s.viewers),
                })
                .collect(),
        }),
    }
}

fn room(r: &status::RoomReport) -> pb::Room {
    pb::Room {
        room: r.room.clone(),
        origin: r.origin.clone(),
        age_seconds: r.age_seconds,
        tracks: r
            .tracks
            .iter()
            .map(|t| pb::RoomTrack {
                kind: t.kind.clone(),
                codec: t.codec.clone(),
                bitrate_bps: t.bitrate_bps,
            })
            .collect(),
        links: r
            .links
            .iter()
            .map(|l| pb::Link {
                edge: l.edge.clone(),
                upstream: l.upstream.clone(),
                bitrate_bps: l.bitrate_bps,
                paused_layers: l.paused_layers.clone(),
            })
            .collect(),
        viewers: r
            .viewers
            .iter()
            .map(|v| pb::NodeViewers {
                node: v.node.clone(),
                viewers: v.viewers.map(count),
            })
            .collect(),
        viewers_total: count(r.viewers_total),
    }
}

#[tonic::async_trait]
impl Status for StatusService {
    async fn get_cluster(&self, request: Request<pb::GetClusterRequest>) -> Answer<pb::Cluster> {
        self.read(&request)?;
        Ok(Response::new(cluster(
            &status::cluster(&self.node, &self.admin).await?,
        )))
    }

    async fn list_rooms(&self, request: Request<pb::ListRoomsRequest>) -> Answer<pb::Rooms> {
        self.read(&request)?;
        let report = status::rooms(&self.node, &self.admin).await?;
        Ok(Response::new(pb::Rooms {
            rooms: report.rooms.iter().map(room).collect(),
        }))
    }

    async fn get_room(&self, request: Request<pb::GetRoomRequest>) -> Answer<pb::Room> {
        self.read(&request)?;
        let report = status::room(&self.node, &request.into_inner().room, &self.admin).await?;
        Ok(Response::new(room(&report)))
    }

    async fn get_node(&self, request: Request<pb::GetNodeRequest>) -> Answer<pb::NodeDetail> {
        self.read(&request)?;
        let detail = status::node_detail(&self.node, &request.into_inner().id, &self.admin).await?;
        Ok(Response::new(node_detail(&detail)))
    }

    async fn drain_node(
        &self,
        request: Request<pb::DrainNodeRequest>,
    ) -> Answer<pb::DrainNodeResponse> {
        // No address (not served over TCP) is not loopback.
        let caller = match request.remote_addr() {
            Some(addr) => Caller::Peer(addr.ip()),
            None => Caller::Peer(std::net::Ipv4Addr::UNSPECIFIED.into()),
        };
        if let Err(e) = self.admin.drain(authorization(&request), caller) {
            tracing::info!(?caller, error = %e, "gRPC drain refused");
            return Err(crate::Error::from(e).into());
        }
        let report = status::drain(&self.node, &request.into_inner().id)?;
        Ok(Response::new(pb::DrainNodeResponse {
            node: report.node,
            draining: report.draining,
            already_draining: report.already_draining,
            drain_timeout_seconds: report.drain_timeout_seconds,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Each schema of the OpenAPI document (derived from [`crate::api::status`]) and the
    /// message of `status.proto` that carries it over gRPC. `None`: HTTP only (`GET /v1/node`
    /// is what nodes ask each other; `Role` and `NodeState` are strings in both; errors are
    /// gRPC codes).
    const MESSAGES: &[(&str, Option<&str>)] = &[
        ("ClusterReport", Some("Cluster")),
        ("NodeSummary", Some("NodeSummary")),
        ("Totals", Some("Totals")),
        ("NodeDetail", Some("NodeDetail")),
        ("NodeRoom", Some("NodeRoom")),
        ("TrackReport", Some("TrackReport")),
        ("MuxShard", Some("MuxShard")),
        ("RoomsReport", Some("Rooms")),
        ("RoomReport", Some("Room")),
        ("RoomTrackInfo", Some("RoomTrack")),
        ("Link", Some("Link")),
        ("NodeViewers", Some("NodeViewers")),
        ("DrainAccepted", Some("DrainNodeResponse")),
        // Closing a room is HTTP only (and the CLI).
        ("RoomClosed", None),
        // Listing and ending sessions are HTTP only (and the CLI): one node's, never the cluster's.
        ("SessionsReport", None),
        ("SessionInfo", None),
        ("SessionKind", None),
        ("Transport", None),
        // The dashboard's history is HTTP only: charts are drawn from it by the page.
        ("NodeHistory", None),
        ("NodeSample", None),
        ("RoomSample", None),
        ("ClusterHistory", None),
        ("RoomSeries", None),
        ("RoomPoint", None),
        ("NodeCpuSeries", None),
        ("CpuPoint", None),
        ("NodeReport", None),
        ("NodeInfo", None),
        ("SessionCounts", None),
        ("Role", None),
        ("NodeState", None),
        ("Error", None),
    ];

    /// A JSON schema that flattens another, and the message field that carries that one.
    const FLATTENED: &[(&str, &str, &str)] = &[("NodeDetail", "NodeSummary", "summary")];

    /// The field names of each message of a `.proto` file (one field or message start per
    /// line, as `status.proto` is written).
    fn proto_messages(text: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut messages = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            let line = line.split("//").next().unwrap_or("").trim();
            if let Some(rest) = line.strip_prefix("message ") {
                let name = rest.split([' ', '{']).next().unwrap_or("").to_owned();
                messages.insert(name.clone(), BTreeSet::new());
                current = (!line.ends_with('}')).then_some(name);
            } else if line == "}" {
                current = None;
            } else if let (Some(message), Some((declaration, _))) = (&current, line.split_once('='))
            {
                let field = declaration.split_whitespace().last().unwrap_or("");
                messages.get_mut(message).unwrap().insert(field.to_owned());
            }
        }
        messages
    }

    /// A field added to a status type (and so to the OpenAPI document) fails here, by name,
    /// until `status.proto` and the converters above carry it too; and the other way round.
    #[test]
    fn every_status_field_is_a_field_of_its_proto_message() {
        let proto = proto_messages(include_str!(
            "../../../proto/cascade/status/v1/status.proto"
        ));
        let doc: serde_json::Value = serde_json::from_str(crate::api::openapi::document()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let properties = |schema: &str| -> BTreeSet<String> {
            schemas[schema]["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default()
        };
        let mapped: BTreeSet<&str> = MESSAGES.iter().map(|(schema, _)| *schema).collect();
        let mut missing = vec![];
        for schema in schemas.keys() {
            if !mapped.contains(schema.as_str()) {
                missing.push(format!(
                    "OpenAPI schema {schema}: say which status.proto message carries it \
                     (MESSAGES in this test)"
                ));
            }
        }
        for (schema, message) in MESSAGES {
            let Some(message) = message else { continue };
            let Some(fields) = proto.get(*message) else {
                missing.push(format!("status.proto has no message {message}"));
                continue;
            };
            let mut json = properties(schema);
            let mut grpc = fields.clone();
            for (outer, inner, field) in FLATTENED {
                if outer == schema {
                    json.retain(|p| !properties(inner).contains(p));
                    grpc.remove(*field);
                }
            }
            for p in json.difference(&grpc) {
                missing.push(format!(
                    "{schema}.{p} (HTTP JSON) is not a field of status.proto's {message}"
                ));
            }
            for f in grpc.difference(&json) {
                missing.push(format!(
                    "status.proto's {message}.{f} is not a property of the OpenAPI {schema}"
                ));
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[tokio::test]
    async fn drain_needs_a_loopback_caller_and_this_nodes_id() {
        let node = crate::api::http::tests::test_node(10);
        let service = StatusService::new(node.clone(), Arc::new(Admin::default()));
        let drain = |id: &str, from: Option<&str>| {
            let mut request = Request::new(pb::DrainNodeRequest { id: id.into() });
            if let Some(addr) = from {
                let addr: std::net::SocketAddr = addr.parse().unwrap();
                request
                    .extensions_mut()
                    .insert(tonic::transport::server::TcpConnectInfo {
                        local_addr: None,
                        remote_addr: Some(addr),
                    });
            }
            let service = service.clone();
            async move { service.drain_node(request).await }
        };
        for from in [None, Some("192.0.2.7:5000")] {
            let e = drain("self", from).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{from:?}");
        }
        assert!(!node.is_draining());
        let e = drain("someone-else", Some("127.0.0.1:5000"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        let r = drain("self", Some("127.0.0.1:5000"))
            .await
            .unwrap()
            .into_inner();
        assert!(r.draining && !r.already_draining);
        assert!(node.is_draining());
    }

    #[tokio::test]
    async fn every_method_checks_its_caller_on_a_closed_node() {
        use crate::api::admin::AdminSettings;
        let key = Arc::new(crate::cluster::credential::ClusterKey::new(&[7; 32], "test").unwrap());
        let settings = AdminSettings {
            status_public: false,
            drain_from_loopback: false,
            ..AdminSettings::default()
        };
        let node = crate::api::http::tests::test_node(10);
        let service = StatusService::new(
            node.clone(),
            Arc::new(Admin::new(settings, None, Some(key.clone()))),
        );
        let unauthenticated = |r: tonic::Status| assert_eq!(r.code(), tonic::Code::Unauthenticated);
        unauthenticated(
            service
                .get_cluster(Request::new(pb::GetClusterRequest {}))
                .await
                .unwrap_err(),
        );
        unauthenticated(
            service
                .list_rooms(Request::new(pb::ListRoomsRequest {}))
                .await
                .unwrap_err(),
        );
        unauthenticated(
            service
                .get_room(Request::new(pb::GetRoomRequest { room: "r".into() }))
                .await
                .unwrap_err(),
        );
        unauthenticated(
            service
                .get_node(Request::new(pb::GetNodeRequest { id: "self".into() }))
                .await
                .unwrap_err(),
        );
        unauthenticated(
            service
                .drain_node(Request::new(pb::DrainNodeRequest { id: "self".into() }))
                .await
                .unwrap_err(),
        );
        assert!(!node.is_draining());
        let mut drain = Request::new(pb::DrainNodeRequest { id: "self".into() });
        drain.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", key.token()).parse().unwrap(),
        );
        assert!(
            service
                .drain_node(drain)
                .await
                .unwrap()
                .into_inner()
                .draining
        );
        assert!(node.is_draining());
    }

    #[tokio::test]
    async fn unknown_rooms_and_nodes_are_not_found_and_bad_names_invalid() {
        let service = StatusService::new(
            crate::api::http::tests::test_node(10),
            Arc::new(Admin::default()),
        );
        let room = |name: &str| Request::new(pb::GetRoomRequest { room: name.into() });
        let code = |r: Result<Response<pb::Room>, tonic::Status>| r.unwrap_err().code();
        assert_eq!(
            code(service.get_room(room("nope")).await),
            tonic::Code::NotFound
        );
        assert_eq!(
            code(service.get_room(room("bad name")).await),
            tonic::Code::InvalidArgument
        );
        let node = Request::new(pb::GetNodeRequest { id: "nope".into() });
        assert_eq!(
            service.get_node(node).await.unwrap_err().code(),
            tonic::Code::NotFound
        );
        let me = Request::new(pb::GetNodeRequest { id: "self".into() });
        let detail = service.get_node(me).await.unwrap().into_inner();
        assert!(detail.summary.unwrap().reachable);
    }
}
