-- An entity's first message was delivered to an endpoint (2xx): the next one is due now.
-- KEYS[1]  ps:out:q:{ep}:{entity}
-- KEYS[2]  ps:out:due:{ep}
-- KEYS[3]  ps:out:tries:{ep}
-- KEYS[4]  ps:out:pending:{ep}
-- KEYS[5]  ps:out:counts        hash "ep:outcome" -> attempts
-- KEYS[6]  ps:out:lag           hash "ep:bucket" -> deliveries, "ep:sum" -> seconds
-- KEYS[7]  ps:out:failing       hash ep -> ms of its first failure since a success
-- ARGV: entity, the delivered message (a message starts with its change's ms, 13 digits:
--       outbound.py's `Message`), endpoint id, lag bucket, lag seconds
-- Returns 1, or 0 when the message is no longer first (another sender, whose lease
-- this one outlived, delivered it): nothing changes.
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[5], ARGV[3] .. ':delivered', 1)
redis.call('HINCRBY', KEYS[6], ARGV[3] .. ':' .. ARGV[4], 1)
redis.call('HINCRBYFLOAT', KEYS[6], ARGV[3] .. ':sum', ARGV[5])
redis.call('HDEL', KEYS[7], ARGV[3])
local nxt = redis.call('LINDEX', KEYS[1], 0)
if nxt then
  redis.call('ZADD', KEYS[2], clock_ms(), ARGV[1])
  redis.call('ZADD', KEYS[4], tonumber(string.sub(nxt, 1, 13)), ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
return 1
