--[[
  Extend a worker's lease on one shard, if the lease is still the one it holds.

  KEYS[1] lease  <prefix>:{<actor>:<shard>}:shard  hash: o owner, e epoch, u lease end (epoch ms)

  ARGV[1] the owner, ARGV[2] its epoch, ARGV[3] now (epoch ms), ARGV[4] lease (ms)

  Returns 1 renewed; 0 the lease is another's now (or released): nothing written.
]]
local lease = redis.call('HMGET', KEYS[1], 'o', 'e')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'u', tonumber(ARGV[3]) + tonumber(ARGV[4]))
return 1
