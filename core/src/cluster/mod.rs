//! The cluster: a node's rooms, sessions and routing entries, and its decisions about them.
//!
//! - [`node`]: the node (registries, claims and heartbeats, the relay puller, drain); origin
//!   and edge are roles of it.
//! - [`settings`]: what a node is told at start ([`settings::NodeSettings`]).
//! - [`placement`]: where a new session goes (here, or another node), pure functions.
//! - [`routing`]: the routing store trait, its in-memory, Redis and metered forms.
//! - [`relay_client`]: the downstream side of a relay link (pulling a room from upstream).
//!
//! Imports [`crate::rtc`], [`crate::media`], [`crate::obs`] and [`crate::error`].

pub mod node;
pub mod placement;
pub mod relay_client;
pub mod routing;
pub mod settings;
