//! An operator ends a live room: `cascade room close R` (and `DELETE /v1/rooms/{room}` on the
//! room's origin) with an admin token disconnects its publisher and viewers on every node and
//! its routing entries go; `cascade session close ID` (`DELETE /v1/sessions/{id}`) ends one
//! viewer and leaves the rest. Real origin and edge processes, a real redis-server, a real WebRTC
//! broadcast (`cascade-loadgen`).

use anyhow::{Context, Result};
use cascade_tests::{NodeProc, RedisProc, bin, poll};
use reqwest::StatusCode;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "the cluster's shared secret, 32+ bytes long";

fn token(args: &[&str]) -> Result<String> {
    let out = Command::new(bin("cascade"))
        .arg("token")
        .args(args)
        .env("CASCADE_AUTH_SECRET", SECRET)
        .output()?;
    anyhow::ensure!(out.status.success(), "cascade token {args:?} failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// `cascade room close ROOM` against `node`, with `token` as `--token` when given.
fn close(node: &NodeProc, room: &str, token: Option<&str>) -> Result<std::process::Output> {
    let mut cmd = Command::new(bin("cascade"));
    cmd.args(["--url", &node.url(""), "room", "close", room]);
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    Ok(cmd.env_remove("CASCADE_ADMIN_TOKEN").output()?)
}

#[tokio::test]
async fn an_admin_closes_a_live_room_everywhere() -> Result<()> {
    let redis = RedisProc::start()?;
    let url = redis.url();
    // Drain and close are not taken from loopback without a token here, so the refusals show.
    let common = [
        "--redis",
        url.as_str(),
        "--lease-secs",
        "3",
        "--drain-from-loopback",
        "false",
    ];
    let env = [("CASCADE_AUTH_SECRET", SECRET)];
    let origin = NodeProc::start_with_env("cascade-origin", "origin-1", &common, &env)?;
    let edge = NodeProc::start_with_env("cascade-edge", "edge-1", &common, &env)?;
    let publish = token(&["--room", "stage", "--publish"])?;
    let json = std::env::temp_dir().join(format!("cascade-close-{}.json", std::process::id()));
    let mut broadcast = Command::new(bin("cascade-loadgen"))
        .args(["run", "--quiet", "--room", "stage", "--token", &publish])
        .args(["--origin", &origin.url(""), "--edge", &edge.url("")])
        .args(["--viewers", "2", "--ramp", "2", "--duration", "60"])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning cascade-loadgen")?;
    poll(
        "two viewers on the edge",
        Duration::from_secs(30),
        || async {
            let status = edge.status().await?;
            Ok((status["sessions"]["viewers"].as_u64() == Some(2)).then_some(()))
        },
    )
    .await?;

    // Without the admin grant: refused, the room goes on.
    let out = close(&edge, "stage", None)?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = close(&edge, "stage", Some(&publish))?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    assert!(origin.room("stage").await?.is_some());

    // The edge is not the room's origin: the API sends the request there.
    let admin = token(&["--admin"])?;
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .delete(edge.url("/v1/rooms/stage"))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        origin.url("/v1/rooms/stage").as_str()
    );

    // One session ends, the rest go on: the edge lists its two viewers and an operator closes
    // one of them (`cascade sessions`, `cascade session close ID`).
    let cli = |args: &[&str], token: Option<&str>| -> Result<std::process::Output> {
        let mut cmd = Command::new(bin("cascade"));
        cmd.args(["--url", &edge.url("")]).args(args);
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        Ok(cmd.env_remove("CASCADE_ADMIN_TOKEN").output()?)
    };
    let out = cli(&["sessions", "--json"], Some(&admin))?;
    let sessions: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let viewers: Vec<&str> = sessions["sessions"]
        .as_array()
        .context("a list of sessions")?
        .iter()
        .filter(|s| s["kind"] == "viewer" && s["room"] == "stage" && s["connected"] == true)
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(viewers.len(), 2, "{sessions}");
    let out = cli(&["session", "close", viewers[0]], Some(&publish))?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    let out = cli(&["session", "close", viewers[0]], Some(&admin))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("viewer session"));
    poll(
        "one viewer left on the edge",
        Duration::from_secs(10),
        || async {
            let status = edge.status().await?;
            Ok((status["sessions"]["viewers"].as_u64() == Some(1)).then_some(()))
        },
    )
    .await?;
    let out = cli(&["session", "close", viewers[0]], Some(&admin))?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert!(edge.room("stage").await?.is_some(), "the room goes on");

    // Through any node, with the admin token: the room ends everywhere.
    let out = close(&edge, "stage", Some(&admin))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("closed by origin-1"));
    let con = redis.connection().await?;
    poll(
        "the room gone from both nodes and from Redis",
        Duration::from_secs(15),
        || {
            let mut con = con.clone();
            let (origin, edge) = (&origin, &edge);
            async move {
                let owner: Option<String> = redis::cmd("GET")
                    .arg("cascade:room:stage:owner")
                    .query_async(&mut con)
                    .await?;
                let gone = origin.room("stage").await?.is_none()
                    && edge.room("stage").await?.is_none()
                    && owner.is_none();
                Ok(gone.then_some(()))
            }
        },
    )
    .await?;
    let status = edge.status().await?;
    assert_eq!(status["sessions"]["viewers"], 0, "viewers disconnected");
    let _ = broadcast.kill();
    let _ = broadcast.wait();
    let _ = std::fs::remove_file(&json);
    Ok(())
}
