//! Nodes dying without a word, and what the store makes of it; and the invariant that every
//! open room has exactly one owner.
//!
//! Three nodes are killed at the same instant ([`Cluster::kill`]: heartbeats, claim renewals
//! and link refreshes stop, nothing is removed):
//!
//! - origin A: we time until its registration and every one of its room claims are gone, as
//!   another node reads the store (`node`, `room_owner`);
//! - edge E: until its registration and its link in each room it carried are gone (`links`);
//! - origin B: its publishers come back at other origins as soon as a node sees B's
//!   registration gone, and we time until every one of its rooms is owned by a live origin
//!   (the claim machine's owner probe and take-over, for claims not yet expired).
//!
//! Every check polls every 100 ms until a deadline; nothing sleeps as synchronisation.

use super::cluster::Cluster;
use cascade_core::cluster::routing::RoutingStore;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(100);

/// How the rooms the simulation holds open compare with the rooms the store lists.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OwnerCheck {
    /// Open rooms checked.
    pub rooms: usize,
    /// Open rooms the store lists no owner for.
    pub missing: usize,
    /// Open rooms the store gives to another node than the one whose claim holds them.
    pub wrong_owner: usize,
    /// Rooms the store lists that are not open (closed rooms whose claim stayed).
    pub extra: usize,
}

impl OwnerCheck {
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.wrong_owner == 0 && self.extra == 0
    }
}

/// Compares the open rooms (but those owned by `skip`, dead nodes whose claims are left to
/// expire) with the store's list of owned rooms, as `observer` reads it (a store of its own
/// with a long timeout: listing 100,000 rooms is a status page's read, not a node's).
pub async fn check_owners(
    cluster: &Cluster,
    observer: &dyn RoutingStore,
    skip: &HashSet<usize>,
) -> Result<OwnerCheck, cascade_core::cluster::routing::RoutingError> {
    let listed: HashMap<String, String> = observer.rooms().await?.into_iter().collect();
    let mut check = OwnerCheck::default();
    let open = cluster.rooms();
    for (room, entry) in &open {
        if skip.contains(&entry.owner) {
            continue;
        }
        check.rooms += 1;
        match listed.get(room) {
            None => check.missing += 1,
            Some(owner) if owner != cluster.nodes[entry.owner].node.id() => check.wrong_owner += 1,
            Some(_) => {}
        }
    }
    let skipped: HashSet<&str> = skip.iter().map(|&i| cluster.nodes[i].node.id()).collect();
    check.extra = listed
        .iter()
        .filter(|(room, owner)| !open.contains_key(*room) && !skipped.contains(owner.as_str()))
        .count();
    Ok(check)
}

/// What the deaths came to; times in seconds from the kill, `None` past the deadline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deaths {
    pub lease_s: f64,
    /// Origin A: its registration gone; every one of its claims gone; the later of the two.
    pub origin_node_gone_s: Option<f64>,
    pub origin_rooms_gone_s: Option<f64>,
    pub origin_rooms: usize,
    /// Edge E: its registration gone; its links gone from every room it carried.
    pub edge_node_gone_s: Option<f64>,
    pub edge_links_gone_s: Option<f64>,
    pub edge_links: usize,
    /// The later of all of the above: a dead node's entries all gone.
    pub cleanup_s: Option<f64>,
    /// Origin B: every one of its rooms owned by a live origin again.
    pub failover_s: Option<f64>,
    pub failover_rooms: usize,
    /// Republish attempts refused meanwhile (the dead owner's claim still live).
    pub failover_retries: u64,
    /// Whether the store's node list still named a dead node at the end.
    pub dead_listed: bool,
}

/// Kills origins A and B and edge E (those with the most rooms and links), and watches until
/// `deadline` at most. Returns what was measured and the dead nodes' indices.
pub async fn kill_and_watch(cluster: &Arc<Cluster>, deadline: Duration) -> (Deaths, Vec<usize>) {
    let open = cluster.rooms();
    let mut by_owner: HashMap<usize, Vec<String>> = HashMap::new();
    for (room, entry) in &open {
        by_owner.entry(entry.owner).or_default().push(room.clone());
    }
    let mut owners: Vec<(usize, usize)> = by_owner.iter().map(|(o, r)| (*o, r.len())).collect();
    owners.sort_by_key(|&(o, n)| (std::cmp::Reverse(n), o));
    let a = owners.first().map(|&(o, _)| o);
    let b = owners.get(1).map(|&(o, _)| o);
    let e = cluster
        .edge_indices()
        .max_by_key(|&i| cluster.nodes[i].carried().len());
    let observer = cluster
        .edge_indices()
        .rev()
        .find(|&i| Some(i) != e)
        .unwrap_or(0);
    let routing = cluster.nodes[observer].node.routing.clone();
    let id = |i: usize| cluster.nodes[i].node.id().to_owned();

    let a_rooms: Vec<String> = a.map(|a| by_owner[&a].clone()).unwrap_or_default();
    let b_rooms: Vec<String> = b.map(|b| by_owner[&b].clone()).unwrap_or_default();
    let e_links: Vec<String> = e.map(|e| cluster.nodes[e].carried()).unwrap_or_default();
    let dead: Vec<usize> = [a, b, e].into_iter().flatten().collect();
    let t0 = Instant::now();
    for &i in &dead {
        cluster.kill(i);
    }
    let secs = || Some(t0.elapsed().as_secs_f64());
    let mut out = Deaths {
        lease_s: cluster.shape.lease.as_secs_f64(),
        origin_rooms: a_rooms.len(),
        edge_links: e_links.len(),
        failover_rooms: b_rooms.len(),
        ..Deaths::default()
    };
    let mut a_pending: Vec<String> = a_rooms;
    let mut e_pending: Vec<String> = e_links;
    let mut failover: Option<tokio::task::JoinHandle<(Option<f64>, u64)>> = None;
    loop {
        if let Some(a) = a
            && out.origin_node_gone_s.is_none()
            && matches!(routing.node(&id(a)).await, Ok(None))
        {
            out.origin_node_gone_s = secs();
        }
        if let Some(a) = a {
            a_pending = still(a_pending, |room| owned_by(routing.clone(), room, id(a))).await;
            if a_pending.is_empty() && out.origin_rooms_gone_s.is_none() {
                out.origin_rooms_gone_s = secs();
            }
        }
        if let Some(e) = e {
            if out.edge_node_gone_s.is_none() && matches!(routing.node(&id(e)).await, Ok(None)) {
                out.edge_node_gone_s = secs();
            }
            e_pending = still(e_pending, |room| linked(routing.clone(), room, id(e))).await;
            if e_pending.is_empty() && out.edge_links_gone_s.is_none() {
                out.edge_links_gone_s = secs();
            }
        }
        if let Some(b) = b
            && failover.is_none()
            && matches!(routing.node(&id(b)).await, Ok(None))
        {
            failover = Some(tokio::spawn(republish(
                cluster.clone(),
                b_rooms.clone(),
                t0,
                t0 + deadline,
            )));
        }
        let watched = (a.is_none() || (out.origin_node_gone_s.is_some() && a_pending.is_empty()))
            && (e.is_none() || (out.edge_node_gone_s.is_some() && e_pending.is_empty()))
            && (b.is_none() || failover.as_ref().is_some_and(|f| f.is_finished()));
        if watched || t0.elapsed() > deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if let Some(f) = failover
        && let Ok((s, retries)) = f.await
    {
        out.failover_s = s;
        out.failover_retries = retries;
    }
    let times = [
        a.map(|_| out.origin_node_gone_s),
        a.map(|_| out.origin_rooms_gone_s),
        e.map(|_| out.edge_node_gone_s),
        e.map(|_| out.edge_links_gone_s),
    ];
    out.cleanup_s = times
        .into_iter()
        .flatten()
        .try_fold(0.0_f64, |m, t| t.map(|t| m.max(t)));
    out.dead_listed = routing.nodes().await.is_ok_and(|nodes| {
        nodes
            .iter()
            .any(|n| dead.iter().any(|&d| cluster.nodes[d].node.id() == n.id))
    });
    (out, dead)
}

/// The rooms of `pending` for which `check` still answers true.
async fn still<F, Fut>(pending: Vec<String>, check: F) -> Vec<String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut left = Vec::new();
    for room in pending {
        if check(room.clone()).await {
            left.push(room);
        }
    }
    left
}

/// Whether the store still names `node` as the room's owner (an error counts as yes).
async fn owned_by(routing: Arc<dyn RoutingStore>, room: String, node: String) -> bool {
    !matches!(routing.room_owner(&room).await, Ok(o) if o.as_deref() != Some(node.as_str()))
}

/// Whether the store still lists `edge`'s link in the room (an error counts as yes).
async fn linked(routing: Arc<dyn RoutingStore>, room: String, edge: String) -> bool {
    !matches!(routing.links(&room).await, Ok(links) if links.iter().all(|l| l.edge_id != edge))
}

/// Publishes each of `rooms` again at a random live origin, retrying every 100 ms while it is
/// refused, until all are owned or `until`. Returns when the last was owned (seconds from
/// `t0`) and how many attempts were refused.
async fn republish(
    cluster: Arc<Cluster>,
    rooms: Vec<String>,
    t0: Instant,
    until: Instant,
) -> (Option<f64>, u64) {
    let mut set = tokio::task::JoinSet::new();
    for room in rooms {
        let cluster = cluster.clone();
        set.spawn(async move {
            let mut refused = 0;
            while Instant::now() < until {
                if let Some(at) = cluster.pick(cluster.origin_indices())
                    && cluster.republish(at, &room).await.is_ok()
                {
                    return (true, refused);
                }
                refused += 1;
                tokio::time::sleep(POLL).await;
            }
            (false, refused)
        });
    }
    let results = set.join_all().await;
    let refused = results.iter().map(|(_, r)| r).sum();
    let all = results.iter().all(|(ok, _)| *ok);
    (all.then(|| t0.elapsed().as_secs_f64()), refused)
}
