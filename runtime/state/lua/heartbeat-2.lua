--[[
  A worker's heartbeat: it is alive until now + ttl and hosts these keyed actors. Run by every worker
  every few seconds; it also drops the workers whose heartbeat ran out.

  Both keys share one hash slot (the tag {members}):
  KEYS[1] members  <prefix>:{members}         zset: worker id, score = heartbeat end (epoch ms)
  KEYS[2] actors   <prefix>:{members}:actors  hash: worker id -> JSON list of the keyed actors it hosts

  ARGV[1] the worker id, ARGV[2] now (epoch ms), ARGV[3] ttl (ms; 0 leaves at once),
  ARGV[4] the actors JSON

  Returns the number of workers alive after it. Safe to run again: a second run writes the same.
]]
local now = tonumber(ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(gone))
end
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return redis.call('ZCARD', KEYS[1])
