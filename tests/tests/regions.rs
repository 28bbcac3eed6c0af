//! Regions and zones across real processes sharing one `redis-server`: an origin in `us-east`,
//! edges `eu-a` (`eu-west`/`eu-west-a`), `eu-b` (`eu-west`/`eu-west-b`) and `us-a`
//! (`us-east`/`us-east-a`).
//!
//! - A viewer hinting `eu-west` posted to the US edge is sent (307) to an edge of `eu-west`,
//!   with its query string; a real WHEP client follows the redirect and plays there.
//! - A geo load balancer's hint headers count only from `--trusted-proxies`, and go into the
//!   redirect's query string; a malformed hint is a 400.
//! - The relay tree pulls one copy per region: `eu-b`, asked for the room `eu-a` carries, pulls
//!   it from `eu-a`, not across to the origin; `us-a` pulls from the origin (its own region).
//!   The origin thus feeds one relay link per region, as the routing store and the status API
//!   (`/v1/rooms/{room}`) both show.
//! - `/v1/cluster` shows each node's region and zone.

use anyhow::{Context, Result};
use cascade_tests::{NodeProc, RedisProc, poll};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

/// Chrome's WHEP offer, posted as is: answered, though no peer connects behind it (the
/// session is kept for `--connect-timeout`), so an edge that takes it pulls the room.
const WHEP_OFFER: &str = include_str!("../../core/testdata/chrome-whep-offer.sdp");

fn node(
    redis: &RedisProc,
    binary: &str,
    name: &str,
    place: [&str; 2],
    extra: &[&str],
) -> Result<NodeProc> {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--lease-secs", "3"];
    args.extend(["--region", place[0], "--zone", place[1]]);
    // Offers without a peer behind them keep their sessions (and so the rooms they pulled)
    // for the whole test.
    args.extend(["--connect-timeout", "120"]);
    args.extend_from_slice(extra);
    NodeProc::start(binary, name, &args)
}

/// An HTTP client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn whep(
    node: &NodeProc,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<reqwest::Response> {
    let mut request = client()
        .post(node.url(path_and_query))
        .header("content-type", "application/sdp")
        .body(WHEP_OFFER);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    Ok(request.send().await?)
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Each edge carrying `room` and the node it pulls from, as Redis records it
/// (`room:{id}:links`: edge → `"{expiry}\n{upstream}"`).
async fn upstreams(redis: &RedisProc, room: &str) -> Result<BTreeMap<String, String>> {
    use redis::AsyncCommands;
    let mut con = redis.connection().await?;
    let links: BTreeMap<String, String> = con.hgetall(format!("cascade:room:{room}:links")).await?;
    Ok(links
        .into_iter()
        .map(|(edge, v)| (edge, v.split('\n').nth(1).unwrap_or("").to_owned()))
        .collect())
}

/// Packets `node` received for `room` so far, over all its tracks.
async fn packets_in(node: &NodeProc, room: &str) -> Result<u64> {
    Ok(node
        .room(room)
        .await?
        .and_then(|r| {
            r["tracks"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["packets_in"].as_u64()).sum())
        })
        .unwrap_or(0))
}

/// Waits until media keeps arriving at `node` for `room`.
async fn wait_media(node: &NodeProc, room: &str) -> Result<()> {
    let before = packets_in(node, room).await?;
    poll(
        &format!("{room} media at {}", node.name),
        DEADLINE,
        || async { Ok((packets_in(node, room).await? > before + 20).then_some(())) },
    )
    .await
}

/// A load generator run, killed when dropped.
struct LoadGen(Child);

impl Drop for LoadGen {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn viewers_are_placed_in_their_region_and_each_region_pulls_one_copy() -> Result<()> {
    let redis = RedisProc::start()?;
    let origin = node(
        &redis,
        "cascade-origin",
        "origin-1",
        ["us-east", "us-east-a"],
        &[],
    )?;
    let eu_a = node(
        &redis,
        "cascade-edge",
        "eu-a",
        ["eu-west", "eu-west-a"],
        &[],
    )?;
    let eu_b = node(
        &redis,
        "cascade-edge",
        "eu-b",
        ["eu-west", "eu-west-b"],
        &[],
    )?;
    // The US edge sits behind a geo load balancer on loopback: its hint headers count.
    let us_a = node(
        &redis,
        "cascade-edge",
        "us-a",
        ["us-east", "us-east-a"],
        &["--trusted-proxies", "127.0.0.1"],
    )?;
    let http = client();
    poll("four nodes with their regions", DEADLINE, || async {
        let c: Value = http
            .get(origin.url("/v1/cluster"))
            .send()
            .await?
            .json()
            .await?;
        let placed: BTreeMap<String, (Value, Value)> = c["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                (
                    n["id"].as_str().unwrap_or("").to_owned(),
                    (n["region"].clone(), n["zone"].clone()),
                )
            })
            .collect();
        let ok = placed.len() == 4
            && placed["eu-b"] == (Value::from("eu-west"), Value::from("eu-west-b"))
            && placed["origin-1"] == (Value::from("us-east"), Value::from("us-east-a"));
        Ok(ok.then_some(()))
    })
    .await?;

    // A real viewer in eu-west-a, sent to the US edge: redirected to eu-a, which pulls the
    // room from the origin (no edge of its region carries it yet).
    let json = std::env::temp_dir().join(format!("cascade-regions-{}.json", std::process::id()));
    let hinted = us_a.url("/?region=eu-west&zone=eu-west-a");
    let _media = LoadGen(
        Command::new(cascade_tests::bin("cascade-loadgen"))
            .args(["run", "--origin", &origin.url(""), "--edge", &hinted])
            .args(["--room", "room1", "--viewers", "1", "--duration", "120"])
            .args(["--video-kbps", "300", "--fps", "15", "--quiet", "--json"])
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning cascade-loadgen")?,
    );
    poll(
        "the viewer on eu-a, eu-a's link in Redis",
        DEADLINE,
        || async {
            let viewers = eu_a.status().await?["sessions"]["viewers"].as_u64();
            let links = upstreams(&redis, "room1").await?;
            let ok =
                viewers == Some(1) && links.get("eu-a").map(String::as_str) == Some("origin-1");
            Ok(ok.then_some(()))
        },
    )
    .await
    .inspect_err(|_| {
        for n in [&origin, &us_a, &eu_a] {
            eprintln!("--- {}:\n{}", n.name, n.log().join("\n"));
        }
    })?;
    wait_media(&eu_a, "room1").await?;
    assert_eq!(us_a.status().await?["sessions"]["viewers"], 0);
    assert!(us_a.room("room1").await?.is_none(), "us-a pulled room1");

    // The 307 itself: to the edge of the hinted region that carries the room, query kept.
    let r = whep(&us_a, "/whep/room1?layer=low&region=eu-west", &[]).await?;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        location(&r),
        format!("http://{}/whep/room1?layer=low&region=eu-west", eu_a.http)
    );
    // The balancer's headers, from a trusted proxy, count and go along in the query.
    let geo = [
        ("x-cascade-region", "eu-west"),
        ("x-cascade-zone", "eu-west-a"),
    ];
    let r = whep(&us_a, "/whep/room1", &geo).await?;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        location(&r),
        format!(
            "http://{}/whep/room1?region=eu-west&zone=eu-west-a",
            eu_a.http
        )
    );
    // A malformed hint is refused, from the query or a trusted proxy's header.
    let r = whep(&us_a, "/whep/room1?region=EU%20West", &[]).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = whep(&us_a, "/whep/room1", &[("x-cascade-zone", "-a")]).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // From any other peer the headers are ignored: eu-a carries the room and serves the
    // viewer itself instead of sending it to us-east.
    let r = whep(&eu_a, "/whep/room1", &[("x-cascade-region", "us-east")]).await?;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await?);

    // A viewer in eu-west-b on eu-b: eu-b is in its zone, so serves it, and pulls the room
    // from eu-a (its region's copy), not across regions from the origin.
    let r = whep(&eu_b, "/whep/room1?region=eu-west&zone=eu-west-b", &[]).await?;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await?);
    // A viewer in us-east on us-a: its region is the origin's, so us-a pulls from the origin.
    let r = whep(&us_a, "/whep/room1?region=us-east", &[]).await?;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await?);
    let links = poll("three relay links in Redis", DEADLINE, || async {
        let links = upstreams(&redis, "room1").await?;
        Ok((links.len() == 3).then_some(links))
    })
    .await?;
    println!("relay tree: {links:?}");
    assert_eq!(links["eu-a"], "origin-1");
    assert_eq!(links["eu-b"], "eu-a", "eu-b pulls its region's copy");
    assert_eq!(links["us-a"], "origin-1");
    let from_origin = links.values().filter(|u| *u == "origin-1").count();
    assert_eq!(from_origin, 2, "the origin feeds one link per region");
    // Media flows down both regions' trees.
    wait_media(&eu_b, "room1").await?;
    wait_media(&us_a, "room1").await?;

    // The status API shows the same tree.
    let room: Value = http
        .get(origin.url("/v1/rooms/room1"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tree: BTreeMap<String, String> = room["links"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("").to_owned();
            (s("edge"), s("upstream"))
        })
        .collect();
    assert_eq!(tree, links, "{room}");
    let _ = std::fs::remove_file(&json);
    Ok(())
}
