--[[
  Claim the effect of one message for one claimer, before it runs a non-idempotent effect (a sink's write).

  Both keys are in the message's own scope, one hash slot (the hash tag in braces):
  KEYS[1] processed marker  <prefix>:{<actor>:m:<messageId>}:done
  KEYS[2] effect claim      <prefix>:{<actor>:m:<messageId>}:claim   "<token>|<lease end>|<in doubt 0/1>"

  ARGV[1] the claimer's token, ARGV[2] now (epoch ms), ARGV[3] lease (ms), ARGV[4] claim record TTL (s)

  Returns
    'done'      the effect already ran (its marker is set);
    'claimed'   the caller holds the claim (or already held it: safe to run again);
    'busy'      another claimer's lease is still running;
    'in-doubt'  the caller took over a claim whose lease ran out: its claimer may have died before or
                after running the effect, so the effect must check whether it already happened.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 'done'
end
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local holder = redis.call('GET', KEYS[2])
local doubt = '0'
if holder then
  local token, leaseEnd, heldDoubt = string.match(holder, '^(.*)|(%d+)|([01])$')
  if token == ARGV[1] then
    doubt = heldDoubt
  elseif tonumber(leaseEnd) > now then
    return 'busy'
  else
    doubt = '1'
  end
end
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. (now + lease) .. '|' .. doubt, 'EX', ARGV[4])
if doubt == '1' then
  return 'in-doubt'
end
return 'claimed'
