-- Forget evicted entities whose tombstone outlived PARTNERSYNC_TOMBSTONE_DAYS (store.forget).
-- KEYS[1] ps:gone-ix                  zset entity key -> ms it was evicted
-- then 4 per entity: ps:gone:<bucket> (its tombstone's hash), ps:links:<bucket> (its
--   externalId link's hash), ps:cmd-links:<partner>:<kind>:<bucket> (its link to the
--   command that created it), ps:cmd-link:<key> (that link in an older store)
-- ARGV: 3 per entity: its entity key, its externalId link's field ('' for none), its id
--   (its command link's field)
-- An entity stored again since it was evicted has no tombstone: its links stay.
-- Returns how many tombstones went.
local forgotten = 0
for i = 0, (#KEYS - 1) / 4 - 1 do
  local k, a = 2 + i * 4, 1 + i * 3
  local key, field, id = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if redis.call('HDEL', KEYS[k], key) == 1 then
    if field ~= '' then  -- the link, unless another entity's now (stored less its partner)
      local linked = redis.call('HGET', KEYS[k + 1], field)
      if linked == key or linked == string.sub(key, string.find(key, ':', 1, true) + 1) then
        redis.call('HDEL', KEYS[k + 1], field)
      end
    end
    redis.call('HDEL', KEYS[k + 2], id)
    redis.call('DEL', KEYS[k + 3])
    forgotten = forgotten + 1
  end
  redis.call('ZREM', KEYS[1], key)
end
return forgotten
