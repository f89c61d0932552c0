--[[
  Lease due timers: each one handed out is re-scored to the lease end, so it is due again if the worker
  that claimed it dies before releasing it.

  KEYS[1] timers zset       {prefix}:timers
  KEYS[2] timer due hash    {prefix}:timers:due

  ARGV[1] now (epoch ms), ARGV[2] limit, ARGV[3] lease end (epoch ms)

  Returns a flat array { member, due time, member, due time, ... }.
]]
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, m in ipairs(members) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], m)
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGET', KEYS[2], m) or ARGV[1]
end
return out
