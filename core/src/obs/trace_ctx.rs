//! W3C trace context (`traceparent`, `tracestate`) across the gRPC relay calls, so that one
//! viewer's join is one trace from the edge to the origin.
//!
//! The client injects the current span's context into the request's metadata ([`inject`]); the
//! server makes the context it extracts ([`extract`]) its span's parent ([`server_span`]).
//! A task that outlives the span that started it (the relay link an edge pulls for a joining
//! viewer) runs under [`detach`]: its spans are children of that span in the trace, without
//! keeping it open (a `tracing` child would hold its parent open until the link ends, and a
//! span is exported only when it closes).
//!
//! Without an OTLP exporter the contexts are empty: nothing is injected, nothing is parented.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct MetadataExtractor<'a>(&'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Writes `span`'s trace context into outgoing gRPC metadata.
pub fn inject(span: &Span, metadata: &mut MetadataMap) {
    TraceContextPropagator::new().inject_context(&span.context(), &mut MetadataInjector(metadata));
}

/// The trace context a caller sent (empty when it sent none, or garbage).
pub fn extract(metadata: &MetadataMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&MetadataExtractor(metadata))
}

/// Makes the caller's trace context (from the request's metadata) `span`'s parent.
pub fn server_span(span: Span, metadata: &MetadataMap) -> Span {
    let _ = span.set_parent(extract(metadata));
    span
}

/// Runs `future` (to be spawned) under the current span's trace context, without holding that
/// span open: spans the task opens are its descendants in the trace.
pub fn detach<F: std::future::Future>(future: F) -> opentelemetry::context::WithContext<F> {
    opentelemetry::context::FutureExt::with_context(future, Span::current().context())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_through_metadata_and_garbage_is_ignored() {
        use opentelemetry::trace::TraceContextExt;
        let mut metadata = MetadataMap::new();
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        metadata.insert("traceparent", parent.parse().unwrap());
        let cx = extract(&metadata);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_remote());
        assert_eq!(
            sc.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        let mut out = MetadataMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut MetadataInjector(&mut out));
        assert_eq!(out.get("traceparent").unwrap(), parent);

        let mut bad = MetadataMap::new();
        bad.insert("traceparent", "zz-not-a-context".parse().unwrap());
        assert!(!extract(&bad).span().span_context().is_valid());
        assert!(
            !extract(&MetadataMap::new())
                .span()
                .span_context()
                .is_valid()
        );
    }
}
