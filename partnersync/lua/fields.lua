-- Read values that are fields of bucket hashes, or keys of their own in a store written
-- before the buckets (commands.queue_read).
-- KEYS: 2 per value: the hash holding it, its key of its own in an older store
-- ARGV: 1 per value: its field
-- Returns each value, or nil.
local out = {}
for i = 1, #ARGV do
  out[i] = redis.call('HGET', KEYS[2 * i - 1], ARGV[i]) or redis.call('GET', KEYS[2 * i])
end
return out
