--[[
  Read one actor instance and the fate of one input message, in a single round trip.

  Every key is in the scope of the key's shard, one hash slot (the hash tag in braces):
  KEYS[1] instance hash     <prefix>:{<actor>:<shard>}:a:<key>   fields v (version), s (snapshot), t (timers JSON),
                            l (absorbed inputs' span links JSON, when any)
  KEYS[2] processed marker  <prefix>:{<actor>:<shard>}:done:<messageId>
  KEYS[3] outbox list       <prefix>:{<actor>:<shard>}:ob:<messageId>

  Returns { v | nil, s | nil, t | nil, l | nil, processed (0 | 1), outbox entries (array) }.
  The outbox is only reported for a processed message: a list that outlived its marker's TTL belongs to
  a commit so old that the message is being applied afresh. Read only: safe to run again.
]]
local record = redis.call('HMGET', KEYS[1], 'v', 's', 't', 'l')
local processed = redis.call('EXISTS', KEYS[2])
local outbox = {}
if processed == 1 then
  outbox = redis.call('LRANGE', KEYS[3], 0, -1)
end
return { record[1], record[2], record[3], record[4], processed, outbox }
