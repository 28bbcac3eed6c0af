//! `cascade`: the command-line tool. `cascade demo` runs a local cluster in one process;
//! `status`, `rooms`, `room`, `drain` operate a running cluster through any node's API;
//! `token` mints the bearer tokens the nodes accept.

mod ops;

use anyhow::Context;
use cascade_core::api::auth::Claims;
use cascade_core::cluster::routing::{MemoryStore, Role, RoutingStore};
use cascade_core::config::{NodeArgs, Secret};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "cascade",
    version,
    about = "Cascade: clustered WebRTC broadcast"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// HTTP URL of any node of the cluster.
    #[arg(
        long,
        global = true,
        env = "CASCADE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Admin credential sent as `Authorization: Bearer` (a JWT granting `admin`, signed with the
    /// nodes' `--auth-secret`): needed when the status API is not public, and to drain from
    /// another machine.
    #[arg(
        long,
        global = true,
        env = "CASCADE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<Secret>,
}

#[derive(Debug, Subcommand)]
enum RoomAction {
    /// Ends a room everywhere: its publisher and viewers are disconnected and its routing
    /// entries go (needs `--token` with the admin grant, or run it on the origin's machine).
    Close {
        /// The room's name.
        room: String,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints a bearer token (an HS256 JWT) the nodes accept: for WHIP publishers (`--publish`,
    /// which also lets it watch), WHEP viewers (`--subscribe`, with `--auth-viewers true`) and
    /// operators (`--admin`: the status API and drain).
    Token {
        /// The nodes' `--auth-secret` (at least 32 bytes).
        #[arg(long, env = "CASCADE_AUTH_SECRET", hide_env_values = true)]
        secret: Secret,
        /// The room it is for, or `*` for every room; not needed for an admin-only token.
        #[arg(long)]
        room: Option<String>,
        /// May publish (WHIP) the room, and watch it.
        #[arg(long)]
        publish: bool,
        /// May watch (WHEP) the room.
        #[arg(long)]
        subscribe: bool,
        /// May read the status API and drain nodes.
        #[arg(long)]
        admin: bool,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Runs a local cluster in this process: one origin and two edges, in-memory routing, the
    /// relay between them over real gRPC and real WebRTC links on loopback.
    Demo {
        /// HTTP port of the origin; the edges take the next two (0: every node picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to listen on and put in ICE candidates.
        #[arg(long, default_value = "127.0.0.1")]
        ip: std::net::IpAddr,
    },
    /// Every node (role, state, load) and each room's relay tree.
    Status,
    /// Every published room and its relay tree.
    Rooms,
    /// One room: origin, tracks, relay tree, viewers per node; `room close R` ends it.
    #[command(args_conflicts_with_subcommands = true)]
    Room {
        /// The room's name.
        room: Option<String>,
        #[command(subcommand)]
        action: Option<RoomAction>,
    },
    /// Drains a node: no new sessions, exit when its sessions leave (needs `--token`, or run it
    /// on the node's machine: nodes accept drain from loopback unless `--drain-from-loopback
    /// false`).
    Drain {
        /// The node's id.
        node: String,
    },
}

fn node_args(ip: std::net::IpAddr, port: u16, id: &str, cluster_secret: &Secret) -> NodeArgs {
    let http = cascade_core::api::listener::HttpLimits::default();
    NodeArgs {
        http_listen: SocketAddr::new(ip, port),
        grpc_listen: SocketAddr::new(ip, 0),
        node_id: Some(id.to_owned()),
        advertise_ip: Some(ip),
        media_bind: None,
        udp_ports: "0".into(),
        udp_mux: true,
        udp_mux_port: 0,
        udp_mux_shards: 1,
        http_advertise: None,
        grpc_advertise: None,
        capacity: 1000,
        log_format: "text".into(),
        redis: None,
        redis_ca: None,
        redis_prefix: cascade_core::cluster::routing::redis::schema::DEFAULT_PREFIX.into(),
        drain_timeout: 30,
        lease_secs: 10,
        max_edge_fanout: 16,
        max_relay_depth: 4,
        failover_timeout: 20,
        otlp_endpoint: None,
        // The local demo: anyone may publish and watch.
        auth_secret: None,
        auth_viewers: false,
        // The demo's nodes talk to each other with a secret of this run.
        cluster_secret: Some(cluster_secret.clone()),
        // On loopback the demo's gRPC needs no TLS.
        grpc_tls_cert: None,
        grpc_tls_key: None,
        grpc_tls_ca: None,
        http_header_timeout: http.header_timeout.as_secs(),
        http_idle_timeout: http.idle_timeout.as_secs(),
        http_body_timeout: http.body_timeout.as_secs(),
        http_max_connections: http.max_connections,
        // The demo is an open server: status public, drain from loopback, no CORS on it.
        status_public: None,
        drain_from_loopback: true,
        cors_origins: Vec::new(),
        // Local viewers on one address: no per-client limits.
        connect_timeout: 5,
        max_requests_per_ip_per_sec: 0,
        max_pending_per_ip: 0,
        trusted_proxies: Vec::new(),
        // On loopback no TURN is needed.
        ice_servers: Vec::new(),
        turn_secret: None,
        turn_ttl: 86_400,
        turn_username: None,
        turn_password: None,
    }
}

async fn demo(port: u16, ip: std::net::IpAddr) -> anyhow::Result<()> {
    let routing: Arc<dyn RoutingStore> = Arc::new(MemoryStore::new());
    let secret = Secret::generate();
    let origin = cascade_origin::start(
        node_args(ip, port, "origin-1", &secret).into_config(Role::Origin, None)?,
        Some(routing.clone()),
    )
    .await
    .with_context(|| format!("cannot listen on {ip}:{port}"))?;
    let mut edges = Vec::new();
    for i in 1..=2u16 {
        let edge_port = if port == 0 { 0 } else { port + i };
        let config = node_args(ip, edge_port, &format!("edge-{i}"), &secret)
            .into_config(Role::Edge, None)?;
        edges.push(
            cascade_edge::start(config, Some(routing.clone()))
                .await
                .with_context(|| format!("cannot listen on {ip}:{edge_port}"))?,
        );
    }
    let base = |addr: SocketAddr| format!("http://{addr}");
    println!();
    println!("Cascade demo cluster is running (Ctrl-C to stop).");
    println!();
    println!(
        "  Publish (origin):  {}/publish.html?room=demo",
        base(origin.node.http_addr)
    );
    for (i, edge) in edges.iter().enumerate() {
        println!(
            "  Watch (edge {}):    {}/watch.html?room=demo",
            i + 1,
            base(edge.node.http_addr)
        );
    }
    println!();
    println!(
        "  WHIP endpoint: {}/whip/{{room}}",
        base(origin.node.http_addr)
    );
    println!(
        "  WHEP endpoints: {}/whep/{{room}}",
        edges
            .iter()
            .map(|e| base(e.node.http_addr))
            .collect::<Vec<_>>()
            .join("/whep/{room}, ")
    );
    println!();
    cascade_core::shutdown_signal().await;
    for edge in edges {
        edge.shutdown().await;
    }
    origin.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let token = cli.token.as_ref().map(Secret::expose);
    let api = || ops::Api::new(&cli.url, token);
    match cli.command {
        Command::Demo { port, ip } => {
            cascade_core::obs::telemetry::init("text");
            demo(port, ip).await
        }
        Command::Status => ops::status(&api()?, cli.json).await,
        Command::Rooms => ops::rooms(&api()?, cli.json).await,
        Command::Room {
            action: Some(RoomAction::Close { ref room }),
            ..
        } => ops::close_room(&api()?, room, cli.json).await,
        Command::Room {
            room: Some(ref room),
            ..
        } => ops::room(&api()?, room, cli.json).await,
        Command::Room { .. } => {
            anyhow::bail!("give a room name (cascade room R), or cascade room close R")
        }
        Command::Drain { ref node } => ops::drain(&api()?, node, cli.json).await,
        Command::Token {
            ref secret,
            ref room,
            publish,
            subscribe,
            admin,
            ttl,
        } => {
            let grants = Claims {
                room: room.clone().unwrap_or_default(),
                publish,
                subscribe,
                admin,
                exp: 0,
            };
            println!("{}", mint_token(secret, grants, ttl)?);
            Ok(())
        }
    }
}

/// A token granting `grants` for `ttl` seconds, signed with `secret`; refuses what no node
/// would accept or what would grant nothing.
fn mint_token(secret: &Secret, grants: Claims, ttl: u64) -> anyhow::Result<String> {
    use cascade_core::api::auth::{Auth, MIN_SECRET_BYTES};
    if secret.expose().len() < MIN_SECRET_BYTES {
        anyhow::bail!(
            "--secret must be at least {MIN_SECRET_BYTES} bytes, as the nodes' --auth-secret is"
        );
    }
    if !(grants.publish || grants.subscribe || grants.admin) {
        anyhow::bail!("the token would grant nothing: give --publish, --subscribe or --admin");
    }
    if grants.publish || grants.subscribe {
        if grants.room.is_empty() {
            anyhow::bail!("--publish and --subscribe need --room (a room name, or * for all)");
        }
        if grants.room != "*" {
            cascade_core::media::RoomId::validate(&grants.room)
                .map_err(|e| anyhow::anyhow!("--room: {e}"))?;
        }
    }
    if ttl == 0 {
        anyhow::bail!("--ttl must be at least 1 second");
    }
    let auth = Auth::new(secret.expose(), false).map_err(anyhow::Error::msg)?;
    Ok(auth.mint(grants, std::time::Duration::from_secs(ttl)))
}
