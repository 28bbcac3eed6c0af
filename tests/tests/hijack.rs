//! Rooms cannot be squatted or hijacked, with real processes:
//! - with `--auth-secret`, a room whose publisher dropped is taken over only with a token for
//!   that room (another room's token: 403), and its viewers keep one continuous stream;
//! - a WHIP offer that never connects gives its room back within the connect timeout;
//! - without auth the take-over stays open, and is counted and logged.

use anyhow::{Context, Result};
use cascade_tests::{NodeProc, RedisProc, assert_clean_broadcast, bin, loadgen_broadcast, poll};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

const SECRET: &str = "the cluster's shared secret, 32+ bytes long";

/// A real browser's offer, sending: a WHIP offer nothing will ever connect.
fn whip_offer() -> String {
    include_str!("../../core/testdata/chrome-whep-offer.sdp").replace("a=recvonly", "a=sendonly")
}

fn token(room: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "room": room, "publish": true, "exp": now + 600 });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn whip(url: &str, token: Option<&str>) -> Result<StatusCode> {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/sdp")
        .body(whip_offer());
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    Ok(request.send().await.context("WHIP POST")?.status())
}

fn node(binary: &str, name: &str, args: &[&str]) -> Result<NodeProc> {
    NodeProc::start_with_env(binary, name, args, &[("CASCADE_AUTH_SECRET", SECRET)])
}

fn loadgen(room: &str, json: &PathBuf, args: &[&str]) -> Result<Child> {
    Ok(Command::new(bin("cascade-loadgen"))
        .args(["run", "--quiet", "--room", room])
        .args(["--video-kbps", "600", "--keyframe-interval", "4"])
        .args(args)
        .arg("--json")
        .arg(json)
        .spawn()?)
}

#[tokio::test]
async fn with_auth_only_the_rooms_token_takes_over_and_viewers_continue() -> Result<()> {
    let redis = RedisProc::start()?;
    let url = redis.url();
    let common = ["--redis", url.as_str(), "--lease-secs", "3"];
    let mut origin1 = node("cascade-origin", "origin-1", &common)?;
    let origin2 = node("cascade-origin", "origin-2", &common)?;
    let edge = node("cascade-edge", "edge-1", &common)?;
    let room_token = token("stage");
    let json = std::env::temp_dir().join(format!("cascade-hijack-{}.json", std::process::id()));
    let child = loadgen(
        "stage",
        &json,
        &[
            "--token",
            &room_token,
            "--viewers",
            "2",
            "--ramp",
            "2",
            "--duration",
            "30",
            "--origin",
            &origin1.url(""),
            "--failover-origin",
            &origin2.url(""),
            "--edge",
            &edge.url(""),
        ],
    )?;
    poll(
        "two viewers on the edge",
        Duration::from_secs(30),
        || async {
            let status = edge.status().await?;
            Ok((status["sessions"]["viewers"].as_u64() == Some(2)).then_some(()))
        },
    )
    .await?;
    // The publisher's origin dies: the room is live (its viewers wait) and its publisher gone.
    origin1.kill();
    let whip2 = origin2.url("/whip/stage");
    assert_eq!(
        whip(&whip2, Some(&token("other"))).await?,
        StatusCode::FORBIDDEN,
        "another room's token cannot take the room over"
    );
    assert_eq!(whip(&whip2, None).await?, StatusCode::UNAUTHORIZED);

    // The publisher, with the room's token, resumes it on origin-2; the viewers carry on.
    let status = child.wait_with_output()?.status;
    assert!(status.success(), "cascade-loadgen failed: {status}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let _ = std::fs::remove_file(&json);
    let publisher = &report["publisher"];
    assert_eq!(publisher["republishes"], 1, "{publisher}");
    assert!(publisher["error"].is_null(), "{publisher}");
    let sent = publisher["video_packets"].as_u64().unwrap_or(0);
    for viewer in report["per_viewer"].as_array().context("per_viewer")? {
        assert_eq!(viewer["disconnected"], false, "{viewer}");
        assert_eq!(
            viewer["video"]["seq_lost"], 0,
            "one continuous stream: {viewer}"
        );
        assert_eq!(
            viewer["audio"]["seq_lost"], 0,
            "one continuous stream: {viewer}"
        );
        let last = viewer["video"]["last_index"].as_u64().unwrap_or(0);
        assert!(
            last + 50 >= sent,
            "watched to the end ({sent} sent): {viewer}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_whip_offer_that_never_connects_frees_its_room_within_the_connect_timeout() -> Result<()>
{
    let origin = node(
        "cascade-origin",
        "origin-squat",
        &["--connect-timeout", "2"],
    )?;
    let upstream = origin.grpc_url();
    let edge = node("cascade-edge", "edge-squat", &["--upstream", &upstream])?;
    let room_token = token("squat");
    let whip_url = origin.url("/whip/squat");
    assert_eq!(
        whip(&whip_url, Some(&room_token)).await?,
        StatusCode::CREATED
    );
    assert_eq!(
        whip(&whip_url, Some(&room_token)).await?,
        StatusCode::CONFLICT,
        "the room is claimed while its publisher may still connect"
    );
    poll(
        "the room to be released",
        Duration::from_secs(8),
        || async { Ok(origin.room("squat").await?.is_none().then_some(())) },
    )
    .await?;
    // A real publisher now publishes it, and its viewers get it all.
    let json = std::env::temp_dir().join(format!("cascade-squat-{}.json", std::process::id()));
    let mut cmd = loadgen_broadcast(&origin, &edge, "squat", 2, &json);
    cmd.args(["--token", &room_token]);
    assert_clean_broadcast(&cmd.output()?, &json, 2)?;
    Ok(())
}

#[tokio::test]
async fn without_auth_a_takeover_is_counted_and_logged() -> Result<()> {
    let origin = NodeProc::origin("origin-open")?;
    let json = std::env::temp_dir().join(format!("cascade-open-{}.json", std::process::id()));
    let mut child = loadgen(
        "open",
        &json,
        &[
            "--viewers",
            "1",
            "--duration",
            "60",
            "--origin",
            &origin.url(""),
            "--edge",
            &origin.url(""),
        ],
    )?;
    poll("the publisher's media", Duration::from_secs(30), || async {
        let room = origin.room("open").await?;
        Ok(room
            .filter(|r| r["tracks"].as_array().is_some_and(|t| t.len() == 2))
            .map(|_| ()))
    })
    .await?;
    // The publisher vanishes without a word; once the origin notices, anyone may resume.
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&json);
    poll(
        "a stranger to take the room over",
        Duration::from_secs(25),
        || async {
            Ok((whip(&origin.url("/whip/open"), None).await? == StatusCode::CREATED).then_some(()))
        },
    )
    .await?;
    let metrics = reqwest::get(origin.url("/metrics")).await?.text().await?;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cascade_room_takeovers_total 1")),
        "{metrics}"
    );
    assert!(
        origin.log().iter().any(|l| l.contains("WARN")
            && l.contains("taken over")
            && l.contains("open")
            && l.contains("127.0.0.1")),
        "a warning names the room and the remote address"
    );
    Ok(())
}
