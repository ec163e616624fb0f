-- The outbox's one sender at a time (partnersync/outbound.py, Outbox.runner).
-- KEYS[1]  ps:out:runner   the sender job's id holding the outbox, or 'kicked' while one
--                          is queued; expires when its holder stops extending it
-- ARGV: action (take | hold | release | kick), the sender's id, ttl ms
-- Returns 1 when done, 0 when not (held by another; kick: one is queued or running).
local current = redis.call('GET', KEYS[1])
local action, me, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
if action == 'kick' then
  if current then return 0 end
  redis.call('SET', KEYS[1], 'kicked', 'PX', ttl)
  return 1
elseif action == 'take' then
  if current and current ~= 'kicked' and current ~= me then return 0 end
  redis.call('SET', KEYS[1], me, 'PX', ttl)
  return 1
elseif action == 'hold' then
  if current ~= me then return 0 end
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
elseif current == me then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
