//! `cascade`: the one binary. `cascade origin` and `cascade edge` run a node (`cascade-origin`
//! and `cascade-edge` are the same under their own names); `cascade demo` runs a local cluster in
//! one process; `status`, `rooms`, `room`, `drain` operate a running cluster through any node's
//! API; `token` mints the bearer tokens the nodes accept.

mod ops;

use anyhow::Context;
use cascade_core::api::auth::Claims;
use cascade_core::cluster::routing::{MemoryStore, Role, RoutingStore};
use cascade_core::config::file as config_file;
use cascade_core::config::{NodeArgs, NodeConfig, Secret};
use cascade_edge::EdgeArgs;
use cascade_origin::OriginArgs;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "cascade",
    version,
    propagate_version = true,
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
enum SessionAction {
    /// Ends one session of the node at `--url` (needs `--token` with the admin grant, or run it
    /// on the node's machine).
    Close {
        /// The session's id (`cascade sessions`, or the last segment of its WHIP/WHEP URL).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs an origin node: WHIP in, relay out (`cascade origin --help` lists its flags; the
    /// same as the `cascade-origin` binary).
    Origin(OriginArgs),
    /// Runs an edge node: relay in, WHEP out (`cascade edge --help`; the same as
    /// `cascade-edge`).
    Edge(EdgeArgs),
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
        /// Address of the media sockets, put in ICE candidates, when it is not `--ip`. Firefox
        /// does not connect to loopback candidates: give this machine's LAN address here to
        /// publish or watch from Firefox while the pages stay on `http://127.0.0.1` (a secure
        /// origin, which the camera needs).
        #[arg(long)]
        media_ip: Option<std::net::IpAddr>,
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
    /// The sessions (publishers, viewers, relay links) of the node at `--url`.
    Sessions,
    /// One session: `session close ID` ends it.
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
    /// Drains a node: no new sessions, exit when its sessions leave (needs `--token`, or run it
    /// on the node's machine: nodes accept drain from loopback unless `--drain-from-loopback
    /// false`).
    Drain {
        /// The node's id.
        node: String,
    },
}

fn node_args(
    ip: std::net::IpAddr,
    media_ip: std::net::IpAddr,
    port: u16,
    id: &str,
    cluster_secret: &Secret,
) -> NodeArgs {
    let http = cascade_core::api::listener::HttpLimits::default();
    NodeArgs {
        http_listen: SocketAddr::new(ip, port),
        grpc_listen: SocketAddr::new(ip, 0),
        node_id: Some(id.to_owned()),
        advertise_ip: Some(media_ip),
        media_bind: None,
        udp_ports: "0".into(),
        udp_mux: true,
        udp_mux_port: 0,
        udp_mux_shards: 1,
        ice_tcp_port: "0".into(),
        config: None,
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
        // The demo's nodes share one machine: no regions.
        region: None,
        zone: None,
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

async fn demo(
    port: u16,
    ip: std::net::IpAddr,
    media_ip: Option<std::net::IpAddr>,
) -> anyhow::Result<()> {
    let media_ip = media_ip.unwrap_or(ip);
    let routing: Arc<dyn RoutingStore> = Arc::new(MemoryStore::new());
    let secret = Secret::generate();
    let origin = cascade_origin::start(
        node_args(ip, media_ip, port, "origin-1", &secret).into_config(Role::Origin, None)?,
        Some(routing.clone()),
    )
    .await
    .with_context(|| format!("cannot listen on {ip}:{port}"))?;
    let mut edges = Vec::new();
    for i in 1..=2u16 {
        let edge_port = if port == 0 { 0 } else { port + i };
        let config = node_args(ip, media_ip, edge_port, &format!("edge-{i}"), &secret)
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

/// The roles a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    Origin,
    Edge,
}

impl NodeRole {
    fn of(word: &OsString) -> Option<Self> {
        match word.to_str()? {
            "origin" => Some(Self::Origin),
            "edge" => Some(Self::Edge),
            _ => None,
        }
    }
}

/// The entry point of every Cascade binary: `cascade`, or (given `alias`) `cascade-origin` and
/// `cascade-edge`, which run that role with the rest of the command line.
pub fn main(alias: Option<NodeRole>) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let node = match alias {
        Some(role) => Some((role, args.get(1..).unwrap_or_default())),
        None => args
            .get(1)
            .and_then(NodeRole::of)
            .map(|role| (role, &args[2..])),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(anyhow::Error::new(e).context("cannot start the runtime")),
    };
    let done = match node {
        Some((role, rest)) => {
            let name = match (role, alias.is_some()) {
                (NodeRole::Origin, true) => "cascade-origin",
                (NodeRole::Edge, true) => "cascade-edge",
                (NodeRole::Origin, false) => "cascade origin",
                (NodeRole::Edge, false) => "cascade edge",
            };
            node_config(role, name, rest.to_vec())
                .and_then(|config| runtime.block_on(run_node(role, config)))
        }
        None => runtime.block_on(run(Cli::parse())),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("Error: {e:?}");
    ExitCode::FAILURE
}

/// The node's configuration from its command line (`args`, without the program name), the
/// `CASCADE_*` environment and the `--config` file, in that order of precedence. Exits the
/// process for `--help`, `--version` and a command line clap refuses, as clap does.
fn node_config(
    role: NodeRole,
    name: &'static str,
    args: Vec<OsString>,
) -> anyhow::Result<NodeConfig> {
    config_file::check_environment(&Cli::command()).map_err(anyhow::Error::msg)?;
    let mut cmd = match role {
        NodeRole::Origin => OriginArgs::command(),
        NodeRole::Edge => EdgeArgs::command(),
    }
    .name(name)
    .bin_name(name);
    if let Some(path) = config_file::config_path(&args) {
        cmd = config_file::apply_file(cmd, &path)?;
    }
    let matches = cmd
        .try_get_matches_from(std::iter::once(OsString::from(name)).chain(args))
        .unwrap_or_else(|e| e.exit());
    Ok(match role {
        NodeRole::Origin => OriginArgs::from_arg_matches(&matches)?.into_config()?,
        NodeRole::Edge => EdgeArgs::from_arg_matches(&matches)?.into_config()?,
    })
}

/// Runs a node until SIGTERM or Ctrl-C, then drains it.
async fn run_node(role: NodeRole, config: NodeConfig) -> anyhow::Result<()> {
    let telemetry = cascade_core::obs::telemetry::init_node(&config.telemetry)?;
    let node = match role {
        NodeRole::Origin => cascade_origin::start(config, None).await,
        NodeRole::Edge => cascade_edge::start(config, None).await,
    }
    .context("cannot start the node (its routing store or its HTTP or gRPC listener)")?;
    cascade_core::run_until_signal(node).await;
    // Spans still batched are exported before the process exits.
    telemetry.shutdown().await;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let token = cli.token.as_ref().map(Secret::expose);
    let api = || ops::Api::new(&cli.url, token);
    match cli.command {
        Command::Origin(_) | Command::Edge(_) => anyhow::bail!(
            "a node's flags follow its role: cascade origin [FLAGS] or cascade edge [FLAGS]"
        ),
        Command::Demo { port, ip, media_ip } => {
            cascade_core::obs::telemetry::init("text");
            demo(port, ip, media_ip).await
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
        Command::Sessions => ops::sessions(&api()?, cli.json).await,
        Command::Session {
            action: SessionAction::Close { ref id },
        } => ops::close_session(&api()?, id, cli.json).await,
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

#[cfg(test)]
mod tests;
