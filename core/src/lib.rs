//! What Cascade's origin and edge nodes share.
//!
//! Layers, top to bottom; a module imports only the layers below it (a check in the test
//! suite, `tests/tests/layers.rs`, holds every crate to it):
//!
//! | layer | owns |
//! |---|---|
//! | [`config`] | the flags, composed into each part's settings |
//! | [`api`] | HTTP (WHIP/WHEP, health, drain, status, pages), gRPC status and relay services, auth; the only place errors become HTTP statuses |
//! | [`cluster`] | the node (registries, claims, relay puller, drain), placement, the routing store, the relay client |
//! | [`rtc`] | WebRTC sessions over webrtc-rs and the `rtc` core: peer-connection factory, negotiation, the UDP mux |
//! | [`media`] | forwarding decisions, rooms and fan-out, a mux viewer's SRTP and NACK history, the outbox |
//! | [`obs`] | metrics, telemetry, trace context, CPU and memory figures, rate meters |
//! | [`error`] | the error kinds every layer reports |
//!
//! This file wires them: it builds a node from its configuration and starts its servers.

pub mod api;
pub mod cluster;
pub mod config;
pub mod error;
pub mod media;
pub mod obs;
pub mod rtc;

pub use error::{Error, Result};

use crate::api::{grpc_status, http, listener, relay_service};
use crate::cluster::node::Node;
use crate::cluster::routing::{MemoryStore, RedisStore, RoutingStore};
use crate::config::{NodeConfig, RoutingSettings};
use std::sync::Arc;

/// A node whose servers are running.
#[derive(Debug)]
pub struct RunningNode {
    pub node: Arc<Node>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningNode {
    /// Stops the node: servers stop accepting, sessions close, routing entries are removed.
    pub async fn shutdown(self) {
        self.node.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Resolves when the node has stopped.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The routing store `config` asks for: Redis with `--redis` (connecting lazily, so the node
/// starts while Redis is down and joins that need it fail fast until it is back), else one in
/// memory that only this process sees. Fails only on a Redis URL that cannot be parsed.
///
/// # Panics
///
/// Outside a Tokio runtime.
pub fn routing_store(config: &RoutingSettings) -> std::io::Result<Arc<dyn RoutingStore>> {
    match &config.redis {
        Some(url) => {
            let store = RedisStore::lazy_tls(
                url,
                config.redis_ca.as_deref(),
                &config.redis_prefix,
                Default::default(),
            )
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            tracing::info!(
                redis = %cluster::routing::redis::target::redact(url),
                prefix = %config.redis_prefix,
                "routing through Redis"
            );
            Ok(Arc::new(store))
        }
        None => Ok(Arc::new(MemoryStore::new())),
    }
}

/// [`routing_store`], and with Redis one check that it accepts the URL's credentials: a node
/// whose `--redis` password Redis refuses stops at start with a message naming `--redis`
/// instead of running unable to route. A Redis that cannot be reached yet does not stop it.
pub async fn routing_store_checked(
    config: &RoutingSettings,
) -> std::io::Result<Arc<dyn RoutingStore>> {
    let Some(url) = &config.redis else {
        return routing_store(config);
    };
    let store = RedisStore::lazy_tls(
        url,
        config.redis_ca.as_deref(),
        &config.redis_prefix,
        Default::default(),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    if let Err(why) = store.check_credentials().await {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "--redis (CASCADE_REDIS): Redis at {} refused the credentials: {why}",
                cluster::routing::redis::target::redact(url)
            ),
        ));
    }
    tracing::info!(
        redis = %cluster::routing::redis::target::redact(url),
        prefix = %config.redis_prefix,
        "routing through Redis"
    );
    Ok(Arc::new(store))
}

/// Binds the node's HTTP and gRPC listeners and starts serving.
pub async fn serve(
    config: NodeConfig,
    routing: Arc<dyn RoutingStore>,
) -> std::io::Result<RunningNode> {
    let NodeConfig {
        node,
        auth,
        http: http_limits,
        admin,
        clients,
        ice_servers,
        ..
    } = config;
    listener::raise_nofile_limit(http_limits.max_connections);
    let http_listener = tokio::net::TcpListener::bind(node.http_listen).await?;
    let grpc_listener = tokio::net::TcpListener::bind(node.grpc_listen).await?;
    let http_addr = http_listener.local_addr()?;
    let grpc_addr = grpc_listener.local_addr()?;
    let node = Node::new(node, routing, http_addr, grpc_addr);
    node.start_mux()?;
    tracing::info!(
        node = node.id(),
        role = node.role().as_str(),
        http = %http_addr,
        grpc = %grpc_addr,
        "listening"
    );

    // Handlers see each request's peer as `ConnectInfo<SocketAddr>`; the listener enforces the
    // `--http-*` limits and stops gracefully with the node.
    let viewer_auth = auth.is_some();
    // Who may read the status API and drain: an admin JWT of `--auth-secret` or a cluster
    // credential (HTTP and gRPC alike).
    let admin = Arc::new(api::admin::Admin::new(
        admin,
        auth.clone(),
        node.config.credential.0.clone(),
    ));
    // The dashboard's charts: a sample of the node every few seconds.
    let history = Arc::new(api::history::History::default());
    tokio::spawn(api::history::record(node.clone(), history.clone()));
    let app = http::router(
        node.clone(),
        auth,
        admin.clone(),
        clients,
        Arc::new(ice_servers),
        history,
    );
    let http = tokio::spawn(listener::serve(
        http_listener,
        app,
        http_limits,
        node.metrics.http.clone(),
        node.shutdown.clone(),
    ));

    let shutdown = node.shutdown.clone();
    // With `--cluster-secret`, every call needs the cluster credential before it reaches a
    // service; a node with viewer and publisher auth but an open gRPC port is named loudly.
    let key = node.config.credential.0.clone();
    if key.is_none() && viewer_auth {
        tracing::warn!(
            grpc = %grpc_addr,
            "--auth-secret is set but --cluster-secret is not: anyone who reaches the gRPC port \
             can pull any room over the relay service and read the node's status; set \
             --cluster-secret (CASCADE_CLUSTER_SECRET) on every node"
        );
    }
    let check = cluster::credential::server_check(key);
    let service = relay_service::RelayServer::with_interceptor(
        relay_service::RelayService::new(node.clone()),
        check,
    );
    // The status service checks its callers in each method (drain's rule differs from the
    // reads'; `grpc_status`'s module docs).
    let status =
        grpc_status::StatusServer::new(grpc_status::StatusService::new(node.clone(), admin));
    let tls = node.config.grpc_tls.clone();
    let grpc = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
        let mut server = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(GRPC_KEEPALIVE))
            .http2_keepalive_timeout(Some(GRPC_KEEPALIVE_TIMEOUT))
            .concurrency_limit_per_connection(GRPC_CONCURRENCY_PER_CONNECTION);
        if let Some(tls) = &tls {
            server = match server.tls_config(tls.server()) {
                Ok(server) => server,
                Err(e) => {
                    tracing::error!(error = %e, "gRPC TLS configuration refused");
                    return;
                }
            };
        }
        if let Err(e) = server
            .add_service(service)
            .add_service(status)
            .serve_with_incoming_shutdown(incoming, async move { shutdown.cancelled().await })
            .await
        {
            tracing::error!(error = %e, "gRPC server failed");
        }
    });
    let heartbeat = tokio::spawn(node.clone().heartbeat_loop());
    Ok(RunningNode {
        node,
        tasks: vec![http, grpc, heartbeat],
    })
}

/// How often the gRPC server pings a client connection, and how long it waits for the answer:
/// a peer that vanished without closing (a frozen or partitioned node) is dropped.
const GRPC_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(10);
/// See [`GRPC_KEEPALIVE`].
const GRPC_KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Calls in flight at once on one gRPC connection (a relay link is one long call per room).
const GRPC_CONCURRENCY_PER_CONNECTION: usize = 1024;

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async move {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs a started node until it stops. The first SIGINT/SIGTERM drains it
/// ([`Node::drain`]: no new sessions, exit when the current ones leave or at the drain
/// deadline); a second one stops it at once.
pub async fn run_until_signal(node: RunningNode) {
    let handle = node.node.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("signal: draining (signal again to stop at once)");
        handle.drain();
        shutdown_signal().await;
        tracing::info!("second signal: shutting down");
        handle.shutdown.cancel();
    });
    node.wait().await;
}
