//! Redis under Sentinel: a master, a replica and three sentinels (quorum 2) on loopback, an
//! origin and an edge given `redis+sentinel://…/mymaster`. While a broadcast's viewers watch,
//! the master is killed (SIGKILL); the sentinels promote the replica and the nodes follow it
//! without restarting: running viewers lose nothing, a new room can be joined after the
//! promotion, and the routing entries are in the promoted replica.

use anyhow::{Context, Result};
use cascade_tests::{
    NodeProc, RedisServer, assert_clean_broadcast, loadgen_broadcast, loadgen_broadcast_for, poll,
};
use std::time::Duration;

const MASTER: &str = "mymaster";

fn data_server(port: u16, replica_of: Option<u16>) -> Result<RedisServer> {
    let port_s = port.to_string();
    let master = replica_of.map(|m| m.to_string());
    let mut args = vec![
        "--port",
        &port_s,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    if let Some(m) = &master {
        args.extend_from_slice(&["--replicaof", "127.0.0.1", m.as_str()]);
    }
    RedisServer::start(port, &args)
}

async fn connection(port: u16) -> Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// The master's port as sentinel `port` names it.
async fn master_port(sentinel: u16) -> Result<Option<u16>> {
    let mut con = connection(sentinel).await?;
    let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg(&["get-master-addr-by-name", MASTER])
        .query_async(&mut con)
        .await?;
    Ok(addr.map(|(_, p)| p))
}

#[tokio::test]
async fn nodes_follow_a_sentinel_failover_and_viewers_never_stop() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("cascade-sentinel-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (master_p, replica_p) = (RedisServer::free_port(), RedisServer::free_port());
    let mut master = data_server(master_p, None)?;
    let _replica = data_server(replica_p, Some(master_p))?;
    let sentinels = (0..3)
        .map(|_| RedisServer::sentinel(&dir, MASTER, master_p, 2, 1000))
        .collect::<Result<Vec<_>>>()?;

    // Every sentinel knows the replica (so it can promote it) and the two other sentinels (so
    // they can elect a leader) before the nodes start.
    for s in &sentinels {
        let port = s.port;
        poll(
            "a sentinel seeing the replica and its peers",
            Duration::from_secs(30),
            || async move {
                let mut con = connection(port).await?;
                let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg(&["replicas", MASTER])
                    .query_async(&mut con)
                    .await?;
                let peers: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg(&["sentinels", MASTER])
                    .query_async(&mut con)
                    .await?;
                Ok((!replicas.is_empty() && peers.len() == 2).then_some(()))
            },
        )
        .await?;
    }

    let url = format!(
        "redis+sentinel://{}/{MASTER}",
        sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    );
    let args = ["--redis", url.as_str()];
    let origin = NodeProc::start("cascade-origin", "o-sen", &args)?;
    let edge = NodeProc::start("cascade-edge", "e-sen", &args)?;

    // A broadcast long enough to span the failover, its viewers joined before the kill.
    let before = dir.join("before.json");
    let mut running = loadgen_broadcast_for(&origin, &edge, "before", 3, 20, &before)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("spawning cascade-loadgen")?;
    poll(
        "viewers watching on the edge",
        Duration::from_secs(20),
        || async {
            let room = edge.room("before").await?;
            let viewers = room
                .as_ref()
                .and_then(|r| r["viewers"].as_u64())
                .unwrap_or(0);
            Ok((viewers >= 3).then_some(()))
        },
    )
    .await?;

    master.kill();
    poll(
        "the sentinels promoting the replica",
        Duration::from_secs(30),
        || {
            let port = sentinels[0].port;
            async move { Ok((master_port(port).await? == Some(replica_p)).then_some(())) }
        },
    )
    .await?;

    // The nodes found the new master: their routing entries are written there again.
    let mut promoted = connection(replica_p).await?;
    poll(
        "the nodes' entries in the promoted replica",
        Duration::from_secs(20),
        || {
            let mut con = promoted.clone();
            async move {
                let owner: Option<String> = redis::cmd("GET")
                    .arg("cascade:room:before:owner")
                    .query_async(&mut con)
                    .await?;
                let nodes: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&["cascade:nodes", "0", "-1"])
                    .query_async(&mut con)
                    .await?;
                let ok = owner.is_some_and(|o| o.starts_with("o-sen\n"))
                    && nodes.iter().any(|n| n == "o-sen")
                    && nodes.iter().any(|n| n == "e-sen");
                Ok(ok.then_some(()))
            }
        },
    )
    .await?;
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut promoted).await?;
    assert!(
        matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master"),
        "the replica was promoted: {role:?}"
    );

    // New joins succeed after the promotion: the edge (no --upstream) finds the new room's
    // origin in the promoted master.
    let after = dir.join("after.json");
    let out = loadgen_broadcast(&origin, &edge, "after", 2, &after).output()?;
    assert_clean_broadcast(&out, &after, 2)?;

    // The viewers that watched through the failover never stopped and lost nothing.
    let status = poll(
        "the first broadcast ending",
        Duration::from_secs(60),
        || {
            let done = running.try_wait();
            async move { Ok(done?) }
        },
    )
    .await?;
    let out = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: {
            use std::io::Read;
            let mut s = Vec::new();
            if let Some(mut e) = running.stderr.take() {
                e.read_to_end(&mut s)?;
            }
            s
        },
    };
    let report = assert_clean_broadcast(&out, &before, 3)?;
    assert_eq!(
        report["viewers"]["disconnected"], 0,
        "{}",
        report["viewers"]
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
