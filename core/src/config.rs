//! Node configuration: one struct, set by flags and `CASCADE_*` environment variables (a flag
//! `--http-listen` is `CASCADE_HTTP_LISTEN`), with defaults that work on a laptop and a
//! validation step that names the key at fault.

use crate::api::admin::AdminSettings;
use crate::api::auth::{Auth, MIN_SECRET_BYTES};
use crate::api::client_limits::{ClientLimits, parse_proxies};
use crate::api::ice_servers::{IceServers, TurnCredentials};
use crate::api::listener::HttpLimits;
use crate::cluster::credential::{ClusterKey, Credential};
use crate::cluster::routing::Role;
use crate::cluster::settings::NodeSettings;
use crate::cluster::tls::GrpcTls;
use crate::obs::telemetry::TelemetrySettings;
use crate::rtc::pc::{MediaSettings, MuxSettings};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The most UDP mux shards a node runs.
const MAX_MUX_SHARDS: u16 = 256;

/// Flags shared by the origin and edge binaries. Each is documented by its `--help` line.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// YAML file of settings whose keys are these flags' long names (`http-listen:
    /// 0.0.0.0:8080`, a list where a flag repeats). Flags and `CASCADE_*` variables override it;
    /// an unknown key or a bad value stops the node. Example: deploy/cascade.example.yaml.
    #[arg(long, env = "CASCADE_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Address the HTTP server (WHIP/WHEP, API, pages, health) listens on; port 0 picks one.
    #[arg(long, env = "CASCADE_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,

    /// Address the gRPC relay service listens on; port 0 picks one.
    #[arg(long, env = "CASCADE_GRPC_LISTEN", default_value = "127.0.0.1:9090")]
    pub grpc_listen: SocketAddr,

    /// This node's id in the cluster (default: role and a random suffix).
    #[arg(long, env = "CASCADE_NODE_ID")]
    pub node_id: Option<String>,

    /// IP address put in ICE candidates (a public or node IP behind NAT or in Kubernetes).
    #[arg(long, env = "CASCADE_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,

    /// IP address media sockets bind to (default: the advertise IP, else 127.0.0.1).
    #[arg(long, env = "CASCADE_MEDIA_BIND")]
    pub media_bind: Option<IpAddr>,

    /// UDP port range for media, `LOW-HIGH` (inclusive); `0` lets the OS pick.
    #[arg(long, env = "CASCADE_UDP_PORTS", default_value = "0")]
    pub udp_ports: String,

    /// Serve every WHEP viewer on one UDP socket driven by one task (the UDP mux), instead of a
    /// socket and task per viewer. `false` gives each viewer its own peer connection.
    #[arg(long, env = "CASCADE_UDP_MUX", default_value_t = true, action = clap::ArgAction::Set)]
    pub udp_mux: bool,

    /// UDP port of the mux (the one port viewers' media uses, whatever the shards); 0 lets the OS
    /// pick. Several shards share it, a socket each (`SO_REUSEPORT`).
    #[arg(long, env = "CASCADE_UDP_MUX_PORT", default_value_t = 0)]
    pub udp_mux_port: u16,

    /// Mux shards: tasks (each up to one core) with a socket and a share of the viewers each, all
    /// on the mux's port; 0: one per core the node may use.
    #[arg(long, env = "CASCADE_UDP_MUX_SHARDS", default_value_t = 0)]
    pub udp_mux_shards: u16,

    /// TCP port for ICE over TCP (RFC 6544), for clients whose network drops UDP: every
    /// session's answer carries a passive TCP candidate on it. `0` lets the OS pick (the log
    /// names it); `off` turns ICE over TCP off.
    #[arg(long, env = "CASCADE_ICE_TCP_PORT", default_value = "0")]
    pub ice_tcp_port: String,

    /// The HTTP base URL other nodes and redirected clients use for this node.
    #[arg(long, env = "CASCADE_HTTP_ADVERTISE")]
    pub http_advertise: Option<String>,

    /// The gRPC URL other nodes use to reach this node's relay service.
    #[arg(long, env = "CASCADE_GRPC_ADVERTISE")]
    pub grpc_advertise: Option<String>,

    /// Sessions this node serves at most: WHIP publishers, WHEP viewers and relay links to
    /// other nodes, whatever its role, connected or still connecting. A full node sends new
    /// viewers and publishers to another node with room (307) or refuses them (503).
    #[arg(long, env = "CASCADE_CAPACITY", default_value_t = 1000)]
    pub capacity: u32,

    /// Seconds a new session (WHIP, WHEP, relay link) has to connect (ICE and DTLS); then it
    /// is closed and frees its capacity slot, and a publisher's new room is released.
    #[arg(
        long,
        env = "CASCADE_CONNECT_TIMEOUT",
        default_value_t = 5,
        value_name = "SECS"
    )]
    pub connect_timeout: u64,

    /// WHIP/WHEP offers one client may send per second (also the burst); more get 429 with
    /// `Retry-After`. 0: no limit.
    #[arg(
        long,
        env = "CASCADE_MAX_REQUESTS_PER_IP_PER_SEC",
        default_value_t = 0,
        value_name = "N"
    )]
    pub max_requests_per_ip_per_sec: u32,

    /// WHIP/WHEP sessions of one client that may be answered but not yet connected; more
    /// offers get 429 with `Retry-After`. 0: no limit.
    #[arg(
        long,
        env = "CASCADE_MAX_PENDING_PER_IP",
        default_value_t = 0,
        value_name = "N"
    )]
    pub max_pending_per_ip: u32,

    /// Proxies (CIDR networks or addresses, comma-separated) whose `X-Forwarded-For` entry
    /// names the client for the per-client limits; from any other peer the header is ignored.
    #[arg(
        long,
        env = "CASCADE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR,..."
    )]
    pub trusted_proxies: Vec<String>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "CASCADE_LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    /// Redis URL of the cluster's shared routing store: `redis://[user:pass@]host:6379/0`,
    /// `rediss://…` (TLS), or `redis+sentinel://[user:pass@]host:26379,host:26379/master[/db]`
    /// (`rediss+sentinel://` with TLS) to follow a Sentinel-managed master through failovers.
    /// Without it the node keeps its routing in memory and sees no other node. Never logged with
    /// its password.
    #[arg(long, env = "CASCADE_REDIS", hide_env_values = true)]
    pub redis: Option<String>,

    /// PEM file of the certificate authorities a `rediss://` Redis (and its sentinels) must
    /// present a certificate from, instead of the public web roots.
    #[arg(long, env = "CASCADE_REDIS_CA")]
    pub redis_ca: Option<String>,

    /// Prefix of every Redis key this node writes, so several clusters can share one Redis.
    #[arg(long, env = "CASCADE_REDIS_PREFIX", default_value = crate::cluster::routing::redis::schema::DEFAULT_PREFIX)]
    pub redis_prefix: String,

    /// Seconds a draining node (SIGTERM, `POST /v1/nodes/self/drain`) keeps serving its sessions
    /// before it exits anyway.
    #[arg(long, env = "CASCADE_DRAIN_TIMEOUT", default_value_t = 30)]
    pub drain_timeout: u64,

    /// Seconds the node's routing entries outlive its last heartbeat (heartbeats run every
    /// third of it). Shorter notices dead nodes sooner and costs more Redis operations.
    #[arg(long, env = "CASCADE_LEASE_SECS", default_value_t = 10)]
    pub lease_secs: u64,

    /// Relay links one node feeds directly per room (0: unlimited); further edges pull the room
    /// from an edge that carries it, forming a relay tree.
    #[arg(long, env = "CASCADE_MAX_EDGE_FANOUT", default_value_t = 16)]
    pub max_edge_fanout: usize,

    /// Hops below the origin an edge may be to feed other edges (the relay tree's depth).
    #[arg(long, env = "CASCADE_MAX_RELAY_DEPTH", default_value_t = 4)]
    pub max_relay_depth: usize,

    /// Seconds a room outlives the loss of its source while viewers stay connected: an origin
    /// waits this long for a vanished publisher to come back, an edge this long to re-attach to
    /// another upstream. Then the room ends.
    #[arg(long, env = "CASCADE_FAILOVER_TIMEOUT", default_value_t = 20)]
    pub failover_timeout: u64,

    /// The region this node runs in (`eu-west`): a viewer hinting its region (`?region=` on
    /// WHEP) is placed on an edge of that region, and an edge pulls a room from an edge of its
    /// own region that carries it before crossing regions. A Kubernetes label value (at most 63
    /// letters, digits, `-`, `_`, `.`); empty: none.
    #[arg(long, env = "CASCADE_REGION", value_name = "NAME")]
    pub region: Option<String>,

    /// The zone this node runs in, within its region (`eu-west-1a`): viewers hinting it
    /// (`?zone=`) prefer this node's zone to the rest of its region. Same form as `--region`.
    #[arg(long, env = "CASCADE_ZONE", value_name = "NAME")]
    pub zone: Option<String>,
    /// OTLP/gRPC endpoint to export traces to (`http://collector:4317`). Without it,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is used when set; with neither, no traces are exported.
    #[arg(long, env = "CASCADE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Secret (at least 32 bytes) that WHIP bearer tokens are signed with (HS256 JWTs naming
    /// the room and granting `publish`; see `cascade_core::api::auth`). Without it anyone may
    /// publish. Every node of a cluster needs the same one.
    #[arg(long, env = "CASCADE_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<Secret>,

    /// Secret (at least 32 bytes) every node of the cluster shares: each gRPC call between
    /// nodes (relay and status) carries a short-lived token signed with it, and a node with it
    /// refuses calls without one (`UNAUTHENTICATED`). Without it the gRPC port trusts whoever
    /// reaches it. Generate one with `openssl rand -base64 32`.
    #[arg(long, env = "CASCADE_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<Secret>,

    /// PEM certificate (chain) of this node for mutual TLS on the gRPC port. With
    /// `--grpc-tls-key` and `--grpc-tls-ca`, the gRPC port speaks only TLS and requires a
    /// client certificate signed by the CA, and `https://` upstreams are reached with it.
    #[arg(long, env = "CASCADE_GRPC_TLS_CERT", value_name = "PEM")]
    pub grpc_tls_cert: Option<String>,
    /// PEM private key of `--grpc-tls-cert`.
    #[arg(long, env = "CASCADE_GRPC_TLS_KEY", value_name = "PEM")]
    pub grpc_tls_key: Option<String>,
    /// PEM CA certificate(s) that peers' gRPC certificates (clients' and upstreams') must
    /// chain to.
    #[arg(long, env = "CASCADE_GRPC_TLS_CA", value_name = "PEM")]
    pub grpc_tls_ca: Option<String>,

    /// With `--auth-secret`: WHEP viewers need a token too (granting `subscribe`).
    #[arg(long, env = "CASCADE_AUTH_VIEWERS", default_value_t = false, action = clap::ArgAction::Set)]
    pub auth_viewers: bool,

    /// Seconds a client has to send a whole HTTP request head, from connecting (or from the
    /// first byte of the next request on a kept-alive connection); then it is closed.
    #[arg(
        long,
        env = "CASCADE_HTTP_HEADER_TIMEOUT",
        default_value_t = 10,
        value_name = "SECS"
    )]
    pub http_header_timeout: u64,

    /// Seconds a kept-alive HTTP connection may wait for its next request; then it is closed.
    #[arg(
        long,
        env = "CASCADE_HTTP_IDLE_TIMEOUT",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub http_idle_timeout: u64,

    /// Seconds a client has to send a request body, from the end of its head; then the request
    /// fails (400) and the connection is closed.
    #[arg(
        long,
        env = "CASCADE_HTTP_BODY_TIMEOUT",
        default_value_t = 10,
        value_name = "SECS"
    )]
    pub http_body_timeout: u64,

    /// HTTP connections open at once; more are closed as soon as they are accepted.
    #[arg(
        long,
        env = "CASCADE_HTTP_MAX_CONNECTIONS",
        default_value_t = 10_000,
        value_name = "N"
    )]
    pub http_max_connections: usize,

    /// Whether the status API (`/v1/*` reads), `/dashboard` and `/metrics` answer without an
    /// admin credential. Default: true without `--auth-secret`, false with it. `/healthz` and
    /// `/readyz` always answer.
    #[arg(long, env = "CASCADE_STATUS_PUBLIC", action = clap::ArgAction::Set, value_name = "BOOL")]
    pub status_public: Option<bool>,

    /// Whether `POST /v1/nodes/{id}/drain` (and gRPC `DrainNode`) from a loopback peer needs no
    /// admin credential (the Kubernetes preStop hook). Elsewhere one is always needed.
    #[arg(long, env = "CASCADE_DRAIN_FROM_LOOPBACK", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub drain_from_loopback: bool,

    /// A browser origin (`https://ops.example`) allowed to call the status API from its pages
    /// (CORS); repeat for several, comma-separated in the environment. Without any, the status
    /// API sends no CORS headers. WHIP/WHEP allow every origin regardless.
    #[arg(
        long = "cors-origin",
        env = "CASCADE_CORS_ORIGIN",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub cors_origins: Vec<String>,

    /// A STUN or TURN server announced to WHIP and WHEP clients (RFC 9725 `Link` headers, on
    /// every answer and on `OPTIONS`), e.g. `turn:turn.example.com:3478?transport=tcp`: how a
    /// client on a network without UDP reaches the node. Repeat for several, comma-separated in
    /// the environment. TURN servers need `--turn-secret` or `--turn-username`/`--turn-password`.
    #[arg(
        long = "ice-servers",
        env = "CASCADE_ICE_SERVERS",
        value_delimiter = ',',
        value_name = "URI"
    )]
    pub ice_servers: Vec<String>,

    /// Secret shared with the TURN servers (coturn's `static-auth-secret`): each answer carries
    /// TURN REST API credentials minted from it, valid for `--turn-ttl`.
    #[arg(long, env = "CASCADE_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<Secret>,

    /// Seconds the credentials minted from `--turn-secret` stay valid: at least as long as a
    /// viewer watches, since TURN allocations are refreshed with them.
    #[arg(
        long,
        env = "CASCADE_TURN_TTL",
        default_value_t = 86_400,
        value_name = "SECS"
    )]
    pub turn_ttl: u64,

    /// A static TURN username, announced with `--turn-password` (without `--turn-secret`).
    #[arg(long, env = "CASCADE_TURN_USERNAME")]
    pub turn_username: Option<String>,

    /// The static TURN password that goes with `--turn-username`.
    #[arg(long, env = "CASCADE_TURN_PASSWORD", hide_env_values = true)]
    pub turn_password: Option<Secret>,
}

/// A secret given on the command line or in the environment: kept out of `Debug` and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A fresh random secret (256 bits, as 64 hex characters): for a demo cluster in one
    /// process, whose nodes share it.
    pub fn generate() -> Self {
        Self(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    }

    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// A node's validated configuration: each part's own settings, composed from the flags.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// What the node itself (rooms, sessions, routing entries, media) is told.
    pub node: NodeSettings,
    /// Where the routing store is.
    pub routing: RoutingSettings,
    /// Logs and trace export.
    pub telemetry: TelemetrySettings,
    /// Bearer-token checks on WHIP (and WHEP), when `--auth-secret` is set.
    pub auth: Option<Arc<Auth>>,
    /// What the HTTP listener allows a client (timeouts, connection cap).
    pub http: HttpLimits,
    /// Who may read the status API and drain the node.
    pub admin: AdminSettings,
    /// Per-client limits on WHIP/WHEP offers.
    pub clients: ClientLimits,
    /// STUN and TURN servers announced to WHIP/WHEP clients.
    pub ice_servers: IceServers,
}

/// The routing store's place: Redis (`--redis`) or this process's memory.
#[derive(Clone)]
pub struct RoutingSettings {
    /// Redis URL of the shared routing store; `None` keeps routing in memory.
    pub redis: Option<String>,
    /// Prefix of the Redis keys.
    pub redis_prefix: String,
    /// The PEM bundle read from `--redis-ca`.
    pub redis_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for RoutingSettings {
    // Not derived: the URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingSettings")
            .field(
                "redis",
                &self
                    .redis
                    .as_deref()
                    .map(crate::cluster::routing::redis::target::redact),
            )
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_ca", &self.redis_ca.as_ref().map(|_| "<PEM>"))
            .finish()
    }
}

/// A configuration error, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key} ({env}): {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub env: &'static str,
    pub message: String,
}

fn err(key: &'static str, env: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        env,
        message: message.into(),
    }
}

/// Parses `LOW-HIGH` (or `0`, for "let the OS pick").
pub fn parse_port_range(s: &str) -> Result<Option<(u16, u16)>, String> {
    let s = s.trim();
    if s == "0" || s.is_empty() {
        return Ok(None);
    }
    let (low, high) = s
        .split_once('-')
        .ok_or_else(|| format!("expected LOW-HIGH (e.g. 40000-40999) or 0, got {s:?}"))?;
    let low: u16 = low
        .trim()
        .parse()
        .map_err(|_| format!("{low:?} is not a port number"))?;
    let high: u16 = high
        .trim()
        .parse()
        .map_err(|_| format!("{high:?} is not a port number"))?;
    if low == 0 || low > high {
        return Err(format!(
            "range {low}-{high} is empty or starts at 0 (need 1 <= LOW <= HIGH)"
        ));
    }
    Ok(Some((low, high)))
}

fn check_url(
    key: &'static str,
    env: &'static str,
    url: &Option<String>,
) -> Result<(), ConfigError> {
    if let Some(u) = url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(err(
            key,
            env,
            format!("{u:?} must be an http:// or https:// URL"),
        ));
    }
    Ok(())
}

impl NodeArgs {
    /// What a stand-alone edge needs: an `--upstream`, or a `--redis` that says which origin
    /// owns each room. (An edge in one process with its origin, like the demo's, shares an
    /// in-memory store instead and needs neither.)
    pub fn check_edge_source(&self, upstream: &Option<String>) -> Result<(), ConfigError> {
        if upstream.is_none() && self.redis.is_none() {
            return Err(err(
                "--upstream or --redis",
                "CASCADE_UPSTREAM or CASCADE_REDIS",
                "an edge needs an upstream to pull rooms from (e.g. http://127.0.0.1:9090) \
                 or a Redis that says which origin owns each room",
            ));
        }
        Ok(())
    }

    /// The `--redis-ca` bundle, read now so a missing file stops the node at start.
    fn read_redis_ca(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(path) = &self.redis_ca else {
            return Ok(None);
        };
        let pem = std::fs::read(path).map_err(|e| {
            err(
                "--redis-ca",
                "CASCADE_REDIS_CA",
                format!("cannot read {path}: {e}"),
            )
        })?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(err(
                "--redis-ca",
                "CASCADE_REDIS_CA",
                format!("{path} holds no PEM certificate"),
            ));
        }
        Ok(Some(pem))
    }

    /// Validates the flags into a [`NodeConfig`] for `role`.
    pub fn into_config(
        self,
        role: Role,
        upstream: Option<String>,
    ) -> Result<NodeConfig, ConfigError> {
        let udp_ports = parse_port_range(&self.udp_ports)
            .map_err(|m| err("--udp-ports", "CASCADE_UDP_PORTS", m))?;
        let ice_tcp_port = match self.ice_tcp_port.trim() {
            "off" => None,
            port => Some(port.parse::<u16>().map_err(|_| {
                err(
                    "--ice-tcp-port",
                    "CASCADE_ICE_TCP_PORT",
                    format!("{port:?} is neither a TCP port (0-65535) nor off"),
                )
            })?),
        };
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(err(
                "--log-format",
                "CASCADE_LOG_FORMAT",
                format!("{:?} is neither text nor json", self.log_format),
            ));
        }
        if self.capacity == 0 {
            return Err(err("--capacity", "CASCADE_CAPACITY", "must be at least 1"));
        }
        if self.udp_mux_shards > MAX_MUX_SHARDS {
            return Err(err(
                "--udp-mux-shards",
                "CASCADE_UDP_MUX_SHARDS",
                "must be 0 (one per core) to 256",
            ));
        }
        check_url(
            "--http-advertise",
            "CASCADE_HTTP_ADVERTISE",
            &self.http_advertise,
        )?;
        check_url(
            "--grpc-advertise",
            "CASCADE_GRPC_ADVERTISE",
            &self.grpc_advertise,
        )?;
        check_url("--upstream", "CASCADE_UPSTREAM", &upstream)?;
        check_url(
            "--otlp-endpoint",
            "CASCADE_OTLP_ENDPOINT",
            &self.otlp_endpoint,
        )?;
        let redis_ca = self.read_redis_ca()?;
        if let Some(url) = &self.redis {
            crate::cluster::routing::redis::target::parse(url, redis_ca.as_deref()).map_err(
                |why| {
                    err(
                        "--redis",
                        "CASCADE_REDIS",
                        format!(
                            "{}: {why} (forms: redis://[user:pass@]host:6379/0, rediss://…, \
                         redis+sentinel://host:26379,host:26379/master-name)",
                            crate::cluster::routing::redis::target::redact(url)
                        ),
                    )
                },
            )?;
        } else if self.redis_ca.is_some() {
            return Err(err(
                "--redis-ca",
                "CASCADE_REDIS_CA",
                "needs --redis with a rediss:// URL",
            ));
        }
        if self.redis_prefix.is_empty() {
            return Err(err(
                "--redis-prefix",
                "CASCADE_REDIS_PREFIX",
                "must not be empty",
            ));
        }
        if self.drain_timeout > 24 * 3600 {
            return Err(err(
                "--drain-timeout",
                "CASCADE_DRAIN_TIMEOUT",
                "at most 86400 seconds",
            ));
        }
        if self.failover_timeout > 3600 {
            return Err(err(
                "--failover-timeout",
                "CASCADE_FAILOVER_TIMEOUT",
                "at most 3600 seconds",
            ));
        }
        if !(1..=3600).contains(&self.lease_secs) {
            return Err(err(
                "--lease-secs",
                "CASCADE_LEASE_SECS",
                "between 1 and 3600 seconds",
            ));
        }
        if let Some(id) = &self.node_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return Err(err(
                "--node-id",
                "CASCADE_NODE_ID",
                "1 to 64 characters of letters, digits, '-', '_' or '.'",
            ));
        }
        if let Some(ip) = self.advertise_ip
            && ip.is_unspecified()
        {
            return Err(err(
                "--advertise-ip",
                "CASCADE_ADVERTISE_IP",
                "cannot be 0.0.0.0 or ::, peers need an address they can reach",
            ));
        }
        if let Some(secret) = &self.auth_secret
            && secret.expose().len() < MIN_SECRET_BYTES
        {
            return Err(err(
                "--auth-secret",
                "CASCADE_AUTH_SECRET",
                format!(
                    "at least {} bytes (HS256), e.g. `openssl rand -base64 32`",
                    MIN_SECRET_BYTES
                ),
            ));
        }
        if self.auth_viewers && self.auth_secret.is_none() {
            return Err(err(
                "--auth-viewers",
                "CASCADE_AUTH_VIEWERS",
                "needs --auth-secret (the secret viewers' tokens are signed with)",
            ));
        }
        let locality =
            crate::cluster::locality::Locality::parse(self.region.as_deref(), self.zone.as_deref())
                .map_err(|m| {
                    if m.starts_with("zone") {
                        err("--zone", "CASCADE_ZONE", m)
                    } else {
                        err("--region", "CASCADE_REGION", m)
                    }
                })?;
        let http = self.http_limits()?;
        if !(1..=300).contains(&self.connect_timeout) {
            return Err(err(
                "--connect-timeout",
                "CASCADE_CONNECT_TIMEOUT",
                "between 1 and 300 seconds",
            ));
        }
        let clients = ClientLimits {
            requests_per_sec: self.max_requests_per_ip_per_sec,
            max_pending: self.max_pending_per_ip,
            trusted_proxies: parse_proxies(&self.trusted_proxies)
                .map_err(|m| err("--trusted-proxies", "CASCADE_TRUSTED_PROXIES", m))?,
        };
        let admin = self.admin_settings()?;
        let ice_servers = self.ice_servers()?;
        let grpc_tls = self.grpc_tls()?;
        let auth = match &self.auth_secret {
            Some(secret) => Some(Arc::new(
                Auth::new(secret.expose(), self.auth_viewers)
                    .map_err(|e| err("--auth-secret", "CASCADE_AUTH_SECRET", e))?,
            )),
            None => None,
        };
        let bind_ip = self
            .media_bind
            .or(self.advertise_ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let node_id = self.node_id.unwrap_or_else(|| {
            format!(
                "{}-{}",
                role.as_str(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
        });
        let cluster_key = match &self.cluster_secret {
            Some(secret) => Some(Arc::new(
                ClusterKey::new(secret.expose(), &node_id)
                    .map_err(|e| err("--cluster-secret", "CASCADE_CLUSTER_SECRET", e))?,
            )),
            None => None,
        };
        let telemetry = TelemetrySettings {
            service: format!("cascade-{}", role.as_str()),
            node_id: node_id.clone(),
            log_format: self.log_format,
            otlp_endpoint: self.otlp_endpoint,
        };
        let node = NodeSettings {
            role,
            node_id,
            http_listen: self.http_listen,
            grpc_listen: self.grpc_listen,
            media: MediaSettings {
                bind_ip,
                advertise_ip: self.advertise_ip,
                udp_ports,
                ice_tcp_port,
                mux: self.udp_mux.then_some(MuxSettings {
                    port: self.udp_mux_port,
                    shards: match self.udp_mux_shards {
                        // The cores this process may use (its cgroup's CPU quota, its
                        // affinity): a shard each.
                        0 => std::thread::available_parallelism()
                            .map_or(1, |n| n.get())
                            .min(usize::from(MAX_MUX_SHARDS)) as u16,
                        n => n,
                    },
                }),
            },
            http_advertise: self.http_advertise,
            grpc_advertise: self.grpc_advertise,
            upstream,
            capacity: self.capacity,
            connect_timeout: Duration::from_secs(self.connect_timeout),
            drain_timeout: Duration::from_secs(self.drain_timeout),
            lease: Duration::from_secs(self.lease_secs),
            max_fanout: self.max_edge_fanout,
            max_depth: self.max_relay_depth.max(1),
            failover_timeout: Duration::from_secs(self.failover_timeout),
            credential: Credential(cluster_key),
            grpc_tls,
            locality,
        };
        Ok(NodeConfig {
            node,
            routing: RoutingSettings {
                redis_ca,
                redis: self.redis,
                redis_prefix: self.redis_prefix,
            },
            telemetry,
            auth,
            http,
            admin,
            clients,
            ice_servers,
        })
    }

    /// `--ice-servers` with the TURN credentials to announce, checked.
    fn ice_servers(&self) -> Result<IceServers, ConfigError> {
        let credentials = match (&self.turn_secret, &self.turn_username, &self.turn_password) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(err(
                    "--turn-secret",
                    "CASCADE_TURN_SECRET",
                    "use either --turn-secret or --turn-username/--turn-password, not both",
                ));
            }
            (Some(secret), None, None) => TurnCredentials::Rest {
                secret: secret.expose().to_vec(),
                ttl_secs: self.turn_ttl.max(60),
            },
            (None, Some(username), Some(password)) => TurnCredentials::Static {
                username: username.clone(),
                password: String::from_utf8_lossy(password.expose()).into_owned(),
            },
            (None, None, None) => TurnCredentials::None,
            (None, _, _) => {
                return Err(err(
                    "--turn-username",
                    "CASCADE_TURN_USERNAME",
                    "--turn-username and --turn-password go together",
                ));
            }
        };
        let urls = self
            .ice_servers
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        IceServers::new(urls, credentials)
            .map_err(|m| err("--ice-servers", "CASCADE_ICE_SERVERS", m))
    }

    /// The admin surface's flags, resolved and checked: a node that would ask for an admin
    /// credential must have a secret to check one with.
    fn admin_settings(&self) -> Result<AdminSettings, ConfigError> {
        let credential = self.auth_secret.is_some() || self.cluster_secret.is_some();
        let status_public = crate::api::admin::status_public_default(
            self.status_public,
            self.auth_secret.is_some(),
        );
        if !status_public && !credential {
            return Err(err(
                "--status-public",
                "CASCADE_STATUS_PUBLIC",
                "false needs --auth-secret or --cluster-secret: no admin credential could be \
                 checked without one",
            ));
        }
        if !self.drain_from_loopback && !credential {
            return Err(err(
                "--drain-from-loopback",
                "CASCADE_DRAIN_FROM_LOOPBACK",
                "false needs --auth-secret or --cluster-secret: nobody could drain the node",
            ));
        }
        let cors_origins = self
            .cors_origins
            .iter()
            .filter(|o| !o.trim().is_empty())
            .map(|o| crate::api::admin::check_origin(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| err("--cors-origin", "CASCADE_CORS_ORIGIN", m))?;
        Ok(AdminSettings {
            status_public,
            drain_from_loopback: self.drain_from_loopback,
            cors_origins,
        })
    }

    /// The `--grpc-tls-*` flags: all three or none, the files loaded and checked.
    fn grpc_tls(&self) -> Result<Option<Arc<GrpcTls>>, ConfigError> {
        match (&self.grpc_tls_cert, &self.grpc_tls_key, &self.grpc_tls_ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => GrpcTls::load(cert, key, ca)
                .map(Some)
                .map_err(|e| err("--grpc-tls-cert", "CASCADE_GRPC_TLS_CERT", e.to_string())),
            _ => Err(err(
                "--grpc-tls-cert",
                "CASCADE_GRPC_TLS_CERT",
                "mutual TLS needs all three of --grpc-tls-cert, --grpc-tls-key and --grpc-tls-ca",
            )),
        }
    }

    /// The `--http-*` flags, checked.
    fn http_limits(&self) -> Result<HttpLimits, ConfigError> {
        let secs = |key: &'static str, env: &'static str, value: u64, max: u64| {
            if (1..=max).contains(&value) {
                Ok(Duration::from_secs(value))
            } else {
                Err(err(key, env, format!("between 1 and {max} seconds")))
            }
        };
        if !(1..=1_000_000).contains(&self.http_max_connections) {
            return Err(err(
                "--http-max-connections",
                "CASCADE_HTTP_MAX_CONNECTIONS",
                "between 1 and 1000000",
            ));
        }
        Ok(HttpLimits {
            header_timeout: secs(
                "--http-header-timeout",
                "CASCADE_HTTP_HEADER_TIMEOUT",
                self.http_header_timeout,
                3600,
            )?,
            idle_timeout: secs(
                "--http-idle-timeout",
                "CASCADE_HTTP_IDLE_TIMEOUT",
                self.http_idle_timeout,
                86_400,
            )?,
            body_timeout: secs(
                "--http-body-timeout",
                "CASCADE_HTTP_BODY_TIMEOUT",
                self.http_body_timeout,
                3600,
            )?,
            max_connections: self.http_max_connections,
        })
    }
}

pub mod file;

#[cfg(test)]
mod tests;
