-- Read entities: each one's value, else its tombstone (store.read_queue).
-- KEYS: 3 per entity: ps:entities:<partner>:<kind>:<bucket> (its value's hash),
--   ps:entity:<key> (its value as a key of its own, in a store written before the buckets),
--   ps:gone:<bucket> (its tombstone's hash)
-- ARGV: 2 per entity: its id (the value's field), its entity key (the tombstone's field)
-- Returns 3 per entity: its value or nil; its tombstone (nil when it has a value); 1 when
-- the value is an older store's key of its own (the next write moves it), else nil.
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local k, a = 1 + i * 3, 1 + i * 2
  local value = redis.call('HGET', KEYS[k], ARGV[a])
  local older = false
  if not value then
    value = redis.call('GET', KEYS[k + 1])
    older = value and 1
  end
  out[3 * i + 1] = value
  out[3 * i + 2] = (not value) and redis.call('HGET', KEYS[k + 2], ARGV[a + 1])
  out[3 * i + 3] = older
end
return out
