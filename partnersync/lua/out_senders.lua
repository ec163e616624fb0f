-- The outbox's sender jobs, at most `cap` at once (partnersync/outbound.py, Outbox.senders).
-- KEYS[1]  ps:out:senders   zset: a running sender's id, or `kicked:<id>` for one queued
--                           and not yet running -> ms its hold ends (gone after that)
-- KEYS[2]  ps:out:router    the sender that routes (one at a time: the others would only
--                           lose the route script's cursor check), expiring with its hold
-- ARGV: action (kick | take | hold | release), the sender's id, ttl ms, cap
-- Returns 1 when done, 0 when not (kick: `cap` senders queued or running already; take:
-- as many running; hold: this sender's hold ended, another may have its place). `hold`
-- returns 2 when the sender also holds the router's role (taken when free).
local now = clock_ms()
local action, me, ttl, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if action == 'kick' then
  if redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
  redis.call('ZADD', KEYS[1], now + ttl, 'kicked:' .. me)
  return 1
elseif action == 'take' then
  if redis.call('ZSCORE', KEYS[1], me) then
    redis.call('ZADD', KEYS[1], now + ttl, me)
    return 1
  end
  local kicked = redis.call('ZRANGEBYLEX', KEYS[1], '[kicked:', '(kicked;', 'LIMIT', 0, 1)
  if kicked[1] then
    redis.call('ZREM', KEYS[1], kicked[1])
  elseif redis.call('ZCARD', KEYS[1]) >= cap then
    return 0
  end
  redis.call('ZADD', KEYS[1], now + ttl, me)
  return 1
elseif action == 'hold' then
  if not redis.call('ZSCORE', KEYS[1], me) then return 0 end
  redis.call('ZADD', KEYS[1], now + ttl, me)
  local router = redis.call('GET', KEYS[2])
  if router and router ~= me then return 1 end
  redis.call('SET', KEYS[2], me, 'PX', ttl)
  return 2
end
if redis.call('GET', KEYS[2]) == me then redis.call('DEL', KEYS[2]) end
return redis.call('ZREM', KEYS[1], me)
