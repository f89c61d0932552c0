--[[
  Forget a delivered timer, unless it changed since it was claimed: another worker leased it again
  (its score is another lease end) or a commit re-armed it (another due time).

  KEYS[1] timers zset       <prefix>:{<actor>:<shard>}:timers      (the timer's shard, as claimed)
  KEYS[2] timer due hash    <prefix>:{<actor>:<shard>}:timers:due

  ARGV[1] actor, ARGV[2] key, ARGV[3] timer id: the member is cjson.encode({ actor, key, id }), as in commit
  ARGV[4] lease end handed out by the claim, ARGV[5] due time handed out by the claim

  Returns 1 when removed, 0 when left in place. Safe to run again: a second run finds it gone (0).
]]
local m = cjson.encode({ ARGV[1], ARGV[2], ARGV[3] })
local score = redis.call('ZSCORE', KEYS[1], m)
if score and tonumber(score) == tonumber(ARGV[4]) and redis.call('HGET', KEYS[2], m) == ARGV[5] then
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
  return 1
end
return 0
