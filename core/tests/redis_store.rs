//! `RedisStore` against a real `redis-server`, one per test on its own port, and the same
//! behavioural checks run against `MemoryStore` so both implementations provably agree.
//!
//! The tests need `redis-server` (see `common`). Waits poll with deadlines; the only fixed
//! pauses are the poll intervals.

mod common;

use cascade_core::cluster::routing::redis::{BATCH, schema};
use cascade_core::cluster::routing::{
    Link, MemoryStore, NodeInfo, RedisOptions, RedisStore, Role, RoomClaim, RoutingError,
    RoutingResult, RoutingStore,
};
use common::{RedisServer, commands_processed, eventually, free_port, ids, link, node};
use std::future::Future;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(400);
/// The bound the brief sets for "fails fast" (the store's own timeout is 1 s).
const FAIL_FAST: Duration = Duration::from_secs(5);

/// Runs `op`, asserts it fails with `Unavailable` within [`FAIL_FAST`], and returns how long it
/// took.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    op: impl Future<Output = RoutingResult<T>>,
) -> Duration {
    let start = Instant::now();
    let result = op.await;
    let took = start.elapsed();
    assert!(
        matches!(result, Err(RoutingError::Unavailable(_))),
        "{what}: expected Unavailable, got {result:?}"
    );
    assert!(took < FAIL_FAST, "{what}: took {took:?}");
    took
}

// ---------------------------------------------------------------------------------------------
// The behaviour both stores must share.

/// Every routing behaviour the node relies on, through the trait only.
async fn behaviour(store: &dyn RoutingStore, name: &str) {
    let ctx = |what: &str| format!("[{name}] {what}");

    // Registry: heartbeat, list, read, refresh.
    assert!(store.nodes().await.unwrap().is_empty(), "{}", ctx("empty"));
    let mut a = node("a", Role::Origin);
    // A region and zone go into the entry and come back (b has none: both forms are read).
    a.region = Some("eu-west".into());
    a.zone = Some("eu-west-1a".into());
    let b = node("b", Role::Edge);
    store.heartbeat(&b, LONG).await.unwrap();
    store.heartbeat(&a, LONG).await.unwrap();
    assert_eq!(
        ids(&store.nodes().await.unwrap()),
        ["a", "b"],
        "{}",
        ctx("sorted")
    );
    let stored = store.node("a").await.unwrap().unwrap();
    let stamp = stored.heartbeat_unix_ms.expect("heartbeat time stamped");
    assert!(
        stamp.abs_diff(cascade_core::cluster::routing::unix_ms()) < 60_000,
        "{}",
        ctx("stamp")
    );
    assert_eq!(
        NodeInfo {
            heartbeat_unix_ms: None,
            ..stored
        },
        a,
        "{}",
        ctx("node")
    );
    assert_eq!(
        store.node("nobody").await.unwrap(),
        None,
        "{}",
        ctx("no node")
    );
    a.load = 7;
    store.heartbeat(&a, LONG).await.unwrap();
    let nodes = store.nodes().await.unwrap();
    assert_eq!(ids(&nodes), ["a", "b"], "{}", ctx("refresh adds no copy"));
    assert_eq!(nodes[0].load, 7, "{}", ctx("refresh updates"));

    // A room has one owner.
    let claim = store.claim_room("r1", "a", LONG).await.unwrap().unwrap();
    assert_eq!((claim.room.as_str(), claim.node_id.as_str()), ("r1", "a"));
    assert!(
        store.claim_room("r1", "b", LONG).await.unwrap().is_none(),
        "{}",
        ctx("exclusive")
    );
    assert!(
        store.claim_room("r1", "a", LONG).await.unwrap().is_none(),
        "{}",
        ctx("even to a")
    );
    assert_eq!(store.room_owner("r1").await.unwrap().as_deref(), Some("a"));
    assert_eq!(store.room_owner("r0").await.unwrap(), None);
    assert_eq!(
        store.rooms().await.unwrap(),
        [("r1".to_owned(), "a".to_owned())]
    );

    // Only the token renews or releases it.
    let forged = RoomClaim {
        token: "forged".into(),
        ..claim.clone()
    };
    assert!(
        !store.renew_room(&forged, LONG).await.unwrap(),
        "{}",
        ctx("forged renew")
    );
    assert!(
        !store.release_room(&forged).await.unwrap(),
        "{}",
        ctx("forged release")
    );
    assert_eq!(store.room_owner("r1").await.unwrap().as_deref(), Some("a"));
    assert!(
        store.renew_room(&claim, LONG).await.unwrap(),
        "{}",
        ctx("renew")
    );
    assert!(
        store.release_room(&claim).await.unwrap(),
        "{}",
        ctx("release")
    );
    assert_eq!(store.room_owner("r1").await.unwrap(), None);
    assert!(store.rooms().await.unwrap().is_empty());
    assert!(
        !store.renew_room(&claim, LONG).await.unwrap(),
        "{}",
        ctx("renew released")
    );
    assert!(
        !store.release_room(&claim).await.unwrap(),
        "{}",
        ctx("release twice")
    );
    let by_b = store.claim_room("r1", "b", LONG).await.unwrap().unwrap();
    assert_ne!(by_b.token, claim.token, "{}", ctx("fresh token"));
    assert!(
        !store.release_room(&claim).await.unwrap(),
        "{}",
        ctx("old token, new owner")
    );
    assert_eq!(store.room_owner("r1").await.unwrap().as_deref(), Some("b"));

    // Taking over a room from an owner found dead: only from that owner; the dead owner's
    // claim is void after it, and removing the dead node later leaves the room alone.
    let dead = store.claim_room("rt", "gone", LONG).await.unwrap().unwrap();
    assert!(
        store
            .take_over_room("rt", "someone-else", "c", LONG)
            .await
            .unwrap()
            .is_none(),
        "{}",
        ctx("take over only from the dead owner")
    );
    let taken = store
        .take_over_room("rt", "gone", "c", LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.room_owner("rt").await.unwrap().as_deref(), Some("c"));
    assert!(
        !store.renew_room(&dead, LONG).await.unwrap(),
        "{}",
        ctx("the dead owner's claim is void")
    );
    store.remove_node("gone").await.unwrap();
    assert_eq!(
        store.room_owner("rt").await.unwrap().as_deref(),
        Some("c"),
        "{}",
        ctx("removing the dead node keeps the room taken from it")
    );
    assert!(store.release_room(&taken).await.unwrap());
    let free = store
        .take_over_room("rt", "gone", "c", LONG)
        .await
        .unwrap()
        .expect("a free room can be taken");
    assert!(store.release_room(&free).await.unwrap());

    // Links: put, refresh, replace, list, remove.
    store.put_link(&link("r2", "e2", "a"), LONG).await.unwrap();
    store.put_link(&link("r2", "e1", "a"), LONG).await.unwrap();
    store.put_link(&link("r2", "e1", "a"), LONG).await.unwrap();
    assert_eq!(
        store.links("r2").await.unwrap(),
        [link("r2", "e1", "a"), link("r2", "e2", "a")],
        "{}",
        ctx("links sorted, no copies")
    );
    assert!(store.links("r-none").await.unwrap().is_empty());
    store.put_link(&link("r2", "e1", "e2"), LONG).await.unwrap();
    assert_eq!(
        store.links("r2").await.unwrap(),
        [link("r2", "e1", "e2"), link("r2", "e2", "a")],
        "{}",
        ctx("an edge has one upstream per room")
    );
    store.remove_link("r2", "e1").await.unwrap();
    store.remove_link("r2", "nobody").await.unwrap();
    assert_eq!(store.links("r2").await.unwrap(), [link("r2", "e2", "a")]);

    // Releasing a room drops its links.
    let r2 = store.claim_room("r2", "a", LONG).await.unwrap().unwrap();
    assert!(store.release_room(&r2).await.unwrap());
    assert!(
        store.links("r2").await.unwrap().is_empty(),
        "{}",
        ctx("release drops links")
    );

    // Removing a node removes its rooms and the links it is an edge or upstream of; not
    // another node's (`a2` shares a prefix with `a`).
    store
        .heartbeat(&node("a2", Role::Origin), LONG)
        .await
        .unwrap();
    store.claim_room("r3", "a", LONG).await.unwrap().unwrap();
    store.claim_room("r5", "a2", LONG).await.unwrap().unwrap();
    store.put_link(&link("r3", "e1", "a"), LONG).await.unwrap();
    store.put_link(&link("r3", "e2", "e1"), LONG).await.unwrap();
    store.put_link(&link("r4", "a", "b"), LONG).await.unwrap();
    store.put_link(&link("r5", "e1", "a2"), LONG).await.unwrap();
    store.remove_node("a").await.unwrap();
    assert_eq!(
        store.node("a").await.unwrap(),
        None,
        "{}",
        ctx("node removed")
    );
    assert_eq!(ids(&store.nodes().await.unwrap()), ["a2", "b"]);
    assert_eq!(
        store.room_owner("r3").await.unwrap(),
        None,
        "{}",
        ctx("its room")
    );
    assert_eq!(
        store.links("r3").await.unwrap(),
        [link("r3", "e2", "e1")],
        "{}",
        ctx("its links as upstream go, others stay")
    );
    assert!(
        store.links("r4").await.unwrap().is_empty(),
        "{}",
        ctx("its links as edge")
    );
    assert_eq!(store.room_owner("r5").await.unwrap().as_deref(), Some("a2"));
    assert_eq!(store.links("r5").await.unwrap(), [link("r5", "e1", "a2")]);
    assert_eq!(
        store.rooms().await.unwrap(),
        [
            ("r1".to_owned(), "b".to_owned()),
            ("r5".to_owned(), "a2".to_owned())
        ]
    );
    store.remove_node("nobody").await.unwrap();

    // Leases: what is not renewed goes; what is renewed stays.
    store
        .heartbeat(&node("brief", Role::Edge), SHORT)
        .await
        .unwrap();
    let lapsing = store
        .claim_room("r6", "brief", SHORT)
        .await
        .unwrap()
        .unwrap();
    let renewed = store
        .claim_room("r7", "brief", SHORT)
        .await
        .unwrap()
        .unwrap();
    assert!(store.renew_room(&renewed, LONG).await.unwrap());
    store
        .put_link(&link("r8", "brief", "b"), SHORT)
        .await
        .unwrap();
    store.put_link(&link("r8", "b", "a2"), LONG).await.unwrap();
    assert!(ids(&store.nodes().await.unwrap()).contains(&"brief"));
    assert_eq!(store.links("r8").await.unwrap().len(), 2);
    let took = eventually(
        SHORT + Duration::from_secs(3),
        &ctx("leases lapse"),
        || async {
            store.node("brief").await.unwrap().is_none()
                && !ids(&store.nodes().await.unwrap()).contains(&"brief")
                && store.room_owner("r6").await.unwrap().is_none()
                && store.links("r8").await.unwrap().len() == 1
        },
    )
    .await;
    eprintln!("[{name}] {SHORT:?} leases lapsed after {took:?}");
    assert!(
        !store.renew_room(&lapsing, LONG).await.unwrap(),
        "{}",
        ctx("lapsed claim")
    );
    assert_eq!(
        store.room_owner("r7").await.unwrap().as_deref(),
        Some("brief")
    );
    assert_eq!(store.links("r8").await.unwrap(), [link("r8", "b", "a2")]);
    assert_eq!(ids(&store.nodes().await.unwrap()), ["a2", "b"]);
    // A lapsed room can be claimed again, by anyone.
    assert!(store.claim_room("r6", "b", LONG).await.unwrap().is_some());
}

#[tokio::test]
async fn memory_and_redis_stores_agree() {
    let server = RedisServer::start();
    let redis = RedisStore::connect(&server.url(), "agree:").await.unwrap();
    let memory = MemoryStore::new();
    let stores: [(&dyn RoutingStore, &str); 2] = [(&memory, "memory"), (&redis, "redis")];
    for (store, name) in stores {
        behaviour(store, name).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Redis specifics.

#[tokio::test]
async fn a_node_that_stops_heartbeating_disappears_within_one_lease() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), schema::DEFAULT_PREFIX)
        .await
        .unwrap();
    let lease = Duration::from_millis(500);
    let n = node("n", Role::Edge);
    // Heartbeats every 100 ms keep it alive across several leases.
    let start = Instant::now();
    while start.elapsed() < lease * 3 {
        store.heartbeat(&n, lease).await.unwrap();
        assert_eq!(ids(&store.nodes().await.unwrap()), ["n"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.heartbeat(&n, lease).await.unwrap();
    let last = Instant::now();
    eventually(lease + Duration::from_secs(2), "node gone", || async {
        store.node("n").await.unwrap().is_none() && store.nodes().await.unwrap().is_empty()
    })
    .await;
    let gone_after = last.elapsed();
    eprintln!("a {lease:?} lease: gone {gone_after:?} after the last heartbeat");
    assert!(
        gone_after >= lease - Duration::from_millis(50),
        "gone early: {gone_after:?}"
    );
}

#[tokio::test]
async fn every_key_has_a_ttl_and_nothing_is_left_once_leases_lapse() {
    let server = RedisServer::start();
    let prefix = "ttl:";
    let store = RedisStore::connect(&server.url(), prefix).await.unwrap();
    let lease = Duration::from_millis(600);
    store
        .heartbeat(&node("o", Role::Origin), lease)
        .await
        .unwrap();
    store
        .heartbeat(&node("e", Role::Edge), lease)
        .await
        .unwrap();
    let claim = store.claim_room("r", "o", lease).await.unwrap().unwrap();
    assert!(store.renew_room(&claim, lease).await.unwrap());
    let gone = store.claim_room("q", "o", lease).await.unwrap().unwrap();
    store.put_link(&link("r", "e", "o"), lease).await.unwrap();
    store.put_link(&link("q", "e", "o"), lease).await.unwrap();
    assert!(store.release_room(&gone).await.unwrap());
    store.remove_link("r", "nobody").await.unwrap();

    let mut raw = server.raw();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut raw)
        .unwrap();
    assert!(keys.len() >= 7, "{keys:?}");
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut raw).unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    let took = eventually(lease + Duration::from_secs(3), "all keys expire", || {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut raw)
            .unwrap();
        async move { keys.is_empty() }
    })
    .await;
    eprintln!("{} keys, all gone {took:?} after the check", keys.len());
}

#[tokio::test]
async fn prefixes_keep_clusters_apart() {
    let server = RedisServer::start();
    let one = RedisStore::connect(&server.url(), "one:").await.unwrap();
    let two = RedisStore::connect(&server.url(), "two:").await.unwrap();
    one.heartbeat(&node("n", Role::Origin), LONG).await.unwrap();
    one.claim_room("r", "n", LONG).await.unwrap().unwrap();
    assert!(two.nodes().await.unwrap().is_empty());
    assert!(two.room_owner("r").await.unwrap().is_none());
    let theirs = two.claim_room("r", "m", LONG).await.unwrap().unwrap();
    two.remove_node("n").await.unwrap();
    assert_eq!(one.room_owner("r").await.unwrap().as_deref(), Some("n"));
    assert_eq!(two.room_owner("r").await.unwrap().as_deref(), Some("m"));
    assert!(two.release_room(&theirs).await.unwrap());
    assert_eq!(one.room_owner("r").await.unwrap().as_deref(), Some("n"));
}

#[tokio::test]
async fn garbage_in_redis_is_reported_as_corrupt() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), "g:").await.unwrap();
    let mut raw = server.raw();
    let mut set = |key: &str, value: &[u8]| {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query(&mut raw)
            .unwrap();
    };
    set("g:node:x:info", b"{not json");
    set("g:node:y:info", b"\xff\xfe");
    set("g:room:r:owner", b"no token here");
    set("g:rooms", b"a string where a sorted set belongs");
    assert_corrupt(store.node("x").await);
    assert_corrupt(store.node("y").await);
    assert_corrupt(store.room_owner("r").await);
    assert_corrupt(store.claim_room("s", "n", LONG).await);
    assert_corrupt(store.rooms().await);

    let _: () = redis::cmd("HSET")
        .arg("g:room:l:links")
        .arg("e")
        .arg("soon\nup")
        .query(&mut raw)
        .unwrap();
    assert_corrupt(store.links("l").await);

    // A live member whose info is garbage spoils the listing, not the process.
    let _: () = redis::cmd("ZADD")
        .arg("g:nodes")
        .arg(u64::MAX / 4)
        .arg("x")
        .query(&mut raw)
        .unwrap();
    assert_corrupt(store.nodes().await);
}

/// A node's renewals and link refreshes of one heartbeat, as batches: the same answers as one
/// by one, in both stores; on Redis one script call per [`BATCH`] claims or links instead of
/// one per room, at a fraction of the server time (printed).
#[tokio::test]
async fn batched_renewals_and_links_answer_as_one_by_one_in_a_few_calls() {
    let server = RedisServer::start();
    let redis = RedisStore::connect(&server.url(), "batch:").await.unwrap();
    let memory = MemoryStore::new();
    let stores: [(&dyn RoutingStore, &str); 2] = [(&memory, "memory"), (&redis, "redis")];
    for (store, name) in stores {
        let claim = |room: &'static str, owner: &'static str, lease| async move {
            store.claim_room(room, owner, lease).await.unwrap().unwrap()
        };
        let (a0, a1, a2) = (
            claim("r0", "a", SHORT).await,
            claim("r1", "a", SHORT).await,
            claim("r2", "a", SHORT).await,
        );
        let b3 = claim("r3", "b", SHORT).await;
        let unrenewed = claim("r4", "a", SHORT).await;
        assert!(store.release_room(&a1).await.unwrap());
        let batch = [a0.clone(), a1, b3, a2];
        assert_eq!(
            store.renew_rooms(&batch, LONG).await.unwrap(),
            [true, false, true, true],
            "[{name}]"
        );
        assert!(store.renew_rooms(&[], LONG).await.unwrap().is_empty());
        // Renewed for LONG: still owned once the claim left alone has lapsed.
        eventually(SHORT * 10, &format!("[{name}] r4 lapses"), || async {
            store.room_owner("r4").await.unwrap().is_none()
        })
        .await;
        assert!(!store.renew_room(&unrenewed, LONG).await.unwrap());
        for (room, owner) in [("r0", "a"), ("r2", "a"), ("r3", "b")] {
            let got = store.room_owner(room).await.unwrap();
            assert_eq!(got.as_deref(), Some(owner), "[{name}] {room}");
        }
        assert!(store.room_owner("r1").await.unwrap().is_none());

        let links = [
            link("r0", "e", "a"),
            link("r2", "e", "a"),
            link("r3", "e2", "b"),
        ];
        store.put_links(&links, LONG).await.unwrap();
        store.put_links(&[], LONG).await.unwrap();
        assert_eq!(store.links("r0").await.unwrap(), [links[0].clone()]);
        // The batch wrote the indices `remove_node` follows.
        store.remove_node("e").await.unwrap();
        assert!(store.links("r0").await.unwrap().is_empty(), "[{name}]");
        assert_eq!(store.links("r3").await.unwrap(), [links[2].clone()]);
        store.remove_node("a").await.unwrap();
        assert!(store.room_owner("r0").await.unwrap().is_none(), "[{name}]");
        assert_eq!(store.room_owner("r3").await.unwrap().as_deref(), Some("b"));
    }

    // 1,200 rooms of one node: one by one, then in batches of BATCH.
    const ROOMS: usize = 1_200;
    let mut claims = Vec::with_capacity(ROOMS);
    for i in 0..ROOMS {
        let room = format!("big-{i:04}");
        claims.push(redis.claim_room(&room, "big", LONG).await.unwrap().unwrap());
    }
    let links: Vec<Link> = (0..ROOMS)
        .map(|i| link(&format!("big-{i:04}"), "edge", "big"))
        .collect();
    let mut raw = server.raw();
    let calls = ROOMS.div_ceil(BATCH);
    reset_stats(&mut raw);
    for claim in &claims {
        assert!(redis.renew_room(claim, LONG).await.unwrap());
    }
    let one_by_one = evalsha_stats(&mut raw);
    reset_stats(&mut raw);
    let before = commands_processed(&mut raw);
    let renewed = redis.renew_rooms(&claims, LONG).await.unwrap();
    let renewal_commands = commands_processed(&mut raw) - before;
    let batched = evalsha_stats(&mut raw);
    assert_eq!(renewed, vec![true; ROOMS]);
    assert!(batched.starts_with(&format!("calls={calls},")), "{batched}");
    reset_stats(&mut raw);
    for link in &links {
        redis.put_link(link, LONG).await.unwrap();
    }
    let links_one_by_one = evalsha_stats(&mut raw);
    // A refresh, as every heartbeat after the first writes them.
    redis.put_links(&links, LONG).await.unwrap();
    reset_stats(&mut raw);
    let before = commands_processed(&mut raw);
    redis.put_links(&links, LONG).await.unwrap();
    let link_commands = commands_processed(&mut raw) - before;
    let links_batched = evalsha_stats(&mut raw);
    assert!(
        links_batched.starts_with(&format!("calls={calls},")),
        "{links_batched}"
    );
    assert_eq!(redis.links("big-0042").await.unwrap(), [links[42].clone()]);
    let per = |n: u64| n as f64 / ROOMS as f64;
    eprintln!(
        "{ROOMS} renewals one by one: {one_by_one}; batched: {batched}, {:.2} commands each\n\
         {ROOMS} links one by one: {links_one_by_one}; batched: {links_batched}, {:.2} commands \
         each",
        per(renewal_commands),
        per(link_commands)
    );
    // A renewal is a PEXPIRE (the owners read by one MGET per batch); a link refresh an HSET
    // and a PEXPIRE GT (Redis >= 7; PTTL and PEXPIRE before), the indices once per batch.
    assert!(per(renewal_commands) < 1.1, "{renewal_commands}");
    let per_link = if redis_major(&mut raw) >= 7 { 2.1 } else { 3.1 };
    assert!(per(link_commands) < per_link, "{link_commands}");
}

/// The server's major version, from `INFO server`.
fn redis_major(raw: &mut redis::Connection) -> u32 {
    let info: String = redis::cmd("INFO").arg("server").query(raw).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .and_then(|v| v.split('.').next()?.trim().parse().ok())
        .unwrap_or(0)
}

fn reset_stats(raw: &mut redis::Connection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(raw).unwrap();
}

/// Redis's own account of the `EVALSHA` calls since the last reset.
fn evalsha_stats(raw: &mut redis::Connection) -> String {
    let stats: String = redis::cmd("INFO").arg("commandstats").query(raw).unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
        .unwrap_or("no EVALSHA")
        .trim()
        .to_owned()
}

#[track_caller]
fn assert_corrupt<T: std::fmt::Debug>(result: RoutingResult<T>) {
    assert!(
        matches!(result, Err(RoutingError::Corrupt(_))),
        "expected Corrupt, got {result:?}"
    );
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let start = Instant::now();
    let result = RedisStore::connect(&url, "x:").await;
    let took = start.elapsed();
    assert!(
        matches!(result, Err(RoutingError::Unavailable(_))),
        "{result:?}"
    );
    assert!(took < FAIL_FAST, "{took:?}");
    eprintln!("connect to a closed port failed in {took:?}");
    assert!(matches!(
        RedisStore::connect("not a url", "x:").await,
        Err(RoutingError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_lazy_store_works_once_redis_appears() {
    let port = free_port();
    let store = RedisStore::lazy(&format!("redis://127.0.0.1:{port}/"), "lazy:").unwrap();
    let took = fails_fast(
        "heartbeat before Redis",
        store.heartbeat(&node("n", Role::Edge), LONG),
    )
    .await;
    eprintln!("lazy store, no Redis: failed in {took:?}");
    let _server = RedisServer::start_on(port);
    let took = eventually(Duration::from_secs(20), "lazy store connects", || async {
        store.heartbeat(&node("n", Role::Edge), LONG).await.is_ok()
    })
    .await;
    eprintln!("lazy store worked {took:?} after Redis started");
    assert_eq!(ids(&store.nodes().await.unwrap()), ["n"]);
}

/// Every operation of the trait once, each expected to fail fast; returns the slowest.
async fn every_operation_fails_fast(store: &RedisStore, claim: &RoomClaim) -> Duration {
    let n = node("n", Role::Origin);
    let l = link("r", "e", "n");
    [
        fails_fast("heartbeat", store.heartbeat(&n, LONG)).await,
        fails_fast("nodes", store.nodes()).await,
        fails_fast("node", store.node("n")).await,
        fails_fast("claim_room", store.claim_room("q", "n", LONG)).await,
        fails_fast("renew_room", store.renew_room(claim, LONG)).await,
        fails_fast("room_owner", store.room_owner("r")).await,
        fails_fast("rooms", store.rooms()).await,
        fails_fast("put_link", store.put_link(&l, LONG)).await,
        fails_fast("links", store.links("r")).await,
        fails_fast("remove_link", store.remove_link("r", "e")).await,
        fails_fast("release_room", store.release_room(claim)).await,
        fails_fast("remove_node", store.remove_node("n")).await,
    ]
    .into_iter()
    .max()
    .unwrap()
}

#[tokio::test]
async fn a_stopped_redis_fails_fast_and_a_restarted_one_works_again() {
    let mut server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), "restart:")
        .await
        .unwrap();
    store
        .heartbeat(&node("n", Role::Origin), LONG)
        .await
        .unwrap();
    let claim = store.claim_room("r", "n", LONG).await.unwrap().unwrap();

    server.stop();
    let slowest = every_operation_fails_fast(&store, &claim).await;
    eprintln!("Redis killed: slowest failure {slowest:?}");
    // Still failing fast a while later, once reconnection backoff has grown.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let slowest = every_operation_fails_fast(&store, &claim).await;
    eprintln!("Redis still down: slowest failure {slowest:?}");

    server.restart();
    let took = eventually(
        Duration::from_secs(20),
        "same store works again",
        || async {
            store
                .heartbeat(&node("n", Role::Origin), LONG)
                .await
                .is_ok()
        },
    )
    .await;
    eprintln!("restarted Redis: store worked again after {took:?}");
    // The new Redis is empty (no persistence): scripts reload, state is written afresh.
    assert_eq!(ids(&store.nodes().await.unwrap()), ["n"]);
    assert!(!store.renew_room(&claim, LONG).await.unwrap());
    let claim = store.claim_room("r", "n", LONG).await.unwrap().unwrap();
    assert!(store.renew_room(&claim, LONG).await.unwrap());
}

#[tokio::test]
async fn a_hung_redis_fails_fast_and_recovers() {
    let server = RedisServer::start();
    let opts = RedisOptions::default();
    let store = RedisStore::connect_with(&server.url(), "hung:", opts.clone())
        .await
        .unwrap();
    store
        .heartbeat(&node("n", Role::Origin), LONG)
        .await
        .unwrap();
    let claim = store.claim_room("r", "n", LONG).await.unwrap().unwrap();

    server.signal("-STOP");
    let slowest = every_operation_fails_fast(&store, &claim).await;
    eprintln!("Redis stopped (SIGSTOP): slowest failure {slowest:?}");
    assert!(
        slowest >= opts.op_timeout / 2,
        "a hung Redis answered? {slowest:?}"
    );
    server.signal("-CONT");
    let took = eventually(Duration::from_secs(20), "works after SIGCONT", || async {
        store.room_owner("r").await.is_ok()
    })
    .await;
    eprintln!("Redis resumed: store worked again after {took:?}");
    assert_eq!(store.room_owner("r").await.unwrap().as_deref(), Some("n"));
    assert!(store.renew_room(&claim, LONG).await.unwrap());
}

/// The brief's scale: 10,000 rooms claimed, listed and renewed once, with Redis's own count of
/// the time the scripts took.
#[tokio::test]
async fn ten_thousand_rooms() {
    use futures::StreamExt;
    const ROOMS: usize = 10_000;
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), "scale:").await.unwrap();
    let store = &store;
    let start = Instant::now();
    let claims: Vec<RoomClaim> = futures::stream::iter(0..ROOMS)
        .map(|i| async move {
            let owner = format!("origin-{}", i % 10);
            store
                .claim_room(&format!("room-{i:05}"), &owner, LONG)
                .await
                .unwrap()
                .unwrap()
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let claimed_in = start.elapsed();
    let start = Instant::now();
    let rooms = store.rooms().await.unwrap();
    let listed_in = start.elapsed();
    assert_eq!(rooms.len(), ROOMS);
    assert_eq!(rooms[0], ("room-00000".to_owned(), "origin-0".to_owned()));

    let mut raw = server.raw();
    reset_stats(&mut raw);
    let start = Instant::now();
    let renewed = futures::stream::iter(&claims)
        .map(|c| async move { store.renew_room(c, LONG).await.unwrap() })
        .buffer_unordered(64)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let renewed_in = start.elapsed();
    assert_eq!(renewed, ROOMS);
    let renew_stats = evalsha_stats(&mut raw);

    reset_stats(&mut raw);
    let start = Instant::now();
    futures::stream::iter(0..ROOMS)
        .map(|i| async move {
            let l = link(
                &format!("room-{i:05}"),
                &format!("edge-{}", i % 90),
                "origin-0",
            );
            store.put_link(&l, LONG).await.unwrap()
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    let linked_in = start.elapsed();
    let link_stats = evalsha_stats(&mut raw);
    eprintln!(
        "{ROOMS} rooms: claimed in {claimed_in:?}, listed in {listed_in:?}; renewed in \
         {renewed_in:?} ({:.0}/s from one debug-build client; Redis: {renew_stats}); \
         {ROOMS} links put in {linked_in:?} (Redis: {link_stats})",
        ROOMS as f64 / renewed_in.as_secs_f64()
    );
    assert_eq!(
        store.links("room-00042").await.unwrap(),
        [link("room-00042", "edge-42", "origin-0")]
    );

    store.remove_node("origin-3").await.unwrap();
    assert_eq!(store.rooms().await.unwrap().len(), ROOMS - ROOMS / 10);
}
