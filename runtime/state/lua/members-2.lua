--[[
  The workers whose heartbeat has not run out, with the keyed actors each hosts. Read only.

  Both keys share one hash slot (the tag {members}):
  KEYS[1] members  <prefix>:{members}         zset: worker id, score = heartbeat end (epoch ms)
  KEYS[2] actors   <prefix>:{members}:actors  hash: worker id -> JSON list of actors

  ARGV[1] now (epoch ms)

  Returns a flat list: id, actors JSON, id, actors JSON, ... in id order.
]]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
table.sort(ids)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or '[]'
end
return out
