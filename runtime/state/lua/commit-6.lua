--[[
  The atomic commit of one input message to one actor instance.

  Every key is in the scope of the key's shard, one hash slot (the hash tag in braces), so
  the script runs on a Redis Cluster too:
  KEYS[1] instance hash     <prefix>:{<actor>:<shard>}:a:<key>
  KEYS[2] processed marker  <prefix>:{<actor>:<shard>}:done:<messageId>
  KEYS[3] outbox list       <prefix>:{<actor>:<shard>}:ob:<messageId>
  KEYS[4] timers zset       <prefix>:{<actor>:<shard>}:timers      score = due time, or lease end while claimed
  KEYS[5] timer due hash    <prefix>:{<actor>:<shard>}:timers:due  member -> due time as committed
  KEYS[6] shard lease hash  <prefix>:{<actor>:<shard>}:shard       o owner, e epoch (read only: the fence)

  ARGV[1] expected version (0 for a new instance)
  ARGV[2] snapshot
  ARGV[3] timers JSON, stored verbatim in field t
  ARGV[4] processed marker TTL, seconds
  ARGV[5] actor, ARGV[6] key: the zset member of timer id is cjson.encode({ actor, key, id })
  ARGV[7] commit token: unique to this commit call, kept in the processed marker as "<token>:<version>"
  ARGV[8] the fence's owner ('' when the commit is not fenced), ARGV[9] its epoch
  ARGV[10] links JSON, stored in field l ('' when none: the field is removed)
  ARGV[11] n, the number of outbox entries, then ARGV[12 .. 11+n] the entries
  ARGV[12+n ..] pairs of timer id, due time

  Returns { 0, new version } committed | { -1 } duplicate | { -2, current version } conflict |
  { -3 } fenced: the shard's lease is not the one the commit carries (another worker took the shard).

  Safe to run again: a commit whose reply was lost with its connection, sent again (by the client or the
  store), finds its own token in the marker and answers as its first run did, changing nothing.
]]
local marker = redis.call('GET', KEYS[2])
if marker then
  local token, committed = string.match(marker, '^(.*):(%d+)$')
  if token == ARGV[7] then
    return { 0, tonumber(committed) }
  end
  return { -1 }
end
if ARGV[8] ~= '' then
  local lease = redis.call('HMGET', KEYS[6], 'o', 'e')
  if lease[1] ~= ARGV[8] or lease[2] ~= ARGV[9] then
    return { -3 }
  end
end
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then
  return { -2, current }
end

local oldTimers = redis.call('HGET', KEYS[1], 't')
local version = current + 1
redis.call('HSET', KEYS[1], 'v', version, 's', ARGV[2], 't', ARGV[3])
if ARGV[10] == '' then
  redis.call('HDEL', KEYS[1], 'l')
else
  redis.call('HSET', KEYS[1], 'l', ARGV[10])
end
redis.call('SET', KEYS[2], ARGV[7] .. ':' .. version, 'NX', 'EX', ARGV[4])

-- unpack() is bounded by the Lua C stack, so a large outbox goes in chunks.
local n = tonumber(ARGV[11])
for first = 12, 11 + n, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(ARGV, first, math.min(first + 999, 11 + n)))
end
-- The host clears the outbox once published without waiting; one it never clears goes with the marker.
if n > 0 then
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end

local function member(id)
  return cjson.encode({ ARGV[5], ARGV[6], id })
end

local kept = {}
for i = 12 + n, #ARGV, 2 do
  local m, due = member(ARGV[i]), ARGV[i + 1]
  kept[m] = true
  -- An unchanged timer keeps its score: if it is leased right now, re-scoring it to its (past) due time
  -- would hand it to a second worker.
  if redis.call('HGET', KEYS[5], m) ~= due or not redis.call('ZSCORE', KEYS[4], m) then
    redis.call('ZADD', KEYS[4], due, m)
    redis.call('HSET', KEYS[5], m, due)
  end
end
if oldTimers then
  for _, timer in ipairs(cjson.decode(oldTimers)) do
    local m = member(timer.id)
    if not kept[m] then
      redis.call('ZREM', KEYS[4], m)
      redis.call('HDEL', KEYS[5], m)
    end
  end
end
return { 0, version }
