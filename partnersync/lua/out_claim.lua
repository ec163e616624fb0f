-- Claim an endpoint's due entities: each one's first message, leased.
-- KEYS[1]  ps:out:due:{ep}      zset entity -> due ms
-- KEYS[2]  ps:out:q:{ep}:       prefix: the entity's queue
-- KEYS[3]  ps:out:tries:{ep}    hash entity -> failed attempts of its first message
-- ARGV: lease_ms, most
-- Returns {entity, message, tries, ...}. A claimed entity's due time moves to its lease's
-- end: a sender that dies mid-delivery leaves it due again then (the same message, the
-- same webhook-id).
local now = clock_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, entity in ipairs(due) do
  local message = redis.call('LINDEX', KEYS[2] .. entity, 0)
  if message then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), entity)
    out[#out + 1] = entity
    out[#out + 1] = message
    out[#out + 1] = redis.call('HGET', KEYS[3], entity) or '0'
  else
    redis.call('ZREM', KEYS[1], entity)
  end
end
return out
