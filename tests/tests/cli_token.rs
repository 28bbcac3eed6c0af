//! `cascade token` mints what the nodes accept, and the publish and watch pages send it: real
//! origin and edge processes with `--auth-secret` and `--auth-viewers true`, a Chromium
//! publisher and viewer whose pages carry `?token=` from the CLI, and a page that a full edge
//! redirects to another.

use anyhow::{Context, Result, ensure};
use cascade_tests::{Browser, Chromedriver, NodeProc, RedisProc, bin, poll, wait_playing};
use redis::AsyncCommands;
use reqwest::StatusCode;
use std::time::Duration;

const SECRET: &str = "the cluster's shared secret, 32+ bytes long";
const DEADLINE: Duration = Duration::from_secs(45);

/// `cascade token ARGS`, with the secret from the environment as the nodes have it.
fn cascade_token(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(bin("cascade"))
        .arg("token")
        .args(args)
        .env("CASCADE_AUTH_SECRET", SECRET)
        .output()
        .context("running cascade token")?;
    ensure!(
        out.status.success(),
        "cascade token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn node(binary: &str, name: &str, args: &[&str]) -> Result<NodeProc> {
    let mut all = vec!["--auth-viewers", "true"];
    all.extend_from_slice(args);
    NodeProc::start_with_env(binary, name, &all, &[("CASCADE_AUTH_SECRET", SECRET)])
}

/// A Chromium publishing room `stage` on `origin` from the publish page with a token from the
/// CLI; the driver, the publisher, and a publish and a subscribe token for the room.
async fn publish_stage(origin: &NodeProc) -> Result<(Chromedriver, Browser, String, String)> {
    let publish = cascade_token(&["--room", "stage", "--publish", "--ttl", "600"])?;
    let watch = cascade_token(&["--room", "stage", "--subscribe", "--ttl", "600"])?;
    let driver = Chromedriver::start().await?;
    let publisher = driver.browser().await?;
    publisher
        .open(&origin.url(&format!(
            "/publish.html?room=stage&codec=VP8&autostart=1&token={publish}"
        )))
        .await?;
    publisher.wait_connected(DEADLINE).await?;
    Ok((driver, publisher, publish, watch))
}

#[tokio::test]
async fn tokens_from_the_cli_publish_and_watch_from_the_pages() -> Result<()> {
    let origin = node("cascade-origin", "origin-1", &[])?;
    let upstream = origin.grpc_url();
    let edge = node("cascade-edge", "edge-1", &["--upstream", &upstream])?;
    let (driver, _publisher, publish, watch) = publish_stage(&origin).await?;
    let viewer = driver.browser().await?;
    viewer
        .open(&edge.url(&format!("/watch.html?room=stage&autostart=1&token={watch}")))
        .await?;
    wait_playing(&viewer, 30, DEADLINE).await?;

    // A page without a token is refused.
    let stranger = driver.browser().await?;
    stranger
        .open(&edge.url("/watch.html?room=stage&autostart=1"))
        .await?;
    let error = cascade_tests::poll("the page to fail", DEADLINE, || async {
        let v = stranger.eval("window.cascade").await?;
        Ok((v["state"] == "error").then(|| v["error"].to_string()))
    })
    .await?;
    assert!(error.contains("401"), "{error}");

    // The dashboard of a node whose status API is closed: refused without a token or with a
    // publisher's, drawn from `?token=` with an admin one.
    let admin = cascade_token(&["--admin", "--ttl", "60"])?;
    for (query, status) in [
        (String::new(), StatusCode::UNAUTHORIZED),
        (format!("?token={publish}"), StatusCode::FORBIDDEN),
        (format!("?token={admin}"), StatusCode::OK),
    ] {
        let response = reqwest::get(origin.url(&format!("/dashboard{query}"))).await?;
        assert_eq!(response.status(), status, "/dashboard{query}");
    }
    let dashboard = driver.browser().await?;
    dashboard
        .open(&origin.url(&format!("/dashboard?token={admin}")))
        .await?;
    cascade_tests::poll("the dashboard to draw the room", DEADLINE, || async {
        let v = dashboard.eval("window.cascadeDashboard").await?;
        let drawn = v["error"].is_null()
            && v["rooms"]["rooms"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["room"] == "stage"));
        Ok(drawn.then_some(()))
    })
    .await?;

    // Another room's token gets 403; an admin token reads the closed status API, others not.
    let other = cascade_token(&["--room", "other", "--publish"])?;
    let response = reqwest::Client::new()
        .post(origin.url("/whip/stage"))
        .header("content-type", "application/sdp")
        .bearer_auth(&other)
        .body("v=0\r\n")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    for (token, status) in [(&admin, StatusCode::OK), (&publish, StatusCode::FORBIDDEN)] {
        let response = reqwest::Client::new()
            .get(origin.url("/v1/node"))
            .bearer_auth(token)
            .send()
            .await?;
        assert_eq!(response.status(), status);
    }
    Ok(())
}

#[test]
fn the_cli_refuses_tokens_no_node_would_take() {
    for args in [
        &["--room", "stage"][..],
        &["--publish"],
        &["--room", "a b", "--publish"],
        &["--room", "stage", "--publish", "--ttl", "0"],
    ] {
        assert!(cascade_token(args).is_err(), "{args:?}");
    }
    let out = std::process::Command::new(bin("cascade"))
        .args(["token", "--secret", "short", "--room", "r", "--publish"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 bytes"));
}

/// A watch page sent by a full edge to another (`307`) keeps its token: the browser drops the
/// `Authorization` header on a redirect to another origin, and the page sends the offer again,
/// with the header, to the node it was sent to.
#[tokio::test]
async fn a_page_redirected_to_another_edge_keeps_its_token() -> Result<()> {
    let redis = RedisProc::start()?;
    let url = redis.url();
    let clustered = |binary: &str, name: &str, capacity: &str| {
        node(
            binary,
            name,
            &["--redis", &url, "--lease-secs", "3", "--capacity", capacity],
        )
    };
    let origin = clustered("cascade-origin", "origin-1", "10")?;
    let full = clustered("cascade-edge", "edge-a", "1")?;
    let other = clustered("cascade-edge", "edge-b", "5")?;
    poll("three nodes in Redis", DEADLINE, || async {
        let mut con = redis.connection().await?;
        let nodes: Vec<String> = con.zrange("cascade:nodes", 0, -1).await?;
        Ok((nodes.len() == 3).then_some(()))
    })
    .await?;
    let (driver, _publisher, _, watch) = publish_stage(&origin).await?;
    let page = format!("/watch.html?room=stage&autostart=1&token={watch}");
    let first = driver.browser().await?;
    first.open(&full.url(&page)).await?;
    wait_playing(&first, 10, DEADLINE).await?;
    // edge-a is at its capacity: the second page is sent to edge-b and plays there.
    let second = driver.browser().await?;
    second.open(&full.url(&page)).await?;
    wait_playing(&second, 30, DEADLINE).await?;
    let session = second.eval("window.cascade.location").await?;
    let session = session.as_str().context("the page's session URL")?;
    assert!(session.starts_with(&other.url("/whep/stage/")), "{session}");
    assert_eq!(
        other.status().await?["sessions"]["viewers"],
        1,
        "the viewer is edge-b's"
    );
    Ok(())
}
