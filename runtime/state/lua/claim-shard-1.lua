--[[
  Claim one shard of a keyed actor for one worker: the lease that decides which worker consumes the
  shard's queue, and the epoch that fences its commits (commit-6.lua).

  KEYS[1] lease  <prefix>:{<actor>:<shard>}:shard  hash: o owner ('' once released), e epoch, u lease end (epoch ms)

  ARGV[1] the owner, ARGV[2] now (epoch ms), ARGV[3] lease (ms)

  Returns
    {'held', owner}      another owner's lease still runs;
    {'claimed', epoch}   the caller holds the lease now: its own lease extended (same epoch, so a
                         claim run again after its reply was lost answers as its first run did), or a
                         new one with the next epoch. Epochs only grow; the hash never expires.
]]
local lease = redis.call('HMGET', KEYS[1], 'o', 'e', 'u')
local owner, epoch, ends = lease[1] or '', tonumber(lease[2] or '0'), tonumber(lease[3] or '0')
local now = tonumber(ARGV[2])
if owner ~= '' and owner ~= ARGV[1] and ends > now then
  return {'held', owner}
end
if owner ~= ARGV[1] or ends <= now then
  epoch = epoch + 1
end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'e', epoch, 'u', now + tonumber(ARGV[3]))
return {'claimed', epoch}
