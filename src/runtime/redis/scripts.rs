//! The Lua scripts the Redis backend runs: each keeps one multi-key step atomic across replicas.
//!
//! Key layout under the prefix `P` (default `vouch-mcp:`):
//! `P s:<id>` session hash, `P s:<id>:subs` its subscriptions, `P sessions` every session by
//! idle deadline (the deployment-wide cap and expiry), `P o:<owner>` one principal's sessions,
//! `P m:<sid>:<stream>` a stream's meta (next seq, done, standalone, producer, request id),
//! `P e:<sid>:<stream>` its last events (`"<seq> <json>"`), `P a:<sid>:<stream>` the replica a
//! resumed connection is attached to, `P es:<sid>` a session's streams, `P h:<sid>` the replica
//! holding the standalone GET connection, `P replicas` heartbeats, `P state-key` the sealing key.
//! Channels: `P all` (every replica), `P r:<replica>` (one replica).

use std::sync::LazyLock;

use redis::Script;

/// KEYS: record, subs, all, owner. ARGV: now, idle, max, max per principal, iss, sub, version,
/// capabilities, id. Returns 0 (created), 1 (deployment full), 2 (principal full).
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1]); local idle = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. now)
if redis.call('ZCOUNT', KEYS[3], now, '+inf') >= tonumber(ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[4]) then return 2 end
redis.call('HSET', KEYS[1], 'iss', ARGV[5], 'sub', ARGV[6], 'ver', ARGV[7], 'caps', ARGV[8], 'own', KEYS[4])
redis.call('PEXPIRE', KEYS[1], idle)
redis.call('ZADD', KEYS[3], now + idle, ARGV[9])
redis.call('ZADD', KEYS[4], now + idle, ARGV[9])
redis.call('PEXPIRE', KEYS[4], idle)
return 0
",
    )
});

/// KEYS: record, subs, all. ARGV: now, idle, id, prefix. Returns nil, or {hash fields,
/// subscriptions}, the idle deadline pushed back, for the session's stream logs as well (they
/// live as long as the session, however quiet its streams are).
pub(super) static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local r = redis.call('HGETALL', KEYS[1])
if #r == 0 then return false end
local idle = tonumber(ARGV[2]); local deadline = tonumber(ARGV[1]) + idle
redis.call('PEXPIRE', KEYS[1], idle)
redis.call('PEXPIRE', KEYS[2], idle)
local es = ARGV[4] .. 'es:' .. ARGV[3]
for _, s in ipairs(redis.call('ZRANGE', es, 0, -1)) do
  local tail = ARGV[3] .. ':' .. s
  redis.call('PEXPIRE', ARGV[4] .. 'm:' .. tail, idle)
  redis.call('PEXPIRE', ARGV[4] .. 'e:' .. tail, idle)
end
redis.call('PEXPIRE', es, idle)
redis.call('PEXPIRE', ARGV[4] .. 'h:' .. ARGV[3], idle)
redis.call('ZADD', KEYS[3], 'XX', deadline, ARGV[3])
local own = redis.call('HGET', KEYS[1], 'own')
if own then redis.call('ZADD', own, 'XX', deadline, ARGV[3]); redis.call('PEXPIRE', own, idle) end
return {r, redis.call('SMEMBERS', KEYS[2])}
",
    )
});

/// KEYS: record, subs. ARGV: 'lvl' or 'sub', value, '1' to subscribe, idle. Returns 1 when the
/// session exists.
pub(super) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'lvl' then redis.call('HSET', KEYS[1], 'lvl', ARGV[2])
elseif ARGV[3] == '1' then redis.call('SADD', KEYS[2], ARGV[2]); redis.call('PEXPIRE', KEYS[2], ARGV[4])
else redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
",
    )
});

/// KEYS: record, subs, all. ARGV: id. Returns 1 when it existed.
pub(super) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local own = redis.call('HGET', KEYS[1], 'own')
if own then redis.call('ZREM', own, ARGV[1]) end
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return n
",
    )
});

/// KEYS: all. ARGV: now, prefix. Removes up to 1000 sessions idle past their deadline; returns
/// {their ids, sessions left}. Each id is returned to exactly one replica.
pub(super) static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1000)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local rec = ARGV[2] .. 's:' .. id
  local own = redis.call('HGET', rec, 'own')
  if own then redis.call('ZREM', own, id) end
  redis.call('DEL', rec, rec .. ':subs')
end
return {ids, redis.call('ZCARD', KEYS[1])}
",
    )
});

/// KEYS: meta, list, streams of the session, attachment. ARGV: stream, standalone '1'/'0',
/// producer, request id JSON, ttl, most streams, prefix, session, now.
pub(super) static OPEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('HSET', KEYS[1], 'n', 0, 'd', 0, 'g', ARGV[2], 'o', ARGV[3], 'r', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[9], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[6])
if extra > 0 then
  for _, s in ipairs(redis.call('ZRANGE', KEYS[3], 0, extra - 1)) do
    local tail = ARGV[8] .. ':' .. s
    redis.call('DEL', ARGV[7] .. 'm:' .. tail, ARGV[7] .. 'e:' .. tail, ARGV[7] .. 'a:' .. tail)
    redis.call('ZREM', KEYS[3], s)
  end
end
return 1
",
    )
});

/// KEYS: meta, list, attachment. ARGV: json, events kept, ttl, this replica, session, stream,
/// prefix. Returns {seq, 1 when it went to a connection on another replica} ({0, 0}: forgotten).
pub(super) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local seq = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('RPUSH', KEYS[2], seq .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local att = redis.call('GET', KEYS[3])
if att and att ~= ARGV[4] then
  redis.call('PUBLISH', ARGV[7] .. 'r:' .. att, 'ev ' .. ARGV[5] .. ' ' .. ARGV[6] .. ' ' .. seq .. ' ' .. ARGV[1])
  return {seq, 1}
end
return {seq, 0}
",
    )
});

/// KEYS: meta, list, attachment. ARGV: this replica, '1' to attach, ttl. Returns nil, or
/// {done, standalone, producer, request id, events}; attaching routes later events here.
pub(super) static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local m = redis.call('HMGET', KEYS[1], 'd', 'g', 'o', 'r')
if not m[1] then return false end
if ARGV[2] == '1' and m[1] ~= '1' then
  if m[3] == ARGV[1] then redis.call('DEL', KEYS[3])
  else redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3]) end
end
return {m[1], m[2], m[3], m[4], redis.call('LRANGE', KEYS[2], 0, -1)}
",
    )
});

/// KEYS: meta, attachment. ARGV: prefix, session, stream. Marks the stream done and tells the
/// replica a resumed connection is attached to.
pub(super) static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'd', 1) end
local att = redis.call('GET', KEYS[2])
if att then
  redis.call('PUBLISH', ARGV[1] .. 'r:' .. att, 'fin ' .. ARGV[2] .. ' ' .. ARGV[3])
  redis.call('DEL', KEYS[2])
end
return 1
",
    )
});

/// KEYS: streams of the session. ARGV: prefix, session. Deletes every stream of the session.
pub(super) static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for _, s in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local tail = ARGV[2] .. ':' .. s
  redis.call('DEL', ARGV[1] .. 'm:' .. tail, ARGV[1] .. 'e:' .. tail, ARGV[1] .. 'a:' .. tail)
end
redis.call('DEL', KEYS[1], ARGV[1] .. 'h:' .. ARGV[2])
return 1
",
    )
});

/// KEYS: holder, replicas. ARGV: this replica, '1' to take, now, ms after which a silent
/// replica is dead, ttl. Returns 1 when this replica now holds the standalone connection.
pub(super) static HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[2] ~= '1' then
  local h = redis.call('GET', KEYS[1])
  if h and h ~= ARGV[1] then
    local seen = redis.call('HGET', KEYS[2], h)
    if seen and tonumber(seen) > tonumber(ARGV[3]) - tonumber(ARGV[4]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[5])
return 1
",
    )
});

/// KEYS: a key. ARGV: a value. Deletes the key if it holds that value.
pub(super) static DELETE_IF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// KEYS: replicas, state key. ARGV: this replica, now, this replica's sealing key, ms after
/// which a silent replica is forgotten. Heartbeat; puts the key back if Redis lost it.
/// Returns {replica, last seen, ...} and the key in Redis.
pub(super) static TICK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) < tonumber(ARGV[2]) - tonumber(ARGV[4]) then redis.call('HDEL', KEYS[1], all[i]) end
end
return {all, redis.call('GET', KEYS[2])}
",
    )
});

// ----- tasks (see `tasks.rs`) ---------------------------------------------------------------
// `P t:<id>` task hash (`v` version, `r` the record's JSON, `o` the owner digest), `P tasks`
// every task by forget deadline (`+inf` while unfinished: the deployment-wide cap and the
// retention), `P tleases` unfinished tasks by lease deadline, `P to:<owner>` one principal's
// tasks by creation order, `P tu:<owner>` its unfinished ones (the per-principal cap), `P tseq`
// the creation counter. A change is announced on `P all` as `tv <id> <version>`.

/// KEYS: record, tasks, owner's tasks, owner's unfinished, leases, counter. ARGV: id, JSON,
/// version, max tasks, max unfinished per principal, '1' if unfinished, lease deadline, forget
/// deadline ('+inf' while unfinished), owner digest. Returns {0 created / 1 deployment full /
/// 2 principal full, tasks held}.
pub(super) static TASK_CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('ZCARD', KEYS[2])
if held >= tonumber(ARGV[4]) then return {1, held} end
local unfinished = ARGV[6] == '1'
if unfinished and redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[5]) then return {2, held} end
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('task id in use') end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'r', ARGV[2], 'o', ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1])
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[6]), ARGV[1])
if unfinished then
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
end
return {0, held + 1}
",
    )
});

/// KEYS: record, tasks, owner's unfinished, leases. ARGV: expected version, new version, JSON,
/// '1' if terminal, lease deadline, forget deadline, id, channel. Compare-and-set on the
/// version; a terminal record leaves the lease set and the principal's unfinished set, an
/// unfinished one has its lease deadline moved. Announces the new version. Returns 1 when
/// stored.
pub(super) static TASK_REPLACE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', ARGV[3])
if ARGV[4] == '1' then
  redis.call('SREM', KEYS[3], ARGV[7])
  redis.call('ZREM', KEYS[4], ARGV[7])
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
else
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[7])
end
redis.call('PUBLISH', ARGV[8], 'tv ' .. ARGV[7] .. ' ' .. ARGV[2])
return 1
",
    )
});

/// KEYS: owner's tasks. ARGV: the id to start after ('' for the first page), most records,
/// record key prefix. Returns false when that id is not one of the owner's, else the records'
/// JSON in creation order (ids whose record is gone are skipped).
pub(super) static TASK_LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local start = 0
if ARGV[1] ~= '' then
  local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
  if not rank then return false end
  start = rank + 1
end
local limit = tonumber(ARGV[2]); local out = {}
while #out < limit do
  local ids = redis.call('ZRANGE', KEYS[1], start, start + limit - 1)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local r = redis.call('HGET', ARGV[3] .. id, 'r')
    if r and #out < limit then table.insert(out, r) end
  end
  start = start + #ids
end
return out
",
    )
});

/// KEYS: tasks, leases. ARGV: now, prefix. Forgets up to 1000 tasks past their retention,
/// then returns {the JSON of up to 100 unfinished tasks whose lease lapsed, tasks held}.
pub(super) static TASK_SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)) do
  local rec = ARGV[2] .. 't:' .. id
  local o = redis.call('HGET', rec, 'o')
  if o then
    redis.call('ZREM', ARGV[2] .. 'to:' .. o, id)
    redis.call('SREM', ARGV[2] .. 'tu:' .. o, id)
  end
  redis.call('DEL', rec)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
local lapsed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, 100)) do
  local r = redis.call('HGET', ARGV[2] .. 't:' .. id, 'r')
  if r then table.insert(lapsed, r) else redis.call('ZREM', KEYS[2], id) end
end
return {lapsed, redis.call('ZCARD', KEYS[1])}
",
    )
});
