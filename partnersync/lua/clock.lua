-- Prepended to every script (no keys).
-- One clock: every due time, lease and expiry is Redis's own (TIME), never a process's
-- wall clock. (Effects replication, the default since Redis 5, lets a script write after
-- TIME.)
local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
