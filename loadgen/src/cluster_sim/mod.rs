//! `cluster-sim`: the control plane at scale, measured against a real Redis. N simulated
//! nodes (real cascade-core nodes without media, tasks in this process) with M rooms and a
//! rate of joins and leaves, against one `redis-server` of the run's own; reports Redis's load
//! (operations per second, CPU, memory), the latency of placements and claims, and how long a
//! dead node's entries take to disappear.
//!
//! - [`cluster`]: the nodes and what the simulation does with them.
//! - [`workload`]: opening the rooms, then the steady joins and leaves, timed.
//! - [`failover`]: killing nodes, watching their entries go; the one-owner invariant.
//! - [`redis_server`]: the `redis-server` process and its `INFO`.
//! - [`report`]: the JSON line and the table row of one configuration.

pub mod cluster;
pub mod failover;
pub mod redis_server;
pub mod report;
pub mod workload;

use anyhow::{Context, Result, bail};
use cascade_core::cluster::routing::RedisStore;
use cluster::{Cluster, ClusterShape};
use report::{ConfigResult, Percentiles};
use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{Rates, Tally};

/// Flags of `cascade-loadgen cluster-sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterSimArgs {
    /// Configurations to run, each `NODES:ROOMS` (comma-separated or repeated).
    #[arg(
        long = "config",
        value_delimiter = ',',
        default_value = "10:1000,100:10000,1000:1000,1000:10000,1000:100000"
    )]
    pub configs: Vec<String>,
    /// Share of the nodes that are origins (the rest are edges); at least 3 origins and 1 edge.
    #[arg(long, default_value_t = 0.2)]
    pub origin_share: f64,
    /// Edges carrying each room when the rooms are opened.
    #[arg(long, default_value_t = 1)]
    pub edges_per_room: usize,
    /// Publishers leaving per second, and as many new ones arriving (each with one viewer).
    #[arg(long, default_value_t = 50.0)]
    pub churn: f64,
    /// Viewers of open rooms arriving per second.
    #[arg(long, default_value_t = 200.0)]
    pub viewers: f64,
    /// Seconds of steady state measured.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Lease of routing entries, seconds (heartbeats every third of it); the nodes' default.
    #[arg(long, default_value_t = cascade_core::cluster::node::LEASE.as_secs())]
    pub lease_secs: u64,
    /// Rooms opened at once while populating.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Use this Redis (emptied first with FLUSHALL) instead of starting a `redis-server`.
    #[arg(long)]
    pub redis: Option<String>,
    /// Append each configuration's JSON line to this file too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Skip killing nodes (no cleanup or failover times).
    #[arg(long)]
    pub no_kill: bool,
}

/// `NODES:ROOMS`.
fn parse_config(s: &str) -> Result<(usize, usize)> {
    let (n, m) = s
        .split_once(':')
        .with_context(|| format!("--config {s:?}: want NODES:ROOMS"))?;
    let n: usize = n
        .trim()
        .parse()
        .with_context(|| format!("nodes in {s:?}"))?;
    let m: usize = m
        .trim()
        .parse()
        .with_context(|| format!("rooms in {s:?}"))?;
    if n < 5 {
        bail!("--config {s:?}: at least 5 nodes (3 origins, 2 edges)");
    }
    Ok((n, m))
}

/// Runs every configuration in turn, printing a JSON line for each (stdout, and `--json`) and
/// the table at the end.
pub async fn execute(args: &ClusterSimArgs) -> Result<Vec<ConfigResult>> {
    let configs = args
        .configs
        .iter()
        .map(|c| parse_config(c))
        .collect::<Result<Vec<_>>>()?;
    if let Some(max) = configs.iter().map(|c| c.0).max() {
        // One Redis connection per node, plus Redis's own side of each.
        let _ = rlimit::increase_nofile_limit((max as u64) * 2 + 1024);
    }
    let mut results = Vec::new();
    for (nodes, rooms) in configs {
        eprintln!("cluster-sim: {nodes} nodes, {rooms} rooms ...");
        let result = run_one(args, nodes, rooms).await?;
        let line = serde_json::to_string(&result)?;
        println!("{line}");
        if let Some(path) = &args.json {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            writeln!(f, "{line}")?;
        }
        eprintln!("{}\n{}", report::header(), report::row(&result));
        results.push(result);
    }
    println!("{}", report::header());
    for r in &results {
        println!("{}", report::row(r));
    }
    Ok(results)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    cascade_core::obs::procstat::parse_cpu_ticks(&stat).unwrap_or(0) as f64 / 100.0
}

fn percentiles(h: &std::sync::Mutex<hdrhistogram::Histogram<u64>>) -> Percentiles {
    let (p50_ms, p99_ms, count) = Tally::p50_p99_ms(h);
    Percentiles {
        count,
        p50_ms,
        p99_ms,
    }
}

async fn run_one(args: &ClusterSimArgs, nodes: usize, rooms: usize) -> Result<ConfigResult> {
    let spawned = match &args.redis {
        Some(_) => None,
        None => Some(redis_server::RedisServer::start().await?),
    };
    let url = match (&args.redis, &spawned) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.url(),
        (None, None) => unreachable!("a server is spawned when no URL is given"),
    };
    let mut info = redis_server::connect(&url).await?;
    redis_server::flush(&mut info).await?;

    let origins = ((nodes as f64 * args.origin_share).round() as usize).clamp(3, nodes - 1);
    let lease = Duration::from_secs(args.lease_secs.max(1));
    let shape = ClusterShape {
        nodes,
        origins,
        lease,
        capacity: 1_000_000,
        prefix: "cascade:".into(),
    };
    let cluster = Arc::new(Cluster::connect(&url, shape).await?);
    cluster.start();
    let listed = cluster.wait_registered(lease * 2).await;
    if listed < nodes {
        bail!(
            "only {listed} of {nodes} nodes registered within {:?}",
            lease * 2
        );
    }

    let t = Instant::now();
    let populate_failures =
        workload::populate(&cluster, rooms, args.edges_per_room, args.concurrency).await;
    let populate_s = t.elapsed().as_secs_f64();
    eprintln!("  populated in {populate_s:.1} s ({populate_failures} failures)");
    // Let one full heartbeat period pass, so every claim and link has been renewed once.
    tokio::time::sleep(cluster.period()).await;
    let populated = redis_server::sample(&mut info).await?;

    let rates = Rates {
        churn_per_sec: args.churn,
        viewers_per_sec: args.viewers,
    };
    let tally = Arc::new(Tally::default());
    let (before, cpu0) = (redis_server::sample(&mut info).await?, cpu_seconds());
    let steady_from = Instant::now();
    let steady = Duration::from_secs(args.duration);
    workload::steady(&cluster, &rates, steady, cluster.period(), &tally).await;
    let (after, cpu1) = (redis_server::sample(&mut info).await?, cpu_seconds());
    let steady_s = steady_from.elapsed().as_secs_f64();
    let redis = redis_server::RedisLoad::between(&before, &after);

    let options = cascade_core::cluster::routing::RedisOptions {
        op_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let observer = RedisStore::connect_with(&url, &cluster.shape.prefix, options).await?;
    let owners_steady = failover::check_owners(&cluster, &observer, &HashSet::new()).await?;
    let (deaths, dead) = if args.no_kill {
        (failover::Deaths::default(), Vec::new())
    } else {
        eprintln!("  killing two origins and an edge ...");
        failover::kill_and_watch(&cluster, lease * 3 + Duration::from_secs(10)).await
    };
    let dead: HashSet<usize> = dead.into_iter().collect();
    let owners_after_failover = failover::check_owners(&cluster, &observer, &dead).await?;
    let store_errors = cluster.store_errors();
    cluster.shutdown(Duration::from_secs(30)).await;

    let load = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
    let result = ConfigResult {
        nodes,
        origins,
        edges: nodes - origins,
        rooms,
        edges_per_room: args.edges_per_room,
        churn_per_sec: args.churn,
        viewers_per_sec: args.viewers,
        lease_s: lease.as_secs_f64(),
        heartbeat_s: cluster.period().as_secs_f64(),
        steady_s,
        populate_s,
        populate_failures,
        redis,
        redis_memory_populated_mib: populated.used_memory as f64 / (1024.0 * 1024.0),
        sim_cpu_pct: (cpu1 - cpu0) / steady_s * 100.0,
        placement: percentiles(&tally.placement),
        claim: percentiles(&tally.claim),
        upstream: percentiles(&tally.upstream),
        opened: load(&tally.opened),
        closed: load(&tally.closed),
        viewers_here: load(&tally.viewers_here),
        viewers_redirected: load(&tally.viewers_redirected),
        viewers_not_found: load(&tally.viewers_not_found),
        errors: load(&tally.errors),
        store_errors,
        last_error: tally
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        owners_steady,
        owners_after_failover,
        deaths,
    };
    drop(spawned);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_and_garbage_is_an_error() {
        assert_eq!(parse_config("10:200").unwrap(), (10, 200));
        assert_eq!(parse_config(" 1000 : 100000 ").unwrap(), (1000, 100_000));
        for bad in ["", "10", "x:1", "10:y", "4:10", ":", "10:-1"] {
            assert!(parse_config(bad).is_err(), "{bad:?}");
        }
    }
}
