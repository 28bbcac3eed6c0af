//! The admin surface (`--status-public`, `--drain-from-loopback`, `--cors-origin`; SECURITY.md
//! "Admin surface") on real origin processes started with `--auth-secret`: drain and the status
//! API refuse callers without an admin credential (401 with `WWW-Authenticate: Bearer`, 403 for
//! a publisher's or viewer's token) and accept an admin JWT or the cluster credential, over HTTP
//! and gRPC; `/healthz` always answers; a `[::]` listener takes the preStop drain from
//! `127.0.0.1` (an IPv4-mapped peer); CORS only for the listed origins.

use cascade_proto::status::v1::status_client::StatusClient;
use cascade_proto::status::v1::{DrainNodeRequest, GetClusterRequest};
use cascade_tests::{NodeProc, cluster_credential};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tonic::Code;

const AUTH_SECRET: &str = "the platform's token secret, 32+ bytes";
const CLUSTER_SECRET: &str = "the nodes' own shared secret, 32+ bytes";
const DEADLINE: Duration = Duration::from_secs(10);

/// A JWT of `AUTH_SECRET` with `claims` and an expiry a minute away.
fn jwt(mut claims: serde_json::Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims["exp"] = json!(now + 60);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(AUTH_SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn admin_token() -> String {
    jwt(json!({ "admin": true }))
}

fn viewer_token() -> String {
    jwt(json!({ "room": "*", "subscribe": true, "publish": true }))
}

fn origin(name: &str, args: &[&str], cluster: bool) -> anyhow::Result<NodeProc> {
    let mut env = vec![("CASCADE_AUTH_SECRET", AUTH_SECRET)];
    if cluster {
        env.push(("CASCADE_CLUSTER_SECRET", CLUSTER_SECRET));
    }
    NodeProc::start_with_env("cascade-origin", name, args, &env)
}

/// The status and `WWW-Authenticate` of a request, with `token` as bearer.
async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<(StatusCode, Option<String>)> {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await?;
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status(), challenge))
}

async fn ready(node: &NodeProc) -> anyhow::Result<StatusCode> {
    Ok(call(reqwest::Method::GET, &node.url("/readyz"), None)
        .await?
        .0)
}

/// Waits until the node is draining: `/readyz` answers 503, or (having no sessions) the node
/// has already finished its drain and exited cleanly.
async fn wait_draining(node: &mut NodeProc) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}/readyz", node.http.port());
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(exit) = node.exited() {
            anyhow::ensure!(exit.success(), "{} exited with {exit}", node.name);
            return Ok(());
        }
        if let Ok((StatusCode::SERVICE_UNAVAILABLE, _)) =
            call(reqwest::Method::GET, &url, None).await
        {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{} did not start draining within {DEADLINE:?}",
            node.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn drain_needs_an_admin_credential_when_loopback_is_not_enough() -> anyhow::Result<()> {
    let args = ["--drain-from-loopback", "false", "--drain-timeout", "60"];
    let mut node = origin("origin-admin-drain", &args, false)?;
    let drain = node.url("/v1/nodes/self/drain");
    let post = reqwest::Method::POST;

    let (status, challenge) = call(post.clone(), &drain, None).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.is_some_and(|c| c.starts_with("Bearer")));
    let (status, _) = call(post.clone(), &drain, Some("not-a-jwt")).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(post.clone(), &drain, Some(&viewer_token())).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        ready(&node).await?,
        StatusCode::OK,
        "refused drains drained"
    );

    let (status, _) = call(post, &drain, Some(&admin_token())).await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_draining(&mut node).await
}

#[tokio::test]
async fn the_cluster_credential_drains_too() -> anyhow::Result<()> {
    let args = ["--drain-from-loopback", "false", "--drain-timeout", "60"];
    let mut node = origin("origin-admin-cluster", &args, true)?;
    let drain = node.url("/v1/nodes/self/drain");
    let (status, _) = call(reqwest::Method::POST, &drain, None).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let credential = cluster_credential(CLUSTER_SECRET, "cascade-cluster", 60);
    let (status, _) = call(reqwest::Method::POST, &drain, Some(&credential)).await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_draining(&mut node).await
}

#[tokio::test]
async fn a_dual_stack_listener_takes_the_prestop_drain_from_127_0_0_1() -> anyhow::Result<()> {
    // The default --drain-from-loopback: no token from loopback, as the Helm preStop hook.
    let mut node = origin(
        "origin-admin-v6",
        &["--http-listen", "[::]:0", "--drain-timeout", "60"],
        false,
    )?;
    assert!(node.http.ip().is_unspecified(), "{}", node.http);
    // Over IPv4: the node sees the peer as ::ffff:127.0.0.1.
    let url = format!("http://127.0.0.1:{}/v1/nodes/self/drain", node.http.port());
    let (status, _) = call(reqwest::Method::POST, &url, None).await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_draining(&mut node).await
}

#[tokio::test]
async fn status_closes_with_auth_unless_made_public() -> anyhow::Result<()> {
    let node = origin("origin-admin-status", &[], false)?;
    let get = reqwest::Method::GET;
    for path in ["/v1/node", "/v1/cluster", "/metrics", "/dashboard"] {
        let (status, challenge) = call(get.clone(), &node.url(path), None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(challenge.is_some(), "{path}");
        let (status, _) = call(get.clone(), &node.url(path), Some(&viewer_token())).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        let (status, _) = call(get.clone(), &node.url(path), Some(&admin_token())).await?;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    for path in ["/healthz", "/readyz"] {
        let (status, _) = call(get.clone(), &node.url(path), None).await?;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    let public = origin("origin-admin-public", &["--status-public", "true"], false)?;
    for path in ["/v1/node", "/metrics"] {
        let (status, _) = call(get.clone(), &public.url(path), None).await?;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn the_status_api_sends_cors_only_to_listed_origins() -> anyhow::Result<()> {
    let node = origin(
        "origin-admin-cors",
        &["--cors-origin", "https://allowed.example"],
        false,
    )?;
    let client = reqwest::Client::new();
    let allow = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    for (origin, expected) in [
        ("https://allowed.example", Some("https://allowed.example")),
        ("https://evil.example", None),
    ] {
        let preflight = client
            .request(reqwest::Method::OPTIONS, node.url("/v1/cluster"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .await?;
        assert_eq!(allow(&preflight).as_deref(), expected, "preflight {origin}");
        let get = client
            .get(node.url("/v1/node"))
            .header("origin", origin)
            .bearer_auth(admin_token())
            .send()
            .await?;
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(allow(&get).as_deref(), expected, "GET {origin}");
    }
    // WHIP stays open to every origin (browsers publish from other sites' pages).
    let whip = client
        .request(reqwest::Method::OPTIONS, node.url("/whip/demo"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await?;
    assert_eq!(allow(&whip).as_deref(), Some("*"));
    Ok(())
}

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(t) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    request
}

#[tokio::test]
async fn grpc_drain_and_status_take_an_admin_jwt() -> anyhow::Result<()> {
    let args = ["--drain-from-loopback", "false", "--drain-timeout", "60"];
    let mut node = origin("origin-admin-grpc", &args, true)?;
    let mut status = StatusClient::connect(node.grpc_url()).await?;
    let drain = |token: Option<&str>| with_token(DrainNodeRequest { id: "self".into() }, token);

    let refused = status.drain_node(drain(None)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");
    let viewer = viewer_token();
    let refused = status.drain_node(drain(Some(&viewer))).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused}");
    let refused = status
        .get_cluster(with_token(GetClusterRequest {}, None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");
    assert_eq!(ready(&node).await?, StatusCode::OK);

    let admin = admin_token();
    let cluster = status
        .get_cluster(with_token(GetClusterRequest {}, Some(&admin)))
        .await?
        .into_inner();
    assert!(!cluster.nodes.is_empty());
    let accepted = status.drain_node(drain(Some(&admin))).await?.into_inner();
    assert!(accepted.draining && !accepted.already_draining);
    wait_draining(&mut node).await
}
