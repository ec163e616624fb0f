-- An entity's first message was not delivered to an endpoint: retried at `retry_at`, or,
-- with its attempts spent, kept as a dead letter with the entity's queue held behind it.
-- KEYS[1]  ps:out:q:{ep}:{entity}
-- KEYS[2]  ps:out:due:{ep}
-- KEYS[3]  ps:out:tries:{ep}
-- KEYS[4]  ps:out:pending:{ep}
-- KEYS[5]  ps:out:held:{ep}
-- KEYS[6]  ps:out:dlq:{ep}      hash entity -> the dead letter (outbound.py's Letter, JSON)
-- KEYS[7]  ps:out:counts        hash "ep:outcome" -> attempts
-- KEYS[8]  ps:out:failing       hash ep -> ms of its first failure since a success
-- ARGV: entity, the message, retry_at ms (relative: ms from now), attempts allowed, letter,
--       endpoint id, outcome (`http_503`, `timeout`, `error`)
-- Returns the attempts made, negative when it became a dead letter, 0 when the message
-- is no longer first (another sender delivered it).
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
local now = clock_ms()
redis.call('HINCRBY', KEYS[7], ARGV[6] .. ':' .. ARGV[7], 1)
redis.call('HSETNX', KEYS[8], ARGV[6], now)
local tries = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
if tries < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
  return tries
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[5])
redis.call('HINCRBY', KEYS[7], ARGV[6] .. ':dead_lettered', 1)
return -tries
