//! What the simulated clients do to the cluster: the rooms opened at start, then a steady rate
//! of joins and leaves, each timed.
//!
//! - Populating: room `i` is published on origin `i mod origins` and carried by
//!   `edges_per_room` random edges, a few dozen at a time.
//! - Steady state: `churn` times per second one publisher leaves (its room closes, its links
//!   go) and a new one arrives at a random origin (placement, then the claim: timed as
//!   *claim*), whose first viewer arrives at a random edge; and `viewers` times per second a
//!   viewer of a random open room arrives at a random edge. Each viewer's `place_viewer` is
//!   timed as *placement*; one taken by an edge not yet carrying the room makes it choose an
//!   upstream and write its link (timed as *upstream*).
//!
//! Operations run concurrently (one task each), paced every 10 ms, so a slow store shows as
//! latency, not as a lower rate.

use super::cluster::{Cluster, SimError};
use cascade_core::cluster::placement::Placement;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The steady state's rates.
#[derive(Debug, Clone)]
pub struct Rates {
    /// Publishers leaving, and as many arriving, per second.
    pub churn_per_sec: f64,
    /// Viewers arriving per second, on top of each new room's first.
    pub viewers_per_sec: f64,
}

/// Latencies in microseconds, and counts of what happened.
#[derive(Debug)]
pub struct Tally {
    pub placement: Mutex<Histogram<u64>>,
    pub claim: Mutex<Histogram<u64>>,
    pub upstream: Mutex<Histogram<u64>>,
    pub opened: AtomicU64,
    pub closed: AtomicU64,
    pub viewers_here: AtomicU64,
    pub viewers_redirected: AtomicU64,
    /// Viewers of a room closed meanwhile (`404`).
    pub viewers_not_found: AtomicU64,
    pub errors: AtomicU64,
    /// The last error seen, for the report.
    pub last_error: Mutex<Option<String>>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            placement: Mutex::new(histogram()),
            claim: Mutex::new(histogram()),
            upstream: Mutex::new(histogram()),
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            viewers_here: AtomicU64::new(0),
            viewers_redirected: AtomicU64::new(0),
            viewers_not_found: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }
}

impl Tally {
    fn record(h: &Mutex<Histogram<u64>>, since: Instant) {
        let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        h.lock()
            .unwrap_or_else(|p| p.into_inner())
            .saturating_record(us.max(1));
    }

    fn failed(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// A viewer's failure: a room closed between its pick and the edge's lookup is the `404`
    /// such a viewer gets, counted apart; anything else is an error.
    fn failed_view(&self, e: &SimError) {
        if matches!(e, SimError::Node(cascade_core::error::Error::NotFound(_))) {
            self.viewers_not_found.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed(e);
        }
    }

    /// A histogram's p50 and p99, in milliseconds (`None` when empty).
    pub fn p50_p99_ms(h: &Mutex<Histogram<u64>>) -> (Option<f64>, Option<f64>, u64) {
        let h = h.lock().unwrap_or_else(|p| p.into_inner());
        if h.is_empty() {
            return (None, None, 0);
        }
        let ms = |q| h.value_at_quantile(q) as f64 / 1000.0;
        (Some(ms(0.5)), Some(ms(0.99)), h.len())
    }
}

/// Opens `rooms` rooms, each carried by `edges_per_room` edges, `concurrency` at a time.
/// Returns how many failed.
pub async fn populate(
    cluster: &Arc<Cluster>,
    rooms: usize,
    edges_per_room: usize,
    concurrency: usize,
) -> u64 {
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (cluster, next, failed) = (cluster.clone(), next.clone(), failed.clone());
        workers.spawn(async move {
            let origins = cluster.shape.origins;
            let edges: Vec<usize> = cluster.edge_indices().collect();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= rooms {
                    break;
                }
                let room = cluster.new_room_name();
                if cluster.publish(i % origins, &room).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let first = rand::random_range(0..edges.len().max(1));
                for k in 0..edges_per_room.min(edges.len()) {
                    let edge = edges[(first + k) % edges.len()];
                    if cluster.carry(edge, &room).await.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    workers.join_all().await;
    failed.load(Ordering::Relaxed)
}

/// A new publisher at a random origin, then its room's first viewer at a random edge.
async fn arrive(cluster: Arc<Cluster>, tally: Arc<Tally>) {
    let Some(origin) = cluster.pick(cluster.origin_indices()) else {
        return;
    };
    let room = cluster.new_room_name();
    let t = Instant::now();
    match cluster.publish(origin, &room).await {
        Ok(_) => {
            Tally::record(&tally.claim, t);
            tally.opened.fetch_add(1, Ordering::Relaxed);
            view(cluster, tally, room).await;
        }
        Err(e) => tally.failed(e),
    }
}

/// A viewer of `room` at a random edge.
async fn view(cluster: Arc<Cluster>, tally: Arc<Tally>, room: String) {
    let Some(edge) = cluster.pick(cluster.edge_indices()) else {
        return;
    };
    let t = Instant::now();
    match cluster.place_viewer(edge, &room).await {
        Ok(Placement::Here) => {
            Tally::record(&tally.placement, t);
            tally.viewers_here.fetch_add(1, Ordering::Relaxed);
            if !cluster.nodes[edge].carries(&room) {
                let t = Instant::now();
                match cluster.carry(edge, &room).await {
                    Ok(()) => Tally::record(&tally.upstream, t),
                    Err(e) => tally.failed_view(&e),
                }
            }
        }
        Ok(Placement::Redirect(_)) => {
            Tally::record(&tally.placement, t);
            tally.viewers_redirected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Placement::Refuse { draining }) => tally.failed(format!("viewer refused ({draining})")),
        Err(e) => tally.failed_view(&e),
    }
}

/// Runs the steady state for `duration`, then waits (up to `drain`) for the operations still
/// under way.
pub async fn steady(
    cluster: &Arc<Cluster>,
    rates: &Rates,
    duration: Duration,
    drain: Duration,
    tally: &Arc<Tally>,
) {
    let tick = Duration::from_millis(10);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut churn_due, mut viewers_due) = (0.0, 0.0);
    let mut ops = tokio::task::JoinSet::new();
    let end = Instant::now() + duration;
    let mut last = Instant::now();
    while Instant::now() < end {
        interval.tick().await;
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        churn_due += rates.churn_per_sec * dt;
        viewers_due += rates.viewers_per_sec * dt;
        while churn_due >= 1.0 {
            churn_due -= 1.0;
            let (cluster, tally) = (cluster.clone(), tally.clone());
            ops.spawn(async move {
                if cluster.leave_random().await.is_some() {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                }
                arrive(cluster, tally).await;
            });
        }
        while viewers_due >= 1.0 {
            viewers_due -= 1.0;
            if let Some(room) = cluster.random_room() {
                ops.spawn(view(cluster.clone(), tally.clone(), room));
            }
        }
        // Reap what finished, so the set stays small.
        while ops.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(drain, async { while ops.join_next().await.is_some() {} }).await;
    ops.abort_all();
}
