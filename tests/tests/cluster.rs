//! A cluster of separate processes that find each other only through a real `redis-server`:
//! registration and the key schema, leases, a Redis outage, drain, and 307 placement.
//!
//! Nodes run with `--lease-secs 3` (heartbeat every second) so lease expiry is seen quickly.

use anyhow::{Context, Result, bail};
use cascade_tests::{NodeProc, RedisProc, poll};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(3);

/// A receive-only WHEP offer (no real peer behind it).
const RECVONLY_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n\
    a=rtpmap:96 VP8/90000\r\n";

fn origin(redis: &RedisProc, name: &str, extra: &[&str]) -> Result<NodeProc> {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--lease-secs", "3"];
    args.extend_from_slice(extra);
    NodeProc::start("cascade-origin", name, &args)
}

/// An edge with no `--upstream`: it finds rooms' origins in Redis.
fn edge(redis: &RedisProc, name: &str, extra: &[&str]) -> Result<NodeProc> {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--lease-secs", "3"];
    args.extend_from_slice(extra);
    NodeProc::start("cascade-edge", name, &args)
}

/// An HTTP client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn whep(node: &NodeProc, room: &str) -> Result<reqwest::Response> {
    Ok(client()
        .post(node.url(&format!("/whep/{room}")))
        .header("content-type", "application/sdp")
        .body(RECVONLY_OFFER)
        .send()
        .await?)
}

/// The node's registration in Redis (`cascade:node:{id}:info`), if any.
async fn node_info(redis: &RedisProc, id: &str) -> Result<Option<Value>> {
    let mut con = redis.connection().await?;
    let raw: Option<String> = con.get(format!("cascade:node:{id}:info")).await?;
    Ok(match raw {
        Some(s) => Some(serde_json::from_str(&s).with_context(|| format!("node info {s:?}"))?),
        None => None,
    })
}

async fn wait_registered(redis: &RedisProc, ids: &[&str]) -> Result<()> {
    poll("the nodes to register", Duration::from_secs(20), || async {
        for id in ids {
            if node_info(redis, id).await?.is_none() {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await
}

/// Waits for a node process to exit by itself.
async fn wait_exit(node: &mut NodeProc, deadline: Duration) -> Result<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = node.exited() {
            return Ok(status);
        }
        if start.elapsed() > deadline {
            bail!("{} did not exit within {deadline:?}", node.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_origin_and_three_edges_register_as_the_schema_says() -> Result<()> {
    let redis = RedisProc::start()?;
    let o = origin(&redis, "origin-1", &[])?;
    let edges = [
        edge(&redis, "edge-1", &[])?,
        edge(&redis, "edge-2", &[])?,
        edge(&redis, "edge-3", &["--capacity", "7"])?,
    ];
    wait_registered(&redis, &["origin-1", "edge-1", "edge-2", "edge-3"]).await?;

    let mut con = redis.connection().await?;
    let members: Vec<(String, f64)> = con.zrange_withscores("cascade:nodes", 0, -1).await?;
    let mut ids: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["edge-1", "edge-2", "edge-3", "origin-1"]);
    // Scores are lease expiries in ms on Redis's clock: in the future, within one lease.
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut con).await?;
    let now_ms = (secs * 1000 + micros / 1000) as f64;
    for (id, expiry) in &members {
        assert!(
            *expiry > now_ms && *expiry <= now_ms + LEASE.as_millis() as f64 + 100.0,
            "{id}: expiry {expiry} vs now {now_ms}"
        );
    }

    for (node, role) in std::iter::once((&o, "origin")).chain(edges.iter().map(|e| (e, "edge"))) {
        let info = node_info(&redis, &node.name).await?.expect("registered");
        assert_eq!(info["id"], node.name.as_str());
        assert_eq!(info["role"], role);
        assert_eq!(info["http_url"], format!("http://{}", node.http));
        assert_eq!(info["grpc_url"], format!("http://{}", node.grpc));
        assert_eq!(info["draining"], false);
        assert_eq!(info["load"], 0);
        let pttl: i64 = con.pttl(format!("cascade:node:{}:info", node.name)).await?;
        assert!(
            pttl > 0 && pttl <= LEASE.as_millis() as i64,
            "{}: pttl {pttl}",
            node.name
        );
    }
    let info = node_info(&redis, "edge-3").await?.expect("registered");
    assert_eq!(info["capacity"], 7);
    // No room is published, so no room keys.
    let rooms: Vec<String> = con.zrange("cascade:rooms", 0, -1).await?;
    assert!(rooms.is_empty(), "{rooms:?}");
    Ok(())
}

#[tokio::test]
async fn a_killed_node_is_gone_from_redis_within_one_lease() -> Result<()> {
    let redis = RedisProc::start()?;
    let _o = origin(&redis, "origin-1", &[])?;
    let mut victim = edge(&redis, "edge-1", &[])?;
    let _survivor = edge(&redis, "edge-2", &[])?;
    wait_registered(&redis, &["origin-1", "edge-1", "edge-2"]).await?;

    victim.kill(); // SIGKILL: no goodbye.
    let killed = Instant::now();
    poll("edge-1's entry to expire", LEASE * 3, || async {
        Ok(node_info(&redis, "edge-1").await?.is_none().then_some(()))
    })
    .await?;
    let gone_after = killed.elapsed();
    println!("edge-1 gone from Redis {gone_after:?} after SIGKILL");
    // The poll samples every 200 ms; one heartbeat period of slack on top of the lease.
    assert!(
        gone_after <= LEASE + Duration::from_millis(1500),
        "took {gone_after:?}"
    );
    // The others keep their entries.
    assert!(node_info(&redis, "edge-2").await?.is_some());
    assert!(node_info(&redis, "origin-1").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn with_redis_down_joins_fail_fast_and_nodes_re_register_when_it_returns() -> Result<()> {
    let mut redis = RedisProc::start()?;
    let o = origin(&redis, "origin-1", &[])?;
    let e = edge(&redis, "edge-1", &[])?;
    wait_registered(&redis, &["origin-1", "edge-1"]).await?;

    redis.stop();
    let start = Instant::now();
    let response = whep(&e, "room1").await?;
    let took = start.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response.headers().contains_key("retry-after"),
        "{:?}",
        response.headers()
    );
    let body: Value = response.json().await?;
    assert_eq!(body["code"], "routing_unavailable", "{body}");
    assert!(took < Duration::from_secs(5), "503 took {took:?}");

    // The nodes stay up and keep serving what does not need Redis.
    for node in [&o, &e] {
        let r = reqwest::get(node.url("/healthz")).await?;
        assert_eq!(r.status(), StatusCode::OK, "{}", node.name);
        assert_eq!(
            reqwest::get(node.url("/readyz")).await?.status(),
            StatusCode::OK
        );
    }
    tokio::time::sleep(LEASE).await; // several failed heartbeats

    // Redis comes back empty on the same port: the nodes write themselves again.
    redis.restart()?;
    wait_registered(&redis, &["origin-1", "edge-1"]).await?;
    let mut con = redis.connection().await?;
    let members: Vec<String> = con.zrange("cascade:nodes", 0, -1).await?;
    assert_eq!(members.len(), 2, "{members:?}");
    // And joins get past the lookup again: nobody publishes room1, so 404, not 503.
    let response = poll(
        "a join to get past Redis",
        Duration::from_secs(10),
        || async {
            let r = whep(&e, "room1").await?;
            Ok((r.status() != StatusCode::SERVICE_UNAVAILABLE).then_some(r.status()))
        },
    )
    .await?;
    assert_eq!(response, StatusCode::NOT_FOUND);
    Ok(())
}

/// `cascade-loadgen`: a real WHIP publisher on `origin` and `viewers` WHEP viewers on `edge`.
fn loadgen(origin: &NodeProc, edge: &NodeProc, room: &str, viewers: u32) -> Result<LoadGen> {
    let json = std::env::temp_dir().join(format!(
        "cascade-cluster-{}-{room}.json",
        std::process::id()
    ));
    let child = Command::new(cascade_tests::bin("cascade-loadgen"))
        .arg("run")
        .args(["--origin", &origin.url("")])
        .args(["--edge", &edge.url("")])
        .args(["--room", room, "--viewers", &viewers.to_string()])
        .args([
            "--duration",
            "60",
            "--video-kbps",
            "300",
            "--fps",
            "15",
            "--quiet",
        ])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning cascade-loadgen")?;
    Ok(LoadGen(child))
}

struct LoadGen(Child);

impl Drop for LoadGen {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `node` holds `n` viewer sessions and Redis shows that load.
async fn wait_viewers(redis: &RedisProc, node: &NodeProc, n: u64) -> Result<()> {
    poll(
        &format!("{} viewers on {}", n, node.name),
        Duration::from_secs(30),
        || async {
            let status = node.status().await?;
            let local = status["sessions"]["viewers"].as_u64().unwrap_or(0);
            let registered = node_info(redis, &node.name)
                .await?
                .and_then(|i| i["load"].as_u64())
                .unwrap_or(0);
            Ok((local == n && registered == n).then_some(()))
        },
    )
    .await
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_draining_edge_redirects_new_viewers_and_exits_at_its_deadline() -> Result<()> {
    let redis = RedisProc::start()?;
    let o = origin(&redis, "origin-1", &[])?;
    let mut a = edge(&redis, "edge-a", &["--drain-timeout", "8"])?;
    let mut b = edge(&redis, "edge-b", &[])?;
    let mut c = edge(&redis, "edge-c", &[])?;
    wait_registered(&redis, &["origin-1", "edge-a", "edge-b", "edge-c"]).await?;
    // A viewer keeps edge-a busy, so its drain lasts until the deadline.
    let _media = loadgen(&o, &a, "room1", 1)?;
    wait_viewers(&redis, &a, 1).await?;

    let http = client();
    let wrong = http.post(a.url("/v1/nodes/edge-b/drain")).send().await?;
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    let drained = http.post(a.url("/v1/nodes/self/drain")).send().await?;
    let drain_started = Instant::now();
    assert_eq!(drained.status(), StatusCode::ACCEPTED);
    let again: Value = http
        .post(a.url("/v1/nodes/edge-a/drain"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(again["already_draining"], true, "{again}");

    assert_eq!(
        reqwest::get(a.url("/readyz")).await?.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    poll(
        "edge-a to show draining in Redis",
        Duration::from_secs(5),
        || async {
            let info = node_info(&redis, "edge-a").await?;
            Ok(info.is_some_and(|i| i["draining"] == true).then_some(()))
        },
    )
    .await?;

    // A new viewer goes to the least-loaded other edge (b and c tie; the smaller id wins).
    let r = whep(&a, "room1").await?;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&r), format!("http://{}/whep/room1", b.http));

    // With every other edge gone, a draining edge refuses: 503 and Retry-After.
    for other in [&b, &c] {
        let r = http
            .post(other.url(&format!("/v1/nodes/{}/drain", other.name)))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    // No sessions: they exit at once and leave Redis.
    for other in [&mut b, &mut c] {
        let status = wait_exit(other, Duration::from_secs(10)).await?;
        assert!(status.success(), "{}: {status}", other.name);
        assert!(node_info(&redis, &other.name).await?.is_none());
    }
    let r = whep(&a, "room1").await?;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));

    // The viewer kept edge-a up; at the deadline it exits cleanly and deregisters.
    assert!(a.exited().is_none(), "edge-a exited before its deadline");
    let status = wait_exit(&mut a, Duration::from_secs(20)).await?;
    let lasted = drain_started.elapsed();
    assert!(status.success(), "edge-a: {status}");
    assert!(
        lasted >= Duration::from_secs(7),
        "edge-a exited after {lasted:?}, before its 8 s deadline"
    );
    assert!(node_info(&redis, "edge-a").await?.is_none());
    let mut con = redis.connection().await?;
    let members: Vec<String> = con.zrange("cascade:nodes", 0, -1).await?;
    assert_eq!(members, ["origin-1"]);
    Ok(())
}

#[tokio::test]
async fn viewers_are_redirected_to_the_edge_carrying_the_room_or_the_least_loaded_one() -> Result<()>
{
    let redis = RedisProc::start()?;
    let o = origin(&redis, "origin-1", &[])?;
    let a = edge(&redis, "edge-a", &["--capacity", "1"])?;
    let b = edge(&redis, "edge-b", &["--capacity", "5"])?;
    let c = edge(&redis, "edge-c", &["--capacity", "5"])?;
    wait_registered(&redis, &["origin-1", "edge-a", "edge-b", "edge-c"]).await?;

    // room1 fills edge-a (capacity 1); room2 has one viewer on edge-c.
    let _media1 = loadgen(&o, &a, "room1", 1)?;
    let _media2 = loadgen(&o, &c, "room2", 1)?;
    wait_viewers(&redis, &a, 1).await?;
    wait_viewers(&redis, &c, 1).await?;
    for (room, edge) in [("room1", "edge-a"), ("room2", "edge-c")] {
        poll(
            &format!("{edge}'s {room} link in Redis"),
            Duration::from_secs(10),
            || async {
                let mut con = redis.connection().await?;
                let exists: bool = con
                    .hexists(format!("cascade:room:{room}:links"), edge)
                    .await?;
                Ok(exists.then_some(()))
            },
        )
        .await?;
    }

    // edge-a is full: the least-loaded edge with room (b: 0/5, not c: 1/5) takes the viewer.
    let r = whep(&a, "room1").await?;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&r), format!("http://{}/whep/room1", b.http));
    // edge-b does not carry room2; edge-c does and has room: no second upstream copy.
    let r = whep(&b, "room2").await?;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&r), format!("http://{}/whep/room2", c.http));
    let r = whep(&a, "room2").await?;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&r), format!("http://{}/whep/room2", c.http));

    // A real WHEP client sent to the full edge-a follows the 307 and plays on edge-b.
    let _media3 = loadgen(&o, &a, "room3", 1)?;
    wait_viewers(&redis, &b, 1).await?;
    wait_packets_grow(&b, "room3").await?;
    assert!(a.room("room3").await?.is_none(), "edge-a pulled room3");
    Ok(())
}

/// Packets the node received for `room` so far, over all its tracks.
async fn packets_in(node: &NodeProc, room: &str) -> Result<u64> {
    Ok(node
        .room(room)
        .await?
        .and_then(|r| {
            r["tracks"].as_array().map(|tracks| {
                tracks
                    .iter()
                    .map(|t| t["packets_in"].as_u64().unwrap_or(0))
                    .sum()
            })
        })
        .unwrap_or(0))
}

async fn wait_packets_grow(node: &NodeProc, room: &str) -> Result<()> {
    let before = packets_in(node, room).await?;
    poll(
        &format!("{room} packets to keep arriving at {}", node.name),
        Duration::from_secs(10),
        || async { Ok((packets_in(node, room).await? > before + 20).then_some(())) },
    )
    .await
}

#[tokio::test]
async fn a_redis_outage_leaves_running_sessions_alone_and_the_routing_is_rewritten_after_it()
-> Result<()> {
    let mut redis = RedisProc::start()?;
    let o = origin(&redis, "origin-1", &[])?;
    let e = edge(&redis, "edge-1", &[])?;
    wait_registered(&redis, &["origin-1", "edge-1"]).await?;
    let _media = loadgen(&o, &e, "room1", 1)?;
    wait_viewers(&redis, &e, 1).await?;
    wait_packets_grow(&e, "room1").await?;

    redis.stop();
    // Longer than the lease: every entry would have expired had Redis stayed up.
    tokio::time::sleep(LEASE + Duration::from_secs(1)).await;
    wait_packets_grow(&e, "room1").await?;
    let status = e.status().await?;
    assert_eq!(status["sessions"]["viewers"], 1, "{status}");
    let r = whep(&e, "other-room").await?;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Back, empty: node, room claim (a new token) and link are written again.
    redis.restart()?;
    wait_registered(&redis, &["origin-1", "edge-1"]).await?;
    poll(
        "room1's claim and link to come back",
        Duration::from_secs(10),
        || async {
            let mut con = redis.connection().await?;
            let owner: Option<String> = con.get("cascade:room:room1:owner").await?;
            let link: Option<String> = con.hget("cascade:room:room1:links", "edge-1").await?;
            Ok(match (owner, link) {
                (Some(owner), Some(link)) => {
                    assert!(owner.starts_with("origin-1\n"), "{owner:?}");
                    assert!(link.ends_with("\norigin-1"), "{link:?}");
                    Some(())
                }
                _ => None,
            })
        },
    )
    .await?;
    let info = node_info(&redis, "edge-1").await?.expect("registered");
    assert_eq!(info["load"], 1);
    wait_packets_grow(&e, "room1").await?;
    Ok(())
}

#[tokio::test]
async fn sigterm_drains_then_exits_and_deregisters() -> Result<()> {
    let redis = RedisProc::start()?;
    let mut e = edge(&redis, "edge-1", &["--drain-timeout", "30"])?;
    wait_registered(&redis, &["edge-1"]).await?;
    let term = Command::new("kill")
        .args(["-TERM", &e.child.id().to_string()])
        .status()?;
    assert!(term.success());
    // No sessions to wait for: it exits well before the 30 s deadline.
    let status = wait_exit(&mut e, Duration::from_secs(10)).await?;
    assert!(status.success(), "{status}");
    assert!(node_info(&redis, "edge-1").await?.is_none());
    assert!(e.log().iter().any(|l| l.contains("draining")));
    Ok(())
}
