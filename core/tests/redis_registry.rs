//! The registry as placement reads it (`RoutingStore::nodes_for`), on a real `redis-server`:
//! the same answers as the in-memory store's selection over every node, at a cost that does
//! not grow with the number of nodes, and no dead node in them.

mod common;

use cascade_core::cluster::locality::Locality;
use cascade_core::cluster::routing::{
    MemoryStore, NodeInfo, NodeQuery, RedisStore, Role, RoutingStore,
};
use common::{RedisServer, commands_processed, eventually, ids, node};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn placed(id: &str, role: Role, load: u32, region: Option<&str>, zone: Option<&str>) -> NodeInfo {
    NodeInfo {
        load,
        region: region.map(Into::into),
        zone: zone.map(Into::into),
        ..node(id, role)
    }
}

fn place(region: Option<&str>, zone: Option<&str>) -> Locality {
    Locality {
        region: region.map(Into::into),
        zone: zone.map(Into::into),
    }
}

fn query(role: Role, places: Vec<Locality>, least_loaded: usize, ids: &[&str]) -> NodeQuery {
    NodeQuery {
        role: Some(role),
        places,
        least_loaded,
        ids: ids.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn the_least_loaded_per_place_and_the_named_nodes_as_the_memory_store_selects_them() {
    let server = RedisServer::start();
    let redis = RedisStore::connect(&server.url(), "q:").await.unwrap();
    let memory = MemoryStore::new();
    let stores: [&dyn RoutingStore; 2] = [&memory, &redis];
    let mut full = placed("e-full", Role::Edge, 10, Some("eu"), Some("a"));
    full.capacity = 10;
    let mut draining = placed("e-drain", Role::Edge, 0, Some("eu"), Some("a"));
    draining.draining = true;
    let nodes = [
        placed("e1", Role::Edge, 5, Some("eu"), Some("a")),
        placed("e2", Role::Edge, 1, Some("eu"), Some("b")),
        placed("e3", Role::Edge, 1, Some("us"), None),
        placed("e4", Role::Edge, 0, None, None),
        placed("e5", Role::Edge, 2, Some("eu"), Some("a")),
        placed("e6", Role::Edge, 3, None, Some("a")),
        placed("o1", Role::Origin, 4, Some("eu"), Some("a")),
        placed("o2", Role::Origin, 2, None, None),
        full,
        draining,
    ];
    let queries = [
        query(Role::Edge, vec![place(Some("eu"), Some("a"))], 1, &[]),
        query(Role::Edge, vec![place(Some("eu"), Some("a"))], 5, &[]),
        query(
            Role::Edge,
            vec![
                place(Some("eu"), Some("a")),
                place(Some("eu"), None),
                Locality::default(),
            ],
            2,
            &["e-full", "e-drain", "o1", "nobody"],
        ),
        query(Role::Edge, vec![place(None, Some("a"))], 3, &[]),
        query(Role::Origin, vec![Locality::default()], 3, &[]),
        NodeQuery {
            ids: vec!["e3".into(), "e1".into()],
            ..NodeQuery::default()
        },
    ];
    let answers = async |step: &str| {
        let mut all = Vec::new();
        for q in &queries {
            let want = memory.nodes_for(q).await.unwrap();
            let got = redis.nodes_for(q).await.unwrap();
            assert_eq!(ids(&got), ids(&want), "{step}: {q:?}");
            all.push(ids(&got).join(","));
        }
        all
    };
    for store in stores {
        for n in &nodes {
            store.heartbeat(n, LONG).await.unwrap();
        }
    }
    let first = answers("registered").await;
    assert_eq!(first[0], "e5", "2/10 before 5/10");
    assert_eq!(
        first[2], "e-drain,e-full,e1,e2,e4,e5,o1",
        "named ones whatever their state"
    );
    assert_eq!(first[5], "e1,e3");

    // Loads change, a node starts draining, one frees up, one moves, one leaves.
    let mut moved = nodes.to_vec();
    moved[0].load = 0; // e1
    moved[4].draining = true; // e5
    moved[8].load = 3; // e-full has room again
    moved[1].region = Some("us".into()); // e2 restarted elsewhere
    for store in stores {
        for n in &moved {
            store.heartbeat(n, LONG).await.unwrap();
        }
        store.remove_node("e4").await.unwrap();
    }
    let second = answers("changed").await;
    assert_eq!(second[0], "e1");
    assert!(
        !second[2].contains("e4") && !second[2].contains("e5"),
        "{second:?}"
    );
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_dead_node_leaves_the_load_lists_within_a_lease() {
    let server = RedisServer::start();
    let redis = RedisStore::connect(&server.url(), "d:").await.unwrap();
    let lease = Duration::from_millis(500);
    let anywhere = query(Role::Edge, vec![Locality::default()], 3, &["dead"]);
    redis
        .heartbeat(&node("dead", Role::Edge), lease)
        .await
        .unwrap();
    redis
        .heartbeat(&placed("busy", Role::Edge, 9, None, None), LONG)
        .await
        .unwrap();
    assert_eq!(
        ids(&redis.nodes_for(&anywhere).await.unwrap()),
        ["busy", "dead"]
    );
    // It stops heartbeating: gone from the answers (by name too) within its lease.
    eventually(lease + Duration::from_secs(2), "dead node gone", || async {
        ids(&redis.nodes_for(&anywhere).await.unwrap()) == ["busy"]
    })
    .await;
    let mut raw = server.raw();
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg("d:nodes:load:edge::")
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(members, ["busy"], "the reader removed it from the list");
}

/// A placement's read costs the same few commands with 10 nodes as with 2,000: the registry
/// is not read whole.
#[tokio::test]
async fn a_placement_read_does_not_grow_with_the_nodes() {
    let server = RedisServer::start();
    let redis = RedisStore::connect(&server.url(), "n:").await.unwrap();
    let mut raw = server.raw();
    let viewer = query(
        Role::Edge,
        vec![
            place(Some("r1"), Some("z1")),
            place(Some("r1"), None),
            Locality::default(),
        ],
        3,
        &["e-00007", "e-00008"],
    );
    let mut costs = Vec::new();
    let mut registered = 0;
    for total in [10, 2_000] {
        while registered < total {
            let i = registered;
            let region = format!("r{}", i % 4);
            let zone = format!("z{}", i % 3);
            let n = placed(
                &format!("e-{i:05}"),
                Role::Edge,
                (i % 7) as u32,
                Some(&region),
                Some(&zone),
            );
            redis.heartbeat(&n, LONG).await.unwrap();
            registered += 1;
        }
        let before = commands_processed(&mut raw);
        let got = redis.nodes_for(&viewer).await.unwrap();
        let cost = commands_processed(&mut raw) - before;
        assert!(got.len() <= 3 * 3 + 2, "{}", got.len());
        assert!(ids(&got).contains(&"e-00007"));
        eprintln!("{total} nodes: {} nodes read, {cost} commands", got.len());
        costs.push(cost);
    }
    assert!(costs[1] <= costs[0] + 2, "{costs:?}");
    assert!(costs[1] < 20, "{costs:?}");
}
