//! OpenTelemetry export: an origin and an edge (processes) with `--otlp-endpoint` pointing at an
//! OTLP/gRPC trace receiver run by this test (a tonic server built from `opentelemetry-proto`'s
//! generated types), `cascade-loadgen` publishing on the origin and one viewer joining at the
//! edge. The viewer's join must arrive as one trace: the edge's `join` span, and the origin's
//! relay spans as its descendants (the trace context crossed the gRPC relay calls).

use anyhow::{Context, Result};
use cascade_tests::{NodeProc, poll};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);
const ROOM: &str = "otlp-room";

/// One received span, flattened.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

fn string_attrs(attrs: &[KeyValue]) -> HashMap<String, String> {
    attrs
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some((kv.key.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let resource = rs
                .resource
                .map(|r| string_attrs(&r.attributes))
                .unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                    attributes: string_attrs(&span.attributes),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Starts the receiver on 127.0.0.1:0; returns its URL.
async fn start_receiver(receiver: Receiver) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver))
            .serve_with_incoming(incoming)
            .await;
    });
    Ok(format!("http://{addr}"))
}

struct LoadGen(Child);

impl Drop for LoadGen {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `span` descends from `ancestor` through the spans received.
fn descends(spans: &[Received], span: &Received, ancestor: &[u8]) -> bool {
    let by_id: HashMap<&[u8], &Received> =
        spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let mut parent = span.parent_span_id.as_slice();
    for _ in 0..32 {
        if parent == ancestor {
            return true;
        }
        match by_id.get(parent) {
            Some(p) => parent = p.parent_span_id.as_slice(),
            None => return false,
        }
    }
    false
}

#[tokio::test]
async fn a_viewers_join_is_one_trace_across_edge_and_origin() -> Result<()> {
    let receiver = Receiver::default();
    let endpoint = start_receiver(receiver.clone()).await?;
    // Export each batch within 100 ms rather than the default 5 s.
    let env = [("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let otlp = ["--otlp-endpoint", endpoint.as_str()];
    let origin = NodeProc::start_with_env("cascade-origin", "origin-otel", &otlp, &env)?;
    let upstream = origin.grpc_url();
    let mut edge_args = otlp.to_vec();
    edge_args.extend(["--upstream", &upstream]);
    let edge = NodeProc::start_with_env("cascade-edge", "edge-otel", &edge_args, &env)?;

    let _media = LoadGen(
        Command::new(cascade_tests::bin("cascade-loadgen"))
            .arg("run")
            .args(["--origin", &origin.url(""), "--edge", &edge.url("")])
            .args(["--room", ROOM, "--viewers", "1", "--ramp", "0.5"])
            .args(["--duration", "30", "--video-kbps", "300", "--fps", "15"])
            .arg("--quiet")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning cascade-loadgen")?,
    );

    let found = poll(
        "the edge's join and the origin's relay spans in one trace",
        DEADLINE,
        || async {
            let spans = receiver.spans.lock().unwrap().clone();
            let joins = spans.iter().filter(|s| {
                s.service == "cascade-edge"
                    && s.name == "join"
                    && s.attributes.get("room").map(String::as_str) == Some(ROOM)
            });
            for join in joins {
                let in_trace: Vec<&Received> = spans
                    .iter()
                    .filter(|s| s.trace_id == join.trace_id)
                    .collect();
                let origin_relay = in_trace.iter().find(|s| {
                    s.service == "cascade-origin"
                        && s.name == "relay.subscribe"
                        && descends(&spans, s, &join.span_id)
                });
                if let Some(relay) = origin_relay {
                    return Ok(Some(((*relay).clone(), join.clone(), in_trace.len())));
                }
            }
            Ok(None)
        },
    )
    .await;
    let (relay, join, count) = match found {
        Ok(f) => f,
        Err(e) => {
            let names: Vec<(String, String)> = receiver
                .spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| (s.service.clone(), s.name.clone()))
                .collect();
            return Err(e.context(format!("spans received: {names:?}")));
        }
    };
    assert_eq!(relay.attributes.get("room").map(String::as_str), Some(ROOM));
    assert_eq!(
        relay.attributes.get("node").map(String::as_str),
        Some("origin-otel")
    );
    assert_eq!(
        relay.attributes.get("downstream").map(String::as_str),
        Some("edge-otel")
    );
    assert_eq!(
        join.attributes.get("node").map(String::as_str),
        Some("edge-otel")
    );
    assert!(join.attributes.contains_key("session"), "{join:?}");
    assert!(
        count >= 4,
        "join, two relay calls on each side: {count} spans"
    );

    // The publisher's span, at the origin.
    let spans = receiver.spans.lock().unwrap().clone();
    assert!(
        spans.iter().any(|s| s.service == "cascade-origin"
            && s.name == "publish"
            && s.attributes.get("room").map(String::as_str) == Some(ROOM)),
        "no publish span"
    );
    Ok(())
}
