--[[
  Extend an owner's lease on one item of a source's lease ledger, saving a checkpoint. Fenced: only the
  owner that holds the item may renew it.

  KEYS[1] item  <prefix>:item:<scope>:<itemId>  hash: o owner, u lease end (epoch ms), c checkpoint, d done (1)

  ARGV[1] the owner, ARGV[2] now (epoch ms), ARGV[3] lease (ms), ARGV[4] record TTL (ms),
  ARGV[5] '1' when ARGV[6] is a checkpoint to save, '0' otherwise

  Returns 1 when renewed; 0 when the owner no longer holds it (taken over, finished, or expired).
]]
local item = redis.call('HMGET', KEYS[1], 'o', 'd')
if item[1] ~= ARGV[1] or item[2] == '1' then
  return 0
end
redis.call('HSET', KEYS[1], 'u', tonumber(ARGV[2]) + tonumber(ARGV[3]))
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'c', ARGV[6])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
