//! Observation: what the node measures and reports about itself, below everything it measures.
//!
//! - [`metrics`]: one Prometheus registry per node; gauges are handed in as a snapshot
//!   ([`metrics::Gauges`]) when scraped, so this layer never looks at the node.
//! - [`telemetry`]: logs, spans and their OTLP export ([`telemetry::TelemetrySettings`]).
//! - [`trace_ctx`]: W3C trace context over gRPC metadata.
//! - [`cpu`], [`procstat`]: this process's CPU and memory from `/proc`.
//! - [`rate`]: bitrates from byte counters, computed when read.
//!
//! Imports nothing of the crate but [`crate::error`].

pub mod cpu;
pub mod metrics;
pub mod procstat;
pub mod rate;
pub mod telemetry;
pub mod trace_ctx;
