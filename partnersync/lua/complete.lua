-- Release an entity after its reconcile, if `me` still holds its lease.
-- KEYS[1] ps:dirty              zset entity key -> ms when it is due
-- KEYS[2] ps:lease:<entity>     its lease
-- KEYS[3] ps:events:<entity>    its pending delivery ids
-- KEYS[4] ps:attempts:<entity>  failed attempts in a row
-- KEYS[5] ps:cool:<entity>      its cooldown (value: its end, ms)
-- KEYS[6] ps:claims:<entity>    claims since its last completion
-- ARGV: entity, me, n_done, outcome ('ok'|'retry'|'poll'|'dead'), delay_ms (retry, poll:
--       due this long from now), cooldown_ms (after a reconcile, further events wait)
-- Returns 1 when this job still held the lease, else 0 (nothing changed).
local e, me, n_done, outcome = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local now_ms, cooldown = clock_ms(), tonumber(ARGV[6])
local due_ms = now_ms + tonumber(ARGV[5])
if redis.call('GET', KEYS[2]) ~= me then return 0 end
local events = KEYS[3]
if outcome == 'retry' then
  redis.call('INCR', KEYS[4])
  redis.call('ZADD', KEYS[1], due_ms, e)
elseif outcome == 'poll' then
  -- a polled entity in a non-terminal state: look again at due_ms (now if events wait)
  if n_done > 0 then redis.call('LTRIM', events, n_done, -1) end
  redis.call('DEL', KEYS[4])
  if redis.call('LLEN', events) > 0 then due_ms = now_ms + cooldown end
  redis.call('ZADD', KEYS[1], due_ms, e)
else
  if n_done > 0 then redis.call('LTRIM', events, n_done, -1) end
  redis.call('DEL', KEYS[4])
  if redis.call('LLEN', events) == 0 then
    redis.call('ZREM', KEYS[1], e)
  else
    redis.call('ZADD', KEYS[1], now_ms + cooldown, e)
  end
end
if cooldown > 0 and outcome ~= 'retry' then
  redis.call('SET', KEYS[5], now_ms + cooldown, 'PX', cooldown)  -- its end: intake reads it
end
redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[6])
return 1
