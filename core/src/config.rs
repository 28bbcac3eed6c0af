//! Node configuration: one struct, set by flags and `CASCADE_*` environment variables (a flag
//! `--http-listen` is `CASCADE_HTTP_LISTEN`), with defaults that work on a laptop and a
//! validation step that names the key at fault.

use crate::api::auth::{Auth, MIN_SECRET_BYTES};
use crate::api::listener::HttpLimits;
use crate::cluster::routing::Role;
use crate::cluster::settings::NodeSettings;
use crate::obs::telemetry::TelemetrySettings;
use crate::rtc::pc::{MediaSettings, MuxSettings};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Flags shared by the origin and edge binaries. Each is documented by its `--help` line.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
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

    /// UDP port of the mux socket (the one port viewers' media uses); 0 lets the OS pick. With
    /// several shards, shard `i` uses this port + `i`.
    #[arg(long, env = "CASCADE_UDP_MUX_PORT", default_value_t = 0)]
    pub udp_mux_port: u16,

    /// Mux shards: tasks (each up to one core) with a socket and a share of the viewers each.
    #[arg(long, env = "CASCADE_UDP_MUX_SHARDS", default_value_t = 1)]
    pub udp_mux_shards: u16,

    /// The HTTP base URL other nodes and redirected clients use for this node.
    #[arg(long, env = "CASCADE_HTTP_ADVERTISE")]
    pub http_advertise: Option<String>,

    /// The gRPC URL other nodes use to reach this node's relay service.
    #[arg(long, env = "CASCADE_GRPC_ADVERTISE")]
    pub grpc_advertise: Option<String>,

    /// Sessions this node accepts at most (viewers on an edge, publishers on an origin).
    #[arg(long, env = "CASCADE_CAPACITY", default_value_t = 1000)]
    pub capacity: u32,

    /// Log format: `text` or `json`.
    #[arg(long, env = "CASCADE_LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    /// Redis URL of the cluster's shared routing store (`redis://host:6379/0`). Without it the
    /// node keeps its routing in memory and sees no other node.
    #[arg(long, env = "CASCADE_REDIS")]
    pub redis: Option<String>,

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
    /// OTLP/gRPC endpoint to export traces to (`http://collector:4317`). Without it,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is used when set; with neither, no traces are exported.
    #[arg(long, env = "CASCADE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Secret (at least 32 bytes) that WHIP bearer tokens are signed with (HS256 JWTs naming
    /// the room and granting `publish`; see `cascade_core::api::auth`). Without it anyone may
    /// publish. Every node of a cluster needs the same one.
    #[arg(long, env = "CASCADE_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,

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
}

/// The routing store's place: Redis (`--redis`) or this process's memory.
#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// Redis URL of the shared routing store; `None` keeps routing in memory.
    pub redis: Option<String>,
    /// Prefix of the Redis keys.
    pub redis_prefix: String,
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

    /// Validates the flags into a [`NodeConfig`] for `role`.
    pub fn into_config(
        self,
        role: Role,
        upstream: Option<String>,
    ) -> Result<NodeConfig, ConfigError> {
        let udp_ports = parse_port_range(&self.udp_ports)
            .map_err(|m| err("--udp-ports", "CASCADE_UDP_PORTS", m))?;
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
        if !(1..=256).contains(&self.udp_mux_shards) {
            return Err(err(
                "--udp-mux-shards",
                "CASCADE_UDP_MUX_SHARDS",
                "must be 1 to 256",
            ));
        }
        if self.udp_mux_port != 0
            && u32::from(self.udp_mux_port) + u32::from(self.udp_mux_shards) - 1 > 65535
        {
            return Err(err(
                "--udp-mux-port",
                "CASCADE_UDP_MUX_PORT",
                "the port plus the shards beyond the first must stay within 65535",
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
        if let Some(url) = &self.redis
            && ::redis::Client::open(url.as_str()).is_err()
        {
            return Err(err(
                "--redis",
                "CASCADE_REDIS",
                "expected a Redis URL such as redis://127.0.0.1:6379/0",
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
            && secret.len() < MIN_SECRET_BYTES
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
        let http = self.http_limits()?;
        let auth = match &self.auth_secret {
            Some(secret) => Some(Arc::new(
                Auth::new(secret.as_bytes(), self.auth_viewers)
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
                mux: self.udp_mux.then_some(MuxSettings {
                    port: self.udp_mux_port,
                    shards: self.udp_mux_shards,
                }),
            },
            http_advertise: self.http_advertise,
            grpc_advertise: self.grpc_advertise,
            upstream,
            capacity: self.capacity,
            drain_timeout: Duration::from_secs(self.drain_timeout),
            lease: Duration::from_secs(self.lease_secs),
            max_fanout: self.max_edge_fanout,
            max_depth: self.max_relay_depth.max(1),
            failover_timeout: Duration::from_secs(self.failover_timeout),
            liveness: crate::cluster::decide::claims::Liveness::Reachability,
        };
        Ok(NodeConfig {
            node,
            routing: RoutingSettings {
                redis: self.redis,
                redis_prefix: self.redis_prefix,
            },
            telemetry,
            auth,
            http,
        })
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

/// Every `CASCADE_*` variable some Cascade binary reads. Others are typos: refused at start.
pub const KNOWN_ENV: &[&str] = &[
    "CASCADE_HTTP_LISTEN",
    "CASCADE_GRPC_LISTEN",
    "CASCADE_AUTH_SECRET",
    "CASCADE_AUTH_VIEWERS",
    "CASCADE_NODE_ID",
    "CASCADE_ADVERTISE_IP",
    "CASCADE_MEDIA_BIND",
    "CASCADE_UDP_PORTS",
    "CASCADE_UDP_MUX",
    "CASCADE_UDP_MUX_PORT",
    "CASCADE_UDP_MUX_SHARDS",
    "CASCADE_HTTP_ADVERTISE",
    "CASCADE_GRPC_ADVERTISE",
    "CASCADE_CAPACITY",
    "CASCADE_LOG_FORMAT",
    "CASCADE_UPSTREAM",
    "CASCADE_REDIS",
    "CASCADE_REDIS_PREFIX",
    "CASCADE_LEASE_SECS",
    "CASCADE_URL",
    "CASCADE_DRAIN_TIMEOUT",
    "CASCADE_OTLP_ENDPOINT",
    "CASCADE_MAX_EDGE_FANOUT",
    "CASCADE_MAX_RELAY_DEPTH",
    "CASCADE_FAILOVER_TIMEOUT",
    "CASCADE_HTTP_HEADER_TIMEOUT",
    "CASCADE_HTTP_IDLE_TIMEOUT",
    "CASCADE_HTTP_BODY_TIMEOUT",
    "CASCADE_HTTP_MAX_CONNECTIONS",
];

/// Refuses `CASCADE_*` environment variables no binary reads (a typo would otherwise be
/// silently ignored and the default used).
pub fn check_environment() -> Result<(), ConfigError> {
    for (key, _) in std::env::vars() {
        if key.starts_with("CASCADE_") && !KNOWN_ENV.contains(&key.as_str()) {
            return Err(err(
                "environment",
                "CASCADE_*",
                format!("unknown variable {key}; known: {}", KNOWN_ENV.join(", ")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    fn config(args: &[&str]) -> Result<NodeConfig, String> {
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.node
            .into_config(Role::Edge, Some("http://127.0.0.1:9090".into()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let c = config(&[]).unwrap();
        assert_eq!(c.node.http_listen.port(), 8080);
        assert_eq!(c.node.media.bind_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(c.node.media.udp_ports.is_none());
        assert!(c.node.node_id.starts_with("edge-"));
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("0"), Ok(None));
        assert_eq!(parse_port_range("40000-40010"), Ok(Some((40000, 40010))));
        for bad in ["40010-40000", "x-y", "40000", "0-10", "1-70000"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = config(&["--udp-ports", "9-1"]).unwrap_err();
        assert!(
            e.contains("--udp-ports") && e.contains("CASCADE_UDP_PORTS"),
            "{e}"
        );
        let e = config(&["--node-id", "a b"]).unwrap_err();
        assert!(e.contains("--node-id"), "{e}");
        let e = config(&["--advertise-ip", "0.0.0.0"]).unwrap_err();
        assert!(e.contains("--advertise-ip"), "{e}");
        let e = config(&["--http-listen", "nope"]).unwrap_err();
        assert!(e.contains("--http-listen"), "{e}");
        let e = config(&["--redis", "not a url"]).unwrap_err();
        assert!(e.contains("--redis") && e.contains("CASCADE_REDIS"), "{e}");
        let e = config(&["--otlp-endpoint", "collector:4317"]).unwrap_err();
        assert!(e.contains("CASCADE_OTLP_ENDPOINT"), "{e}");
        let e = config(&["--lease-secs", "0"]).unwrap_err();
        assert!(e.contains("--lease-secs"), "{e}");
    }

    #[test]
    fn auth_needs_a_long_enough_secret_and_keeps_it_out_of_logs() {
        assert!(config(&[]).unwrap().auth.is_none());
        let e = config(&["--auth-secret", "short"]).unwrap_err();
        assert!(e.contains("--auth-secret") && e.contains("32 bytes"), "{e}");
        let e = config(&["--auth-viewers", "true"]).unwrap_err();
        assert!(e.contains("--auth-viewers"), "{e}");
        let secret = "0123456789abcdef0123456789abcdef";
        let c = config(&["--auth-secret", secret, "--auth-viewers", "true"]).unwrap();
        assert!(c.auth.is_some());
        assert!(
            !format!("{c:?}").contains(secret),
            "the secret shows in {c:?}"
        );
    }

    #[test]
    fn http_limits_default_and_are_checked() {
        assert_eq!(config(&[]).unwrap().http, HttpLimits::default());
        let c = config(&[
            "--http-header-timeout",
            "2",
            "--http-idle-timeout",
            "5",
            "--http-body-timeout",
            "3",
            "--http-max-connections",
            "50",
        ])
        .unwrap();
        assert_eq!(
            c.http,
            HttpLimits {
                header_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(5),
                body_timeout: Duration::from_secs(3),
                max_connections: 50,
            }
        );
        for (flag, env, value) in [
            (
                "--http-max-connections",
                "CASCADE_HTTP_MAX_CONNECTIONS",
                "0",
            ),
            ("--http-header-timeout", "CASCADE_HTTP_HEADER_TIMEOUT", "0"),
            ("--http-idle-timeout", "CASCADE_HTTP_IDLE_TIMEOUT", "0"),
            ("--http-body-timeout", "CASCADE_HTTP_BODY_TIMEOUT", "0"),
            (
                "--http-header-timeout",
                "CASCADE_HTTP_HEADER_TIMEOUT",
                "3601",
            ),
        ] {
            let e = config(&[flag, value]).unwrap_err();
            assert!(e.contains(flag) && e.contains(env), "{e}");
        }
    }

    #[test]
    fn an_edge_needs_an_upstream_or_redis() {
        let cli = Cli::try_parse_from(["test"]).unwrap();
        let e = cli.node.check_edge_source(&None).unwrap_err().to_string();
        assert!(
            e.contains("--upstream") && e.contains("--redis") && e.contains("CASCADE_REDIS"),
            "{e}"
        );
        let cli = Cli::try_parse_from(["test", "--redis", "redis://127.0.0.1:1"]).unwrap();
        cli.node.check_edge_source(&None).unwrap();
        let c = cli.node.into_config(Role::Edge, None).unwrap();
        assert_eq!(c.routing.redis.as_deref(), Some("redis://127.0.0.1:1"));
        assert_eq!(c.routing.redis_prefix, "cascade:");
        assert_eq!(c.node.drain_timeout, Duration::from_secs(30));
        assert_eq!(c.node.heartbeat(), Duration::from_secs(10) / 3);
        let cli = Cli::try_parse_from(["test"]).unwrap();
        cli.node
            .check_edge_source(&Some("http://127.0.0.1:9090".into()))
            .unwrap();
    }
}
