//! A hung origin is a dead origin, judged by its routing lease alone. Real processes: a
//! redis-server, two origins and an edge (all `--redis`, `--lease-secs 3`), and real WebRTC
//! peers (`cascade-loadgen`): a publisher on origin-1 that publishes again to origin-2 when its
//! connection fails, and viewers on the edge.
//!
//! origin-1 is frozen with SIGSTOP: the kernel still accepts connections on its ports, so
//! nothing but its lease tells it is gone. Then:
//! - another origin refuses its rooms while its lease runs, and lets a publisher in once the
//!   lease is over (within one lease of the hang);
//! - the publisher is accepted on origin-2 and the edge follows it there, its viewers keeping
//!   their peer connections (no new offer, no redirect) and their RTP streams (same tracks,
//!   so the same SSRCs, sequence numbers continuous);
//! - woken with SIGCONT, origin-1 finds its lease lost (its renewal compares its token), gives
//!   its rooms up and takes nothing back: the store still names origin-2.

use anyhow::{Context, Result, bail};
use cascade_tests::{NodeProc, RedisProc, bin, poll};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// `--lease-secs` of every node.
const LEASE: Duration = Duration::from_secs(3);

/// A publisher's WHIP offer with no peer behind it: enough for an origin to claim the room and
/// answer, never connecting.
const PROBE_OFFER: &str = "v=0\r\n\
    o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
    s=-\r\n\
    t=0 0\r\n\
    a=group:BUNDLE 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
    c=IN IP4 0.0.0.0\r\n\
    a=ice-ufrag:hungprobe\r\n\
    a=ice-pwd:hungprobehungprobehungprobe\r\n\
    a=fingerprint:sha-256 \
    4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF\r\n\
    a=setup:actpass\r\n\
    a=mid:0\r\n\
    a=sendonly\r\n\
    a=rtcp-mux\r\n\
    a=rtpmap:96 VP8/90000\r\n\
    a=ssrc:1111 cname:probe\r\n";

/// A stopped process: sent SIGSTOP when made, SIGCONT when woken or dropped, so a failing test
/// never leaves a frozen node behind.
struct Frozen {
    pid: u32,
    at: Instant,
    woken: bool,
}

impl Frozen {
    fn freeze(node: &NodeProc) -> Result<Self> {
        let pid = node.child.id();
        signal("-STOP", pid)?;
        let at = Instant::now();
        Ok(Self {
            pid,
            at,
            woken: false,
        })
    }

    fn wake(&mut self) -> Result<()> {
        self.woken = true;
        signal("-CONT", self.pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.woken {
            let _ = signal("-CONT", self.pid);
        }
    }
}

fn signal(which: &str, pid: u32) -> Result<()> {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()?;
    if !status.success() {
        bail!("kill {which} {pid}: {status}");
    }
    Ok(())
}

/// POSTs the probe offer to `origin`'s WHIP endpoint for `room`.
async fn whip(origin: &NodeProc, room: &str) -> Result<StatusCode> {
    let response = reqwest::Client::new()
        .post(origin.url(&format!("/whip/{room}")))
        .header("content-type", "application/sdp")
        .timeout(Duration::from_secs(5))
        .body(PROBE_OFFER)
        .send()
        .await?;
    Ok(response.status())
}

async fn owner(redis: &RedisProc, room: &str) -> Result<Option<String>> {
    let mut con = redis.connection().await?;
    let value: Option<String> = con.get(format!("cascade:room:{room}:owner")).await?;
    Ok(value.and_then(|v| v.split('\n').next().map(str::to_owned)))
}

/// The upstream of every edge carrying `room`, as Redis records it.
async fn upstreams(redis: &RedisProc, room: &str) -> Result<HashMap<String, String>> {
    let mut con = redis.connection().await?;
    let links: HashMap<String, String> = con.hgetall(format!("cascade:room:{room}:links")).await?;
    Ok(links
        .into_iter()
        .map(|(edge, v)| (edge, v.split('\n').nth(1).unwrap_or("").to_owned()))
        .collect())
}

fn loadgen(room: &str, json: &PathBuf, args: &[&str]) -> Result<Child> {
    Ok(Command::new(bin("cascade-loadgen"))
        .args(["run", "--quiet", "--room", room])
        // Modest media, so a debug build on a busy machine keeps up.
        .args(["--video-kbps", "600", "--keyframe-interval", "4"])
        .args(args)
        .arg("--json")
        .arg(json)
        .spawn()?)
}

/// Video and audio packets the edge has received for its rooms.
fn packets_in(status: &Value) -> u64 {
    status["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["tracks"].as_array().into_iter().flatten())
        .filter_map(|t| t["packets_in"].as_u64())
        .sum()
}

#[tokio::test]
async fn a_hung_origin_is_dead_after_one_lease_and_gives_its_room_up_when_it_wakes() -> Result<()> {
    let redis = RedisProc::start()?;
    let url = redis.url();
    let common = ["--redis", url.as_str(), "--lease-secs", "3"];
    let origin1 = NodeProc::start("cascade-origin", "origin-1", &common)?;
    let origin2 = NodeProc::start("cascade-origin", "origin-2", &common)?;
    let edge = NodeProc::start("cascade-edge", "edge-1", &common)?;

    let json = std::env::temp_dir().join(format!("cascade-hung-{}.json", std::process::id()));
    let mut child = loadgen(
        "hung",
        &json,
        &[
            "--viewers",
            "2",
            "--ramp",
            "2",
            "--duration",
            "40",
            "--origin",
            &origin1.url(""),
            "--failover-origin",
            &origin2.url(""),
            "--edge",
            &edge.url(""),
        ],
    )?;
    let outcome = hang_and_wake(&redis, &origin1, &origin2, &edge, &mut child, &json).await;
    if outcome.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&json);
    }
    outcome
}

async fn hang_and_wake(
    redis: &RedisProc,
    origin1: &NodeProc,
    origin2: &NodeProc,
    edge: &NodeProc,
    child: &mut Child,
    json: &PathBuf,
) -> Result<()> {
    poll(
        "two viewers on the edge",
        Duration::from_secs(30),
        || async {
            let status = edge.status().await?;
            Ok((status["sessions"]["viewers"].as_u64() == Some(2)).then_some(()))
        },
    )
    .await?;
    assert_eq!(owner(redis, "hung").await?.as_deref(), Some("origin-1"));
    let before = packets_in(&edge.status().await?);
    poll("media on the edge", Duration::from_secs(10), || async {
        Ok((packets_in(&edge.status().await?) > before + 100).then_some(()))
    })
    .await?;
    // A second room on origin-1, to time another origin's judgement against the lease.
    assert_eq!(whip(origin1, "probe").await?, StatusCode::CREATED);

    let mut frozen = Frozen::freeze(origin1)?;
    // Hung, but within its lease: its rooms are its own (a TCP connect to it still succeeds,
    // and is not asked).
    let early = whip(origin2, "probe").await?;
    let refused_within = frozen.at.elapsed();
    if refused_within < LEASE / 2 {
        assert_eq!(early, StatusCode::CONFLICT, "refused while the lease runs");
    }
    // Once the lease is over, a publisher is let in: within one lease of the hang (the poll's
    // own period and the answer's setup on top).
    poll(
        "origin-2 to let a publisher of origin-1's room in",
        LEASE + Duration::from_secs(2),
        || async {
            let status = whip(origin2, "probe").await?;
            match status {
                StatusCode::CREATED => Ok(Some(())),
                StatusCode::CONFLICT => Ok(None),
                other => bail!("unexpected {other}"),
            }
        },
    )
    .await
    .with_context(|| origin2.log().join("\n"))?;
    assert_eq!(owner(redis, "probe").await?.as_deref(), Some("origin-2"));

    // The real publisher notices the hang by ICE and publishes to origin-2, which takes it in;
    // the edge follows the room's new owner.
    poll(
        "origin-2 to own the broadcast's room",
        Duration::from_secs(20),
        || async { Ok((owner(redis, "hung").await?.as_deref() == Some("origin-2")).then_some(())) },
    )
    .await
    .with_context(|| origin2.log().join("\n"))?;
    poll(
        "the edge to pull from origin-2",
        Duration::from_secs(20),
        || async {
            let links = upstreams(redis, "hung").await?;
            Ok((links.get("edge-1").map(String::as_str) == Some("origin-2")).then_some(()))
        },
    )
    .await
    .with_context(|| edge.log().join("\n"))?;
    let moved = packets_in(&edge.status().await?);
    poll(
        "media on the edge again",
        Duration::from_secs(10),
        || async { Ok((packets_in(&edge.status().await?) > moved + 100).then_some(())) },
    )
    .await
    .with_context(|| edge.log().join("\n"))?;

    // origin-1 wakes: its first heartbeat registers it again and renews its claims, which
    // compare its token and find another origin's claim: it gives the room up.
    frozen.wake()?;
    poll(
        "origin-1 to be registered again and give the room up",
        LEASE * 3,
        || async {
            let mut con = redis.connection().await?;
            let registered: bool = con.exists("cascade:node:origin-1:info").await?;
            Ok((registered && origin1.room("hung").await?.is_none()).then_some(()))
        },
    )
    .await
    .with_context(|| origin1.log().join("\n"))?;
    assert!(
        origin1
            .log()
            .iter()
            .any(|l| l.contains("room lease lost") && l.contains("hung")),
        "origin-1 logged the lost lease:\n{}",
        origin1.log().join("\n")
    );
    // No split brain: the store still names origin-2, and the edge still pulls from it.
    assert_eq!(owner(redis, "hung").await?.as_deref(), Some("origin-2"));
    assert_eq!(upstreams(redis, "hung").await?["edge-1"], "origin-2");

    let status = child.wait()?;
    assert!(status.success(), "cascade-loadgen failed: {status}");
    let report: Value = serde_json::from_slice(&std::fs::read(json)?)?;
    let _ = std::fs::remove_file(json);
    let publisher = &report["publisher"];
    assert_eq!(publisher["republishes"], 1, "{publisher}");
    assert!(publisher["error"].is_null(), "{publisher}");
    let resumed_at = publisher["republished_at_video_index"]
        .as_u64()
        .expect("republished");
    for id in [0, 1] {
        watched_through(&report, id, resumed_at);
    }
    Ok(())
}

/// Checks that viewer `id` watched to the end on the peer connection it started with: never
/// disconnected, never redirected (no new offer), no hole in its RTP sequence numbers on the
/// tracks it first got (a new SSRC would be a new track, and these would have stopped), and
/// packets the publisher sent after `after` (a video index) arrived, up to the end of the run.
fn watched_through(report: &Value, id: u64, after: u64) {
    let viewer = report["per_viewer"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["id"] == id))
        .unwrap_or_else(|| panic!("viewer {id} missing from {}", report["per_viewer"]));
    let sent = report["publisher"]["video_packets"].as_u64().unwrap_or(0);
    let (video, audio) = (&viewer["video"], &viewer["audio"]);
    assert_eq!(viewer["connected"], true, "{viewer}");
    assert_eq!(
        viewer["disconnected"], false,
        "kept its connection: {viewer}"
    );
    assert_eq!(viewer["redirects"], 0, "{viewer}");
    let last = video["last_index"].as_u64().unwrap_or(0);
    assert!(
        last > after + 100,
        "viewer {id} got video sent after the republish (index {after}): {viewer}"
    );
    assert!(
        last + 50 >= sent,
        "viewer {id} watched up to the end ({sent} sent): {viewer}"
    );
    assert_eq!(video["seq_lost"], 0, "continuous video sequence: {viewer}");
    assert_eq!(audio["seq_lost"], 0, "continuous audio sequence: {viewer}");
    assert!(audio["last_index"].as_u64().unwrap_or(0) > 0, "{viewer}");
}
