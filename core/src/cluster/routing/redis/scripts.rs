//! The Lua scripts of [`RedisStore`](super::RedisStore), one per operation that touches more
//! than one key (each is atomic and one round trip), hashed once per store. `KEYS` and `ARGV`
//! are listed above each; the keys are those of [`schema`](super::schema).

use ::redis::Script;

/// Helpers every script starts with.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n) return string.format('%.0f', n) end
-- Lengthens a key's TTL to at least `lease` ms, never shortens it. On Redis >= 7 one
-- `PEXPIRE GT` when the TTL ran down since the last write (the periodic case), a `PTTL` more
-- only for a key that has no TTL yet or a longer one; before 7, `PTTL` and `PEXPIRE`.
local has_gt = (tonumber(redis.REDIS_VERSION_NUM) or 0) >= 0x070000
local function extend(key, lease)
  if has_gt then
    if redis.call('PEXPIRE', key, lease, 'GT') == 1 then return end
    if redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, lease) end
  elseif redis.call('PTTL', key) < lease then
    redis.call('PEXPIRE', key, lease)
  end
end
-- A node leaves the registry's indices: the load lists its places entry names, the places
-- hash and the nodes ZSET.
local function forget(nodes, places, id)
  local keys = redis.call('HGET', places, id)
  if keys then
    for key in string.gmatch(keys, '[^\n]+') do redis.call('ZREM', key, id) end
    redis.call('HDEL', places, id)
  end
  redis.call('ZREM', nodes, id)
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

/// KEYS: nodes, node info, node places, then the node's load lists (one per place it is in).
/// ARGV: node id, info JSON, lease ms, load score (`""`: no room, so in no load list).
/// Also forgets up to 16 nodes whose lease ran out, so the load lists hold no dead node for
/// long (readers skip and remove any they meet before that).
const HEARTBEAT: &str = r#"
local id, lease, score = ARGV[1], tonumber(ARGV[3]), ARGV[4]
local now = now_ms()
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms(now), 'LIMIT', 0, 16)) do
  forget(KEYS[1], KEYS[3], dead)
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', lease)
redis.call('ZADD', KEYS[1], ms(now + lease), id)
extend(KEYS[1], lease)
local loads = {}
for i = 4, #KEYS do loads[#loads + 1] = KEYS[i] end
local joined = table.concat(loads, '\n')
local old = redis.call('HGET', KEYS[3], id)
if old ~= joined then
  -- First heartbeat, or the node's place changed (a restart elsewhere): leave the old lists.
  if old then
    for key in string.gmatch(old, '[^\n]+') do redis.call('ZREM', key, id) end
  end
  redis.call('HSET', KEYS[3], id, joined)
end
extend(KEYS[3], lease)
for _, key in ipairs(loads) do
  if score == '' then
    redis.call('ZREM', key, id)
  else
    redis.call('ZADD', key, score, id)
    extend(key, lease)
  end
end
return 1
"#;

/// KEYS: one load list per place asked. ARGV: info key head, info key tail, how many per
/// place, then the ids asked for by name. Returns the info JSON of the least-loaded live
/// nodes of each list and of the named nodes that are live, each once. A list member whose
/// info is gone (its lease ran out before a heartbeat forgot it) is removed and the next one
/// read instead: a few rounds at most.
const NODES_FOR: &str = r#"
local head, tail, k = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seen, out = {}, {}
local function keep(id, info)
  if not seen[id] then seen[id] = true; out[#out + 1] = info end
end
for _, key in ipairs(KEYS) do
  local live = 0
  for _ = 1, 4 do
    local want = k - live
    if want <= 0 then break end
    local ids = redis.call('ZRANGE', key, live, live + want - 1)
    if #ids == 0 then break end
    local keys = {}
    for i, id in ipairs(ids) do keys[i] = head .. id .. tail end
    local infos = redis.call('MGET', unpack(keys))
    for i, id in ipairs(ids) do
      if infos[i] then
        keep(id, infos[i]); live = live + 1
      else
        redis.call('ZREM', key, id)
      end
    end
    if #ids < want then break end
  end
end
local named, keys = {}, {}
for i = 4, #ARGV do
  if not seen[ARGV[i]] then
    named[#named + 1] = ARGV[i]; keys[#keys + 1] = head .. ARGV[i] .. tail
  end
end
local infos = mget(keys)
for i, id in ipairs(named) do
  if infos[i] then keep(id, infos[i]) end
end
return out
"#;

/// KEYS: nodes. ARGV: info key head, info key tail. Returns the live nodes' info, nil for a
/// member whose info key is gone (deleted by hand); readers skip nil.
const NODES: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ms(now_ms()), '+inf')
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[1] .. id .. ARGV[2] end
return mget(keys)
"#;

/// KEYS: nodes, node info, node rooms, node links, rooms, node places. ARGV: node id, owner
/// key head/tail, room links key head/tail.
const REMOVE_NODE: &str = r#"
local id = ARGV[1]
forget(KEYS[1], KEYS[6], id)
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

/// KEYS: rooms, node rooms, then one owner key per claim. ARGV: lease ms, then room and owner
/// value per claim. Compare-and-extend for each claim (1 if it was still held by its value):
/// the owners read by one `MGET`, then a `PEXPIRE` per claim still held; the index updates
/// shared (one `TIME`, one multi-member `ZADD` and `SADD`, each index's TTL extended once).
/// Returns 1 or 0 per claim, in order; one claim is a single renewal.
const RENEW_ROOMS: &str = r#"
local lease = tonumber(ARGV[1])
local expiry = ms(now_ms() + lease)
local keys = {}
for i = 3, #KEYS do keys[#keys + 1] = KEYS[i] end
local owners = mget(keys)
local out, scored, members = {}, {}, {}
for i = 3, #KEYS do
  local room, value = ARGV[2 * i - 4], ARGV[2 * i - 3]
  if owners[i - 2] == value then
    redis.call('PEXPIRE', KEYS[i], lease)
    scored[#scored + 1] = expiry; scored[#scored + 1] = room
    members[#members + 1] = room
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if #members > 0 then
  redis.call('ZADD', KEYS[1], unpack(scored))
  extend(KEYS[1], lease)
  redis.call('SADD', KEYS[2], unpack(members))
  extend(KEYS[2], lease)
end
return out
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

/// KEYS: per link its room links, edge's node links, upstream's node links. ARGV: lease ms,
/// then room, edge and upstream per link. Records (or refreshes) each link: an `HSET` and the
/// hash's TTL extended (one `PEXPIRE GT` when refreshed) per link; each node's links index
/// gets one multi-member `SADD` and one TTL extension per call. One `TIME` per call; one link
/// is a single `put_link`.
const PUT_LINKS: &str = r#"
local lease = tonumber(ARGV[1])
local expiry = ms(now_ms() + lease)
local indexed, order = {}, {}
for i = 1, #KEYS, 3 do
  local room, edge, upstream = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  redis.call('HSET', KEYS[i], edge, expiry .. '\n' .. upstream)
  extend(KEYS[i], lease)
  for k = i + 1, i + 2 do
    local members = indexed[KEYS[k]]
    if not members then
      members = {}; indexed[KEYS[k]] = members; order[#order + 1] = KEYS[k]
    end
    members[#members + 1] = room
  end
end
for _, key in ipairs(order) do
  local members = indexed[key]
  for j = 1, #members, 500 do
    redis.call('SADD', key, unpack(members, j, math.min(j + 499, #members)))
  end
  extend(key, lease)
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
pub(super) struct Scripts {
    pub(super) heartbeat: Script,
    pub(super) nodes: Script,
    pub(super) nodes_for: Script,
    pub(super) remove_node: Script,
    pub(super) claim_room: Script,
    pub(super) take_over_room: Script,
    pub(super) renew_rooms: Script,
    pub(super) release_room: Script,
    pub(super) rooms: Script,
    pub(super) put_links: Script,
    pub(super) links: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            heartbeat: s(HEARTBEAT),
            nodes: s(NODES),
            nodes_for: s(NODES_FOR),
            remove_node: s(REMOVE_NODE),
            claim_room: s(CLAIM_ROOM),
            take_over_room: s(TAKE_OVER_ROOM),
            renew_rooms: s(RENEW_ROOMS),
            release_room: s(RELEASE_ROOM),
            rooms: s(ROOMS),
            put_links: s(PUT_LINKS),
            links: s(LINKS),
        }
    }
}
