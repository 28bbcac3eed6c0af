//! Cascade's load generator: a real WebRTC publisher (WHIP) and many real WebRTC viewers (WHEP)
//! in one process, measuring what an SFU cluster does to the stream.
//!
//! Layout:
//! - [`run`]: the `run` subcommand: flags, the timeline of a run, the progress line.
//! - [`publisher`]: the WHIP publisher, paced synthetic VP8 and Opus on its own thread.
//! - [`viewer`]: a WHEP viewer and its per-track counters; the `pc` engine (a full webrtc-rs
//!   peer connection per viewer).
//! - [`light`]: the `rtc` engine (the default): viewers on webrtc-rs's sans-I/O core, many per
//!   driver task, counting with [`viewer`]'s counters (a folder: engine and signalling, the
//!   core and its offer, the socket, a viewer's receive path, the driver loop).
//! - [`report`]: the JSON report and the human summary, built from plain values.
//! - [`peer`]: a peer connection from cascade-core's `PcFactory`, its events as channels
//!   (cascade-core's `PeerEvents`, as the nodes' sessions have them).
//! - [`signal`]: WHIP/WHEP over HTTP (POST offer, follow redirects, DELETE).
//! - Pure cores, unit-tested without sockets: [`marker`] (the 16-byte send-time marker in every
//!   payload), [`vp8`] (packetiser and descriptor parser), [`payload`] (where the marker sits in
//!   a VP8 or Opus payload, and finding it), [`media`] (frame sizes, GOP shape), [`seq`]
//!   (sequence continuity across wraps), [`nack`] (RTP layout, when to NACK what), [`stats`]
//!   (histograms, skew), [`procstat`] (`/proc` readers).
//! - [`cluster_sim`]: the `cluster-sim` subcommand: many real nodes without media against one
//!   real Redis, measuring the control plane (routing, placement, claims, heartbeats, failover).
//! - [`logger`]: webrtc-rs's log records, counting received packets it dropped.

pub mod cluster_sim;
pub mod light;
pub mod limit;
pub mod logger;
pub mod marker;
pub mod media;
pub mod nack;
pub mod payload;
pub mod peer;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod run;
pub mod seq;
pub mod signal;
pub mod stats;
pub mod viewer;
pub mod vp8;
