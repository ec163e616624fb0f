-- Shared by the scripts that may start a drain job (intake, kick, touch); prepended to
-- each. Their KEYS begin with these seven:
--   KEYS[1] ps:dirty              zset entity key -> ms when it is due
--   KEYS[2] ps:drainers           zset drain job id -> ms its slot expires
--   KEYS[3] ps:seq                counter: ids made inside Redis (drain jobs)
--   KEYS[4] ps:rq-template:<q>    list: the drain job's RQ hash fields (rqbridge.py)
--   KEYS[5] rq:queues             RQ's set of queues
--   KEYS[6] rq:queue:<q>          the RQ queue
--   KEYS[7] rq:job:               RQ's job key prefix (a prefix: the job id is made here)
-- (RQ's names come from RQ itself; see partnersync/rqbridge.py.)

-- Enqueue a drain job when fewer than `cap` are live, from the template; 'notpl' when the
-- template is missing (the caller installs it and kicks).
local function ensure_drainer(now_ms, now_iso, cap, reserve_ms)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
  if redis.call('ZCARD', KEYS[2]) >= cap then return false end
  local tpl = redis.call('LRANGE', KEYS[4], 0, -1)
  if #tpl == 0 then return 'notpl' end
  local id = 'drain-' .. redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], now_ms + reserve_ms, id)
  local fields = {}
  for i = 1, #tpl do
    local v = tpl[i]
    if v == '\0now' then v = now_iso end  -- rqbridge.NOW: RQ's created_at / enqueued_at
    fields[i] = v
  end
  redis.call('HSET', KEYS[7] .. id, unpack(fields))
  redis.call('SADD', KEYS[5], KEYS[6])
  redis.call('RPUSH', KEYS[6], id)
  return id
end
