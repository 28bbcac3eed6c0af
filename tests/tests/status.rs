//! The cluster status API, the `cascade` CLI, the OpenAPI document and `/metrics`, against a
//! real cluster: a `redis-server`, an origin and two edges as processes, and `cascade-loadgen`
//! publishing and watching with real WebRTC.
//!
//! Edges run with `--capacity 1` and viewers join two seconds apart, so the second viewer is not
//! sent to the first edge (full) and each edge pulls the room over its own relay link.

use anyhow::{Context, Result, bail};
use cascade_tests::{NodeProc, RedisProc, poll};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(40);

struct Cluster {
    _redis: RedisProc,
    origin: NodeProc,
    a: NodeProc,
    b: NodeProc,
}

fn start_cluster() -> Result<Cluster> {
    let redis = RedisProc::start()?;
    let url = redis.url();
    let common = ["--redis", &url, "--lease-secs", "3"];
    let origin = NodeProc::start("cascade-origin", "origin-1", &common)?;
    let edge = |name| {
        let mut args = common.to_vec();
        args.extend(["--capacity", "1"]);
        NodeProc::start("cascade-edge", name, &args)
    };
    let a = edge("edge-a")?;
    let b = edge("edge-b")?;
    Ok(Cluster {
        _redis: redis,
        origin,
        a,
        b,
    })
}

/// `cascade-loadgen`: a publisher on the origin and one viewer on each edge, two seconds apart.
struct LoadGen(Child);

impl LoadGen {
    fn start(c: &Cluster, room: &str, seconds: u32) -> Result<Self> {
        let child = Command::new(cascade_tests::bin("cascade-loadgen"))
            .arg("run")
            .args(["--origin", &c.origin.url("")])
            .args(["--edge", &c.a.url(""), "--edge", &c.b.url("")])
            .args(["--room", room, "--viewers", "2", "--ramp", "0.5"])
            .args(["--duration", &seconds.to_string()])
            .args(["--video-kbps", "300", "--fps", "15", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning cascade-loadgen")?;
        Ok(Self(child))
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(url: &str) -> Result<(u16, Value)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status().as_u16();
    let body = r.text().await?;
    let value = serde_json::from_str(&body).with_context(|| format!("{url}: {body:?}"))?;
    Ok((status, value))
}

async fn get_ok(url: &str) -> Result<Value> {
    let (status, value) = get(url).await?;
    if status != 200 {
        bail!("{url}: {status} {value}");
    }
    Ok(value)
}

/// Waits until room1 is carried by both edges, one viewer each, as `node` reports it.
async fn wait_tree(node: &NodeProc, room: &str) -> Result<Value> {
    poll("a relay link and a viewer per edge", DEADLINE, || async {
        let r = get_ok(&node.url(&format!("/v1/rooms/{room}"))).await?;
        let links = r["links"].as_array().map_or(0, Vec::len);
        let watched = r["viewers"]
            .as_array()
            .map_or(0, |v| v.iter().filter(|v| v["viewers"] == 1).count());
        Ok((links == 2 && watched == 2 && r["viewers_total"] == 2).then_some(r))
    })
    .await
}

/// The JSON without what changes from one read to the next (rates, ages).
fn stable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in [
                    "bitrate_bps",
                    "ingress_bps",
                    "egress_bps",
                    "age_seconds",
                    "cpu_percent",
                    "last_heartbeat_unix_ms",
                    "heartbeat_age_ms",
                    // Sessions are counted by transport once connected: they move as viewers
                    // finish connecting between two reads.
                    "sessions_udp",
                    "sessions_tcp",
                    "sessions_relayed",
                ] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn cascade(url: &str, args: &[&str]) -> Result<std::process::Output> {
    Command::new(cascade_tests::bin("cascade"))
        .args(["--url", url])
        .args(args)
        .env_remove("CASCADE_URL")
        .output()
        .context("running cascade")
}

fn cascade_json(url: &str, args: &[&str]) -> Result<Value> {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cascade(url, &all)?;
    if !out.status.success() {
        bail!(
            "cascade {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test]
async fn the_api_reports_the_relay_tree_then_a_killed_edge_then_viewers_leaving() -> Result<()> {
    let mut c = start_cluster()?;
    let media = LoadGen::start(&c, "room1", 25)?;

    // Any node answers for the whole cluster: ask the edge that is killed later, and the origin.
    let room = wait_tree(&c.b, "room1").await?;
    assert_eq!(room["origin"], "origin-1");
    let mut links: Vec<(String, String)> = room["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["edge"].as_str().unwrap().to_owned(),
                l["upstream"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    links.sort();
    assert_eq!(
        links,
        [
            ("edge-a".to_owned(), "origin-1".to_owned()),
            ("edge-b".to_owned(), "origin-1".to_owned())
        ]
    );
    let kinds: Vec<&str> = room["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"video"), "{room}");
    assert!(room["age_seconds"].as_u64().is_some(), "{room}");

    let cluster = get_ok(&c.origin.url("/v1/cluster")).await?;
    assert_eq!(cluster["answered_by"], "origin-1");
    assert_eq!(
        cluster["totals"],
        serde_json::json!({"nodes": 3, "origins": 1, "edges": 2, "rooms": 1, "viewers": 2}),
        "{cluster}"
    );
    for node in cluster["nodes"].as_array().unwrap() {
        // Heartbeats every second (lease 3 s): the entry was refreshed within the lease.
        let age = node["heartbeat_age_ms"].as_u64().context("heartbeat age")?;
        assert!(age < 3000, "{node}");
        assert!(node["last_heartbeat_unix_ms"].as_u64().is_some(), "{node}");
        // Sampled by each heartbeat, so known by now.
        assert!(node["cpu_percent"].as_f64().is_some(), "{node}");
        assert_eq!(node["state"], "ready", "{node}");
        assert_eq!(node["reachable"], true, "{node}");
        let expected = if node["role"] == "edge" { 1 } else { 0 };
        assert_eq!(node["viewers"], expected, "{node}");
    }
    // Rates need two reads a second apart: every node both receives and sends the stream.
    poll(
        "every node's ingress and egress bitrate",
        DEADLINE,
        || async {
            let cluster = get_ok(&c.origin.url("/v1/cluster")).await?;
            let flowing = cluster["nodes"].as_array().is_some_and(|nodes| {
                nodes.iter().all(|n| {
                    n["ingress_bps"].as_u64().unwrap_or(0) > 0
                        && n["egress_bps"].as_u64().unwrap_or(0) > 0
                })
            });
            Ok(flowing.then_some(()))
        },
    )
    .await?;
    let rooms = get_ok(&c.a.url("/v1/rooms")).await?;
    assert_eq!(rooms["rooms"].as_array().map(Vec::len), Some(1), "{rooms}");
    let detail = get_ok(&c.origin.url("/v1/nodes/edge-a")).await?;
    assert_eq!(detail["id"], "edge-a");
    assert_eq!(detail["http_url"], format!("http://{}", c.a.http));
    assert_eq!(detail["room_details"][0]["room"], "room1", "{detail}");
    assert_eq!(detail["room_details"][0]["relayed"], true, "{detail}");
    // A UDP mux shard per core (the default), one of them serving the edge's one viewer, all
    // at one candidate address.
    let shards = detail["mux_shards"].as_array().context("mux shards")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(shards.len(), cores.min(256), "{detail}");
    let viewers: u64 = shards.iter().filter_map(|s| s["viewers"].as_u64()).sum();
    assert_eq!(viewers, 1, "{detail}");
    let address = shards[0]["address"].as_str().context("shard address")?;
    assert!(address.parse::<std::net::SocketAddr>().is_ok(), "{detail}");
    assert!(shards.iter().all(|s| s["address"] == address), "{detail}");

    for (url, code) in [
        (c.a.url("/v1/rooms/nope"), 404),
        (c.a.url("/v1/nodes/nope"), 404),
        (c.a.url("/v1/rooms/bad%20name"), 400),
    ] {
        let (status, body) = get(&url).await?;
        assert_eq!(status, code, "{url}: {body}");
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }

    // A killed edge leaves the cluster, its link and its viewer within its lease.
    c.b.kill();
    poll("edge-b to leave the cluster", DEADLINE, || async {
        let cluster = get_ok(&c.origin.url("/v1/cluster")).await?;
        let room = get_ok(&c.origin.url("/v1/rooms/room1")).await?;
        let links = room["links"].as_array().map_or(0, Vec::len);
        Ok((cluster["totals"]["nodes"] == 2
            && cluster["totals"]["viewers"] == 1
            && links == 1
            && room["links"][0]["edge"] == "edge-a"
            && room["viewers_total"] == 1)
            .then_some(()))
    })
    .await?;

    // The broadcast ends: the viewers leave, the room and its links go.
    drop(media);
    poll(
        "the room to end and the viewers to leave",
        Duration::from_secs(60),
        || async {
            let cluster = get_ok(&c.a.url("/v1/cluster")).await?;
            let rooms = get_ok(&c.a.url("/v1/rooms")).await?;
            Ok((cluster["totals"]["viewers"] == 0
                && cluster["totals"]["rooms"] == 0
                && rooms["rooms"].as_array().is_some_and(Vec::is_empty))
            .then_some(()))
        },
    )
    .await?;
    let (status, _) = get(&c.a.url("/v1/rooms/room1")).await?;
    assert_eq!(status, 404);
    Ok(())
}

/// A validator for the schema `reference` (`#/components/schemas/X`) of the OpenAPI document.
fn validator(doc: &Value, reference: &Value) -> Result<jsonschema::Validator> {
    let schema = serde_json::json!({
        "$ref": reference["$ref"],
        "components": doc["components"],
    });
    jsonschema::draft202012::new(&schema).map_err(|e| anyhow::anyhow!("schema {reference}: {e}"))
}

fn check(doc: &Value, path: &str, method: &str, status: u16, body: &Value) -> Result<()> {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    if schema.is_null() {
        bail!("{method} {path} answered {status}, which the document does not describe: {body}");
    }
    let v = validator(doc, schema)?;
    let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
    if !errors.is_empty() {
        bail!("{method} {path} {status} does not match the document: {errors:#?}\n{body:#}");
    }
    Ok(())
}

#[tokio::test]
async fn cli_json_matches_the_api_and_every_answer_matches_the_openapi_document() -> Result<()> {
    let c = start_cluster()?;
    let _media = LoadGen::start(&c, "room1", 60)?;
    wait_tree(&c.origin, "room1").await?;

    // OpenAPI: every documented GET, its 200 and its error answers.
    let doc = get_ok(&c.a.url("/openapi.json")).await?;
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{doc}"
    );
    // Closed: an answer with a field the document lacks fails the checks below (the error
    // body alone may carry more).
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if schema["type"] == "object" && name != "Error" {
            assert_eq!(schema["additionalProperties"], false, "{name} is open");
        }
    }
    let documented: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    let calls = [
        ("/v1/cluster", "/v1/cluster", 200),
        ("/v1/rooms", "/v1/rooms", 200),
        ("/v1/rooms/{room}", "/v1/rooms/room1", 200),
        ("/v1/rooms/{room}", "/v1/rooms/nope", 404),
        ("/v1/rooms/{room}", "/v1/rooms/bad%20name", 400),
        ("/v1/nodes/{id}", "/v1/nodes/origin-1", 200),
        ("/v1/nodes/{id}", "/v1/nodes/edge-b", 200),
        ("/v1/nodes/{id}", "/v1/nodes/self", 200),
        ("/v1/nodes/{id}", "/v1/nodes/nope", 404),
        ("/v1/node", "/v1/node", 200),
        ("/v1/sessions", "/v1/sessions", 200),
        ("/v1/node/history", "/v1/node/history", 200),
        ("/v1/history", "/v1/history", 200),
    ];
    // Checked below with their own methods.
    let posts_and_deletes = ["/v1/nodes/{id}/drain", "/v1/sessions/{id}"];
    for path in &documented {
        assert!(
            calls.iter().any(|(p, _, _)| p == path) || posts_and_deletes.contains(&path.as_str()),
            "{path} is documented but not checked"
        );
    }
    for (path, uri, expected) in calls {
        for node in [&c.origin, &c.a] {
            let (status, body) = get(&node.url(uri)).await?;
            assert_eq!(status, expected, "{uri}: {body}");
            check(&doc, path, "get", status, &body)?;
        }
    }
    // Drain: a foreign id is 404 (draining for real is the last step below).
    let client = reqwest::Client::new();
    let r = client
        .post(c.b.url("/v1/nodes/edge-a/drain"))
        .send()
        .await?;
    let status = r.status().as_u16();
    check(
        &doc,
        "/v1/nodes/{id}/drain",
        "post",
        status,
        &r.json().await?,
    )?;
    assert_eq!(status, 404);
    // Ending a session that is not there (from loopback, which needs no token here) is 404.
    let r = client
        .delete(c.b.url("/v1/sessions/no-such-session"))
        .send()
        .await?;
    let status = r.status().as_u16();
    check(
        &doc,
        "/v1/sessions/{id}",
        "delete",
        status,
        &r.json().await?,
    )?;
    assert_eq!(status, 404);

    // The CLI's --json is the API's JSON, from any node.
    let url = c.a.url("");
    let api = stable(get_ok(&c.origin.url("/v1/rooms")).await?);
    assert_eq!(stable(cascade_json(&url, &["rooms"])?), api);
    let api = stable(get_ok(&c.origin.url("/v1/rooms/room1")).await?);
    assert_eq!(stable(cascade_json(&url, &["room", "room1"])?), api);
    let status = stable(cascade_json(&url, &["status"])?);
    let mut cluster = stable(get_ok(&c.a.url("/v1/cluster")).await?);
    assert_eq!(status["cluster"], cluster);
    assert_eq!(
        status["rooms"],
        stable(get_ok(&c.a.url("/v1/rooms")).await?)
    );
    // CASCADE_URL works as --url.
    let out = Command::new(cascade_tests::bin("cascade"))
        .args(["status", "--json"])
        .env("CASCADE_URL", c.b.url(""))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via_env: Value = serde_json::from_slice(&out.stdout)?;
    cluster["answered_by"] = "edge-b".into();
    assert_eq!(stable(via_env["cluster"].clone()), cluster);

    // The text output: a table of nodes and the relay tree.
    let out = cascade(&url, &["status"])?;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)?;
    for expected in [
        "origin-1",
        "edge-a",
        "edge-b",
        "ready",
        "room room1",
        "[origin]",
        "── edge-",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in\n{text}");
    }
    // Errors: an unreachable node and an unknown room, named, with a failing exit code.
    let out = cascade("http://127.0.0.1:9", &["status"])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http://127.0.0.1:9"), "{err}");
    let out = cascade(&url, &["room", "nope"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_found"));

    // `cascade drain` finds the node through any node and drains it.
    let drained = cascade_json(&url, &["drain", "edge-b"])?;
    assert_eq!(drained["node"], "edge-b", "{drained}");
    check(&doc, "/v1/nodes/{id}/drain", "post", 202, &drained)?;
    poll("edge-b to show draining", DEADLINE, || async {
        let n = get_ok(&c.origin.url("/v1/nodes/edge-b")).await?;
        Ok((n["state"] == "draining").then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn the_dashboard_draws_the_origin_the_edges_and_their_viewers() -> Result<()> {
    let c = start_cluster()?;
    let _media = LoadGen::start(&c, "room1", 60)?;
    wait_tree(&c.origin, "room1").await?;
    let index = reqwest::get(c.a.url("/")).await?.text().await?;
    assert!(index.contains("href=\"/dashboard\""), "{index}");

    let driver = cascade_tests::Chromedriver::start().await?;
    let browser = driver.browser().await?;
    // A laptop screen.
    browser.client.set_window_size(1280, 800).await?;
    browser.open(&c.a.url("/dashboard")).await?;
    // What the page drew, read from the DOM: each node box of room1's tree and its text.
    let drawn = poll("the dashboard to draw room1's tree", DEADLINE, || async {
        let v = browser
            .eval(
                "Array.from(document.querySelectorAll('section[data-room=\"room1\"] .node'))\
                 .map(n => [n.dataset.node, n.textContent, n.closest('ul').closest('li') ? \
                 n.closest('ul').closest('li').querySelector('.node').dataset.node : null])",
            )
            .await?;
        Ok((v.as_array().map_or(0, Vec::len) == 3).then_some(v))
    })
    .await;
    let drawn = match drawn {
        Ok(d) => d,
        Err(e) => {
            let page = browser
                .eval("[window.cascadeDashboard, document.body.innerText]")
                .await?;
            bail!("{e:#}: {page:#}");
        }
    };
    let drawn: Vec<(String, String, Option<String>)> = serde_json::from_value(drawn)?;
    let find = |id: &str| drawn.iter().find(|(n, _, _)| n == id).cloned();
    let (_, origin_text, _) = find("origin-1").context("origin drawn")?;
    assert!(
        origin_text.contains("0 viewers") && origin_text.contains("origin"),
        "{origin_text}"
    );
    for edge in ["edge-a", "edge-b"] {
        let (_, text, parent) = find(edge).with_context(|| format!("{edge} drawn: {drawn:?}"))?;
        assert!(text.contains("1 viewer"), "{text}");
        assert_eq!(
            parent.as_deref(),
            Some("origin-1"),
            "{edge} hangs under the origin"
        );
    }
    let rows = browser
        .eval("document.querySelectorAll('#nodes tr').length")
        .await?;
    assert_eq!(rows, 3);
    // Each relay link shows what flows over it, once the bitrates are measured (a second
    // refresh): a non-zero rate next to both edges.
    poll("each link's bitrate", DEADLINE, || async {
        let rates = browser
            .eval(
                "Array.from(document.querySelectorAll('section[data-room=\"room1\"] .rate.link'))\
                 .map(n => n.textContent)",
            )
            .await?;
        let rates: Vec<String> = serde_json::from_value(rates)?;
        let shown = rates.len() == 2
            && rates
                .iter()
                .all(|r| r.ends_with("kb/s") && !r.contains(" 0 kb/s"));
        Ok(shown.then_some(()))
    })
    .await?;
    // The charts: room1's viewers (2, on the two edges) and bitrates over the last samples
    // (one every 5 s, kept by each node), and a CPU line per node.
    let charts = poll("room1's charts with two samples", DEADLINE, || async {
        let v = browser
            .eval(
                r#"(() => {
                    const room = document.querySelector('section[data-room="room1"]');
                    const line = (chart, cls) =>
                        room.querySelector(`figure[data-chart="${chart}"] polyline.${cls}`);
                    const h = window.cascadeDashboard.history;
                    const series = h && h.rooms.find(s => s.room === 'room1');
                    return {
                        viewers: Number(line('viewers', 'viewers').dataset.points),
                        egress: Number(line('bitrate', 'egress').dataset.points),
                        ingress: Number(line('bitrate', 'ingress').dataset.points),
                        last: series ? series.points[series.points.length - 1] : null,
                        cpu: Array.from(document.querySelectorAll('#nodes td.spark polyline.cpu'))
                            .map(p => Number(p.dataset.points)),
                    };
                })()"#,
            )
            .await?;
        let ready = v["viewers"].as_u64() >= Some(2)
            && v["last"]["viewers"] == 2
            && v["last"]["egress_bps"].as_u64() > Some(0)
            && v["last"]["ingress_bps"].as_u64() > Some(0);
        Ok(ready.then_some(v))
    })
    .await?;
    assert!(charts["egress"].as_u64() >= Some(2), "{charts}");
    assert!(charts["ingress"].as_u64() >= Some(2), "{charts}");
    let cpu: Vec<u64> = serde_json::from_value(charts["cpu"].clone())?;
    assert_eq!(cpu.len(), 3, "a CPU chart per node: {charts}");
    assert!(cpu.iter().all(|&n| n >= 1), "{charts}");
    // The README's picture of the page: `CASCADE_SCREENSHOT_DIR=$PWD/docs cargo test ...`.
    if let Some(dir) = std::env::var_os("CASCADE_SCREENSHOT_DIR") {
        let png = browser.client.screenshot().await?;
        let path = std::path::Path::new(&dir).join("cluster-page.png");
        std::fs::write(&path, png).with_context(|| path.display().to_string())?;
        println!("screenshot: {}", path.display());
    }
    browser.kill().await;
    Ok(())
}

mod grpc {
    //! The gRPC status service's answers as the HTTP API's JSON, to compare them.

    use cascade_proto::status::v1 as pb;
    use serde_json::{Value, json};

    pub fn node_summary(n: &pb::NodeSummary) -> Value {
        json!({
            "id": n.id, "role": n.role, "http_url": n.http_url, "grpc_url": n.grpc_url,
            "version": n.version, "state": n.state, "capacity": n.capacity, "load": n.load,
            "reachable": n.reachable, "viewers": n.viewers, "publishers": n.publishers,
            "relays": n.relays, "sessions_udp": n.sessions_udp, "sessions_tcp": n.sessions_tcp,
            "sessions_relayed": n.sessions_relayed, "rooms": n.rooms, "ingress_bps": n.ingress_bps,
            "egress_bps": n.egress_bps,
            "cpu_percent": n.cpu_percent, "last_heartbeat_unix_ms": n.last_heartbeat_unix_ms,
            "heartbeat_age_ms": n.heartbeat_age_ms, "region": n.region, "zone": n.zone,
        })
    }

    pub fn cluster(c: &pb::Cluster) -> Value {
        let t = c.totals.unwrap_or_default();
        json!({
            "answered_by": c.answered_by,
            "nodes": c.nodes.iter().map(node_summary).collect::<Vec<_>>(),
            "totals": {"nodes": t.nodes, "origins": t.origins, "edges": t.edges,
                       "rooms": t.rooms, "viewers": t.viewers},
        })
    }

    pub fn room(r: &pb::Room) -> Value {
        json!({
            "room": r.room, "origin": r.origin, "age_seconds": r.age_seconds,
            "tracks": r.tracks.iter().map(|t| json!({
                "kind": t.kind, "codec": t.codec, "bitrate_bps": t.bitrate_bps,
            })).collect::<Vec<_>>(),
            "links": r.links.iter()
                .map(|l| json!({"edge": l.edge, "upstream": l.upstream, "bitrate_bps": l.bitrate_bps,
                               "paused_layers": l.paused_layers}))
                .collect::<Vec<_>>(),
            "viewers": r.viewers.iter().map(|v| json!({"node": v.node, "viewers": v.viewers}))
                .collect::<Vec<_>>(),
            "viewers_total": r.viewers_total,
        })
    }

    pub fn node_detail(d: &pb::NodeDetail) -> Value {
        let mut v = node_summary(&d.summary.clone().unwrap_or_default());
        v["room_details"] = match &d.room_details {
            None => Value::Null,
            Some(rooms) => rooms
                .rooms
                .iter()
                .map(|r| {
                    json!({
                        "room": r.room, "relayed": r.relayed, "subscribers": r.subscribers,
                        "viewers": r.viewers, "age_seconds": r.age_seconds,
                        "tracks": r.tracks.iter().map(|t| json!({
                            "kind": t.kind, "codec": t.codec, "packets_in": t.packets_in,
                            "bytes_in": t.bytes_in, "queue_drops": t.queue_drops,
                            "subscribers": t.subscribers, "bitrate_bps": t.bitrate_bps,
                            "rid": t.rid,
                            "paused_upstream": t.paused_upstream,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        };
        v["mux_shards"] = match &d.mux_shards {
            None => Value::Null,
            Some(m) => m
                .shards
                .iter()
                .map(|s| json!({"address": s.address, "viewers": s.viewers}))
                .collect(),
        };
        v
    }
}

/// The gRPC code of a call that must fail.
fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> tonic::Code {
    r.map(drop).unwrap_err().code()
}

/// Per-track packet counters move between two reads; the rest must match.
fn without_counters(mut v: Value) -> Value {
    if let Some(rooms) = v["room_details"].as_array_mut() {
        for room in rooms {
            for t in room["tracks"].as_array_mut().into_iter().flatten() {
                t["packets_in"] = Value::Null;
                t["bytes_in"] = Value::Null;
            }
        }
    }
    v
}

#[tokio::test]
async fn grpc_status_answers_match_the_http_api_after_joins() -> Result<()> {
    use cascade_proto::status::v1 as pb;
    use cascade_proto::status::v1::status_client::StatusClient;
    let c = start_cluster()?;
    let _media = LoadGen::start(&c, "room1", 60)?;
    wait_tree(&c.origin, "room1").await?;
    // Each edge's viewer is on its tracks (it subscribes once connected, after the tree shows
    // it): the answers compared below do not change between the two reads.
    for edge in [&c.a, &c.b] {
        poll("the edge's viewer on every track", DEADLINE, || async {
            let status = edge.status().await?;
            let on_tracks = status["rooms"].as_array().is_some_and(|rooms| {
                rooms.iter().all(|r| {
                    r["tracks"]
                        .as_array()
                        .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["subscribers"] == 1))
                })
            });
            Ok(on_tracks.then_some(()))
        })
        .await?;
    }

    for node in [&c.origin, &c.a] {
        let mut grpc = StatusClient::connect(node.grpc_url()).await?;
        // Heartbeat ages, CPU and bitrates move between reads: compared without them.
        let answer = grpc
            .get_cluster(pb::GetClusterRequest {})
            .await?
            .into_inner();
        let http = get_ok(&node.url("/v1/cluster")).await?;
        assert_eq!(
            stable(grpc::cluster(&answer)),
            stable(http),
            "{}",
            node.name
        );
        for n in &answer.nodes {
            assert!(
                n.cpu_percent.is_some() && n.heartbeat_age_ms.is_some(),
                "{n:?}"
            );
        }

        let answer = grpc.list_rooms(pb::ListRoomsRequest {}).await?.into_inner();
        let http = get_ok(&node.url("/v1/rooms")).await?;
        let rooms: Vec<Value> = answer.rooms.iter().map(grpc::room).collect();
        assert_eq!(stable(serde_json::json!({ "rooms": rooms })), stable(http));

        let answer = grpc
            .get_room(pb::GetRoomRequest {
                room: "room1".into(),
            })
            .await?
            .into_inner();
        let http = get_ok(&node.url("/v1/rooms/room1")).await?;
        assert_eq!(stable(grpc::room(&answer)), stable(http));
        assert_eq!(answer.links.len(), 2);

        for id in ["origin-1", "edge-a", "edge-b", "self"] {
            let answer = grpc
                .get_node(pb::GetNodeRequest { id: id.into() })
                .await?
                .into_inner();
            let http = get_ok(&node.url(&format!("/v1/nodes/{id}"))).await?;
            assert_eq!(
                without_counters(stable(grpc::node_detail(&answer))),
                without_counters(stable(http)),
                "{id}"
            );
        }

        // Errors map to gRPC codes.
        let missing = pb::GetRoomRequest {
            room: "nope".into(),
        };
        assert_eq!(code(grpc.get_room(missing).await), tonic::Code::NotFound);
        let bad = pb::GetRoomRequest {
            room: "bad name".into(),
        };
        assert_eq!(code(grpc.get_room(bad).await), tonic::Code::InvalidArgument);
        let missing = pb::GetNodeRequest { id: "nope".into() };
        assert_eq!(code(grpc.get_node(missing).await), tonic::Code::NotFound);
        let foreign = pb::DrainNodeRequest {
            id: "someone-else".into(),
        };
        assert_eq!(code(grpc.drain_node(foreign).await), tonic::Code::NotFound);
    }

    // DrainNode from loopback drains the node answering, idempotently.
    let mut grpc = StatusClient::connect(c.b.grpc_url()).await?;
    for already in [false, true] {
        let r = grpc
            .drain_node(pb::DrainNodeRequest { id: "self".into() })
            .await?
            .into_inner();
        assert_eq!((r.node.as_str(), r.draining), ("edge-b", true));
        assert_eq!(r.already_draining, already);
    }
    poll("edge-b to show draining", DEADLINE, || async {
        let n = get_ok(&c.origin.url("/v1/nodes/edge-b")).await?;
        Ok((n["state"] == "draining").then_some(()))
    })
    .await?;
    Ok(())
}
