-- A partner answered 429 naming a spent dimension: no process may send against that
-- bucket before the partner's reset.
-- KEYS[1]  ps:rate:<partner>:<dimension>:<scope>
-- ARGV: the reset in ms from now, the bucket's capacity in ms, its emission interval in ms
-- Returns the bucket's new theoretical arrival time (ms).
local now = clock_ms()
local reset, capacity, interval = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- ratelimit.lua allows a request once tat + interval - capacity <= now
local blocked = now + reset + capacity - interval
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), blocked)
redis.call('SET', KEYS[1], tat, 'PX', math.max(1, tat - now))
return tat
