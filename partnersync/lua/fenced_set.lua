-- HSET a field only while `me` still holds an entity's lease: a worker whose lease expired
-- mid-request must not overwrite what a successor wrote.
-- KEYS[1] ps:lease:<entity>   the lease
-- KEYS[2] the hash to set the field in
-- KEYS[3] the value's key of its own in a store written before the hash (deleted)
-- ARGV: me, field, value
-- Returns 1 when written, else 0.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('DEL', KEYS[3])
return 1
