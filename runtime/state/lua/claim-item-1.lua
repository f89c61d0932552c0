--[[
  Claim one item of a source's lease ledger (a file of a file source) for one owner.

  KEYS[1] item  <prefix>:item:<scope>:<itemId>  hash: o owner, u lease end (epoch ms), c checkpoint, d done (1)

  ARGV[1] the owner, ARGV[2] now (epoch ms), ARGV[3] lease (ms), ARGV[4] record TTL (ms)

  Returns
    {'done'}                   the item was finished;
    {'busy'}                   another owner's lease still runs;
    {'claimed', checkpoint}    the caller holds the lease now (or already held it: safe to run again);
                               checkpoint is the last one saved, or nil.
]]
local item = redis.call('HMGET', KEYS[1], 'o', 'u', 'c', 'd')
if item[4] == '1' then
  return {'done'}
end
local now = tonumber(ARGV[2])
if item[1] and item[1] ~= ARGV[1] and tonumber(item[2]) > now then
  return {'busy'}
end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'u', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'claimed', item[3]}
