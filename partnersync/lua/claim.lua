-- Lease up to `batch` due entities for drain job `me`.
-- KEYS[1] ps:dirty        zset entity key -> ms when it is due
-- KEYS[2] ps:drainers     zset drain job id -> ms its slot expires
-- KEYS[3] ps:lease:       prefix: an entity's lease (holder's job id, PX)
-- KEYS[4] ps:claims:      prefix: an entity's claims since its last completion
-- KEYS[5] ps:events:      prefix: an entity's list of pending delivery ids
-- (prefixes: which entities is decided here, from the dirty set)
-- ARGV: me, batch, lease_ms, drainer_ttl_ms, max_events
-- Returns a flat list {entity, {delivery ids...}, ...}, at most max_events ids an entity
-- (the rest wait for the next claim: a worker's memory stays bounded); an empty list means
-- nothing is claimable, and the drainer has been deregistered in the same step (so an
-- event that arrives right after sees fewer live drainers and starts one). Each claim is
-- counted until COMPLETE: a count above 1 at claim time is an attempt that crashed or
-- lost its lease.
local me, now_ms, batch = ARGV[1], clock_ms(), tonumber(ARGV[2])
local lease_ms, drainer_ttl, max_events = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, batch * 4)
local out = {}
local claimed = 0
for _, e in ipairs(due) do
  if claimed >= batch then break end
  if redis.call('SET', KEYS[3] .. e, me, 'NX', 'PX', lease_ms) then
    redis.call('INCR', KEYS[4] .. e)
    out[#out + 1] = e
    out[#out + 1] = redis.call('LRANGE', KEYS[5] .. e, 0, max_events - 1)
    redis.call('ZADD', KEYS[1], now_ms + lease_ms, e)
    claimed = claimed + 1
  end
end
if claimed == 0 then
  redis.call('ZREM', KEYS[2], me)
else
  redis.call('ZADD', KEYS[2], now_ms + drainer_ttl, me)
end
return out
