-- Evict entities in a final (or resting) state past retention, each leaving a tombstone
-- (store.evict).
-- KEYS[1] ps:metrics:entities               hash "partner:kind:status" -> stored count
-- KEYS[2] ps:ix:<partner>:<kind>:<status>   the index they are in: id -> ms of last update
-- KEYS[3] ps:attention                      zset of entities that need a human
-- KEYS[4] ps:gone-ix                        zset entity key -> ms it was evicted
-- KEYS[5] ps:watch                          zset entity key -> ms it is next re-fetched
-- then 4 per entity: ps:entities:<partner>:<kind>:<bucket> (its value's hash),
--   ps:entity:<key> (its value in a store written before the buckets), ps:lease:<key>
--   (held while a reconcile runs), ps:gone:<bucket> (its tombstone's hash)
-- ARGV[1] the count's field; ARGV[2] cutoff ms: an entity updated since stays;
-- then 3 per entity: its id, its entity key, its tombstone (empty: no record was read)
-- An entity a reconcile holds stays (its write decides). Returns how many were evicted.
local cutoff = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local evicted = 0
for i = 0, (#KEYS - 5) / 4 - 1 do
  local k, a = 6 + i * 4, 3 + i * 3
  local id, key, tomb = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score and tonumber(score) < cutoff and redis.call('EXISTS', KEYS[k + 2]) == 0 then
    redis.call('ZREM', KEYS[2], id)
    local held = redis.call('HDEL', KEYS[k], id) + redis.call('DEL', KEYS[k + 1])
    if tomb ~= '' and held > 0 then
      redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
      redis.call('HSET', KEYS[k + 3], key, tomb)
      redis.call('ZADD', KEYS[4], now, key)
      evicted = evicted + 1
    end
    redis.call('ZREM', KEYS[3], key)
    redis.call('ZREM', KEYS[5], key)  -- a resting entity may still be watched
  end
end
return evicted
