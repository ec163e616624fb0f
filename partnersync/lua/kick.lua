-- Start a drain job if an entity is due (or `force`) and fewer than `cap` are live.
-- KEYS[1..7]  as in drainer.lua
-- ARGV: now_iso, cap, reserve_ms, force (0|1)
-- Returns the new job's id, false, or 'notpl'.
local now_ms, now_iso, cap, reserve_ms = clock_ms(), ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] ~= '1' and #redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, 1) == 0 then
  return false
end
return ensure_drainer(now_ms, now_iso, cap, reserve_ms)
