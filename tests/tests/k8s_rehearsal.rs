//! A rehearsal of the Kubernetes lifecycle on this machine, from what the Helm chart renders.
//!
//! `deploy/render-chart.sh` renders `helm/cascade` with its default values (and a drain short
//! enough for a test) through a real `helm template`. The test then plays the kubelet for the
//! origin and edge pods it describes: it runs the container's command (the workspace's
//! `cascade-origin` / `cascade-edge`) with the container's environment resolved the way
//! Kubernetes resolves it (ConfigMap keys, downward API fields, `$(VAR)` references), polls the
//! rendered probes, runs the rendered `preStop` command with the pod's environment, then sends
//! SIGTERM, and holds the process to `terminationGracePeriodSeconds`.
//!
//! Only what a cluster would provide is mapped, to loopback: the pod and host IPs are
//! 127.0.0.1 (so ICE candidates and advertise URLs say 127.0.0.1), each pod's declared TCP
//! ports and its UDP mux port (`udp-mux`, one fixed port per pod that two edges here would
//! both bind) are mapped to free ports, and the variables naming them with it (pods share this
//! machine's loopback, as containers share a host behind port mappings), Service DNS names
//! (`<svc>.<ns>.svc:<port>`) resolve to the pod or the harness's redis-server the Service
//! selects, and the pod name is made up like a controller would. Everything else, including the
//! media UDP ranges (the nodes pick free ports in them), is used as rendered.
//!
//! What it checks, against real processes and real WebRTC peers (`cascade-loadgen`): both pods
//! become ready; viewers on an edge keep receiving every packet while that edge drains
//! (`/readyz` 503, `draining` in `/v1/cluster`, new viewers refused or redirected), and the edge
//! exits 0 after they leave, within the grace period, leaving nothing in Redis; a new edge
//! started from the same pod template becomes ready, joins the placement, and the draining edge
//! redirects new viewers to it, who receive the stream from it without loss. A second run with
//! a short drain holds viewers past it: the edge serves them until the drain deadline, then exits
//! 0 before the grace period would end in SIGKILL.
//!
//! Its parts: [`chart`] (the rendered chart, read as the kubelet reads it), [`kubelet`] (pods
//! started, probed and terminated from it), [`viewers`] (the load generator's viewers and the
//! checks on its report).

#[path = "k8s_rehearsal/chart.rs"]
mod chart;
#[path = "k8s_rehearsal/kubelet.rs"]
mod kubelet;
#[path = "k8s_rehearsal/viewers.rs"]
mod viewers;

use anyhow::{Context, Result, anyhow, ensure};
use cascade_tests::{RedisProc, poll};
use chart::{Chart, MUX_PORT, PortMap, expand, map_port_value, replace_addr};
use kubelet::{Kubelet, Pod};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use viewers::{Loadgen, check_media};

/// The drain settings the chart is rendered with: its defaults (120 s drain, 10 s preStop
/// delay) would make a slow test; the relations between them are the chart's own.
const HELM_SETS: &[&str] = &[
    "drain.timeoutSeconds=40",
    "drain.preStopDelaySeconds=2",
    "drain.graceMarginSeconds=5",
];
/// A drain that ends before the viewers leave.
const SHORT_DRAIN_SETS: &[&str] = &[
    "drain.timeoutSeconds=6",
    "drain.preStopDelaySeconds=1",
    "drain.graceMarginSeconds=4",
];
const ROOM: &str = "rehearsal";
const LATE_ROOM: &str = "rehearsal-late";
/// Viewers that watch through the drain, and viewers that arrive while the edge drains.
const VIEWERS: u64 = 3;
const LATE_VIEWERS: u64 = 2;
pub(crate) const STEP: Duration = Duration::from_secs(20);

// --- Redis --------------------------------------------------------------------

/// The keys and entries `node` has in Redis under `prefix` (registration, own keys, links of
/// `room`).
async fn redis_entries(
    redis: &RedisProc,
    prefix: &str,
    node: &str,
    room: &str,
) -> Result<Vec<String>> {
    let mut con = redis.connection().await?;
    let mut found: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}node:{node}:*"))
        .query_async(&mut con)
        .await?;
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(format!("{prefix}nodes"))
        .arg(node)
        .query_async(&mut con)
        .await?;
    if score.is_some() {
        found.push(format!("{prefix}nodes[{node}]"));
    }
    let link: bool = redis::cmd("HEXISTS")
        .arg(format!("{prefix}room:{room}:links"))
        .arg(node)
        .query_async(&mut con)
        .await?;
    if link {
        found.push(format!("{prefix}room:{room}:links[{node}]"));
    }
    Ok(found)
}

// --- the rehearsal --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_lifecycle_on_real_processes() -> Result<()> {
    let t0 = Instant::now();
    let chart = Chart::render(HELM_SETS)?;
    let origin_t = chart.pod_template("origin")?;
    let edge_t = chart.pod_template("edge")?;
    let redis = RedisProc::start()?;
    let mut kubelet = Kubelet::new(&chart, &redis)?;
    println!(
        "rendered in {:.1} s; edge grace period {:?}, preStop {:?}",
        t0.elapsed().as_secs_f64(),
        edge_t.grace,
        edge_t.pre_stop
    );

    // 1. Pods become ready.
    let origin = kubelet.start_ready(&origin_t, 0).await?;
    let mut edge = kubelet.start_ready(&edge_t, 0).await?;
    let edge_id = edge.env("CASCADE_NODE_ID")?.to_owned();
    let prefix = edge.env("CASCADE_REDIS_PREFIX")?.to_owned();
    kubelet
        .wait_cluster_state(&origin, &edge_id, Some("ready"))
        .await?;
    println!(
        "{} and {edge_id} ready after {:.1} s",
        origin.name,
        t0.elapsed().as_secs_f64()
    );

    // 2. Viewers watch a room on the edge, through everything that follows (long enough for
    //    steps 3 and 4 on a busy machine: the late viewers need the draining edge up).
    let watching = Loadgen::start(&origin, &[&edge], ROOM, VIEWERS, 30)?;
    poll("the viewers to receive media on the edge", STEP, || async {
        let v: Value = reqwest::get(edge.url("/v1/node")).await?.json().await?;
        let room = v["rooms"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["room"] == ROOM).cloned());
        Ok(room.filter(|r| {
            r["viewers"] == VIEWERS
                && r["tracks"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().all(|t| t["packets_in"].as_u64() > Some(0)))
        }))
    })
    .await?;
    ensure!(
        !redis_entries(&redis, &prefix, &edge_id, ROOM)
            .await?
            .is_empty(),
        "the edge has no entries in Redis under {prefix:?}"
    );

    // 3. Termination as the kubelet does it: preStop, then SIGTERM, within the grace period.
    let terminating = Instant::now();
    edge.run_pre_stop()?;
    let (path, port) = edge.readiness.clone();
    let ready = kubelet.status_of(port, &path).await?;
    ensure!(
        ready == 503,
        "after preStop, readiness {path} answered {ready}"
    );
    let (path, port) = edge.liveness.clone();
    ensure!(
        kubelet.status_of(port, &path).await? == 200,
        "a draining edge must stay live"
    );
    kubelet
        .wait_cluster_state(&origin, &edge_id, Some("draining"))
        .await?;
    // Nowhere to send a new viewer yet: refused, with a time to retry.
    let (status, _) = kubelet.whep_once(&edge, ROOM).await?;
    ensure!(
        status == 503,
        "a new viewer on the only, draining edge got {status}"
    );
    edge.sigterm()?;
    println!(
        "{edge_id}: preStop and SIGTERM done {:.1} s into termination",
        terminating.elapsed().as_secs_f64()
    );

    // 4. A new edge from the same pod template joins the placement.
    let new_edge = kubelet.start_ready(&edge_t, 1).await?;
    let new_id = new_edge.env("CASCADE_NODE_ID")?.to_owned();
    kubelet
        .wait_cluster_state(&origin, &new_id, Some("ready"))
        .await?;
    let advertised = new_edge.env("CASCADE_HTTP_ADVERTISE")?.to_owned();
    let (status, location) = kubelet.whep_once(&edge, ROOM).await?;
    ensure!(
        status == 307 && location.as_deref() == Some(&format!("{advertised}/whep/{ROOM}")),
        "a new viewer on the draining edge got {status} {location:?}, not a redirect to {advertised}"
    );
    // Real viewers of another room sent to the draining edge end up on the new one.
    let late = Loadgen::start(&origin, &[&edge, &new_edge], LATE_ROOM, LATE_VIEWERS, 6)?;
    let late = late
        .finish(Duration::from_secs(60))
        .await
        .with_context(|| format!("{} logged:\n{}", origin.name, origin.log_tail()))?;
    check_media(&late, LATE_VIEWERS)?;
    let redirects: Vec<u64> = late["per_viewer"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["redirects"].as_u64().unwrap_or(0))
        .collect();
    ensure!(
        redirects == [1, 0],
        "redirects per late viewer: {redirects:?}"
    );
    let on_new = late["nodes"]
        .as_array()
        .and_then(|ns| {
            ns.iter().find(|n| {
                n["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&new_edge.url("")))
            })
        })
        .map(|n| n["room"]["viewers"].clone());
    ensure!(
        on_new == Some(Value::from(LATE_VIEWERS)),
        "the new edge served {on_new:?} late viewers, not {LATE_VIEWERS}: {}",
        late["nodes"]
    );

    // 5. The draining edge kept its viewers until they left, then exited in time.
    ensure!(
        edge.exited().is_none(),
        "the edge exited while its viewers were watching"
    );
    let watched = watching
        .finish(Duration::from_secs(60))
        .await
        .with_context(|| format!("{} logged:\n{}", origin.name, origin.log_tail()))?;
    check_media(&watched, VIEWERS)?;
    let drain_deadline: u64 = edge.env("CASCADE_DRAIN_TIMEOUT")?.parse()?;
    let status = poll("the draining edge to exit", edge.grace, || {
        let s = edge.exited();
        async move { Ok(s) }
    })
    .await
    .with_context(|| format!("{} logged:\n{}", edge.name, edge.log_tail()))?;
    let took = terminating.elapsed();
    ensure!(
        status.success(),
        "the edge exited with {status}:\n{}",
        edge.log_tail()
    );
    ensure!(
        took < edge.grace && took < Duration::from_secs(drain_deadline),
        "the edge took {took:?} (grace {:?}, drain timeout {drain_deadline} s)",
        edge.grace
    );
    println!(
        "{edge_id} exited 0 {:.1} s into termination",
        took.as_secs_f64()
    );
    let left = redis_entries(&redis, &prefix, &edge_id, ROOM).await?;
    ensure!(
        left.is_empty(),
        "the edge left Redis entries behind: {left:?}"
    );
    kubelet
        .wait_cluster_state(&new_edge, &edge_id, None)
        .await?;
    ensure!(
        kubelet
            .cluster(&new_edge)
            .await?
            .get(&new_id)
            .map(String::as_str)
            == Some("ready"),
        "the new edge is not ready in /v1/cluster"
    );
    let (path, port) = new_edge.readiness.clone();
    ensure!(
        kubelet.status_of(port, &path).await? == 200,
        "the new edge is no longer ready"
    );
    println!("rehearsal done in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// `cascade_sent_packets_total` of a node: RTP written to its subscribers.
async fn sent_packets(pod: &Pod) -> Result<u64> {
    let text = reqwest::get(pod.url("/metrics")).await?.text().await?;
    text.lines()
        .find_map(|l| l.strip_prefix("cascade_sent_packets_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| anyhow!("no cascade_sent_packets_total in /metrics"))
}

/// Viewers that do not leave: the edge serves them until the drain deadline, then exits 0
/// before the kubelet's SIGKILL would come, and removes itself from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_deadline_comes_before_the_grace_period() -> Result<()> {
    let chart = Chart::render(SHORT_DRAIN_SETS)?;
    let origin_t = chart.pod_template("origin")?;
    let edge_t = chart.pod_template("edge")?;
    let redis = RedisProc::start()?;
    let mut kubelet = Kubelet::new(&chart, &redis)?;
    let origin = kubelet.start_ready(&origin_t, 0).await?;
    let mut edge = kubelet.start_ready(&edge_t, 0).await?;
    let edge_id = edge.env("CASCADE_NODE_ID")?.to_owned();
    let prefix = edge.env("CASCADE_REDIS_PREFIX")?.to_owned();
    let drain = Duration::from_secs(edge.env("CASCADE_DRAIN_TIMEOUT")?.parse()?);

    // Viewers that would watch for longer than the drain lasts.
    let _watching = Loadgen::start(&origin, &[&edge], ROOM, VIEWERS, 60)?;
    poll("the viewers to attach on the edge", STEP, || async {
        let v: Value = reqwest::get(edge.url("/v1/node")).await?.json().await?;
        Ok((v["rooms"][0]["viewers"] == VIEWERS).then_some(()))
    })
    .await?;

    let terminating = Instant::now();
    edge.run_pre_stop()?;
    edge.sigterm()?;
    // Until it exits (or the kubelet would SIGKILL it): when did it last send media?
    let mut last_sent = (0, terminating);
    let status = loop {
        if let Some(status) = edge.exited() {
            break status;
        }
        ensure!(
            terminating.elapsed() < edge.grace,
            "the edge outlived its grace period {:?}:\n{}",
            edge.grace,
            edge.log_tail()
        );
        if let Ok(n) = sent_packets(&edge).await
            && n > last_sent.0
        {
            last_sent = (n, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = terminating.elapsed();
    println!(
        "{edge_id} exited {status} {:.1} s into termination (drain {drain:?}, grace {:?}); \
         media sent until {:.1} s",
        took.as_secs_f64(),
        edge.grace,
        last_sent.1.duration_since(terminating).as_secs_f64()
    );
    ensure!(
        status.success(),
        "the edge exited with {status}:\n{}",
        edge.log_tail()
    );
    ensure!(
        took >= drain,
        "the edge exited after {took:?}, before its drain deadline {drain:?}"
    );
    ensure!(
        took < edge.grace,
        "the edge outlived its grace period: {took:?}"
    );
    ensure!(
        last_sent.1.duration_since(terminating) + Duration::from_millis(1500) >= drain,
        "the edge stopped sending media {:?} into a {drain:?} drain",
        last_sent.1.duration_since(terminating)
    );
    let left = redis_entries(&redis, &prefix, &edge_id, ROOM).await?;
    ensure!(
        left.is_empty(),
        "the edge left Redis entries behind: {left:?}"
    );
    kubelet.wait_cluster_state(&origin, &edge_id, None).await?;
    Ok(())
}

#[test]
fn env_references_expand_like_kubernetes() {
    let defined = BTreeMap::from([("POD_IP".to_owned(), "10.1.2.3".to_owned())]);
    assert_eq!(
        expand("http://$(POD_IP):8081", &defined),
        "http://10.1.2.3:8081"
    );
    assert_eq!(
        expand("$(NOPE)/$$(POD_IP)/$", &defined),
        "$(NOPE)/$(POD_IP)/$"
    );
    assert_eq!(expand("$(POD_IP", &defined), "$(POD_IP");
}

#[test]
fn port_variables_follow_their_port() {
    let ports = [
        PortMap {
            name: "http".into(),
            protocol: "TCP".into(),
            container: 7883,
            host: 41000,
        },
        PortMap {
            name: MUX_PORT.into(),
            protocol: "UDP".into(),
            container: 7883,
            host: 42000,
        },
    ];
    assert_eq!(
        map_port_value("CASCADE_UDP_MUX_PORT", "7883", &ports),
        "42000"
    );
    assert_eq!(map_port_value("CASCADE_UDP_MUX_PORT", "9", &ports), "9");
    assert_eq!(map_port_value("CASCADE_CAPACITY", "7883", &ports), "7883");
}

#[test]
fn addresses_are_replaced_whole() {
    assert_eq!(
        replace_addr(
            "http://127.0.0.1:8081/x 127.0.0.1:80810",
            "127.0.0.1:8081",
            "127.0.0.1:5"
        ),
        "http://127.0.0.1:5/x 127.0.0.1:80810"
    );
}
