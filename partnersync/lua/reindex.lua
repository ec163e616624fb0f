-- Move first-layout entities (one zset of every entity key) into the per-status indexes
-- (store.reindex_first_layout). The status is read with cjson: first-layout values are
-- JSON; a value already rewritten in the current layout was indexed by that write.
-- KEYS[1] ps:entities        the first layout's index: entity key -> ms of last update
-- then 1 per entity: ps:entity:<key>
-- ARGV[1] the indexes' prefix (ps:ix:): the index is named by the status read here;
-- then 5 per entity: entity key, partner, kind, id, ms of last update
for i = 1, #KEYS - 1 do
  local a = 2 + (i - 1) * 5
  local key, partner, kind, id, ms = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local value = redis.call('GET', KEYS[i + 1])
  if value and string.sub(value, 1, 1) == '{' then
    local status = cjson.decode(value)['status']
    redis.call('ZADD', ARGV[1] .. partner .. ':' .. kind .. ':' .. status, ms, id)
  end
  redis.call('ZREM', KEYS[1], key)
end
return #KEYS - 1
