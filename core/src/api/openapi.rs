//! The status API's OpenAPI 3.1 document, served at `GET /openapi.json`.
//!
//! Derived, not written: the paths come from the `#[utoipa::path]` attributes on the status
//! handlers in [`crate::api::http`], the schemas from the types those answer with
//! ([`crate::api::status`] and what they embed), whose doc comments become the descriptions.
//! A field added to one of those types is in the document, and a test in
//! [`crate::api::grpc_status`] fails until the gRPC messages have it too. The document is
//! built once, on first use.
//!
//! Two rules that utoipa's derive does not express are applied to what it generates
//! ([`close`]):
//! - every object schema of an answer is closed (`additionalProperties: false`), so an answer
//!   with a field the document lacks fails validation (`tests/tests/status.rs` validates live
//!   answers against the served document); the error body stays open;
//! - a struct that flattens another (`NodeDetail` flattens `NodeSummary`) is one object with
//!   both sets of properties, not the `allOf` utoipa makes, which closed parts could not
//!   satisfy.
//!
//! utoipa takes an `Option` field as not required; a field that is always sent, as `null` when
//! unset, says `#[schema(required)]` (this module's tests check the required lists against
//! what the types serialize to).

use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use utoipa::OpenApi;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, Object, ObjectBuilder, Schema, Type,
};

/// The JSON body of every error answer.
// `crate::api::error` writes it; a test below checks one against this schema.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `not_found`, `routing_unavailable`.
    pub code: String,
    /// Human-readable.
    pub message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cascade status API",
        version = "1",
        description = "Served by every node. Errors are JSON {code, message}. /metrics \
            (Prometheus text), /healthz, /readyz and the WHIP/WHEP endpoints are documented in \
            README.md."
    ),
    paths(
        crate::api::http::cluster_status,
        crate::api::http::rooms_status,
        crate::api::http::room_status,
        crate::api::http::node_detail,
        crate::api::http::drain,
        crate::api::http::close_room,
        crate::api::http::node_status,
        crate::api::http::list_sessions,
        crate::api::http::close_session,
        crate::api::history::node_history,
        crate::api::history::cluster_history,
    ),
    tags((name = "status", description = "The cluster as any node sees it; the same answers \
        over gRPC are `cascade.status.v1.Status`."))
)]
struct StatusApi;

/// Object schemas that an answer may extend: an error body may carry more than `code` and
/// `message`.
const OPEN: &[&str] = &["Error"];

/// The document as served: JSON, generated once.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let mut api = StatusApi::openapi();
        close(&mut api);
        api.to_pretty_json()
            .expect("an OpenAPI document serializes to JSON")
    });
    &DOCUMENT
}

/// Merges each `allOf` component schema into one object and closes every object schema that
/// is not [`OPEN`] (see the module's documentation).
fn close(api: &mut utoipa::openapi::OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let generated = components.schemas.clone();
    for (name, schema) in &mut components.schemas {
        if let RefOr::T(Schema::AllOf(all_of)) = schema {
            let mut object = ObjectBuilder::new()
                .schema_type(Type::Object)
                .title(all_of.title.clone())
                .description(all_of.description.clone())
                .build();
            for part in &all_of.items {
                collect(part, &generated, &mut object);
            }
            *schema = RefOr::T(Schema::Object(object));
        }
        if !OPEN.contains(&name.as_str()) {
            close_objects(schema);
        }
    }
}

/// Adds the properties and required names of `part` (a `$ref`, an object or an `allOf`) to
/// `into`.
fn collect(
    part: &RefOr<Schema>,
    schemas: &std::collections::BTreeMap<String, RefOr<Schema>>,
    into: &mut Object,
) {
    match part {
        RefOr::Ref(r) => {
            let name = r.ref_location.trim_start_matches("#/components/schemas/");
            if let Some(schema) = schemas.get(name) {
                collect(schema, schemas, into);
            }
        }
        RefOr::T(Schema::AllOf(all_of)) => {
            for inner in &all_of.items {
                collect(inner, schemas, into);
            }
        }
        RefOr::T(Schema::Object(object)) => {
            into.properties.extend(object.properties.clone());
            for name in &object.required {
                if !into.required.contains(name) {
                    into.required.push(name.clone());
                }
            }
        }
        RefOr::T(_) => {}
    }
}

/// Sets `additionalProperties: false` on every object schema with properties in `schema`.
fn close_objects(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => {
            if !object.properties.is_empty() && object.additional_properties.is_none() {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
            object.properties.values_mut().for_each(close_objects);
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                close_objects(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(close_objects),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(close_objects),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status::*;
    use crate::cluster::node::SessionCounts;
    use crate::cluster::routing::{NodeInfo, Role};
    use axum::response::IntoResponse;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        serde_json::from_str(document()).unwrap()
    }

    /// `some`: every `Option` set; else every `Option` unset. Lists have one item either way,
    /// so that the objects inside them are checked too.
    fn info(some: bool) -> NodeInfo {
        NodeInfo {
            id: "e1".into(),
            role: Role::Edge,
            http_url: "http://127.0.0.1:8080".into(),
            grpc_url: "http://127.0.0.1:8081".into(),
            capacity: 10,
            load: 1,
            draining: false,
            version: "0.1.0".into(),
            heartbeat_unix_ms: some.then_some(1),
            cpu_percent: some.then_some(12.5),
            region: some.then(|| "eu-west".into()),
            zone: some.then(|| "eu-west-1a".into()),
        }
    }

    fn node_room(some: bool) -> NodeRoom {
        NodeRoom {
            room: "r".into(),
            relayed: true,
            subscribers: 1,
            viewers: 1,
            age_seconds: 3,
            tracks: vec![TrackReport {
                kind: "video".into(),
                codec: "video/VP8".into(),
                packets_in: 1,
                bytes_in: 1,
                queue_drops: 0,
                subscribers: 1,
                bitrate_bps: some.then_some(1),
                rid: some.then(|| "h".into()),
                paused_upstream: false,
            }],
        }
    }

    fn shard() -> MuxShard {
        MuxShard {
            address: "127.0.0.1:5000".into(),
            viewers: 1,
        }
    }

    fn summary(some: bool) -> NodeSummary {
        let n = some.then_some(1);
        NodeSummary {
            id: "e1".into(),
            role: Role::Edge,
            http_url: String::new(),
            grpc_url: String::new(),
            version: "0.1.0".into(),
            state: NodeState::Ready,
            capacity: 10,
            load: 1,
            reachable: some,
            viewers: n,
            publishers: n,
            relays: n,
            sessions_udp: n,
            sessions_tcp: n,
            sessions_relayed: n,
            rooms: n,
            ingress_bps: some.then_some(1),
            egress_bps: some.then_some(1),
            cpu_percent: some.then_some(1.5),
            last_heartbeat_unix_ms: some.then_some(1),
            heartbeat_age_ms: some.then_some(1),
            region: some.then(|| "eu-west".into()),
            zone: some.then(|| "eu-west-1a".into()),
        }
    }

    fn room(some: bool) -> RoomReport {
        RoomReport {
            room: "r".into(),
            origin: "o".into(),
            age_seconds: some.then_some(3),
            tracks: vec![RoomTrackInfo {
                kind: "audio".into(),
                codec: "audio/opus".into(),
                bitrate_bps: some.then_some(1),
            }],
            links: vec![LinkReport {
                edge: "e1".into(),
                upstream: "o".into(),
                bitrate_bps: some.then_some(1),
                paused_layers: if some { vec!["h".into()] } else { vec![] },
            }],
            viewers: vec![NodeViewers {
                node: "e1".into(),
                viewers: some.then_some(1),
            }],
            viewers_total: 1,
        }
    }

    /// An answer of each schema the document's responses name, as the types serialize it.
    fn answers(some: bool) -> Vec<(&'static str, Value)> {
        vec![
            (
                "NodeReport",
                json(&NodeReport {
                    node: info(some),
                    sessions: SessionCounts::default(),
                    rooms: vec![node_room(some)],
                    egress_bps: some.then_some(1),
                    mux_shards: vec![shard()],
                }),
            ),
            (
                "ClusterReport",
                json(&ClusterReport {
                    answered_by: "o".into(),
                    nodes: vec![summary(some)],
                    totals: Totals::default(),
                }),
            ),
            (
                "RoomsReport",
                json(&RoomsReport {
                    rooms: vec![room(some)],
                }),
            ),
            ("RoomReport", json(&room(some))),
            (
                "NodeDetail",
                json(&NodeDetail {
                    summary: summary(some),
                    room_details: some.then(|| vec![node_room(some)]),
                    mux_shards: some.then(|| vec![shard()]),
                }),
            ),
            (
                "DrainAccepted",
                json(&DrainReport {
                    node: "e1".into(),
                    draining: true,
                    already_draining: false,
                    drain_timeout_seconds: 30,
                }),
            ),
            (
                "RoomClosed",
                json(&CloseReport {
                    room: "r".into(),
                    closed_by: "o".into(),
                }),
            ),
            ("SessionInfo", json(&session(some))),
            (
                "SessionsReport",
                json(&crate::api::status::SessionsReport {
                    node: "e".into(),
                    sessions: vec![session(some)],
                }),
            ),
            (
                "NodeHistory",
                json(&crate::api::history::NodeHistory {
                    node: "e".into(),
                    interval_ms: 5000,
                    samples: vec![crate::api::history::NodeSample {
                        t_unix_ms: 1,
                        cpu_percent: some.then_some(1.5),
                        rooms: vec![crate::api::history::RoomSample {
                            room: "r".into(),
                            relayed: some,
                            viewers: 1,
                            ingress_bps: 2,
                            egress_bps: 3,
                        }],
                    }],
                }),
            ),
            (
                "ClusterHistory",
                json(&crate::api::history::ClusterHistory {
                    answered_by: "e".into(),
                    interval_ms: 5000,
                    rooms: vec![crate::api::history::RoomSeries {
                        room: "r".into(),
                        points: vec![crate::api::history::RoomPoint {
                            t_unix_ms: 1,
                            viewers: 1,
                            ingress_bps: 2,
                            egress_bps: 3,
                        }],
                    }],
                    nodes: vec![crate::api::history::NodeCpuSeries {
                        node: "e".into(),
                        points: vec![crate::api::history::CpuPoint {
                            t_unix_ms: 1,
                            cpu_percent: 1.5,
                        }],
                    }],
                }),
            ),
            ("Error", error_body()),
        ]
    }

    fn session(connected: bool) -> crate::cluster::node::SessionInfo {
        crate::cluster::node::SessionInfo {
            id: "s".into(),
            room: "r".into(),
            kind: crate::cluster::node::SessionKind::Viewer,
            connected,
            transport: connected.then_some(crate::rtc::transport::Transport::Tcp),
            estimate_kbps: connected.then_some(2_500),
            layer: connected.then(|| "h".to_owned()),
            video_paused: connected,
        }
    }

    fn json<T: Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap()
    }

    /// An error answer's body, as `crate::api::error` writes it.
    fn error_body() -> Value {
        let response = crate::Error::NotFound("no such room".into()).into_response();
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 16))
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        {
            Some(name) => resolve(doc, &doc["components"]["schemas"][name]),
            None => schema,
        }
    }

    fn names(v: Option<&Value>) -> BTreeSet<String> {
        match v {
            Some(Value::Object(map)) => map.keys().cloned().collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect(),
            _ => BTreeSet::new(),
        }
    }

    /// What a validator cannot tell from a single answer: with every `Option` set (`some`), an
    /// object has exactly its schema's properties; with none set, exactly its required ones.
    fn check(doc: &Value, schema: &Value, value: &Value, some: bool, at: &str) -> Vec<String> {
        let schema = resolve(doc, schema);
        if let Some(alternatives) = schema["oneOf"].as_array() {
            return match alternatives.iter().find(|a| a["type"] != "null") {
                Some(inner) if !value.is_null() => check(doc, inner, value, some, at),
                _ => vec![],
            };
        }
        match value {
            Value::Object(map) => {
                let keys: BTreeSet<String> = map.keys().cloned().collect();
                let properties = names(schema.get("properties"));
                let (what, expected) = if some {
                    ("properties", properties.clone())
                } else {
                    ("required", names(schema.get("required")))
                };
                let mut errors = vec![];
                if keys != expected {
                    errors.push(format!("{at}: sent {keys:?}, {what} {expected:?}"));
                }
                for (key, v) in map {
                    if properties.contains(key) {
                        let inner = &schema["properties"][key];
                        errors.extend(check(doc, inner, v, some, &format!("{at}.{key}")));
                    }
                }
                errors
            }
            Value::Array(items) => items
                .iter()
                .flat_map(|v| check(doc, &schema["items"], v, some, &format!("{at}[]")))
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn each_answers_fields_are_the_documents_properties_and_the_always_sent_are_required() {
        let doc = doc();
        // Every schema an answer is documented with has a sample here.
        let samples: BTreeSet<&str> = answers(true).iter().map(|(name, _)| *name).collect();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    let name = schema.as_str().and_then(|r| r.rsplit('/').next());
                    assert!(
                        name.is_some_and(|n| samples.contains(n)),
                        "{method} {path} {status}: {schema} has no sample in this test"
                    );
                }
            }
        }
        let mut errors = vec![];
        for some in [true, false] {
            for (name, value) in answers(some) {
                let schema = serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
                errors.extend(check(&doc, &schema, &value, some, name));
            }
        }
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn answers_are_closed_and_a_flattened_summary_is_one_object() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (name, schema) in schemas {
            if schema["type"] == "object" {
                let closed = schema["additionalProperties"] == false;
                assert_eq!(closed, !OPEN.contains(&name.as_str()), "{name}");
            }
            assert!(schema.get("allOf").is_none(), "{name}");
        }
        let detail = names(schemas["NodeDetail"].get("properties"));
        let summary = names(schemas["NodeSummary"].get("properties"));
        assert!(detail.is_superset(&summary), "{detail:?}");
        assert_eq!(
            names(schemas["NodeDetail"].get("required")),
            detail,
            "every NodeDetail field is always sent"
        );
    }

    #[test]
    fn paths_and_operations_are_the_status_apis() {
        let doc = doc();
        let operations = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object().unwrap().iter().map(|(method, op)| {
                    let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                    (path.clone(), method.clone(), id)
                })
            })
            .collect::<BTreeSet<_>>();
        let expected = [
            ("/v1/cluster", "get", "getCluster"),
            ("/v1/rooms", "get", "listRooms"),
            ("/v1/rooms/{room}", "get", "getRoom"),
            ("/v1/nodes/{id}", "get", "getNode"),
            ("/v1/nodes/{id}/drain", "post", "drainNode"),
            ("/v1/rooms/{room}", "delete", "closeRoom"),
            ("/v1/node", "get", "getSelf"),
            ("/v1/sessions", "get", "listSessions"),
            ("/v1/sessions/{id}", "delete", "closeSession"),
            ("/v1/node/history", "get", "getSelfHistory"),
            ("/v1/history", "get", "getHistory"),
        ]
        .map(|(p, m, o)| (p.to_owned(), m.to_owned(), o.to_owned()));
        assert_eq!(operations, BTreeSet::from(expected));
    }
}
