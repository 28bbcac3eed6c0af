//! `cascade`: the command-line tool. `cascade demo` runs a local cluster in one process;
//! `status`, `rooms`, `room`, `drain` operate a running cluster through any node's API.

mod ops;

use anyhow::Context;
use cascade_core::cluster::routing::{MemoryStore, Role, RoutingStore};
use cascade_core::config::NodeArgs;
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
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// One room: origin, tracks, relay tree, viewers per node.
    Room {
        /// The room's name.
        room: String,
    },
    /// Drains a node: no new sessions, exit when its sessions leave (run on the node's machine:
    /// nodes accept drain only from loopback).
    Drain {
        /// The node's id.
        node: String,
    },
}

fn node_args(ip: std::net::IpAddr, port: u16, id: &str) -> NodeArgs {
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
        http_header_timeout: http.header_timeout.as_secs(),
        http_idle_timeout: http.idle_timeout.as_secs(),
        http_body_timeout: http.body_timeout.as_secs(),
        http_max_connections: http.max_connections,
    }
}

async fn demo(port: u16, ip: std::net::IpAddr) -> anyhow::Result<()> {
    let routing: Arc<dyn RoutingStore> = Arc::new(MemoryStore::new());
    let origin = cascade_origin::start(
        node_args(ip, port, "origin-1").into_config(Role::Origin, None)?,
        Some(routing.clone()),
    )
    .await
    .with_context(|| format!("cannot listen on {ip}:{port}"))?;
    let mut edges = Vec::new();
    for i in 1..=2u16 {
        let edge_port = if port == 0 { 0 } else { port + i };
        let config =
            node_args(ip, edge_port, &format!("edge-{i}")).into_config(Role::Edge, None)?;
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
    let api = || ops::Api::new(&cli.url);
    match cli.command {
        Command::Demo { port, ip } => {
            cascade_core::obs::telemetry::init("text");
            demo(port, ip).await
        }
        Command::Status => ops::status(&api()?, cli.json).await,
        Command::Rooms => ops::rooms(&api()?, cli.json).await,
        Command::Room { ref room } => ops::room(&api()?, room, cli.json).await,
        Command::Drain { ref node } => ops::drain(&api()?, node, cli.json).await,
    }
}
