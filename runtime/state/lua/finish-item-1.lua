--[[
  Mark one item of a source's lease ledger done, for its owner.

  KEYS[1] item  <prefix>:item:<scope>:<itemId>  hash: o owner, u lease end (epoch ms), c checkpoint, d done (1)

  ARGV[1] the owner, ARGV[2] how long the done item is remembered (ms)

  Returns 1 when done by this owner (a run again answers 1 too); 0 when the owner does not hold it.
]]
local item = redis.call('HMGET', KEYS[1], 'o', 'd')
if item[1] ~= ARGV[1] then
  return 0
end
if item[2] ~= '1' then
  redis.call('HSET', KEYS[1], 'd', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
