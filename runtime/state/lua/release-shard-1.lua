--[[
  Give a shard up, if the lease is still the one the worker holds; the epoch stays, so the next owner
  gets a higher one.

  KEYS[1] lease  <prefix>:{<actor>:<shard>}:shard  hash: o owner, e epoch, u lease end (epoch ms)

  ARGV[1] the owner, ARGV[2] its epoch

  Returns 1 released; 0 it was not (or no longer) this lease: nothing written.
]]
local lease = redis.call('HMGET', KEYS[1], 'o', 'e')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'o', '', 'u', 0)
return 1
