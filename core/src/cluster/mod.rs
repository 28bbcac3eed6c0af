//! The cluster: a node's rooms, sessions and routing entries, and its decisions about them.
//!
//! - [`decide`]: the cluster's decisions as plain state machines (room claims, an edge's
//!   upstream and failover, drain, admission of new sessions): events and `now` in, actions
//!   out, no I/O, each unit-tested in memory.
//! - [`node`]: the node, the async driver of those machines (registries, claims and
//!   heartbeats, the relay puller, drain, placement); origin and edge are roles of it.
//! - [`settings`]: what a node is told at start ([`settings::NodeSettings`]).
//! - [`placement`]: the answer a join gets ([`placement::Placement`]) and which node an edge
//!   pulls a room from ([`placement::choose_upstream`]), pure functions.
//! - [`locality`]: regions and zones, of nodes and of viewers' hints, and how near one is to
//!   the other (pure).
//! - [`routing`]: the routing store trait, its in-memory, Redis and metered forms.
//! - [`relay_client`]: the downstream side of a relay link (pulling a room from upstream).
//! - [`credential`]: the cluster credential (`--cluster-secret`) on every call between nodes.
//! - [`tls`]: mutual TLS on the gRPC port (`--grpc-tls-*`).
//!
//! Imports [`crate::rtc`], [`crate::media`], [`crate::obs`] and [`crate::error`].

#[warn(missing_docs)]
pub mod credential;
pub mod decide;
pub mod locality;
pub mod node;
pub mod placement;
pub mod relay_client;
pub mod routing;
pub mod settings;
pub mod tls;
