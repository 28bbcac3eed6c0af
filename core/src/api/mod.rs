//! What the node answers to the outside: HTTP (WHIP/WHEP, health, drain, status API, pages),
//! the gRPC status and relay services, and bearer-token checks.
//!
//! - [`http`]: the axum router; the one place errors become HTTP statuses ([`http::respond`]).
//! - [`listener`]: the HTTP accept loop and its limits (timeouts, connection cap).
//! - [`status`]: the cluster status API's answers (nodes, rooms, relay trees).
//! - [`history`]: the last minutes of each node (CPU, rooms' viewers and bitrates) for the
//!   dashboard's charts.
//! - [`openapi`]: the status API's OpenAPI document, derived from [`status`]'s types.
//! - [`grpc_status`]: the same answers over gRPC.
//! - [`relay_service`]: the upstream side of a relay link.
//! - [`auth`]: bearer JWTs on WHIP/WHEP.
//! - [`admin`]: who may read the status API and drain the node.
//! - [`client_limits`]: per-client rate and pending-session limits on WHIP/WHEP offers.
//! - [`ice_servers`]: the STUN/TURN servers announced to clients in `Link` headers.
//! - [`locality_hint`]: a WHEP viewer's region and zone hint (query, or a trusted proxy's
//!   headers).
//!
//! Imports [`crate::cluster`] and the layers below it.

pub mod admin;
pub mod auth;
pub mod client_limits;
pub mod error;
pub mod grpc_status;
pub mod history;
pub mod http;
pub mod ice_servers;
pub mod listener;
pub mod locality_hint;
pub mod openapi;
pub mod relay_service;
pub mod status;
