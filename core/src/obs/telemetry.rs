//! Logging and tracing: `tracing` with an `RUST_LOG`-style filter, as text or JSON, and, when an
//! OTLP endpoint is configured, spans exported over OTLP/gRPC to an OpenTelemetry collector.
//!
//! webrtc-rs logs through the `log` crate: `try_init` installs tracing-log's `LogTracer`, so
//! its records become `tracing` events and go through the same filter and format. The
//! per-packet path logs at `trace` at most, and no secret (token, key) is ever a field; the
//! exporter's own headers (`OTEL_EXPORTER_OTLP_HEADERS`, which may carry a token) are read by
//! the exporter and never logged here.
//!
//! Spans at the boundaries, each with the room and this node's id: [`publish_span`] (WHIP),
//! [`join_span`] (WHEP), relay setup on both sides (`relay.describe_room`, `relay.subscribe`
//! in [`crate::relay`], their context carried over gRPC by [`crate::obs::trace_ctx`]) and
//! [`failover_span`]. Only spans and events of Cascade's own crates are exported.
//!
//! The exporter is configured by `--otlp-endpoint` (`CASCADE_OTLP_ENDPOINT`), else by the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT`; the standard `OTEL_BSP_*` variables tune batching.
//! `service.name` is `cascade-origin` or `cascade-edge`, and the node id is the resource's
//! `service.instance.id` (and `cascade.node.id`).

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing::field::Empty;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// The filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str =
    "info,webrtc=warn,rtc=warn,rtc_ice=warn,rtc_dtls=warn,h2=warn,tower=warn,hyper=warn";

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (a bad endpoint, or no Tokio runtime).
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Exporter(String),
}

/// The installed telemetry; [`Telemetry::shutdown`] flushes the spans not yet exported.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is still batched and stops the exporter (bounded by the exporter's
    /// timeout). Runs on a blocking thread: the flush needs the runtime's other threads.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = flushed {
                eprintln!("trace exporter shutdown: {e}");
            }
        }
    }
}

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

fn fmt_layer<S>(format: &str) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if format == "json" {
        layer.json().with_filter(env_filter()).boxed()
    } else {
        layer.with_filter(env_filter()).boxed()
    }
}

/// Logging only (the demo and tools): installs the global subscriber once; later calls are
/// no-ops.
pub fn init(format: &str) {
    // `try_init` also bridges the `log` crate (tracing-log), which webrtc-rs logs through.
    let _ = Registry::default().with(fmt_layer(format)).try_init();
}

/// What a node's telemetry is told.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// The `service.name` of exported spans (`cascade-origin`, `cascade-edge`).
    pub service: String,
    /// This node's id (`service.instance.id`).
    pub node_id: String,
    /// `text` or `json`.
    pub log_format: String,
    /// OTLP/gRPC endpoint for traces (`--otlp-endpoint`).
    pub otlp_endpoint: Option<String>,
}

/// The OTLP endpoint `config` asks for: `--otlp-endpoint`, else `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn otlp_endpoint(config: &TelemetrySettings) -> Option<String> {
    config.otlp_endpoint.clone().or_else(|| {
        std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|v| !v.trim().is_empty())
    })
}

/// A URL as it may be logged: scheme, host and port only (no credentials, path or query).
fn loggable(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// A node's logging, and its trace export when an OTLP endpoint is configured. Must run inside
/// a Tokio runtime (the gRPC exporter's channel lives there). Installs the global subscriber
/// once; when one is already installed (tests, several nodes in one process) nothing changes
/// and nothing is exported.
pub fn init_node(config: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    let Some(endpoint) = otlp_endpoint(config) else {
        init(&config.log_format);
        return Ok(Telemetry::default());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let service = config.service.clone();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attributes([
            KeyValue::new("service.instance.id", config.node_id.clone()),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("cascade.node.id", config.node_id.clone()),
        ])
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    // Cascade's own spans and events; dependencies (webrtc-rs, h2, tonic) stay in the logs.
    let exported = Targets::new()
        .with_target("cascade_core", LevelFilter::INFO)
        .with_target("cascade_origin", LevelFilter::INFO)
        .with_target("cascade_edge", LevelFilter::INFO);
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("cascade"))
        .with_filter(exported);
    let installed = Registry::default()
        .with(fmt_layer(&config.log_format))
        .with(otel)
        .try_init()
        .is_ok();
    if !installed {
        let _ = provider.shutdown();
        return Ok(Telemetry::default());
    }
    tracing::info!(endpoint = %loggable(&endpoint), "exporting traces over OTLP/gRPC");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// A WHIP publish on this node; the session id is recorded once known.
pub fn publish_span(room: &str, node: &str) -> Span {
    tracing::info_span!("publish", otel.kind = "server", room, node, session = Empty)
}

/// A WHEP viewer's join on this node; the session id is recorded once known. A relay link the
/// join starts is part of the same trace (see [`crate::obs::trace_ctx::detach`]).
pub fn join_span(room: &str, node: &str) -> Span {
    tracing::info_span!("join", otel.kind = "server", room, node, session = Empty)
}

/// An edge switching a room to another upstream; `to` is recorded once chosen.
pub fn failover_span(room: &str, node: &str, from: &str) -> Span {
    tracing::info_span!("failover", room, node, from, to = Empty)
}

/// Records the session id on a [`publish_span`] or [`join_span`].
pub fn record_session(span: &Span, session: &str) {
    span.record("session", session);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webrtc_rs_log_records_reach_tracing() {
        init("text");
        // Before the bridge, `log` has no logger and every record is disabled.
        let record = log::Metadata::builder()
            .level(log::Level::Error)
            .target("webrtc::peer_connection")
            .build();
        assert!(log::logger().enabled(&record));
    }

    #[test]
    fn logged_endpoints_carry_no_credentials_or_paths() {
        assert_eq!(
            loggable("http://user:secret@collector:4317/v1/traces?token=x"),
            "http://collector:4317"
        );
        assert_eq!(loggable("http://collector:4317"), "http://collector:4317");
        assert_eq!(loggable("garbage"), "://garbage");
    }
}
