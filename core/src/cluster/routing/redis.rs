//! [`RedisStore`]: the [`RoutingStore`] a cluster shares through one Redis server.
//!
//! Every entry is a lease measured on the Redis server's clock (`PX` on keys, `TIME` inside the
//! scripts that score sorted sets), so the nodes' clocks never have to agree. Every key carries
//! a TTL at least as long as the longest lease it holds, so a cluster that dies without a word
//! leaves nothing in Redis once its last lease has run out. Writes that touch more than one key
//! run as Lua scripts ([`redis::Script`]), so each is atomic and costs one round trip.
//!
//! # Key schema
//!
//! Written down once, in [`schema`]; every key is `{prefix}{pattern}` with the store's prefix
//! (default [`schema::DEFAULT_PREFIX`], `cascade:`), so tests and several clusters can share a
//! Redis. `{id}` is a node id or room id, verbatim.
//!
//! | key | type | TTL | written by |
//! |---|---|---|---|
//! | `nodes` | ZSET node id → lease expiry (ms) | ≥ longest node lease; members pruned by `heartbeat` | `heartbeat`, `remove_node` |
//! | `node:{id}:info` | STRING, [`NodeInfo`] as JSON, stamped with the write time | the node's lease (`SET PX`) | `heartbeat`, `remove_node` |
//! | `nodes:load:{role}:{region}:{zone}` | ZSET node id → `load / capacity`, the nodes of a role with room in a place (empty region or zone: any) | ≥ longest node lease; dead members removed by heartbeats' pruning and by readers | `heartbeat`, `remove_node`, `nodes_for` (removes a member whose info is gone) |
//! | `nodes:places` | HASH node id → the load lists it is in | ≥ longest node lease | `heartbeat`, `remove_node` |
//! | `node:{id}:rooms` | SET of room ids the node claimed (index for `remove_node`) | ≥ longest claim lease | `claim_room`, `renew_room`/`renew_rooms`, `release_room`, `remove_node` |
//! | `node:{id}:links` | SET of room ids where the node is a link's edge or upstream (index for `remove_node`) | ≥ longest link lease | `put_link`/`put_links`, `remove_node` |
//! | `rooms` | ZSET room id → claim expiry (ms) | ≥ longest claim lease; members pruned by `claim_room` | `claim_room`, `renew_room`/`renew_rooms`, `release_room`, `remove_node` |
//! | `room:{id}:owner` | STRING `"{node}\n{token}"` | the claim's lease (`SET NX PX`, compare-and-`PEXPIRE`) | `claim_room`, `take_over_room` (compare-owner-and-set, when the owner is dead), `renew_room`/`renew_rooms`, `release_room` (compare-and-delete), `remove_node` |
//! | `room:{id}:links` | HASH edge id → `"{expiry ms}\n{upstream id}"` | ≥ longest link lease; each field carries its own expiry | `put_link`/`put_links`, `remove_link`, `release_room`, `remove_node` |
//!
//! The writer is always the node the entry is about (its heartbeat, its claims, its links),
//! except `take_over_room`: an origin that found a room's owner dead (its registration, its
//! lease, expired) replaces that owner's claim before the claim expires too.
//! The indices
//! (`node:{id}:rooms`, `node:{id}:links`, the two ZSETs) may hold stale members; readers check
//! the entry itself, so a stale member costs nothing but a few bytes until its TTL.
//!
//! Sharing one Redis between clusters (or tests): choose prefixes none of which starts another.
//! On Redis Cluster the scripts need all keys in one slot: use a hash-tagged prefix such as
//! `{cascade}:` (not tested here).
//!
//! # Cost (heartbeat every 3.3 s, lease 10 s)
//!
//! What [`crate::cluster::node`] calls per node per heartbeat: one `heartbeat`, one
//! `renew_rooms` for all the claims it holds, one `put_links` for all the relay links it pulls
//! (each split into script calls of at most [`BATCH`] entries). Each call is one `EVALSHA`
//! running O(1) or O(log n) commands per entry; no periodic path uses `KEYS`, `SCAN` or any
//! command linear in the cluster's size. With N nodes, R rooms and L links:
//!
//! | call | `EVALSHA` per second | commands inside |
//! |---|---|---|
//! | `heartbeat` | N / 3.3 s | `TIME`, `ZRANGEBYSCORE` (expired nodes, pruned), `SET PX`, `ZADD`, `HGET`, and a `ZADD` per place it is in (1–4), each key's TTL extended: about 10 |
//! | `renew_rooms` | origins / 3.3 s (one per 500 claims) | per claim a `PEXPIRE`; per call `TIME`, one `MGET` of the owners, one `ZADD` and one `SADD` of all members, 2 TTL extensions |
//! | `put_links` | edges / 3.3 s (one per 500 links) | per link `HSET` and `PEXPIRE GT`; per call `TIME`, per node index one `SADD` of its rooms and one TTL extension |
//! | `nodes_for` (a join's placement, a relay link's choice of upstream) | per join that may not stay here and needs the least-loaded lists (this node full or draining, or a viewer hinted elsewhere) | per place asked (1–3) `ZRANGE` of 3 and `MGET` of them; one `MGET` of the nodes named (the room's carriers, its owner): O(log N). Only nodes by name (an edge with room placing a viewer, a relay link's upstream): one plain `MGET`, no script |
//! | `links`, `room_owner` (same) | same | `HGETALL` of the room's links; `GET` owner |
//!
//! A TTL extension is one `PEXPIRE GT` on Redis ≥ 7 when the TTL ran down since the last write
//! (the periodic case); `PTTL` and `PEXPIRE` on older servers. So the round trips grow with
//! nodes and joins, the commands with rooms and links: about (R + 2·L) / 3.3 s, where it was
//! (2·R + 5·L) / 3.3 s with a `GET` per renewal and a `PTTL` and two `SADD` per link. A join
//! reads a few nodes, not the registry: at 1,000 nodes reading every entry per join (or once a
//! second per node) was what broke first. Measured with `cascade-loadgen cluster-sim`
//! (BENCHMARKS.md, "Control plane at scale"). One batch of 500 renewals holds Redis for about
//! a millisecond. `rooms()` and `nodes()` are O(R) and O(N) reads (one script each, chunked
//! `MGET`), meant for status pages, not loops.
//!
//! # Connection and failure
//!
//! One [`ConnectionManager`] (a multiplexed connection that reconnects by itself) per store.
//! Every operation is bounded by [`RedisOptions::op_timeout`] (default 1 s), waiting for a
//! reconnection included, so a dead or hung Redis makes each call fail with
//! [`RoutingError::Unavailable`] within that time instead of blocking the heartbeat loop.
//! After a dropped connection the manager reconnects in the background with backoff (capped by
//! [`RedisOptions::reconnect_max_delay`]); a connection that stops answering without being
//! dropped (a hung server, a black-holed route) is replaced after
//! [`REPLACE_AFTER_TIMEOUTS`] timeouts in a row. Either way the store works again as soon as
//! Redis does, without being rebuilt. Lua scripts are reloaded automatically (`NOSCRIPT`)
//! after a restart emptied Redis's script cache.
//!
//! With a `redis+sentinel://` URL the store asks the sentinels for the master's address
//! before its first operation and again after any connection failure, timeout or `READONLY`
//! answer (a failover demoted or killed the master it used), so a promoted replica serves the
//! cluster without nodes restarting; meanwhile operations fail as through an outage, and
//! sessions continue. See [`conn`] and [`target`] for the URL forms.
//!
//! Errors: connection, timeout and server-side refusals (`LOADING`, `READONLY`, `OOM`, …) are
//! [`RoutingError::Unavailable`]; an answer we cannot read (a key of the wrong type, bytes that
//! are not our encoding) is [`RoutingError::Corrupt`].
//!
//! Needs Redis ≥ 5.0 (scripts that call `TIME` before writing rely on effect replication) or
//! Valkey.

use super::query::{has_room, load_score, places_of};
use super::{
    Link, NodeInfo, NodeQuery, Role, RoomClaim, RoutingError, RoutingResult, RoutingStore,
};
use crate::cluster::locality::Locality;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, Script};
use conn::Conn;
use scripts::Scripts;
use std::future::Future;
use std::time::Duration;

mod conn;
mod scripts;
pub mod target;

/// The Redis keys of the routing store, each appended to the store's prefix. `{id}` stands for
/// a node id or a room id, verbatim. The table in the [module docs](super) gives each
/// key's type, TTL and writer; the comments here say the same, next to the name the code uses.
pub mod schema {
    /// The prefix when none is given.
    pub const DEFAULT_PREFIX: &str = "cascade:";

    /// ZSET: member = node id, score = its lease expiry in ms on Redis's clock.
    /// TTL ≥ the longest node lease. Written by `heartbeat` (`ZADD`, and `ZREMRANGEBYSCORE` to
    /// prune expired members) and `remove_node` (`ZREM`). Listing reads members scored after now.
    pub const NODES: &str = "nodes";
    /// STRING: the node's [`NodeInfo`](crate::cluster::routing::NodeInfo) as JSON, its
    /// `heartbeat_unix_ms` stamped by the writer's clock at the write. TTL = the node's lease
    /// (`SET PX`). Written by the node's `heartbeat`; deleted by `remove_node`.
    pub const NODE_INFO: &str = "node:{id}:info";
    /// ZSET, one per role and place (`{id}` = `{role}:{region}:{zone}`, an empty region or
    /// zone meaning any: `edge::`, `edge:eu-west:`, `edge::eu-west-1a`,
    /// `edge:eu-west:eu-west-1a`): member = node id, score = `load / capacity`, of the live
    /// nodes with room (not draining, below capacity). TTL ≥ the longest node lease. Written by
    /// the node's `heartbeat` (`ZADD`, or `ZREM` when it has no room), `remove_node` and the
    /// heartbeats' pruning of expired nodes (`ZREM`); `nodes_for` reads the first few
    /// (`ZRANGE`) and removes a member whose info is gone.
    pub const NODE_LOAD: &str = "nodes:load:{id}";
    /// HASH: node id → the keys of the load lists it is in, `\n`-separated, so the node can be
    /// taken out of them once its info is gone. TTL ≥ the longest node lease. Written by
    /// `heartbeat` (`HSET` when they change), `remove_node` and the pruning (`HDEL`).
    pub const NODE_PLACES: &str = "nodes:places";
    /// SET: room ids this node claimed, so `remove_node` finds them without a scan. TTL ≥ the
    /// longest claim lease. Written by `claim_room`/`renew_room` (`SADD`), `release_room`
    /// (`SREM`), `remove_node` (`DEL`).
    pub const NODE_ROOMS: &str = "node:{id}:rooms";
    /// SET: room ids where this node is a link's edge or upstream, so `remove_node` finds its
    /// links. TTL ≥ the longest link lease. Written by `put_link` (`SADD`), `remove_node` (`DEL`).
    pub const NODE_LINKS: &str = "node:{id}:links";
    /// ZSET: member = room id, score = its claim's expiry in ms on Redis's clock. TTL ≥ the
    /// longest claim lease. Written by `claim_room` (`ZADD`, and pruning), `renew_room`,
    /// `release_room` and `remove_node` (`ZREM`).
    pub const ROOMS: &str = "rooms";
    /// STRING: `"{node id}\n{token}"`, the room's owner. TTL = the claim's lease. Written by
    /// `claim_room` (`SET NX PX`), `renew_room` (compare-and-`PEXPIRE`), `release_room`
    /// (compare-and-`DEL`), `remove_node` (`DEL` when the node is the owner).
    pub const ROOM_OWNER: &str = "room:{id}:owner";
    /// HASH: field = edge id, value = `"{expiry ms}\n{upstream id}"`; a field past its expiry
    /// is ignored by readers. TTL ≥ the longest link lease. Written by the edge's `put_link`
    /// (`HSET`) and `remove_link` (`HDEL`), `release_room` (`DEL`), `remove_node` (`HDEL`).
    pub const ROOM_LINKS: &str = "room:{id}:links";
}

/// Claims renewed, or links put, by one script call of `renew_rooms` or `put_links`: a bigger
/// batch is split, so that one call holds Redis for about a millisecond at most.
pub const BATCH: usize = 500;

/// Consecutive operation timeouts after which the connection is replaced by a new one.
pub const REPLACE_AFTER_TIMEOUTS: u32 = 3;

/// Reconnection attempts in one round; the next operation after a failed round starts another.
const RECONNECT_RETRIES: usize = 4;

/// The longest lease we write (~31 years): keeps `now + lease` exact in Lua's doubles.
const MAX_LEASE_MS: u64 = 1_000_000_000_000;

/// How a [`RedisStore`] talks to Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Longest one operation may take, waiting for a reconnection included; past it the
    /// operation fails with [`RoutingError::Unavailable`]. Also the TCP connect and response
    /// timeout of the underlying connection. Default 1 s.
    pub op_timeout: Duration,
    /// Longest pause between two reconnection attempts while Redis is unreachable (the pauses
    /// grow from 100 ms). Default 1 s.
    pub reconnect_max_delay: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            op_timeout: Duration::from_secs(1),
            reconnect_max_delay: Duration::from_secs(1),
        }
    }
}

/// Builds the keys of [`schema`] under one prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn fixed(&self, pattern: &str) -> String {
        format!("{}{pattern}", self.prefix)
    }

    /// The load list of `role`'s nodes in `place` ([`schema::NODE_LOAD`]).
    fn load(&self, role: Role, place: &Locality) -> String {
        let any = |v: &Option<String>| v.clone().unwrap_or_default();
        let list = format!(
            "{}:{}:{}",
            role.as_str(),
            any(&place.region),
            any(&place.zone)
        );
        self.of(schema::NODE_LOAD, &list)
    }

    fn of(&self, pattern: &'static str, id: &str) -> String {
        let (head, tail) = self.parts(pattern);
        format!("{head}{id}{tail}")
    }

    /// The key before and after `{id}`, for scripts that build keys from ids they read.
    fn parts(&self, pattern: &'static str) -> (String, &'static str) {
        let (head, tail) = pattern
            .split_once("{id}")
            .expect("schema patterns used with an id contain {id}");
        (format!("{}{head}", self.prefix), tail)
    }
}

/// The routing store of a cluster, in Redis. See the [module docs](self) for the key schema,
/// its cost, and how failures surface.
pub struct RedisStore {
    keys: Keys,
    options: RedisOptions,
    /// The connection, replaced when it hangs or (under Sentinel) when the master moves.
    con: Conn,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisStore {
    // Not derived: the client's connection info may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.con)
            .field("prefix", &self.keys.prefix)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Claims `room` with a new token: when it is free (`claim_room`), or also when
    /// `dead_node` holds it (`take_over_room`).
    async fn claim(
        &self,
        op: &'static str,
        room: &str,
        node_id: &str,
        lease: Duration,
        dead_node: Option<&str>,
    ) -> RoutingResult<Option<RoomClaim>> {
        let token = uuid::Uuid::new_v4().to_string();
        let k = &self.keys;
        let value = owner_value(node_id, &token);
        let lease_ms = lease_ms(lease);
        let mut keys = vec![
            k.of(schema::ROOM_OWNER, room),
            k.fixed(schema::ROOMS),
            k.of(schema::NODE_ROOMS, node_id),
        ];
        let mut args = vec![room, value.as_str(), lease_ms.as_str()];
        let script = match dead_node {
            None => &self.scripts.claim_room,
            Some(dead) => {
                keys.push(k.of(schema::NODE_ROOMS, dead));
                args.push(dead);
                &self.scripts.take_over_room
            }
        };
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let claimed: i64 = self.script(op, script, &keys, &args).await?;
        Ok((claimed == 1).then(|| RoomClaim {
            room: room.to_owned(),
            node_id: node_id.to_owned(),
            token,
        }))
    }

    /// Connects to the Redis at `url` (any form [`target`] reads) and checks that it
    /// answers, within [`RedisOptions::op_timeout`]: an unreachable Redis is an
    /// [`RoutingError::Unavailable`] after about a second, not a hang.
    pub async fn connect(url: &str, prefix: &str) -> RoutingResult<Self> {
        Self::connect_with(url, prefix, RedisOptions::default()).await
    }

    /// [`connect`](Self::connect) with options.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        options: RedisOptions,
    ) -> RoutingResult<Self> {
        let store = Self::lazy_with(url, prefix, options)?;
        store.ping().await?;
        Ok(store)
    }

    /// A store that connects on its first operation: for a node that should start while Redis
    /// is still down. Until Redis answers, each operation fails with
    /// [`RoutingError::Unavailable`] within [`RedisOptions::op_timeout`], and the connection is
    /// retried in the background. Fails only for a URL that cannot be parsed.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime: the connection manager spawns its task on creation.
    pub fn lazy(url: &str, prefix: &str) -> RoutingResult<Self> {
        Self::lazy_with(url, prefix, RedisOptions::default())
    }

    /// [`lazy`](Self::lazy) with options.
    pub fn lazy_with(url: &str, prefix: &str, options: RedisOptions) -> RoutingResult<Self> {
        Self::lazy_tls(url, None, prefix, options)
    }

    /// [`lazy_with`](Self::lazy_with), trusting the CAs in the PEM bundle `ca` for a `rediss`
    /// server instead of the public web roots. A URL that cannot be read is an error whose
    /// message holds no password.
    pub fn lazy_tls(
        url: &str,
        ca: Option<&[u8]>,
        prefix: &str,
        options: RedisOptions,
    ) -> RoutingResult<Self> {
        // rustls needs one process-wide provider; the nodes use ring (see cluster::tls).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let target = target::parse(url, ca).map_err(|e| {
            RoutingError::Unavailable(format!("invalid Redis URL {}: {e}", target::redact(url)))
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.op_timeout))
            .set_response_timeout(Some(options.op_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(options.reconnect_max_delay);
        let con = Conn::new(target, manager_config).map_err(RoutingError::Unavailable)?;
        Ok(Self {
            keys: Keys {
                prefix: prefix.to_owned(),
            },
            options,
            con,
            scripts: Scripts::new(),
        })
    }

    /// The prefix of every key this store writes.
    pub fn prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> RoutingResult<()> {
        self.run("PING", |mut con| async move {
            ::redis::cmd("PING").query_async::<String>(&mut con).await
        })
        .await
        .map(drop)
    }

    /// The start-up check of the URL's credentials: an error (naming no password) when Redis,
    /// or under Sentinel the sentinels or the master, answer but refuse them (wrong password,
    /// unknown ACL user, a password missing); `Ok` when they are accepted or Redis cannot be
    /// reached now (the node then starts and keeps retrying, as through an outage).
    pub async fn check_credentials(&self) -> Result<(), String> {
        let refused = |e: &RedisError| {
            e.kind() == ErrorKind::AuthenticationFailed
                || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
        };
        let timeout = self.options.op_timeout;
        match tokio::time::timeout(timeout, self.con.probe(timeout)).await {
            Ok(Some(Err(e))) if refused(&e) => return Err(e.to_string()),
            Ok(Some(_)) | Err(_) => return Ok(()),
            Ok(None) => {}
        }
        // Under Sentinel a refusal arrives as the lookup's text.
        match self.ping().await {
            Err(RoutingError::Unavailable(why))
                if ["WRONGPASS", "NOAUTH", "NOPERM", "uthentication"]
                    .iter()
                    .any(|w| why.contains(w)) =>
            {
                Err(why)
            }
            _ => Ok(()),
        }
    }

    /// Runs one operation on a clone of the connection, bounded by the operation timeout
    /// (a Sentinel lookup included).
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> RoutingResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let mut generation = None;
        let attempt = async {
            let (con, g) = self.con.get().await.map_err(RoutingError::Unavailable)?;
            generation = Some(g);
            op(con).await.map_err(|e| {
                self.con.failed(g, &e);
                classify(what, e)
            })
        };
        let outcome = tokio::time::timeout(self.options.op_timeout, attempt).await;
        match outcome {
            Ok(result) => {
                self.con.answered();
                result
            }
            Err(_) => {
                if let Some(g) = generation {
                    self.con.timed_out(g);
                }
                Err(RoutingError::Unavailable(format!(
                    "Redis {what}: no answer within {:?}",
                    self.options.op_timeout
                )))
            }
        }
    }

    /// Runs a script with `keys` and `args`.
    /// Renews `claims` (compare-and-extend each), a script call per node and [`BATCH`] claims;
    /// `what` names the operation in errors.
    async fn renew_claims(
        &self,
        what: &str,
        claims: &[RoomClaim],
        lease: Duration,
    ) -> RoutingResult<Vec<bool>> {
        let k = &self.keys;
        let lease = lease_ms(lease);
        let mut renewed = vec![false; claims.len()];
        // The node rooms index is per node: one call per node (and per chunk of BATCH).
        let mut order: Vec<usize> = (0..claims.len()).collect();
        order.sort_by(|&a, &b| claims[a].node_id.cmp(&claims[b].node_id));
        let same_node = |&a: &usize, &b: &usize| claims[a].node_id == claims[b].node_id;
        for group in order.chunk_by(same_node) {
            for chunk in group.chunks(BATCH) {
                let node_id = &claims[chunk[0]].node_id;
                let mut keys = vec![k.fixed(schema::ROOMS), k.of(schema::NODE_ROOMS, node_id)];
                let mut args = vec![lease.clone()];
                for &i in chunk {
                    let claim = &claims[i];
                    keys.push(k.of(schema::ROOM_OWNER, &claim.room));
                    args.push(claim.room.clone());
                    args.push(owner_value(&claim.node_id, &claim.token));
                }
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out: Vec<i64> = self
                    .script(what, &self.scripts.renew_rooms, &keys, &args)
                    .await?;
                if out.len() != chunk.len() {
                    return Err(RoutingError::Corrupt(format!(
                        "renew_rooms answered {} of {} claims",
                        out.len(),
                        chunk.len()
                    )));
                }
                for (&i, ok) in chunk.iter().zip(out) {
                    renewed[i] = ok == 1;
                }
            }
        }
        Ok(renewed)
    }

    /// Records (or refreshes) `links`, a script call per [`BATCH`] links; `what` names the
    /// operation in errors.
    async fn write_links(&self, what: &str, links: &[Link], lease: Duration) -> RoutingResult<()> {
        let k = &self.keys;
        let lease = lease_ms(lease);
        for chunk in links.chunks(BATCH) {
            let mut keys = Vec::with_capacity(chunk.len() * 3);
            let mut args = vec![lease.as_str()];
            for link in chunk {
                keys.push(k.of(schema::ROOM_LINKS, &link.room));
                keys.push(k.of(schema::NODE_LINKS, &link.edge_id));
                keys.push(k.of(schema::NODE_LINKS, &link.upstream_id));
                args.extend([
                    link.room.as_str(),
                    link.edge_id.as_str(),
                    link.upstream_id.as_str(),
                ]);
            }
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.script::<i64>(what, &self.scripts.put_links, &keys, &args)
                .await?;
        }
        Ok(())
    }

    async fn script<T: ::redis::FromRedisValue>(
        &self,
        what: &str,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> RoutingResult<T> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.run(what, |mut con| async move {
            invocation.invoke_async::<T>(&mut con).await
        })
        .await
    }

    async fn get(&self, what: &str, key: String) -> RoutingResult<Option<String>> {
        self.run(what, |mut con| async move {
            ::redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<String>>(&mut con)
                .await
        })
        .await
    }
}

/// Redis's reasons, sorted into "try again later" and "the data is not ours to read".
fn classify(what: &str, e: RedisError) -> RoutingError {
    let unreadable = matches!(e.kind(), ErrorKind::UnexpectedReturnType | ErrorKind::Parse)
        || e.code() == Some("WRONGTYPE");
    if unreadable {
        RoutingError::Corrupt(format!("Redis {what}: {e}"))
    } else {
        RoutingError::Unavailable(format!("Redis {what}: {e}"))
    }
}

fn lease_ms(lease: Duration) -> String {
    let ms = u64::try_from(lease.as_millis()).unwrap_or(MAX_LEASE_MS);
    ms.clamp(1, MAX_LEASE_MS).to_string()
}

fn owner_value(node_id: &str, token: &str) -> String {
    format!("{node_id}\n{token}")
}

/// The node id of an owner value `"{node}\n{token}"`.
fn owner_node(room: &str, value: &str) -> RoutingResult<String> {
    value
        .rsplit_once('\n')
        .map(|(node, _)| node.to_owned())
        .ok_or_else(|| RoutingError::Corrupt(format!("owner of room {room:?} has no token")))
}

fn parse_node(json: &str) -> RoutingResult<NodeInfo> {
    serde_json::from_str(json).map_err(|e| RoutingError::Corrupt(format!("node info: {e}")))
}

/// Node entries as the registry answers them: sorted by id, each once.
fn parse_nodes<'a>(infos: impl Iterator<Item = &'a String>) -> RoutingResult<Vec<NodeInfo>> {
    let mut nodes = infos
        .map(|json| parse_node(json))
        .collect::<RoutingResult<Vec<_>>>()?;
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes.dedup_by(|a, b| a.id == b.id);
    Ok(nodes)
}

/// A link from its hash field and value `"{expiry ms}\n{upstream}"`.
fn parse_link(room: &str, edge_id: String, value: &str) -> RoutingResult<Link> {
    match value.split_once('\n') {
        Some((expiry, upstream))
            if !expiry.is_empty() && expiry.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(Link {
                room: room.to_owned(),
                edge_id,
                upstream_id: upstream.to_owned(),
            })
        }
        _ => Err(RoutingError::Corrupt(format!(
            "link of room {room:?} from edge {edge_id:?} is not \"expiry\\nupstream\""
        ))),
    }
}

/// `[a, b, c, d, ...]` as `[(a, b), (c, d), ...]`.
fn pairs(flat: Vec<String>) -> RoutingResult<Vec<(String, String)>> {
    if !flat.len().is_multiple_of(2) {
        return Err(RoutingError::Corrupt("odd-length pair list".into()));
    }
    let mut it = flat.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

#[async_trait::async_trait]
impl RoutingStore for RedisStore {
    async fn heartbeat(&self, node: &NodeInfo, lease: Duration) -> RoutingResult<()> {
        let json = serde_json::to_string(&node.stamped())
            .map_err(|e| RoutingError::Corrupt(format!("node info: {e}")))?;
        let k = &self.keys;
        let mut keys = vec![
            k.fixed(schema::NODES),
            k.of(schema::NODE_INFO, &node.id),
            k.fixed(schema::NODE_PLACES),
        ];
        keys.extend(places_of(node).iter().map(|p| k.load(node.role, p)));
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let score = if has_room(node) {
            load_score(node).to_string()
        } else {
            String::new()
        };
        self.script::<i64>(
            "heartbeat",
            &self.scripts.heartbeat,
            &keys,
            &[&node.id, &json, &lease_ms(lease), &score],
        )
        .await
        .map(drop)
    }

    async fn remove_node(&self, node_id: &str) -> RoutingResult<()> {
        let k = &self.keys;
        let (owner_head, owner_tail) = k.parts(schema::ROOM_OWNER);
        let (links_head, links_tail) = k.parts(schema::ROOM_LINKS);
        self.script::<i64>(
            "remove_node",
            &self.scripts.remove_node,
            &[
                &k.fixed(schema::NODES),
                &k.of(schema::NODE_INFO, node_id),
                &k.of(schema::NODE_ROOMS, node_id),
                &k.of(schema::NODE_LINKS, node_id),
                &k.fixed(schema::ROOMS),
                &k.fixed(schema::NODE_PLACES),
            ],
            &[node_id, &owner_head, owner_tail, &links_head, links_tail],
        )
        .await
        .map(drop)
    }

    async fn nodes(&self) -> RoutingResult<Vec<NodeInfo>> {
        let (head, tail) = self.keys.parts(schema::NODE_INFO);
        let infos: Vec<Option<String>> = self
            .script(
                "nodes",
                &self.scripts.nodes,
                &[&self.keys.fixed(schema::NODES)],
                &[&head, tail],
            )
            .await?;
        parse_nodes(infos.iter().flatten())
    }

    async fn node(&self, node_id: &str) -> RoutingResult<Option<NodeInfo>> {
        self.get("node", self.keys.of(schema::NODE_INFO, node_id))
            .await?
            .map(|json| parse_node(&json))
            .transpose()
    }

    async fn nodes_for(&self, query: &NodeQuery) -> RoutingResult<Vec<NodeInfo>> {
        let k = &self.keys;
        let lists: Vec<String> = match query.role {
            Some(role) if query.least_loaded > 0 => {
                query.places.iter().map(|p| k.load(role, p)).collect()
            }
            _ => Vec::new(),
        };
        if lists.is_empty() {
            // Only nodes by name: one MGET, no script.
            let keys: Vec<String> = query
                .ids
                .iter()
                .map(|id| k.of(schema::NODE_INFO, id))
                .collect();
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let infos: Vec<Option<String>> = self
                .run("nodes_for", |mut con| async move {
                    ::redis::cmd("MGET")
                        .arg(&keys)
                        .query_async::<Vec<Option<String>>>(&mut con)
                        .await
                })
                .await?;
            return parse_nodes(infos.iter().flatten());
        }
        let lists: Vec<&str> = lists.iter().map(String::as_str).collect();
        let (head, tail) = k.parts(schema::NODE_INFO);
        let per_place = query.least_loaded.to_string();
        let mut args = vec![head.as_str(), tail, per_place.as_str()];
        args.extend(query.ids.iter().map(String::as_str));
        let infos: Vec<String> = self
            .script("nodes_for", &self.scripts.nodes_for, &lists, &args)
            .await?;
        parse_nodes(infos.iter())
    }

    async fn claim_room(
        &self,
        room: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>> {
        self.claim("claim_room", room, node_id, lease, None).await
    }

    async fn take_over_room(
        &self,
        room: &str,
        dead_node: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>> {
        self.claim("take_over_room", room, node_id, lease, Some(dead_node))
            .await
    }

    async fn renew_room(&self, claim: &RoomClaim, lease: Duration) -> RoutingResult<bool> {
        let renewed = self
            .renew_claims("renew_room", std::slice::from_ref(claim), lease)
            .await?;
        Ok(renewed.first() == Some(&true))
    }

    async fn renew_rooms(&self, claims: &[RoomClaim], lease: Duration) -> RoutingResult<Vec<bool>> {
        self.renew_claims("renew_rooms", claims, lease).await
    }

    async fn release_room(&self, claim: &RoomClaim) -> RoutingResult<bool> {
        let k = &self.keys;
        let released: i64 = self
            .script(
                "release_room",
                &self.scripts.release_room,
                &[
                    &k.of(schema::ROOM_OWNER, &claim.room),
                    &k.fixed(schema::ROOMS),
                    &k.of(schema::NODE_ROOMS, &claim.node_id),
                    &k.of(schema::ROOM_LINKS, &claim.room),
                ],
                &[&claim.room, &owner_value(&claim.node_id, &claim.token)],
            )
            .await?;
        Ok(released == 1)
    }

    async fn room_owner(&self, room: &str) -> RoutingResult<Option<String>> {
        self.get("room_owner", self.keys.of(schema::ROOM_OWNER, room))
            .await?
            .map(|value| owner_node(room, &value))
            .transpose()
    }

    async fn rooms(&self) -> RoutingResult<Vec<(String, String)>> {
        let (head, tail) = self.keys.parts(schema::ROOM_OWNER);
        let flat: Vec<String> = self
            .script(
                "rooms",
                &self.scripts.rooms,
                &[&self.keys.fixed(schema::ROOMS)],
                &[&head, tail],
            )
            .await?;
        let mut rooms = pairs(flat)?
            .into_iter()
            .map(|(room, value)| {
                let owner = owner_node(&room, &value)?;
                Ok((room, owner))
            })
            .collect::<RoutingResult<Vec<_>>>()?;
        rooms.sort();
        Ok(rooms)
    }

    async fn put_link(&self, link: &Link, lease: Duration) -> RoutingResult<()> {
        self.write_links("put_link", std::slice::from_ref(link), lease)
            .await
    }

    async fn put_links(&self, links: &[Link], lease: Duration) -> RoutingResult<()> {
        self.write_links("put_links", links, lease).await
    }

    async fn remove_link(&self, room: &str, edge_id: &str) -> RoutingResult<()> {
        let key = self.keys.of(schema::ROOM_LINKS, room);
        let edge_id = edge_id.to_owned();
        self.run("remove_link", |mut con| async move {
            ::redis::cmd("HDEL")
                .arg(&key)
                .arg(&edge_id)
                .query_async::<i64>(&mut con)
                .await
        })
        .await
        .map(drop)
    }

    async fn links(&self, room: &str) -> RoutingResult<Vec<Link>> {
        let flat: Vec<String> = self
            .script(
                "links",
                &self.scripts.links,
                &[&self.keys.of(schema::ROOM_LINKS, room)],
                &[],
            )
            .await?;
        let mut links = pairs(flat)?
            .into_iter()
            .map(|(edge, value)| parse_link(room, edge, &value))
            .collect::<RoutingResult<Vec<_>>>()?;
        links.sort_by(|a, b| a.edge_id.cmp(&b.edge_id));
        Ok(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_schema() {
        let k = Keys {
            prefix: "p:".into(),
        };
        assert_eq!(k.fixed(schema::NODES), "p:nodes");
        assert_eq!(k.of(schema::NODE_INFO, "n1"), "p:node:n1:info");
        assert_eq!(k.of(schema::ROOM_OWNER, "r"), "p:room:r:owner");
        assert_eq!(
            k.parts(schema::ROOM_LINKS),
            ("p:room:".to_owned(), ":links")
        );
    }

    #[test]
    fn owner_values_round_trip_and_garbage_is_corrupt() {
        let v = owner_value("node\nwith newline", "token");
        assert_eq!(owner_node("r", &v).unwrap(), "node\nwith newline");
        assert!(matches!(
            owner_node("r", "no token"),
            Err(RoutingError::Corrupt(_))
        ));
    }

    #[test]
    fn links_parse_and_garbage_is_corrupt() {
        let link = parse_link("r", "e".into(), "123\nup").unwrap();
        assert_eq!(link.upstream_id, "up");
        for bad in ["", "\nup", "12x\nup", "123", "garbage"] {
            assert!(
                matches!(
                    parse_link("r", "e".into(), bad),
                    Err(RoutingError::Corrupt(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            pairs(vec!["a".into()]),
            Err(RoutingError::Corrupt(_))
        ));
    }

    #[test]
    fn leases_are_clamped_to_what_redis_and_lua_take() {
        assert_eq!(lease_ms(Duration::ZERO), "1");
        assert_eq!(lease_ms(Duration::from_secs(10)), "10000");
        assert_eq!(lease_ms(Duration::MAX), MAX_LEASE_MS.to_string());
    }
}
