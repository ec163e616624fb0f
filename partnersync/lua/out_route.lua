-- Route changes of the change stream to the endpoints that want them, in stream order.
-- KEYS[1]  ps:out:cursor        the last change id routed ('' / absent: none yet)
-- KEYS[2]  ps:out:q:            prefix of one endpoint's queue for one entity: + `{ep}:{entity}`
-- KEYS[3]  ps:out:due:          prefix: an endpoint's entities with a message to send (zset,
--                               score: when due, ms; a claim moves it to its lease's end)
-- KEYS[4]  ps:out:pending:      prefix: an endpoint's entities by their first queued
--                               change's time, ms (its lag: the oldest)
-- KEYS[5]  ps:out:held:         prefix: an endpoint's entities whose first message is a
--                               dead letter: the rest waits behind it (per-entity order)
-- ARGV: expected cursor, new cursor, n, then per message: endpoint, entity, change ms,
--       message (outbound.py's msgpack)
-- Returns 1, or 0 when the cursor moved meanwhile (another router: nothing written).
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
local now = clock_ms()
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local ep, entity, at, message = ARGV[4 + i * 4], ARGV[5 + i * 4], ARGV[6 + i * 4], ARGV[7 + i * 4]
  local q = KEYS[2] .. ep .. ':' .. entity
  if redis.call('RPUSH', q, message) == 1
      and redis.call('SISMEMBER', KEYS[5] .. ep, entity) == 0 then
    redis.call('ZADD', KEYS[3] .. ep, 'NX', now, entity)
    redis.call('ZADD', KEYS[4] .. ep, 'NX', at, entity)
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
