//! `cascade-loadgen cluster-sim` on a small cluster (10 nodes, 200 rooms) against a real
//! `redis-server`: the control plane's invariants hold under joins and leaves and when nodes die.
//!
//! - every open room has exactly one owner in the store, the one whose claim holds it, and no
//!   closed room keeps a claim (after the steady state, and again after the failover);
//! - a dead node's entries (registration, room claims, relay links) are gone within one lease
//!   and a small margin, and a dead origin's rooms are owned again by a live origin as soon;
//! - placements and claims happened and were timed, and Redis was measured.
//!
//! The lease is 3 s (heartbeats every second), as in `cluster.rs`, to keep the test short.

use cascade_tests::{RedisProc, bin};
use serde_json::Value;
use std::process::{Command, Stdio};

const LEASE_S: f64 = 3.0;
/// What a dead node's entries may take beyond one lease: the 100 ms poll, one round of reads,
/// a busy machine.
const MARGIN_S: f64 = 2.0;

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing or not a number in {v}"))
}

#[test]
fn a_simulated_cluster_keeps_one_owner_per_room_and_forgets_dead_nodes_within_a_lease()
-> anyhow::Result<()> {
    let redis = RedisProc::start()?;
    let out = Command::new(bin("cascade-loadgen"))
        .args(["cluster-sim", "--config", "10:200", "--duration", "3"])
        .args(["--lease-secs", "3", "--churn", "20", "--viewers", "50"])
        .args(["--redis", &redis.url()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cluster-sim failed: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in {stdout}"));
    let r: Value = serde_json::from_str(line)?;
    eprintln!("{stdout}");

    assert_eq!(r["nodes"], 10);
    assert_eq!(r["populate_failures"], 0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    for check in ["owners_steady", "owners_after_failover"] {
        let c = &r[check];
        assert!(c["rooms"].as_u64().unwrap() > 100, "{check}: {c}");
        for bad in ["missing", "wrong_owner", "extra"] {
            assert_eq!(c[bad], 0, "{check}.{bad}: {c}");
        }
    }

    let d = &r["deaths"];
    assert_eq!(f(d, "/lease_s"), LEASE_S);
    assert!(
        f(d, "/origin_rooms") > 0.0 && f(d, "/edge_links") > 0.0,
        "{d}"
    );
    for gone in [
        "/origin_node_gone_s",
        "/origin_rooms_gone_s",
        "/edge_node_gone_s",
        "/edge_links_gone_s",
        "/cleanup_s",
        "/failover_s",
    ] {
        let s = f(d, gone);
        assert!(s <= LEASE_S + MARGIN_S, "{gone} = {s} s: {d}");
    }
    assert!(f(d, "/failover_rooms") > 0.0, "{d}");
    assert_eq!(d["dead_listed"], false, "{d}");

    for op in ["placement", "claim"] {
        assert!(f(&r, &format!("/{op}/count")) > 0.0, "{op}: {r}");
        assert!(f(&r, &format!("/{op}/p99_ms")) > 0.0, "{op}: {r}");
    }
    assert!(f(&r, "/redis/ops_per_sec") > 0.0, "{r}");
    assert!(f(&r, "/redis/memory_mib") > 0.0, "{r}");
    Ok(())
}
