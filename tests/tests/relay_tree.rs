//! A relay tree: with a fan-out of 1, the origin feeds one edge, that edge feeds the second, the
//! second feeds the third, as Redis records; and viewers on every level receive the stream whole.

use anyhow::Result;
use cascade_tests::{NodeProc, RedisProc, bin, poll};
use redis::AsyncCommands;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test]
async fn with_fanout_one_edges_pull_from_edges_and_every_viewer_plays() -> Result<()> {
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
    let edges: Vec<NodeProc> = (1..=3)
        .map(|i| {
            // Capacity 1: each edge keeps its one viewer instead of redirecting it to the edge
            // already carrying the room, so every edge pulls the room.
            let mut args = common.to_vec();
            args.extend(["--capacity", "1"]);
            NodeProc::start("cascade-edge", &format!("edge-{i}"), &args)
        })
        .collect::<Result<_>>()?;

    let json = std::env::temp_dir().join(format!("cascade-tree-{}.json", std::process::id()));
    // One viewer every two seconds, round-robin over edge-1, edge-2, edge-3: they join in order.
    let mut loadgen = std::process::Command::new(bin("cascade-loadgen"));
    loadgen
        .args([
            "run",
            "--quiet",
            "--room",
            "tree",
            "--viewers",
            "3",
            "--ramp",
            "0.5",
        ])
        .args([
            "--duration",
            "16",
            "--video-kbps",
            "800",
            "--origin",
            &origin.url(""),
        ]);
    for e in &edges {
        loadgen.args(["--edge", &e.url("")]);
    }
    let mut child = loadgen.arg("--json").arg(&json).spawn()?;

    let con = redis.connection().await?;
    let upstreams = poll(
        "three relay links in Redis",
        Duration::from_secs(30),
        || {
            let mut con = con.clone();
            async move {
                let links: HashMap<String, String> = con.hgetall("cascade:room:tree:links").await?;
                let map: HashMap<String, String> = links
                    .into_iter()
                    .map(|(edge, v)| (edge, v.split('\n').nth(1).unwrap_or("").to_owned()))
                    .collect();
                Ok((map.len() == 3).then_some(map))
            }
        },
    )
    .await?;
    println!("relay tree: {upstreams:?}");
    assert_eq!(upstreams["edge-1"], "origin-1");
    assert_eq!(
        upstreams["edge-2"], "edge-1",
        "origin full: the second edge pulls from the first"
    );
    assert_eq!(
        upstreams["edge-3"], "edge-2",
        "the third edge pulls from an edge, not the origin"
    );

    let status = child.wait()?;
    assert!(status.success(), "loadgen failed");
    let report: Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["viewers"]["connected"], 3, "{}", report["viewers"]);
    assert_eq!(
        report["viewers"]["received_video"], 3,
        "{}",
        report["viewers"]
    );
    let video = &report["packets"]["video"];
    assert!(video["received"].as_u64().unwrap_or(0) > 500, "{video}");
    assert_eq!(video["lost"], 0, "{video}");
    println!(
        "latency publisher→viewer over up to three hops: {}",
        report["latency_ms"]
    );
    Ok(())
}

/// Without a routing store: edge-2's `--upstream` is edge-1, whose `--upstream` is the origin.
/// A viewer on edge-2 makes edge-1 pull the room and feed it on; the viewer plays it whole.
#[tokio::test]
async fn a_static_chain_of_edges_relays_a_room_two_hops_down() -> Result<()> {
    let origin = NodeProc::origin("origin-1")?;
    let edge1 = NodeProc::edge("edge-1", &origin)?;
    let edge2 = NodeProc::edge("edge-2", &edge1)?;
    let json = std::env::temp_dir().join(format!("cascade-chain-{}.json", std::process::id()));
    let mut child = std::process::Command::new(bin("cascade-loadgen"))
        .args([
            "run",
            "--quiet",
            "--room",
            "chain",
            "--viewers",
            "2",
            "--duration",
            "10",
        ])
        .args([
            "--video-kbps",
            "800",
            "--origin",
            &origin.url(""),
            "--edge",
            &edge2.url(""),
        ])
        .arg("--json")
        .arg(&json)
        .spawn()?;
    // Mid-run, the middle edge carries the room for exactly one subscriber: edge-2's link,
    // attached to its tracks. (The room's own `subscribers` also counts the 10 s hold that
    // edge-2's DescribeRoom took, `Node::hold_room`.)
    let carried = poll(
        "edge-1 to relay the room",
        Duration::from_secs(20),
        || async {
            Ok(edge1
                .room("chain")
                .await?
                .and_then(|r| r["tracks"][0]["subscribers"].as_u64())
                .filter(|&n| n >= 1))
        },
    )
    .await?;
    assert_eq!(carried, 1);
    assert!(child.wait()?.success(), "loadgen failed");
    let report: Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let _ = std::fs::remove_file(&json);
    assert_eq!(
        report["viewers"]["received_video"], 2,
        "{}",
        report["viewers"]
    );
    let video = &report["packets"]["video"];
    assert!(video["received"].as_u64().unwrap_or(0) > 300, "{video}");
    assert_eq!(video["lost"], 0, "{video}");
    println!("two relay hops: latency {}", report["latency_ms"]);
    Ok(())
}
