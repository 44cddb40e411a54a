//! The Lua scripts of the Redis engine. Each runs atomically inside Redis, which is what
//! makes ids gap-free and keeps each room's PUBLISH order equal to its id order.
//!
//! Messages on the pub/sub channels start with one letter:
//! - `M<seq>\n<json>`: a stored room message (a `RoomEvent::Message`);
//! - `D<seq>\n<json>`: a stored direct message, numbered in the channel owner's inbox;
//! - `E\n<json>`: an unstored room event (typing);
//! - `J<user>\n<json>`: `joined` or `left` of `<user>`, not delivered to that user;
//! - `N\n<json>`: a notice for the channel's user;
//! - `T<message-id>\n<tail>`: a generic topic message, already encoded.
//!
//! Each script is built (and its SHA-1 computed, for `EVALSHA`) once per process, not per
//! call.

use std::sync::LazyLock;

use redis::Script;

/// Creates a user (and makes them a lobby member), or returns 0 if the name is taken.
/// KEYS: user, lobby members, lobby reads, lobby seq. ARGV: name, hash, now.
pub static CREATE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HSETNX', KEYS[1], 'hash', ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'created_at', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSETNX', KEYS[3], ARGV[1], tonumber(redis.call('GET', KEYS[4]) or '0'))
return 1
"#,
    )
});

/// Creates a room with its creator as member, or returns 0 if it exists.
/// KEYS: room, rooms, members, reads. ARGV: name, creator, now.
pub static CREATE_ROOM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HSETNX', KEYS[1], 'created_at', ARGV[3]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'created_by', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], 0)
return 1
"#,
    )
});

/// Joins a room; returns 0 if the room does not exist.
/// KEYS: room, members, reads, seq. ARGV: user.
pub static JOIN_ROOM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSETNX', KEYS[3], ARGV[1], tonumber(redis.call('GET', KEYS[4]) or '0'))
return 1
"#,
    )
});

/// Moves a member's read marker forward, never past the room's last id.
/// KEYS: reads, seq. ARGV: user, seq.
pub static MARK_READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local wanted = math.min(tonumber(ARGV[2]), last)
if wanted > tonumber(current) then redis.call('HSET', KEYS[1], ARGV[1], wanted) end
return 1
"#,
    )
});

/// Stores a room message with the next id and publishes it, or finds the earlier one
/// under the same idempotency key. Returns {seq, duplicate}, or {-1, 0} for no such room.
/// KEYS: room, seq, log, idempotency. ARGV: sender, text, now, key, cap, channel, json
/// with `"seq":0,` where the id goes.
pub static POST_ROOM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
if ARGV[4] ~= '' then
  local prior = redis.call('GET', KEYS[4])
  if prior then return {tonumber(prior), 1} end
end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], seq .. '-0', 's', ARGV[1], 't', ARGV[2], 'at', ARGV[3])
if ARGV[4] ~= '' then redis.call('SET', KEYS[4], seq, 'EX', 604800) end
local body = string.gsub(ARGV[7], '"seq":0,', '"seq":' .. seq .. ',', 1)
redis.call('PUBLISH', ARGV[6], 'M' .. seq .. '\n' .. body)
return {seq, 0}
"#,
    )
});

/// Stores a direct message in the sender's and the recipient's inboxes and publishes each
/// copy to its owner. Returns {sender's seq, recipient's seq, duplicate}, or {-1, -1, 0}
/// if the recipient does not exist.
/// KEYS: recipient user, from seq, from log, to seq, to log, idempotency.
/// ARGV: from, to, text, now, key, cap, from channel, to channel, json with `"seq":0,`.
pub static POST_DM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, -1, 0} end
if ARGV[5] ~= '' then
  local prior = redis.call('GET', KEYS[6])
  if prior then
    local comma = string.find(prior, ',')
    return {tonumber(string.sub(prior, 1, comma - 1)), tonumber(string.sub(prior, comma + 1)), 1}
  end
end
local function store(seq_key, log_key, channel, peer)
  local seq = redis.call('INCR', seq_key)
  redis.call('XADD', log_key, 'MAXLEN', '~', ARGV[6], seq .. '-0',
    'p', peer, 'f', ARGV[1], 'r', ARGV[2], 't', ARGV[3], 'at', ARGV[4])
  local body = string.gsub(ARGV[9], '"seq":0,', '"seq":' .. seq .. ',', 1)
  redis.call('PUBLISH', channel, 'D' .. seq .. '\n' .. body)
  return seq
end
local mine = store(KEYS[2], KEYS[3], ARGV[7], ARGV[2])
local theirs = mine
if ARGV[1] ~= ARGV[2] then theirs = store(KEYS[4], KEYS[5], ARGV[8], ARGV[1]) end
if ARGV[5] ~= '' then redis.call('SET', KEYS[6], mine .. ',' .. theirs, 'EX', 604800) end
return {mine, theirs, 0}
"#,
    )
});

/// Counts one more subscription of a user in a room from a node; publishes `joined` when
/// it is the user's first anywhere. Returns the room's users.
/// KEYS: nodes hash, users hash, rooms-with-presence set.
/// ARGV: user, node, room, channel ('' for none), joined json.
pub static PRESENCE_JOIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HINCRBY', KEYS[1], ARGV[1] .. '@' .. ARGV[2], 1)
local total = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('SADD', KEYS[3], ARGV[3])
if total == 1 and ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], 'J' .. ARGV[1] .. '\n' .. ARGV[5]) end
return redis.call('HKEYS', KEYS[2])
"#,
    )
});

/// Counts one subscription less; publishes `left` when it was the user's last anywhere.
/// KEYS: nodes hash, users hash. ARGV: user, node, channel ('' for none), left json.
pub static PRESENCE_LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local field = ARGV[1] .. '@' .. ARGV[2]
if redis.call('HINCRBY', KEYS[1], field, -1) <= 0 then redis.call('HDEL', KEYS[1], field) end
local total = redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
if total <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], 'J' .. ARGV[1] .. '\n' .. ARGV[4]) end
end
return total
"#,
    )
});

/// Removes every presence entry of a dead node and publishes `left` for the users who
/// were there only through it. ARGV: key prefix, node, now.
pub static REAP_NODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local prefix, node, now = ARGV[1], ARGV[2], ARGV[3]
local suffix = '@' .. node
local reaped = 0
for _, room in ipairs(redis.call('SMEMBERS', prefix .. 'p:rooms')) do
  local nodes_key = prefix .. 'p:' .. room .. ':nodes'
  local users_key = prefix .. 'p:' .. room .. ':users'
  local fields = redis.call('HGETALL', nodes_key)
  for i = 1, #fields, 2 do
    local field = fields[i]
    if string.sub(field, -#suffix) == suffix then
      local user = string.sub(field, 1, #field - #suffix)
      redis.call('HDEL', nodes_key, field)
      reaped = reaped + 1
      if redis.call('HINCRBY', users_key, user, -tonumber(fields[i + 1])) <= 0 then
        redis.call('HDEL', users_key, user)
        if string.sub(room, 1, 1) ~= '@' then
          redis.call('PUBLISH', prefix .. 'room:' .. room,
            'J' .. user .. '\n{"type":"left","user":"' .. user .. '","at":' .. now .. '}')
        end
      end
    end
  end
end
redis.call('SREM', prefix .. 'nodes', node)
return reaped
"#,
    )
});
