-- SET a key only while `me` still holds an entity's lease: a worker whose lease expired
-- mid-request must not overwrite what a successor wrote.
-- KEYS[1] ps:lease:<entity>   the lease
-- KEYS[2] the key to set
-- ARGV: me, value
-- Returns 1 when written, else 0.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
