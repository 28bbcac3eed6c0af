//! Failover without renegotiation, with real processes, a real redis-server and real WebRTC
//! peers (`cascade-loadgen`):
//! - `kill -9` of a middle edge: the edge below it re-attaches to another source (the origin)
//!   and its viewers keep receiving on the peer connections they have, their RTP sequence
//!   numbers continuous;
//! - `kill -9` of the origin: the publisher publishes again to a second origin, which lets it in
//!   once the dead origin's lease is over; the edge follows it and its viewers carry on the same
//!   way. (A hung origin, whose ports still accept: `hung_origin.rs`.)

use anyhow::{Context, Result};
use cascade_tests::{NodeProc, RedisProc, bin, poll};
use redis::AsyncCommands;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

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

fn report(mut child: Child, json: &PathBuf) -> Result<Value> {
    let status = child.wait()?;
    assert!(status.success(), "cascade-loadgen failed: {status}");
    let report: Value = serde_json::from_slice(&std::fs::read(json)?)?;
    let _ = std::fs::remove_file(json);
    Ok(report)
}

/// Checks that viewer `id` watched to the end on the peer connection it started with: never
/// disconnected, no hole in its RTP sequence numbers, and packets the publisher sent after
/// `after` (a video index) arrived, up to the end of the run.
fn watched_through(report: &Value, id: u64, after: u64) {
    let viewer = report["per_viewer"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["id"] == id))
        .unwrap_or_else(|| panic!("viewer {id} missing from {}", report["per_viewer"]));
    let sent = report["publisher"]["video_packets"].as_u64().unwrap_or(0);
    let video = &viewer["video"];
    let audio = &viewer["audio"];
    assert_eq!(viewer["connected"], true, "{viewer}");
    assert_eq!(
        viewer["disconnected"], false,
        "kept its connection: {viewer}"
    );
    assert_eq!(viewer["redirects"], 0, "{viewer}");
    let last = video["last_index"].as_u64().unwrap_or(0);
    assert!(
        last > after + 100,
        "viewer {id} got video sent after the failover (index {after}): {viewer}"
    );
    assert!(
        last + 50 >= sent,
        "viewer {id} watched up to the end ({sent} sent): {viewer}"
    );
    assert_eq!(video["seq_lost"], 0, "continuous video sequence: {viewer}");
    assert_eq!(audio["seq_lost"], 0, "continuous audio sequence: {viewer}");
    assert!(audio["last_index"].as_u64().unwrap_or(0) > 0, "{viewer}");
}

#[tokio::test]
async fn killing_a_middle_edge_moves_its_children_without_renegotiation() -> Result<()> {
    let redis = RedisProc::start()?;
    let url = redis.url();
    let common = [
        "--redis",
        url.as_str(),
        "--lease-secs",
        "3",
        "--max-edge-fanout",
        "1",
    ];
    let origin = NodeProc::start("cascade-origin", "origin-1", &common)?;
    let mut args = common.to_vec();
    args.extend(["--capacity", "1"]);
    let mut edge1 = NodeProc::start("cascade-edge", "edge-1", &args)?;
    let edge2 = NodeProc::start("cascade-edge", "edge-2", &common)?;

    // Viewer 0 on edge-1 first, so edge-1 is the origin's one child; viewers 1 and 2 on edge-2,
    // which then pulls from edge-1 (the origin is full).
    let json = std::env::temp_dir().join(format!("cascade-fo-edge-{}.json", std::process::id()));
    let child = loadgen(
        "mid",
        &json,
        &[
            "--viewers",
            "3",
            "--ramp",
            "0.5",
            "--duration",
            "24",
            "--origin",
            &origin.url(""),
            "--edge",
            &edge1.url(""),
            "--edge",
            &edge2.url(""),
            "--edge",
            &edge2.url(""),
        ],
    )?;
    let tree = poll(
        "edge-2 to pull from edge-1",
        Duration::from_secs(30),
        || async {
            let links = upstreams(&redis, "mid").await?;
            Ok((links.get("edge-2").map(String::as_str) == Some("edge-1")).then_some(links))
        },
    )
    .await?;
    assert_eq!(tree["edge-1"], "origin-1");
    poll(
        "both viewers on edge-2",
        Duration::from_secs(30),
        || async {
            let status = edge2.status().await?;
            Ok((status["sessions"]["viewers"].as_u64() == Some(2)).then_some(()))
        },
    )
    .await?;
    // Media flowing through both hops, then the middle edge dies without a word.
    let packets = |status: Value| {
        status["rooms"][0]["tracks"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["packets_in"].as_u64())
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let before = packets(edge2.status().await?);
    poll("media on edge-2", Duration::from_secs(10), || async {
        Ok((packets(edge2.status().await?) > before + 100).then_some(()))
    })
    .await?;
    edge1.kill();

    let moved = poll(
        "edge-2 to re-attach to the origin",
        Duration::from_secs(20),
        || async {
            let links = upstreams(&redis, "mid").await?;
            Ok((links.get("edge-2").map(String::as_str) == Some("origin-1")).then_some(()))
        },
    )
    .await;
    if let Err(e) = moved {
        panic!("{e:#}\nedge-2's log:\n{}", edge2.log().join("\n"));
    }
    let at_kill = packets(edge2.status().await?);
    poll("media again on edge-2", Duration::from_secs(10), || async {
        Ok((packets(edge2.status().await?) > at_kill + 100).then_some(()))
    })
    .await
    .with_context(|| edge2.log().join("\n"))?;

    let report = report(child, &json)?;
    // The index the publisher had reached by the kill is not known from here; the viewers'
    // last packets must be from the run's end, and their sequences whole.
    for id in [1, 2] {
        watched_through(&report, id, 0);
        // The failover's stall, as these viewers saw it: reported for ARCHITECTURE.md's
        // figures, not asserted (it is the machine's as much as ours).
        let viewer = report["per_viewer"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["id"] == id));
        let gap_us = viewer.and_then(|v| v["video"]["longest_gap_us"].as_u64());
        eprintln!(
            "viewer {id} below the killed edge: longest video gap {:.0} ms",
            gap_us.unwrap_or(0) as f64 / 1000.0
        );
    }
    assert!(
        edge2
            .log()
            .iter()
            .any(|l| l.contains("failed over") && l.contains("mid")),
        "edge-2 logged the failover"
    );
    Ok(())
}

#[tokio::test]
async fn killing_the_origin_lets_the_publisher_resume_on_another_and_viewers_follow() -> Result<()>
{
    let redis = RedisProc::start()?;
    let url = redis.url();
    // The publisher notices the dead origin in about 8 s, by ICE: by then its lease (3 s) is
    // over, and origin-2 lets the publisher in.
    let common = ["--redis", url.as_str(), "--lease-secs", "3"];
    let mut origin1 = NodeProc::start("cascade-origin", "origin-1", &common)?;
    let origin2 = NodeProc::start("cascade-origin", "origin-2", &common)?;
    let edge = NodeProc::start("cascade-edge", "edge-1", &common)?;

    let json = std::env::temp_dir().join(format!("cascade-fo-origin-{}.json", std::process::id()));
    let child = loadgen(
        "fo",
        &json,
        &[
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
    let mut con = redis.connection().await?;
    let owner: String = con.get("cascade:room:fo:owner").await?;
    assert!(owner.starts_with("origin-1\n"), "{owner:?}");
    origin1.kill();

    let taken = poll(
        "origin-2 to own the room",
        Duration::from_secs(25),
        || async {
            let mut con = redis.connection().await?;
            let owner: Option<String> = con.get("cascade:room:fo:owner").await?;
            Ok(owner.filter(|o| o.starts_with("origin-2\n")))
        },
    )
    .await;
    if let Err(e) = taken {
        panic!("{e:#}\norigin-2's log:\n{}", origin2.log().join("\n"));
    }
    poll(
        "the edge to pull from origin-2",
        Duration::from_secs(20),
        || async {
            let links = upstreams(&redis, "fo").await?;
            Ok((links.get("edge-1").map(String::as_str) == Some("origin-2")).then_some(()))
        },
    )
    .await
    .with_context(|| edge.log().join("\n"))?;

    let report = report(child, &json)?;
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
