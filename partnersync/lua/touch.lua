-- Mark entities due without an event (a sweeper's "look again"), starting a drain job.
-- KEYS[1..7]  as in drainer.lua
-- ARGV: n_entities, entity keys..., now_iso, cap, reserve_ms
-- Returns the new job's id, false, or 'notpl'.
local n = tonumber(ARGV[1])
local base = n + 1
local now_ms, now_iso, cap = clock_ms(), ARGV[base + 1], tonumber(ARGV[base + 2])
local reserve_ms = tonumber(ARGV[base + 3])
for i = 1, n do redis.call('ZADD', KEYS[1], 'LT', now_ms, ARGV[1 + i]) end
return ensure_drainer(now_ms, now_iso, cap, reserve_ms)
