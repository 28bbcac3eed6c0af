//! The HTTP face of a node: WHIP (RFC 9725) on origins, WHEP on every node, health, a small
//! status API, and the demo pages.
//!
//! WHIP/WHEP: `POST /whip/{room}` or `/whep/{room}` with an `application/sdp` offer answers
//! `201 Created`, the SDP answer, and a `Location` for the session; `DELETE` on that location
//! ends it. Trickle ICE and ICE restarts are not supported (the answer carries every candidate),
//! so `PATCH` answers `405`. CORS preflight is answered for any origin so other pages and players
//! can use the endpoints. Errors are JSON: `{"code": ..., "message": ...}`.
//!
//! The status API (`/v1/*`), `/dashboard` and `/metrics` are the admin surface
//! ([`crate::api::admin`]): behind an admin credential unless `--status-public`, drain behind one
//! unless from loopback, and CORS only for the `--cors-origin` origins. `/healthz` and
//! `/readyz` always answer.

use crate::api::admin::{Admin, Caller};
use crate::api::auth::{Auth, Grant};
use crate::api::client_limits::{
    ClientAddr, ClientLimiter, ClientLimits, OfferGate, SessionProgress,
};
use crate::api::history::History;
use crate::api::ice_servers::IceServers;
use crate::api::locality_hint::Hint;
use crate::api::openapi::ErrorBody;
use crate::api::status::{
    Close, CloseReport, ClusterReport, DrainReport, NodeDetail, NodeReport, RoomReport,
    RoomsReport, SessionsReport,
};
use crate::cluster::node::{Node, SessionInfo, SessionKind};
use crate::cluster::placement::Placement;
use crate::cluster::routing::Role;
use crate::error::{Error, Result};
use crate::media::RoomId;
use crate::media::layers::LayerChoice;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tower_http::cors::{Any, CorsLayer};
use tracing::Instrument;

/// Largest SDP offer accepted (real offers are a few KiB).
pub const MAX_SDP_BYTES: usize = 64 * 1024;

const PUBLISH_PAGE: &str = include_str!("../../static/publish.html");
const WATCH_PAGE: &str = include_str!("../../static/watch.html");
/// The pages' reading of a WHIP/WHEP endpoint's announced ICE servers.
const ICE_SCRIPT: &str = include_str!("../../static/ice.js");
const DASHBOARD_PAGE: &str = include_str!("../../static/cluster.html");

/// What the handlers share: the node, the bearer-token checks when `--auth-secret` is set, and
/// the admin checks.
#[derive(Debug, Clone)]
struct AppState {
    node: Arc<Node>,
    auth: Authorizer,
    admin: Arc<Admin>,
    /// STUN/TURN servers announced on WHIP/WHEP answers and `OPTIONS`.
    ice: Arc<IceServers>,
    /// The node's last minutes, for the dashboard.
    history: Arc<History>,
}

/// The bearer-token checks of WHIP/WHEP, when the node has `--auth-secret` ([`crate::api::auth`]);
/// anyone may do anything without it.
#[derive(Debug, Clone, Default)]
struct Authorizer(Option<Arc<Auth>>);

impl Authorizer {
    /// Whether the request may do `grant` in `room`.
    fn check(&self, headers: &HeaderMap, room: &str, grant: Grant) -> Result<()> {
        self.0
            .as_ref()
            .map_or(Ok(()), |auth| Ok(auth.check(headers, room, grant)?))
    }
}

impl FromRef<AppState> for Arc<Node> {
    fn from_ref(state: &AppState) -> Self {
        state.node.clone()
    }
}

impl FromRef<AppState> for Authorizer {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Arc<IceServers> {
    fn from_ref(state: &AppState) -> Self {
        state.ice.clone()
    }
}

impl FromRef<AppState> for Arc<History> {
    fn from_ref(state: &AppState) -> Self {
        state.history.clone()
    }
}

impl FromRef<AppState> for Arc<Admin> {
    fn from_ref(state: &AppState) -> Self {
        state.admin.clone()
    }
}

/// The node's router; `auth` checks WHIP/WHEP bearer tokens when set, `admin` who may use the
/// status API and drain, `limits` bound each client's WHIP/WHEP offers
/// ([`crate::api::client_limits`]), `ice` is announced to WHIP/WHEP clients, `history` is
/// served to the dashboard.
pub fn router(
    node: Arc<Node>,
    auth: Option<Arc<Auth>>,
    admin: Arc<Admin>,
    limits: ClientLimits,
    ice: Arc<IceServers>,
    history: Arc<History>,
) -> Router {
    let gate = Arc::new(OfferGate {
        limiter: ClientLimiter::new(limits, node.config.connect_timeout),
        refused: node.metrics.limited.clone(),
    });
    let state = AppState {
        node,
        auth: Authorizer(auth),
        admin: admin.clone(),
        ice,
        history,
    };
    // Browsers publish and watch from other sites' pages: any origin.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_MATCH,
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            header::HeaderName::from_static("accept-post"),
        ]);
    // The admin surface: reads behind `--status-public` (the check wraps only the routes added
    // before it), drain checked in its handler; CORS only for the configured origins, outside
    // the check so that a preflight (which carries no credentials) and a 401 reach the page.
    let status = Router::new()
        .route("/dashboard", get(|| async { Html(DASHBOARD_PAGE) }))
        .route("/metrics", get(metrics))
        .route("/v1/node", get(node_status))
        .route("/v1/cluster", get(cluster_status))
        .route("/v1/rooms", get(rooms_status))
        .route("/v1/rooms/{room}", get(room_status))
        .route("/v1/nodes/{id}", get(node_detail))
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/node/history", get(crate::api::history::node_history))
        .route("/v1/history", get(crate::api::history::cluster_history))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_status,
        ))
        .route("/v1/nodes/{id}/drain", post(drain))
        .route("/v1/rooms/{room}", axum::routing::delete(close_room))
        .route("/v1/sessions/{id}", axum::routing::delete(close_session));
    let status = match status_cors(admin.settings().cors_origins.as_slice()) {
        Some(cors) => status.layer(cors),
        None => status,
    };
    Router::new()
        .route("/", get(index))
        .route("/publish.html", get(|| async { Html(PUBLISH_PAGE) }))
        .route("/watch.html", get(|| async { Html(WATCH_PAGE) }))
        .route(
            "/ice.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], ICE_SCRIPT) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    crate::api::openapi::document(),
                )
            }),
        )
        .route("/whip/{room}", post(whip))
        .route(
            "/whip/{room}/{session}",
            axum::routing::delete(end_whip).patch(patch_session),
        )
        .route("/whep/{room}", post(whep))
        .route(
            "/whep/{room}/{session}",
            axum::routing::delete(end_whep).patch(patch_session),
        )
        .layer(cors)
        .merge(status)
        .layer(DefaultBodyLimit::max(MAX_SDP_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.ice.clone(),
            endpoint_options,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gate,
            crate::api::client_limits::gate,
        ))
        .with_state(state)
}

/// The status API's CORS: only for `origins` (`--cors-origin`), none without any.
fn status_cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            // The layer's default `Vary` names `Origin`: caches keep the answers apart.
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

/// The `--status-public` check in front of the status reads.
async fn require_status(
    State(admin): State<Arc<Admin>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // A browser sends no header when it opens `/dashboard`: the page's URL may carry the admin
    // token as `?token=` (the page sends it on as a bearer with its API calls).
    let from_query = (request.uri().path() == "/dashboard")
        .then(|| dashboard_token(request.uri().query()))
        .flatten()
        .map(|token| format!("Bearer {token}"));
    match admin.status(header.or(from_query.as_deref())) {
        Ok(()) => next.run(request).await,
        Err(e) => Error::from(e).into_response(),
    }
}

/// The `token` parameter of a query string (a JWT: nothing in it is percent-encoded).
fn dashboard_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

async fn index(State(node): State<Arc<Node>>) -> Html<String> {
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Cascade {role} {id}</title>\
         <h1>Cascade {role} <code>{id}</code></h1>\
         <ul><li><a href=\"/publish.html\">Publish</a> (origins)</li>\
         <li><a href=\"/watch.html\">Watch</a></li>\
         <li><a href=\"/dashboard\">Cluster dashboard</a></li>\
         <li><a href=\"/v1/cluster\">Cluster status (JSON)</a>, \
         <a href=\"/v1/rooms\">rooms</a>, <a href=\"/v1/node\">this node</a>, \
         <a href=\"/openapi.json\">OpenAPI</a>, <a href=\"/metrics\">metrics</a></li></ul>",
        role = node.role().as_str(),
        id = node.id(),
    ))
}

async fn readyz(State(node): State<Arc<Node>>) -> Response {
    if node.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

#[utoipa::path(get, path = "/v1/node", operation_id = "getSelf", tag = "status",
    summary = "This node's own state",
    responses(
        (status = 200, description = "this node", body = NodeReport),
        (status = 401, description = "no valid admin credential while the status API is not public (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "a token without the admin grant", body = ErrorBody),
    ))]
async fn node_status(State(node): State<Arc<Node>>) -> Json<NodeReport> {
    Json(crate::api::status::node_report(&node))
}

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        node.metrics.render(&node.gauges()),
    )
}

fn json<T: serde::Serialize>(r: Result<T>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(get, path = "/v1/cluster", operation_id = "getCluster", tag = "status",
    summary = "Every live node and cluster totals",
    responses(
        (status = 200, description = "the cluster", body = ClusterReport),
        (status = 401, description = "no valid admin credential while the status API is not public (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "a token without the admin grant", body = ErrorBody),
        (status = 503, description = "the routing store is unavailable (Retry-After)", body = ErrorBody),
    ))]
async fn cluster_status(
    State(node): State<Arc<Node>>,
    State(admin): State<Arc<Admin>>,
) -> Response {
    json(crate::api::status::cluster(&node, &admin).await)
}

#[utoipa::path(get, path = "/v1/rooms", operation_id = "listRooms", tag = "status",
    summary = "Every published room: origin, tracks, relay tree, viewers",
    responses(
        (status = 200, description = "the rooms", body = RoomsReport),
        (status = 401, description = "no valid admin credential while the status API is not public (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "a token without the admin grant", body = ErrorBody),
        (status = 503, description = "the routing store is unavailable (Retry-After)", body = ErrorBody),
    ))]
async fn rooms_status(State(node): State<Arc<Node>>, State(admin): State<Arc<Admin>>) -> Response {
    json(crate::api::status::rooms(&node, &admin).await)
}

#[utoipa::path(get, path = "/v1/rooms/{room}", operation_id = "getRoom", tag = "status",
    summary = "One room",
    params(("room" = String, Path, pattern = r"^[A-Za-z0-9._-]{1,128}$", description = "room name")),
    responses(
        (status = 200, description = "the room", body = RoomReport),
        (status = 400, description = "invalid room name", body = ErrorBody),
        (status = 404, description = "no such room", body = ErrorBody),
        (status = 401, description = "no valid admin credential while the status API is not public (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "a token without the admin grant", body = ErrorBody),
        (status = 503, description = "the routing store is unavailable (Retry-After)", body = ErrorBody),
    ))]
async fn room_status(
    State(node): State<Arc<Node>>,
    State(admin): State<Arc<Admin>>,
    Path(room): Path<String>,
) -> Response {
    json(crate::api::status::room(&node, &room, &admin).await)
}

#[utoipa::path(get, path = "/v1/nodes/{id}", operation_id = "getNode", tag = "status",
    summary = "One node and its rooms",
    params(("id" = String, Path, description = "node id, or `self`")),
    responses(
        (status = 200, description = "the node", body = NodeDetail),
        (status = 404, description = "no such live node", body = ErrorBody),
        (status = 401, description = "no valid admin credential while the status API is not public (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "a token without the admin grant", body = ErrorBody),
        (status = 503, description = "the routing store is unavailable (Retry-After)", body = ErrorBody),
    ))]
async fn node_detail(
    State(node): State<Arc<Node>>,
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
) -> Response {
    json(crate::api::status::node_detail(&node, &id, &admin).await)
}

/// `POST /v1/nodes/{id}/drain`: starts draining this node (`id` is its id or `self`).
/// Idempotent: `202 Accepted` each time, with the node's state. Needs an admin credential, or
/// a loopback peer while `--drain-from-loopback` (the Kubernetes preStop hook, an operator on
/// the machine): the HTTP port also faces viewers.
#[utoipa::path(post, path = "/v1/nodes/{id}/drain", operation_id = "drainNode", tag = "status",
    summary = "Start draining the node answering (admin credential or loopback; idempotent)",
    params(("id" = String, Path, description = "node id, or `self`")),
    responses(
        (status = 202, description = "draining", body = DrainReport),
        (status = 401, description = "no valid admin credential (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "a token without the admin grant, or not from loopback on a node without secrets", body = ErrorBody),
        (status = 404, description = "the id is not this node's", body = ErrorBody),
    ))]
async fn drain(State(node): State<Arc<Node>>, _: AdminCaller, Path(id): Path<String>) -> Response {
    match crate::api::status::drain(&node, &id) {
        Ok(report) => (StatusCode::ACCEPTED, Json(report)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The caller of an admin action (drain, closing a room or a session), checked by
/// [`Admin::drain`]'s rule: an admin credential, or loopback. Rejected with the response to send.
struct AdminCaller;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AdminCaller
where
    Arc<Admin>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> std::result::Result<Self, Response> {
        let admin = Arc::<Admin>::from_ref(state);
        // Absent when the router is served without connection info (in-process tests).
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match admin.drain(authorization, Caller::from(peer)) {
            Ok(()) => Ok(AdminCaller),
            Err(e) => {
                if let Some(peer) = peer {
                    let (method, path) = (&parts.method, parts.uri.path());
                    tracing::info!(%peer, error = %e, %method, path, "admin action refused");
                }
                Err(Error::from(e).into_response())
            }
        }
    }
}

#[utoipa::path(delete, path = "/v1/rooms/{room}", operation_id = "closeRoom", tag = "status",
    summary = "End a room everywhere: its publisher and viewers are disconnected (admin credential or loopback)",
    params(("room" = String, Path, description = "room name")),
    responses(
        (status = 200, description = "ended by this node, the room's origin", body = CloseReport),
        (status = 307, description = "another node is the room's origin: Location is its /v1/rooms/{room}", body = ErrorBody),
        (status = 401, description = "no valid admin credential (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "a token without the admin grant, or not from loopback on a node without secrets", body = ErrorBody),
        (status = 404, description = "nobody publishes the room", body = ErrorBody),
    ))]
async fn close_room(
    State(node): State<Arc<Node>>,
    _: AdminCaller,
    Path(room): Path<String>,
) -> Response {
    match crate::api::status::close_room(&node, &room).await {
        Ok(Close::Closed(report)) => Json(report).into_response(),
        Ok(Close::Elsewhere(origin)) => redirect(&origin, &format!("/v1/rooms/{room}")),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(get, path = "/v1/sessions", operation_id = "listSessions", tag = "status",
    summary = "This node's sessions: publishers, viewers and relay links it feeds",
    responses(
        (status = 200, description = "by room and id", body = SessionsReport),
        (status = 401, description = "the status API is not public and no valid admin credential came", body = ErrorBody),
    ))]
async fn list_sessions(State(node): State<Arc<Node>>) -> Json<SessionsReport> {
    Json(SessionsReport {
        node: node.id().to_owned(),
        sessions: node.sessions(),
    })
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", operation_id = "closeSession", tag = "status",
    summary = "End one session of this node (admin credential or loopback)",
    params(("id" = String, Path, description = "the session's id, the last segment of its WHIP/WHEP resource URL")),
    responses(
        (status = 200, description = "the session, now ending", body = SessionInfo),
        (status = 401, description = "no valid admin credential (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "a token without the admin grant, or not from loopback on a node without secrets", body = ErrorBody),
        (status = 404, description = "no such session on this node", body = ErrorBody),
    ))]
async fn close_session(
    State(node): State<Arc<Node>>,
    _: AdminCaller,
    Path(id): Path<String>,
) -> Response {
    match node.close_session(&id) {
        Ok(session) => Json(session).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `307 Temporary Redirect` to the same endpoint on another node (WHIP and WHEP clients follow
/// it with the same offer).
fn redirect(to: &crate::cluster::routing::NodeInfo, path: &str) -> Response {
    let location = format!("{}{path}", to.http_url.trim_end_matches('/'));
    let mut response = (
        StatusCode::TEMPORARY_REDIRECT,
        Json(serde_json::json!({
            "code": "redirect",
            "message": format!("served by node {}", to.id),
            "location": location,
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// The answer for a session this node will not take and nobody else can.
fn refused(draining: bool) -> Response {
    Error::Unavailable(if draining {
        "this node is draining and no other node has room".into()
    } else {
        "this node is at capacity and no other node has room".into()
    })
    .into_response()
}

/// RFC 9725 §4.1 (WHIP, and WHEP likewise): the 200 OK to an OPTIONS request to an endpoint
/// should carry `Accept-Post: application/sdp`, and may carry the ICE servers to gather
/// candidates with before making the offer (§4.6). The CORS layer answers every OPTIONS
/// request itself, as a preflight, so the headers are added around it, here.
async fn endpoint_options(
    State(ice): State<Arc<IceServers>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let endpoint = request.method() == Method::OPTIONS && is_endpoint(request.uri().path());
    let mut response = next.run(request).await;
    if endpoint {
        response.headers_mut().insert(
            header::HeaderName::from_static("accept-post"),
            header::HeaderValue::from_static("application/sdp"),
        );
        add_ice_links(&mut response, &ice);
    }
    response
}

/// Whether `path` is a WHIP or WHEP endpoint (`/whip/{room}`, `/whep/{room}`), not a session.
pub(crate) fn is_endpoint(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("whip" | "whep"), Some(room), None) if !room.is_empty()
    )
}

async fn patch_session() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "DELETE, OPTIONS")],
        Json(serde_json::json!({
            "code": "trickle_not_supported",
            "message": "trickle ICE and ICE restarts are not supported: the answer carries every candidate",
        })),
    )
}

/// Checks the request is an SDP offer and returns it as text.
fn sdp_body(headers: &HeaderMap, body: &Bytes) -> Result<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/sdp") {
        return Err(Error::UnsupportedMediaType(format!(
            "the offer must be sent as application/sdp, not {content_type:?}"
        )));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| Error::BadRequest("the SDP offer is not valid UTF-8".into()))
}

/// Adds a `Link` header per ICE server, with credentials minted now.
fn add_ice_links(response: &mut Response, ice: &IceServers) {
    if ice.is_empty() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for link in ice.links(now) {
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, v);
        }
    }
}

fn created(location: String, answer: String) -> Response {
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    response
}

async fn whip(
    State(node): State<Arc<Node>>,
    State(auth): State<Authorizer>,
    State(ice): State<Arc<IceServers>>,
    Path(room): Path<String>,
    client: Option<axum::Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) =
        RoomId::validate(&room).and_then(|()| auth.check(&headers, &room, Grant::Publish))
    {
        return e.into_response();
    }
    if node.role() != Role::Origin {
        return Error::NotFound(format!(
            "this node ({}) is an edge: publish to an origin's /whip/{room}",
            node.id()
        ))
        .into_response();
    }
    let offer = match sdp_body(&headers, &body) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    match node.place_publisher().await {
        Ok(Placement::Here) => {}
        Ok(Placement::Redirect(to)) => {
            tracing::info!(room, to = %to.id, "publisher redirected");
            return redirect(&to, &format!("/whip/{room}"));
        }
        Ok(Placement::Refuse { draining }) => return refused(draining),
        Err(e) => return e.into_response(),
    }
    let span = crate::obs::telemetry::publish_span(&room, node.id());
    match node.publish(&room, &offer).instrument(span.clone()).await {
        Ok(published) => {
            let session = &published.handle.id;
            crate::obs::telemetry::record_session(&span, session);
            if published.resumed {
                let remote = client.map(|axum::Extension(ClientAddr(ip))| ip);
                log_takeover(&auth, &room, remote);
            }
            let mut response = created(format!("/whip/{room}/{session}"), published.answer);
            add_ice_links(&mut response, &ice);
            SessionProgress::attach(&mut response, &published.handle);
            response
        }
        Err(e) => {
            tracing::info!(room, error = %e, "publish refused");
            e.into_response()
        }
    }
}

/// The simulcast layer a WHEP request asks for: `?layer=high|mid|low|<rid>`
/// ([`LayerChoice::parse`]); the top layer without one. A mux viewer starts there and is then
/// sent the highest layer its link carries up to it (`media::layers::LayerPolicy`).
fn layer_param(query: Option<&str>) -> Result<LayerChoice> {
    let value = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("layer="));
    match value {
        None => Ok(LayerChoice::default()),
        Some(v) => LayerChoice::parse(v).map_err(Error::BadRequest),
    }
}

// One extractor per part of the request, as axum takes them.
#[allow(clippy::too_many_arguments)]
async fn whep(
    State(node): State<Arc<Node>>,
    State(auth): State<Authorizer>,
    State(ice): State<Arc<IceServers>>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    hint: Hint,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) =
        RoomId::validate(&room).and_then(|()| auth.check(&headers, &room, Grant::Subscribe))
    {
        return e.into_response();
    }
    let layers = match layer_param(query.as_deref()) {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let offer = match sdp_body(&headers, &body) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    match node.place_viewer(&room, &hint.near).await {
        Ok(Placement::Here) => {}
        Ok(Placement::Redirect(to)) => {
            tracing::info!(room, to = %to.id, "viewer redirected");
            // The layer choice and the placement hint go along.
            let path = match hint.redirect_query(query.as_deref()) {
                Some(q) => format!("/whep/{room}?{q}"),
                None => format!("/whep/{room}"),
            };
            return redirect(&to, &path);
        }
        Ok(Placement::Refuse { draining }) => return refused(draining),
        Err(e) => {
            tracing::info!(room, error = %e, "viewer refused");
            return e.into_response();
        }
    }
    let span = crate::obs::telemetry::join_span(&room, node.id());
    match node
        .subscribe(&room, &offer, SessionKind::Viewer, layers)
        .instrument(span.clone())
        .await
    {
        Ok((handle, answer)) => {
            crate::obs::telemetry::record_session(&span, &handle.id);
            let mut response = created(format!("/whep/{room}/{}", handle.id), answer);
            add_ice_links(&mut response, &ice);
            SessionProgress::attach(&mut response, &handle);
            response
        }
        Err(e) => {
            tracing::info!(room, error = %e, "viewer refused");
            e.into_response()
        }
    }
}

/// A live room taken over by a new publisher after its own dropped: with `--auth-secret` the
/// new one showed a token for the room; without, anyone may, and the log says so.
fn log_takeover(auth: &Authorizer, room: &str, remote: Option<std::net::IpAddr>) {
    let remote = remote.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    if auth.0.is_some() {
        tracing::info!(room, remote = %remote, "room taken over by a publisher with a token for it");
    } else {
        tracing::warn!(
            room,
            remote = %remote,
            "room taken over by a new publisher without authentication (its viewers now see \
             this publisher); --auth-secret limits take-overs to holders of a token for the room"
        );
    }
}

async fn end_whip(
    State(node): State<Arc<Node>>,
    State(auth): State<Authorizer>,
    Path((room, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    end(&node, &auth, &room, &session, &headers, Grant::Publish)
}

async fn end_whep(
    State(node): State<Arc<Node>>,
    State(auth): State<Authorizer>,
    Path((room, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    end(&node, &auth, &room, &session, &headers, Grant::Subscribe)
}

/// Ends a session; the same token as its `POST` is needed (RFC 9725 §4.5).
fn end(
    node: &Node,
    auth: &Authorizer,
    room: &str,
    session: &str,
    headers: &HeaderMap,
    grant: Grant,
) -> Response {
    if let Err(e) = auth.check(headers, room, grant) {
        return e.into_response();
    }
    match node.end_session(room, session) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn test_node(capacity: u32) -> Arc<Node> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            node: crate::config::NodeArgs,
        }
        let cli = Cli::try_parse_from(["test", "--capacity", &capacity.to_string()]).unwrap();
        let config = cli
            .node
            .into_config(Role::Edge, Some("http://127.0.0.1:1".into()))
            .unwrap();
        let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        Node::new(
            config.node,
            Arc::new(crate::cluster::routing::MemoryStore::new()),
            addr,
            addr,
        )
    }

    async fn call(
        node: &Arc<Node>,
        method: Method,
        uri: &str,
        peer: &str,
        body: &str,
    ) -> StatusCode {
        use tower::ServiceExt;
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/sdp")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo::<std::net::SocketAddr>(peer.parse().unwrap()));
        router(
            node.clone(),
            None,
            Arc::new(Admin::default()),
            ClientLimits::default(),
            Arc::new(IceServers::default()),
            Arc::new(History::default()),
        )
        .oneshot(request)
        .await
        .unwrap()
        .status()
    }

    const RECVONLY: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n\
        a=rtpmap:96 VP8/90000\r\n";

    #[tokio::test]
    async fn drain_is_loopback_only_idempotent_and_stops_new_viewers() {
        let node = test_node(10);
        let local = "127.0.0.1:5000";
        assert_eq!(
            call(&node, Method::GET, "/readyz", local, "").await,
            StatusCode::OK
        );
        let drain = "/v1/nodes/self/drain";
        assert_eq!(
            call(&node, Method::POST, drain, "192.0.2.7:5000", "").await,
            StatusCode::FORBIDDEN
        );
        assert!(!node.is_draining());
        assert_eq!(
            call(
                &node,
                Method::POST,
                "/v1/nodes/someone-else/drain",
                local,
                ""
            )
            .await,
            StatusCode::NOT_FOUND
        );
        for _ in 0..2 {
            assert_eq!(
                call(&node, Method::POST, drain, local, "").await,
                StatusCode::ACCEPTED
            );
        }
        assert!(node.is_draining());
        assert_eq!(
            call(&node, Method::GET, "/readyz", local, "").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // No other node in this store: refused, not served.
        assert_eq!(
            call(&node, Method::POST, "/whep/r", local, RECVONLY).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // No sessions: the drain ends in a shutdown.
        tokio::time::timeout(std::time::Duration::from_secs(5), node.shutdown.cancelled())
            .await
            .unwrap();
    }

    #[test]
    fn room_names() {
        RoomId::validate("demo").unwrap();
        RoomId::validate("a-b_c.1").unwrap();
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(129)] {
            assert!(RoomId::validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_are_told_from_sessions() {
        for endpoint in ["/whip/demo", "/whep/demo"] {
            assert!(is_endpoint(endpoint), "{endpoint}");
        }
        for other in ["/whip/demo/1", "/whep/", "/whip", "/v1/rooms/demo", "/"] {
            assert!(!is_endpoint(other), "{other}");
        }
    }
}
