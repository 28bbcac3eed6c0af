//! OpenTelemetry Propagators
mod baggage;
mod trace_context;

pub use baggage::BaggagePropagator;
pub use trace_context::TraceContextPropagator;
