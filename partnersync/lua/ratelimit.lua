-- Take one request from every bucket a request counts against, or none (GCRA: requests
-- are paced at the bucket's rate, in bursts up to its capacity).
-- KEYS[1..n]  ps:rate:<partner>:<dimension>:<scope>  each bucket's theoretical arrival time (ms)
-- ARGV: per bucket, its emission interval in ms (period / limit) and its capacity in ms
-- (the burst it allows, as time: bursts of capacity / interval requests)
-- Returns 0 when taken, else the ms until every bucket would allow it (nothing taken).
local now = clock_ms()
local new, wait = {}, 0
for i = 1, #KEYS do
  local interval, capacity = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or now), now)
  local allowed_at = tat + interval - capacity
  if allowed_at > now then wait = math.max(wait, allowed_at - now) end
  new[i] = tat + interval
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], new[i], 'PX', math.max(1, new[i] - now))
end
return 0
