-- An entity's first message was delivered to an endpoint (2xx): the next one is due now.
-- KEYS[1]  ps:out:q:{ep}:{entity}
-- KEYS[2]  ps:out:due:{ep}
-- KEYS[3]  ps:out:tries:{ep}
-- KEYS[4]  ps:out:pending:{ep}
-- ARGV: entity, the delivered message (a message starts with its change's ms, 13 digits:
--       outbound.py's `Message`)
-- Returns 1, or 0 when the message is no longer first (another sender, whose lease
-- this one outlived, delivered it): nothing changes.
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local nxt = redis.call('LINDEX', KEYS[1], 0)
if nxt then
  redis.call('ZADD', KEYS[2], clock_ms(), ARGV[1])
  redis.call('ZADD', KEYS[4], tonumber(string.sub(nxt, 1, 13)), ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
return 1
