//! What the node answers to the outside: HTTP (WHIP/WHEP, health, drain, status API, pages),
//! the gRPC status and relay services, and bearer-token checks.
//!
//! - [`http`]: the axum router; the one place errors become HTTP statuses ([`http::respond`]).
//! - [`listener`]: the HTTP accept loop and its limits (timeouts, connection cap).
//! - [`status`]: the cluster status API's answers (nodes, rooms, relay trees).
//! - [`openapi`]: the status API's OpenAPI document, derived from [`status`]'s types.
//! - [`grpc_status`]: the same answers over gRPC.
//! - [`relay_service`]: the upstream side of a relay link.
//! - [`auth`]: bearer JWTs on WHIP/WHEP.
//!
//! Imports [`crate::cluster`] and the layers below it.

pub mod auth;
pub mod error;
pub mod grpc_status;
pub mod http;
pub mod listener;
pub mod openapi;
pub mod relay_service;
pub mod status;
