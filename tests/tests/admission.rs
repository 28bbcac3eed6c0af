//! Admission control with real processes: `--capacity` counts sessions still connecting, and
//! `--connect-timeout` frees them, so a flood of offers that never connect keeps a real viewer
//! out for no longer than the timeout; per-client limits answer `429` with `Retry-After`.
//!
//! The flood is Chrome's WHEP offer (`core/testdata`) posted as is: it is answered, and since
//! nothing behind it ever does ICE, its session never connects.

use anyhow::{Context, Result};
use cascade_tests::{NodeProc, assert_clean_broadcast, bin, loadgen_broadcast, poll};
use reqwest::StatusCode;
use std::process::{Child, Command};
use std::time::Duration;

/// A real browser's WHEP offer (audio and video, receive only).
const WHEP_OFFER: &str = include_str!("../../core/testdata/chrome-whep-offer.sdp");

/// The same offer, sending: a WHIP offer.
fn whip_offer() -> String {
    WHEP_OFFER.replace("a=recvonly", "a=sendonly")
}

/// Posts an SDP offer; returns the status and the `Retry-After` header.
async fn offer(url: &str, sdp: &str) -> Result<(StatusCode, Option<String>)> {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp.to_owned())
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status(), retry))
}

/// A load generator publishing `room` to `origin` and watching it there with one viewer, for
/// `secs`: it keeps a room with media on the origin while the test floods an edge.
fn background_broadcast(origin: &NodeProc, room: &str, secs: u32) -> Result<Child> {
    Ok(Command::new(bin("cascade-loadgen"))
        .args(["run", "--quiet", "--origin", &origin.url(""), "--edge"])
        .arg(origin.url(""))
        .args(["--room", room, "--viewers", "1", "--video-kbps", "300"])
        .args(["--duration", &secs.to_string()])
        .spawn()?)
}

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The node's registered load and its viewer sessions.
async fn load(node: &NodeProc) -> Result<(u64, u64)> {
    let status = node.status().await?;
    Ok((
        status["node"]["load"].as_u64().unwrap_or(u64::MAX),
        status["sessions"]["viewers"].as_u64().unwrap_or(u64::MAX),
    ))
}

#[tokio::test]
async fn offers_that_never_connect_hold_slots_only_until_the_connect_timeout() -> Result<()> {
    let origin = NodeProc::origin("origin-adm")?;
    let edge = NodeProc::edge_with(
        "edge-adm",
        &origin,
        &["--capacity", "5", "--connect-timeout", "2"],
    )?;
    let _warm = Reaped(background_broadcast(&origin, "warm", 40)?);
    poll(
        "the room on the origin",
        Duration::from_secs(20),
        || async {
            let room = origin.room("warm").await?;
            Ok(room
                .filter(|r| r["tracks"].as_array().is_some_and(|t| t.len() == 2))
                .map(|_| ()))
        },
    )
    .await?;

    // Five offers that will never connect fill the edge; the sixth is refused (no other edge).
    let whep = edge.url("/whep/warm");
    for i in 0..5 {
        let (status, _) = offer(&whep, WHEP_OFFER).await?;
        assert_eq!(status, StatusCode::CREATED, "offer {i}");
    }
    assert_eq!(load(&edge).await?, (5, 5));
    let (status, retry) = offer(&whep, WHEP_OFFER).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the sixth offer");
    assert!(retry.is_some(), "a 503 says when to retry");

    // The connect timeout closes them and frees their slots (a poll bounded by the timeout
    // and the heartbeat that registers the load, not a speed claim).
    poll(
        "the flood's slots to free",
        Duration::from_secs(8),
        || async { Ok((load(&edge).await? == (0, 0)).then_some(())) },
    )
    .await?;
    assert!(
        edge.log()
            .iter()
            .any(|l| l.contains("never connected") || l.contains("session ended")),
        "the edge closed the flood's sessions"
    );

    // A real viewer joins and gets the whole broadcast.
    let json = std::env::temp_dir().join(format!("cascade-adm-{}.json", std::process::id()));
    let out = loadgen_broadcast(&origin, &edge, "live", 1, &json).output()?;
    assert_clean_broadcast(&out, &json, 1)?;
    Ok(())
}

#[tokio::test]
async fn a_client_with_too_many_unconnected_sessions_gets_429_until_they_time_out() -> Result<()> {
    let origin = NodeProc::start(
        "cascade-origin",
        "origin-pending",
        &["--max-pending-per-ip", "3", "--connect-timeout", "2"],
    )?;
    let sdp = whip_offer();
    for room in ["p1", "p2", "p3"] {
        let (status, _) = offer(&origin.url(&format!("/whip/{room}")), &sdp).await?;
        assert_eq!(status, StatusCode::CREATED, "{room}");
    }
    let (status, retry) = offer(&origin.url("/whip/p4"), &sdp).await?;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the fourth pending offer"
    );
    let retry: u64 = retry.context("Retry-After")?.parse()?;
    assert!(
        (1..=2).contains(&retry),
        "retry after the connect timeout: {retry}"
    );
    // Once the three are closed by the connect timeout, the client may offer again.
    poll(
        "the client's pending sessions to free",
        Duration::from_secs(8),
        || async {
            let (status, _) = offer(&origin.url("/whip/p4"), &sdp).await?;
            Ok((status == StatusCode::CREATED).then_some(()))
        },
    )
    .await?;
    let metrics = reqwest::get(origin.url("/metrics")).await?.text().await?;
    assert!(
        metrics.lines().any(|l| l
            .starts_with("cascade_http_limited_requests_total{reason=\"pending\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_over_the_request_rate_gets_429_with_retry_after() -> Result<()> {
    let origin = NodeProc::start(
        "cascade-origin",
        "origin-rate",
        &["--max-requests-per-ip-per-sec", "1"],
    )?;
    // Offers without media: refused by the handler (400) when let through. One token a
    // second, so ten requests in a row meet the limit however slow the machine.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..10 {
        let (status, retry) = offer(&origin.url("/whep/r"), "v=0\r\n").await?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = retry;
        }
        statuses.push(status);
    }
    assert_eq!(statuses[0], StatusCode::BAD_REQUEST, "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let retry: u64 = retry_after.context("Retry-After on a 429")?.parse()?;
    assert!(retry >= 1, "{retry}");
    // Health and other paths are not limited.
    for _ in 0..5 {
        let health = reqwest::get(origin.url("/healthz")).await?;
        assert_eq!(health.status(), StatusCode::OK);
    }
    Ok(())
}
