//! One configuration's result as plain values: a JSON line for machines, a table row for
//! people. Nothing here measures anything.

use serde::Serialize;

/// A latency's percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Everything measured for one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigResult {
    pub nodes: usize,
    pub origins: usize,
    pub edges: usize,
    /// Rooms open at the start of the steady state (and, the churn being balanced, at its end).
    pub rooms: usize,
    pub edges_per_room: usize,
    /// Publishers leaving (and as many arriving) per second.
    pub churn_per_sec: f64,
    /// Extra viewers arriving per second.
    pub viewers_per_sec: f64,
    pub lease_s: f64,
    pub heartbeat_s: f64,
    pub steady_s: f64,
    /// How long opening the rooms took, and how many openings failed.
    pub populate_s: f64,
    pub populate_failures: u64,
    /// Redis over the steady state.
    pub redis: super::redis_server::RedisLoad,
    /// Redis memory right after the rooms were opened, before the steady state.
    pub redis_memory_populated_mib: f64,
    /// This process's CPU over the steady state (all simulated nodes; 100 = one core).
    pub sim_cpu_pct: f64,
    pub placement: Percentiles,
    pub claim: Percentiles,
    pub upstream: Percentiles,
    pub opened: u64,
    pub closed: u64,
    pub viewers_here: u64,
    pub viewers_redirected: u64,
    /// Viewers of a room that closed between their arrival and the edge's lookup (`404`).
    pub viewers_not_found: u64,
    pub errors: u64,
    /// Routing store calls the nodes saw fail (timeouts when Redis cannot keep up).
    pub store_errors: u64,
    pub last_error: Option<String>,
    /// The store against the simulation after the steady state, and after the deaths.
    pub owners_steady: super::failover::OwnerCheck,
    pub owners_after_failover: super::failover::OwnerCheck,
    pub deaths: super::failover::Deaths,
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn s(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

/// The table's header lines.
pub fn header() -> String {
    format!(
        "{:>5} {:>7} {:>9} {:>9} {:>10} {:>6} {:>7} {:>13} {:>13} {:>8} {:>8} {:>5}\n{}",
        "N",
        "M",
        "join/lv/s",
        "redis op/s",
        "evalsha/s",
        "cpu%",
        "mem MiB",
        "place p50/p99",
        "claim p50/p99",
        "cleanup",
        "failover",
        "errs",
        "-".repeat(112)
    )
}

/// One configuration as a table row.
pub fn row(r: &ConfigResult) -> String {
    format!(
        "{:>5} {:>7} {:>9} {:>9.0} {:>10.0} {:>6.1} {:>7.1} {:>13} {:>13} {:>8} {:>8} {:>5}",
        r.nodes,
        r.rooms,
        format!("{:.0}", r.churn_per_sec),
        r.redis.ops_per_sec,
        r.redis.evalsha_per_sec,
        r.redis.cpu_pct,
        r.redis.memory_mib,
        format!("{}/{}", ms(r.placement.p50_ms), ms(r.placement.p99_ms)),
        format!("{}/{}", ms(r.claim.p50_ms), ms(r.claim.p99_ms)),
        s(r.deaths.cleanup_s),
        s(r.deaths.failover_s),
        r.errors + r.store_errors,
    )
}
