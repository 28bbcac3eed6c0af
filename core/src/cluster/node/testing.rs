//! Nodes for the node's unit tests: no servers, no media, a store of the test's choosing.

use super::Node;
use crate::cluster::routing::{NodeInfo, Role, RoutingStore};
use crate::cluster::settings::NodeSettings;
use std::sync::Arc;
use std::time::Duration;

/// A node `id` over `store`, capacity 10, lease 10 s; never bound to any address.
pub(super) fn node(id: &str, role: Role, store: Arc<dyn RoutingStore>) -> Arc<Node> {
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().expect("an address");
    let settings = NodeSettings {
        role,
        node_id: id.into(),
        http_listen: addr,
        grpc_listen: addr,
        media: crate::rtc::pc::MediaSettings {
            bind_ip: addr.ip(),
            advertise_ip: None,
            udp_ports: None,
            ice_tcp_port: None,
            mux: None,
        },
        http_advertise: None,
        grpc_advertise: None,
        upstream: None,
        capacity: 10,
        connect_timeout: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(10),
        lease: Duration::from_secs(10),
        max_fanout: 16,
        max_depth: 4,
        failover_timeout: Duration::from_secs(10),
        credential: Default::default(),
        grpc_tls: None,
        locality: Default::default(),
    };
    Node::new(settings, store, addr, addr)
}

/// An edge's registry entry.
pub(super) fn info(id: &str, load: u32, draining: bool) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        role: Role::Edge,
        http_url: format!("http://{id}"),
        grpc_url: format!("http://{id}:9"),
        capacity: 10,
        load,
        draining,
        version: "test".into(),
        heartbeat_unix_ms: None,
        cpu_percent: None,
        region: None,
        zone: None,
    }
}

/// How many times `node` called the store's `op`, from its routing metrics.
pub(super) fn counted(node: &Node, op: &str) -> u64 {
    let text = node.metrics.render(&Default::default());
    let series = format!("cascade_routing_duration_seconds_count{{op=\"{op}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
