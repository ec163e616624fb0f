-- Accept a batch of events (group commit: the receiver's requests of one moment).
-- KEYS[1..7]  as in drainer.lua
-- KEYS[8]     ps:counters          hash of plain counters
-- KEYS[9]     ps:last-delivery     hash event type -> ms of its last accepted delivery
-- KEYS[10]    ps:inbox:            prefix: the inbox record of a delivery (id made here;
--                                  its fields: partnersync/inbox.py)
-- KEYS[11]    ps:events:           prefix: an entity's list of pending delivery ids
-- KEYS[12]    ps:cool:             prefix: an entity's cooldown after a reconcile
-- KEYS[13..]  one per event: its dedupe key ('' = none)
-- ARGV: dedupe_ttl, inbox_ttl, now_iso, cap, reserve_ms, source, n_events,
--       then per event: event_type, label (its name in the counters and in
--       ps:last-delivery: bounded by the caller), body, n_entities, entity keys...
-- `source` prefixes the counters: '' for deliveries, 'recovered-' for sweeper ingestion.
-- Returns {accepted_1, delivery_id_1, ..., accepted_n, delivery_id_n, drainer}: accepted
-- is 1, or 0 for a duplicate (with the original delivery's id); drainer is 'notpl' when
-- the job template must be installed.
local dedupe_ttl, inbox_ttl, now_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), clock_ms()
local now_iso, cap, reserve_ms = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local source, n_events = ARGV[6], tonumber(ARGV[7])
local out = {}
local i = 8
local wake = false
local counts, last = {}, {}  -- written once per batch, not per event
for ev = 1, n_events do
  local dedupe_key = KEYS[12 + ev]
  local event_type, label, body, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local first = i + 4
  i = first + n
  local seen = dedupe_key ~= '' and redis.call('GET', dedupe_key)
  if seen then
    local c = source .. 'duplicate:' .. label
    counts[c] = (counts[c] or 0) + 1
    out[#out + 1] = 0
    out[#out + 1] = seen
  else
    local delivery_id = string.format('%013d-%d', now_ms, redis.call('INCR', KEYS[3]))
    if dedupe_key ~= '' then redis.call('SET', dedupe_key, delivery_id, 'EX', dedupe_ttl) end
    local entities = {}
    for k = 1, n do entities[k] = ARGV[first + k - 1] end
    local inbox = KEYS[10] .. delivery_id
    redis.call('HSET', inbox, 'body', body, 'type', event_type, 'receivedAt', now_ms,
               'entities', table.concat(entities, ' '))
    redis.call('EXPIRE', inbox, inbox_ttl)
    for k = 1, n do
      local e = entities[k]
      redis.call('RPUSH', KEYS[11] .. e, delivery_id)
      -- reconciled moments ago: wait out the cooldown so a burst costs one more GET, not many
      local cool = redis.call('PTTL', KEYS[12] .. e)
      redis.call('ZADD', KEYS[1], 'LT', cool > 0 and now_ms + cool or now_ms, e)
    end
    if source == '' then last[label] = now_ms end
    local c = source .. (n > 0 and 'accepted:' or 'parked:') .. label
    counts[c] = (counts[c] or 0) + 1
    if n > 0 then wake = true end
    out[#out + 1] = 1
    out[#out + 1] = delivery_id
  end
end
for c, k in pairs(counts) do redis.call('HINCRBY', KEYS[8], c, k) end
for t, ms in pairs(last) do redis.call('HSET', KEYS[9], t, ms) end
out[#out + 1] = wake and ensure_drainer(now_ms, now_iso, cap, reserve_ms) or false
return out
