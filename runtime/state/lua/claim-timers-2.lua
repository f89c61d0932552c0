--[[
  Lease due timers of one shard of one actor: each one handed out is re-scored to the lease end, so it is
  due again if the worker that claimed it dies before releasing it.

  KEYS[1] timers zset       <prefix>:{<actor>:<shard>}:timers
  KEYS[2] timer due hash    <prefix>:{<actor>:<shard>}:timers:due

  ARGV[1] now (epoch ms), ARGV[2] limit, ARGV[3] lease end (epoch ms)

  Safe to run again with the same arguments: a claim whose reply was lost with its connection (and which
  the client sends again) hands out the timers its first run leased, those whose score is this very lease
  end, before any other due timer. Otherwise they would stay invisible until the lease ran out.

  Returns a flat array { member, due time, member, due time, ... }.
]]
local limit = tonumber(ARGV[2])
local out = {}
local handed = {}
local function hand(members)
  for _, m in ipairs(members) do
    if not handed[m] and #out < 2 * limit then
      handed[m] = true
      redis.call('ZADD', KEYS[1], 'XX', ARGV[3], m)
      out[#out + 1] = m
      out[#out + 1] = redis.call('HGET', KEYS[2], m) or ARGV[1]
    end
  end
end
hand(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[3], 'LIMIT', 0, limit))
if #out < 2 * limit then
  hand(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit))
end
return out
