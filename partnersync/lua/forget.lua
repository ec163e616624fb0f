-- Forget evicted entities whose tombstone outlived PARTNERSYNC_TOMBSTONE_DAYS (store.forget).
-- KEYS[1] ps:gone-ix                  zset entity key -> ms it was evicted
-- then 3 per entity: ps:gone:<bucket> (its tombstone's hash), ps:links:<bucket> (its
--   externalId link's hash), ps:cmd-links:<bucket> (its link to the command that
--   created it: field its entity key)
-- ARGV: 2 per entity: its entity key, its externalId link's field ('' for none)
-- An entity stored again since it was evicted has no tombstone: its links stay.
-- Returns how many tombstones went.
local forgotten = 0
for i = 0, (#KEYS - 1) / 3 - 1 do
  local k, a = 2 + i * 3, 1 + i * 2
  local key, field = ARGV[a], ARGV[a + 1]
  if redis.call('HDEL', KEYS[k], key) == 1 then
    if field ~= '' and redis.call('HGET', KEYS[k + 1], field) == key then
      redis.call('HDEL', KEYS[k + 1], field)
    end
    redis.call('HDEL', KEYS[k + 2], key)
    forgotten = forgotten + 1
  end
  redis.call('ZREM', KEYS[1], key)
end
return forgotten
