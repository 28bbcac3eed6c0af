//! `cascade token` mints what the nodes accept, and the publish and watch pages send it: real
//! origin and edge processes with `--auth-secret` and `--auth-viewers true`, a Chromium
//! publisher and viewer whose pages carry `?token=` from the CLI.

use anyhow::{Context, Result, ensure};
use cascade_tests::{Chromedriver, NodeProc, bin, wait_playing};
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

#[tokio::test]
async fn tokens_from_the_cli_publish_and_watch_from_the_pages() -> Result<()> {
    let origin = node("cascade-origin", "origin-1", &[])?;
    let upstream = origin.grpc_url();
    let edge = node("cascade-edge", "edge-1", &["--upstream", &upstream])?;
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
    let admin = cascade_token(&["--admin", "--ttl", "60"])?;
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
