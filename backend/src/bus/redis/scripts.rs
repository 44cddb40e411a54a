//! The presence counters' Lua scripts: each runs atomically in Redis, so that "first
//! subscription anywhere" and "last one gone" are decided once. They count and answer;
//! every event they imply is written and published by Rust, with serde.

use std::sync::LazyLock;

use redis::Script;

/// Counts one more subscription of a user in a room from a node. Returns the total for
/// the user, then the room's users.
/// KEYS: users hash, nodes hash, rooms set. ARGV: user, node, room.
pub static ENTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HINCRBY', KEYS[2], ARGV[1] .. '@' .. ARGV[2], 1)
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[3], ARGV[3])
local users = redis.call('HKEYS', KEYS[1])
table.insert(users, 1, tostring(total))
return users
",
    )
});

/// Counts one subscription less. Returns the user's total left (0: gone from the room).
/// KEYS: users hash, nodes hash. ARGV: user, node.
pub static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local field = ARGV[1] .. '@' .. ARGV[2]
if redis.call('HINCRBY', KEYS[2], field, -1) <= 0 then redis.call('HDEL', KEYS[2], field) end
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if total <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return total
",
    )
});

/// Removes every presence entry of a dead node. Returns room, user, room, user, … of the
/// users who were in a room only through it.
/// ARGV: key prefix, node.
pub static REAP_NODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local prefix, node = ARGV[1], ARGV[2]
local suffix = '@' .. node
local gone = {}
for _, room in ipairs(redis.call('SMEMBERS', prefix .. 'p:rooms')) do
  local nodes_key = prefix .. 'p:' .. room .. ':nodes'
  local users_key = prefix .. 'p:' .. room .. ':users'
  local fields = redis.call('HGETALL', nodes_key)
  for i = 1, #fields, 2 do
    local field = fields[i]
    if string.sub(field, -#suffix) == suffix then
      local user = string.sub(field, 1, #field - #suffix)
      redis.call('HDEL', nodes_key, field)
      if redis.call('HINCRBY', users_key, user, -tonumber(fields[i + 1])) <= 0 then
        redis.call('HDEL', users_key, user)
        table.insert(gone, room)
        table.insert(gone, user)
      end
    end
  end
end
redis.call('SREM', prefix .. 'nodes', node)
return gone
",
    )
});
