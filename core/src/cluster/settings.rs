//! What a node is told at start: its role, addresses, media settings, limits and timings.
//! Composed from the flags by `crate::config`; nothing here reads flags or the environment.

use crate::cluster::credential::Credential;
use crate::cluster::locality::Locality;
use crate::cluster::routing::Role;
use crate::cluster::tls::GrpcTls;
use crate::rtc::pc::MediaSettings;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A node's own settings.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub role: Role,
    pub node_id: String,
    pub http_listen: SocketAddr,
    pub grpc_listen: SocketAddr,
    pub media: MediaSettings,
    pub http_advertise: Option<String>,
    pub grpc_advertise: Option<String>,
    /// gRPC URL to pull rooms from when no shared routing store says where they are.
    pub upstream: Option<String>,
    /// Sessions served at most: publishers, viewers and relay links, connected or connecting.
    pub capacity: u32,
    /// How long a new session may take to connect (ICE and DTLS) before it is closed and its
    /// slot (a publisher's: its room) freed.
    pub connect_timeout: Duration,
    /// How long a drain waits for sessions to leave before the node exits anyway.
    pub drain_timeout: Duration,
    /// How long routing entries live without a heartbeat.
    pub lease: Duration,
    /// Relay links one node feeds directly per room (0: unlimited).
    pub max_fanout: usize,
    /// Hops below the origin an edge may be to feed other edges.
    pub max_depth: usize,
    /// How long a room waits for a new source when its source is lost.
    pub failover_timeout: Duration,
    /// This node's credential on calls to other nodes (`--cluster-secret`), and the key that
    /// checks theirs.
    pub credential: Credential,
    /// Mutual TLS on the gRPC port and toward `https://` upstreams (`--grpc-tls-*`).
    pub grpc_tls: Option<Arc<GrpcTls>>,
    /// Where the node runs (`--region`, `--zone`): registered, and used by placement and the
    /// relay tree.
    pub locality: Locality,
}

impl NodeSettings {
    /// How often the node renews its routing entries: three renewals per lease, so one lost
    /// heartbeat never lets an entry expire.
    pub fn heartbeat(&self) -> Duration {
        self.lease / 3
    }
}
