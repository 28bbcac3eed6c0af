//! WebRTC sessions over webrtc-rs and its sans-I/O `rtc` core.
//!
//! - [`pc`]: the peer-connection factory (media engines, interceptors, settings) and the
//!   interceptors of our own (keyframe requests, feedback counters).
//! - [`events`]: a peer connection's events as channels a task can await.
//! - [`negotiate`]: reading offers, choosing a room's tracks for an offer, and reading back
//!   the payload types an answer settled on (shared by sessions and the mux).
//! - [`session`]: publisher, subscriber and upstream peer connections and their lifetimes.
//! - [`mux`]: every WHEP viewer on one UDP socket and one task per shard.
//! - [`ice_tcp`]: the node's ICE-over-TCP port, whose connections go to the session their first
//!   binding request names; [`stun`]: the one STUN field both read.
//! - [`transport`]: how a connected session's media travels (UDP, TCP, relayed).
//! - `pair` (feature `test-support`): two sans-I/O cores connected in memory.
//!
//! Imports [`crate::media`], [`crate::obs`] and [`crate::error`].

pub mod events;
pub mod ice_tcp;
pub mod mux;
pub mod negotiate;
pub mod pc;
pub mod session;
pub mod stun;
pub mod transport;

#[cfg(any(test, feature = "test-support"))]
pub mod pair;

use std::time::Duration;

/// How long a new session (publisher, viewer, relay link) may take to connect (ICE and DTLS)
/// before it is closed, by default (`--connect-timeout`). Until then it holds a capacity slot
/// (and a publisher its room), so a flood of offers that never connect keeps nobody out for
/// longer than this.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
