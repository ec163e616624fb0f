-- Replay or purge an endpoint's dead letter: its entity's queue goes on, due now.
-- KEYS[1]  ps:out:q:{ep}:{entity}
-- KEYS[2]  ps:out:due:{ep}
-- KEYS[3]  ps:out:pending:{ep}
-- KEYS[4]  ps:out:held:{ep}
-- KEYS[5]  ps:out:dlq:{ep}
-- ARGV: entity, 'replay' (send the letter's message again, a fresh budget) or 'purge'
--       (drop it: the next message goes)
-- Returns 1, or 0 when there is no such letter (replayed or purged already).
if redis.call('HDEL', KEYS[5], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[4], ARGV[1])
if ARGV[2] == 'purge' then redis.call('LPOP', KEYS[1]) end
local first = redis.call('LINDEX', KEYS[1], 0)
if first then
  redis.call('ZADD', KEYS[2], clock_ms(), ARGV[1])
  redis.call('ZADD', KEYS[3], tonumber(string.sub(first, 1, 13)), ARGV[1])
end
return 1
