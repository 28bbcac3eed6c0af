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
//! | `node:{id}:rooms` | SET of room ids the node claimed (index for `remove_node`) | ≥ longest claim lease | `claim_room`, `renew_room`, `release_room`, `remove_node` |
//! | `node:{id}:links` | SET of room ids where the node is a link's edge or upstream (index for `remove_node`) | ≥ longest link lease | `put_link`, `remove_node` |
//! | `rooms` | ZSET room id → claim expiry (ms) | ≥ longest claim lease; members pruned by `claim_room` | `claim_room`, `renew_room`, `release_room`, `remove_node` |
//! | `room:{id}:owner` | STRING `"{node}\n{token}"` | the claim's lease (`SET NX PX`, compare-and-`PEXPIRE`) | `claim_room`, `take_over_room` (compare-owner-and-set, when the owner is dead), `renew_room`, `release_room` (compare-and-delete), `remove_node` |
//! | `room:{id}:links` | HASH edge id → `"{expiry ms}\n{upstream id}"` | ≥ longest link lease; each field carries its own expiry | `put_link`, `remove_link`, `release_room`, `remove_node` |
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
//! # Cost at 100 nodes and 10,000 rooms (heartbeat every 3 s, lease 10 s)
//!
//! What [`crate::cluster::node`] calls per node per heartbeat (3 s): one `heartbeat`, one `renew_room`
//! per room it owns, one `put_link` per room it pulls from an upstream. Each is one `EVALSHA`
//! (one round trip) running a handful of O(1) or O(log n) commands; no periodic path uses
//! `KEYS`, `SCAN` or any command linear in the cluster's size. With N = 100 nodes, R = 10,000
//! rooms and L links (k edges per room on average, L = k·R):
//!
//! | call | per second | commands inside (one `EVALSHA`) | server time, measured |
//! |---|---|---|---|
//! | `heartbeat` | N / 3 s = 33 | `TIME`, `SET PX`, `ZADD`, `ZREMRANGEBYSCORE`, `PTTL` (+`PEXPIRE`): 5–6 | – |
//! | `renew_room` | R / 3 s = 3,333 | `GET`, `PEXPIRE`, `TIME`, `ZADD`, 2 × (`SADD`/`PTTL` (+`PEXPIRE`)): 7–9 | ~20 µs |
//! | `put_link` | L / 3 s = 3,333·k | `TIME`, `HSET`, 3 × (`SADD`/`PTTL` (+`PEXPIRE`)): 8–11 | ~26 µs |
//! | reads on a join | per new relay link, not periodic | `GET` owner, `GET` node | – |
//!
//! Total ≈ (N + R + k·R) / 3 s. With k = 2: 33 + 3,333 + 6,667 ≈ **10,000 `EVALSHA`/s**
//! (≈ 87,000 commands/s inside them), ≈ 0.07 + 0.17 ≈ **0.25 of one Redis core**, using the
//! per-call server times Redis reported (`INFO commandstats`) in the `ten_thousand_rooms` test
//! on a shared 2-core machine. With k = 1 it is ≈ 6,700/s and ≈ 0.15 core. The lease (10 s)
//! does not enter the rate; only the renewal period does. The rate is linear in rooms and
//! links, not in nodes, because the [`RoutingStore`] trait renews each claim and each link with
//! its own call; batching those per node would make it 3 round trips per node per period (100/s)
//! with the same work inside. `rooms()` and `nodes()` are O(R) and O(N) reads (one script each,
//! chunked `MGET`; 10,000 rooms list in well under 100 ms), meant for status pages, not loops.
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

use super::{Link, NodeInfo, RoomClaim, RoutingError, RoutingResult, RoutingStore};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, Script};
use conn::Conn;
use std::future::Future;
use std::time::Duration;

mod conn;
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

/// Helpers every script starts with.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n) return string.format('%.0f', n) end
-- Lengthens a key's TTL to at least `lease` ms, never shortens it.
local function extend(key, lease)
  if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
end
-- MGET in chunks: unpack() of thousands of keys overflows Lua's stack.
local function mget(keys)
  local out = {}
  for i = 1, #keys, 500 do
    local chunk = redis.call('MGET', unpack(keys, i, math.min(i + 499, #keys)))
    for j = 1, #chunk do out[#out + 1] = chunk[j] end
  end
  return out
end
"#;

/// KEYS: nodes, node info. ARGV: node id, info JSON, lease ms.
const HEARTBEAT: &str = r#"
local lease = tonumber(ARGV[3])
local now = now_ms()
redis.call('SET', KEYS[2], ARGV[2], 'PX', lease)
redis.call('ZADD', KEYS[1], ms(now + lease), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms(now))
extend(KEYS[1], lease)
return 1
"#;

/// KEYS: nodes. ARGV: info key head, info key tail. Returns the live nodes' info, nil for a
/// member whose info key is gone (deleted by hand); readers skip nil.
const NODES: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ms(now_ms()), '+inf')
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[1] .. id .. ARGV[2] end
return mget(keys)
"#;

/// KEYS: nodes, node info, node rooms, node links, rooms. ARGV: node id, owner key head/tail,
/// room links key head/tail.
const REMOVE_NODE: &str = r#"
local id = ARGV[1]
redis.call('ZREM', KEYS[1], id)
redis.call('DEL', KEYS[2])
for _, room in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local key = ARGV[2] .. room .. ARGV[3]
  local owner = redis.call('GET', key)
  if owner then
    local nl = string.find(owner, '\n[^\n]*$')
    if nl and string.sub(owner, 1, nl - 1) == id then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[5], room)
    end
  end
end
redis.call('DEL', KEYS[3])
for _, room in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local key = ARGV[4] .. room .. ARGV[5]
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local upstream = string.match(all[i + 1], '^%d+\n(.*)$')
    if all[i] == id or upstream == id then redis.call('HDEL', key, all[i]) end
  end
end
redis.call('DEL', KEYS[4])
return 1
"#;

/// KEYS: room owner, rooms, node rooms. ARGV: room, owner value, lease ms. Returns 1 if claimed.
const CLAIM_ROOM: &str = r#"
local lease = tonumber(ARGV[3])
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', lease) then return 0 end
local now = now_ms()
redis.call('ZADD', KEYS[2], ms(now + lease), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms(now))
extend(KEYS[2], lease)
redis.call('SADD', KEYS[3], ARGV[1])
extend(KEYS[3], lease)
return 1
"#;

/// KEYS: room owner, rooms, node rooms, dead node's rooms. ARGV: room, owner value, lease ms,
/// dead node id. Claims the room if it is free or its owner value names the dead node.
const TAKE_OVER_ROOM: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[4] + 1) ~= ARGV[4] .. '\n' then return 0 end
local lease = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', lease)
local now = now_ms()
redis.call('ZADD', KEYS[2], ms(now + lease), ARGV[1])
extend(KEYS[2], lease)
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
extend(KEYS[3], lease)
return 1
"#;

/// KEYS: room owner, rooms, node rooms. ARGV: room, owner value, lease ms. Compare-and-extend:
/// returns 1 if the claim was still held by this value.
const RENEW_ROOM: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
local lease = tonumber(ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease)
redis.call('ZADD', KEYS[2], ms(now_ms() + lease), ARGV[1])
extend(KEYS[2], lease)
redis.call('SADD', KEYS[3], ARGV[1])
extend(KEYS[3], lease)
return 1
"#;

/// KEYS: room owner, rooms, node rooms, room links. ARGV: room, owner value. Compare-and-delete:
/// returns 1 if the claim was held by this value and is now gone, with the room's links.
const RELEASE_ROOM: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"#;

/// KEYS: rooms. ARGV: owner key head/tail. Returns [room, owner value, ...] of live claims.
const ROOMS: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ms(now_ms()), '+inf')
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[1] .. id .. ARGV[2] end
local owners = mget(keys)
local out = {}
for i, id in ipairs(ids) do
  if owners[i] then out[#out + 1] = id; out[#out + 1] = owners[i] end
end
return out
"#;

/// KEYS: room links, edge's node links, upstream's node links. ARGV: room, edge, upstream,
/// lease ms.
const PUT_LINK: &str = r#"
local lease = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[2], ms(now_ms() + lease) .. '\n' .. ARGV[3])
extend(KEYS[1], lease)
for i = 2, 3 do
  redis.call('SADD', KEYS[i], ARGV[1])
  extend(KEYS[i], lease)
end
return 1
"#;

/// KEYS: room links. Returns [edge, value, ...] of the links not yet expired; a value whose
/// expiry cannot be read is returned too, for the caller to report.
const LINKS: &str = r#"
local now = now_ms()
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local expiry = tonumber(string.match(all[i + 1], '^(%d+)\n'))
  if expiry == nil or expiry > now then
    out[#out + 1] = all[i]; out[#out + 1] = all[i + 1]
  end
end
return out
"#;

/// The scripts, hashed once per store.
struct Scripts {
    heartbeat: Script,
    nodes: Script,
    remove_node: Script,
    claim_room: Script,
    take_over_room: Script,
    renew_room: Script,
    release_room: Script,
    rooms: Script,
    put_link: Script,
    links: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            heartbeat: s(HEARTBEAT),
            nodes: s(NODES),
            remove_node: s(REMOVE_NODE),
            claim_room: s(CLAIM_ROOM),
            take_over_room: s(TAKE_OVER_ROOM),
            renew_room: s(RENEW_ROOM),
            release_room: s(RELEASE_ROOM),
            rooms: s(ROOMS),
            put_link: s(PUT_LINK),
            links: s(LINKS),
        }
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
        self.script::<i64>(
            "heartbeat",
            &self.scripts.heartbeat,
            &[&k.fixed(schema::NODES), &k.of(schema::NODE_INFO, &node.id)],
            &[&node.id, &json, &lease_ms(lease)],
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
        let mut nodes = infos
            .iter()
            .flatten()
            .map(|json| parse_node(json))
            .collect::<RoutingResult<Vec<_>>>()?;
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    async fn node(&self, node_id: &str) -> RoutingResult<Option<NodeInfo>> {
        self.get("node", self.keys.of(schema::NODE_INFO, node_id))
            .await?
            .map(|json| parse_node(&json))
            .transpose()
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
        let k = &self.keys;
        let renewed: i64 = self
            .script(
                "renew_room",
                &self.scripts.renew_room,
                &[
                    &k.of(schema::ROOM_OWNER, &claim.room),
                    &k.fixed(schema::ROOMS),
                    &k.of(schema::NODE_ROOMS, &claim.node_id),
                ],
                &[
                    &claim.room,
                    &owner_value(&claim.node_id, &claim.token),
                    &lease_ms(lease),
                ],
            )
            .await?;
        Ok(renewed == 1)
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
        let k = &self.keys;
        self.script::<i64>(
            "put_link",
            &self.scripts.put_link,
            &[
                &k.of(schema::ROOM_LINKS, &link.room),
                &k.of(schema::NODE_LINKS, &link.edge_id),
                &k.of(schema::NODE_LINKS, &link.upstream_id),
            ],
            &[
                &link.room,
                &link.edge_id,
                &link.upstream_id,
                &lease_ms(lease),
            ],
        )
        .await
        .map(drop)
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
