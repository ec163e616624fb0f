-- Accept a batch of events (group commit: the receiver's requests of one moment).
-- KEYS[1..7]  as in drainer.lua
-- KEYS[8]     ps:counters          hash of plain counters
-- KEYS[9]     ps:last-delivery     hash event type -> ms of its last accepted delivery
-- KEYS[10]    ps:inbox-blocks      counter: the last inbox block made
-- KEYS[11]    ps:events:           prefix: an entity's list of pending delivery ids
-- KEYS[12]    ps:cool:             prefix: an entity's cooldown after a reconcile (its
--                                  value: the cooldown's end, ms; it expires then)
-- KEYS[13]    ps:inbox-block:      prefix: one block of the inbox (partnersync/inbox.py)
-- KEYS[14]    ps:resends:          prefix: a delivery's resends (answered as duplicates)
-- KEYS[15..]  one per event: its dedupe key ('' = none)
-- ARGV: dedupe_ttl, inbox_ttl, now_iso, cap, reserve_ms, source, n_events,
--       then per event: label (its name in the counters and in ps:last-delivery: bounded
--       by the caller), record (inbox.py's msgpack array of 4: type, entities, body, and
--       the headers left off), headers (msgpack), n_entities, entity keys...
-- `source` prefixes the counters: '' for deliveries, 'recovered-' for sweeper ingestion.
-- Returns {accepted_1, delivery_id_1, ..., accepted_n, delivery_id_n, drainer}: accepted
-- is 1, or 0 for a duplicate (with the original delivery's id); drainer is 'notpl' when
-- the job template must be installed.
--
-- The batch's deliveries are archived in one value per block of BLOCK ids, not one key
-- each: Redis charges a new key several µs (and ~100 B), the dominant cost of intake.
-- A delivery id is `{ms:013d}-{seq}` with seq = block * BLOCK + its offset in the block.
local BLOCK = 1024
local RESENDS_KEPT = 20  -- inbox.py's RESENDS_KEPT
local dedupe_ttl, inbox_ttl, now_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), clock_ms()
local now_iso, cap, reserve_ms = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local source, n_events = ARGV[6], tonumber(ARGV[7])
-- Redis charges each redis.call a few µs: what can be done once per batch is.
local out = {}
local wake = false
local counts, last = {}, {}  -- written once per batch, not per event
local dedupe_keys = {}
for ev = 1, n_events do dedupe_keys[ev] = KEYS[14 + ev] ~= '' and KEYS[14 + ev] or KEYS[13] end
local seen = redis.call('MGET', unpack(dedupe_keys))  -- KEYS[13] (a prefix) stands for none
local fresh = {}  -- dedupe key -> delivery id, for a duplicate within this batch
local n_blocks = math.floor((n_events - 1) / BLOCK) + 1
local last_block = redis.call('INCRBY', KEYS[10], n_blocks)
local first_block = last_block - n_blocks + 1
local blocks = {}  -- block -> its msgpack parts (offset, record, headers, ...)
local i = 8
local pushed, scores = {}, {}  -- entities given a delivery: their ZADD score, once
for ev = 1, n_events do
  local dedupe_key = KEYS[14 + ev]
  local label, record, headers, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local first = i + 4
  i = first + n
  local original = dedupe_key ~= '' and (fresh[dedupe_key] or seen[ev])
  if original then
    local c = source .. 'duplicate:' .. label
    counts[c] = (counts[c] or 0) + 1
    -- every attempt stays visible: [receivedAt, headers], the latest RESENDS_KEPT
    local resends = KEYS[14] .. original
    redis.call('RPUSH', resends, string.char(0x92) .. cmsgpack.pack(now_ms) .. headers)
    redis.call('LTRIM', resends, -RESENDS_KEPT, -1)
    redis.call('EXPIRE', resends, inbox_ttl)
    out[#out + 1] = 0
    out[#out + 1] = original
  else
    local block = first_block + math.floor((ev - 1) / BLOCK)
    local offset = (ev - 1) % BLOCK
    local delivery_id = string.format('%013d-%d', now_ms, block * BLOCK + offset)
    if dedupe_key ~= '' then
      redis.call('SET', dedupe_key, delivery_id, 'EX', dedupe_ttl)
      fresh[dedupe_key] = delivery_id
    end
    local parts = blocks[block]
    if not parts then
      parts = {}
      blocks[block] = parts
    end
    parts[#parts + 1] = cmsgpack.pack(offset)
    parts[#parts + 1] = record
    parts[#parts + 1] = headers  -- the record's 4th element
    for k = first, first + n - 1 do
      local e = ARGV[k]
      redis.call('RPUSH', KEYS[11] .. e, delivery_id)
      if not scores[e] then
        pushed[#pushed + 1] = e
        scores[e] = true
      end
    end
    if source == '' then last[label] = now_ms end
    local c = source .. (n > 0 and 'accepted:' or 'parked:') .. label
    counts[c] = (counts[c] or 0) + 1
    if n > 0 then wake = true end
    out[#out + 1] = 1
    out[#out + 1] = delivery_id
  end
end
-- each block: a msgpack array [receivedAt, offset, record, offset, record, ...]
for block, parts in pairs(blocks) do
  local n = #parts / 3 * 2 + 1  -- elements: receivedAt, then offset and record per event
  local header = n < 16 and string.char(0x90 + n)
    or string.char(0xdc, math.floor(n / 256), n % 256)  -- n <= 2 * BLOCK + 1
  redis.call('SET', KEYS[13] .. block, header .. cmsgpack.pack(now_ms) .. table.concat(parts),
             'EX', inbox_ttl)
end
if #pushed > 0 then
  -- reconciled moments ago: wait out the cooldown so a burst costs one more GET, not many
  local cool_keys = {}
  for k = 1, #pushed do cool_keys[k] = KEYS[12] .. pushed[k] end
  local cools = redis.call('MGET', unpack(cool_keys))  -- each holds its end, ms
  local zadd = {'ZADD', KEYS[1], 'LT'}
  for k = 1, #pushed do
    local until_ms = tonumber(cools[k]) or 0
    zadd[#zadd + 1] = until_ms > now_ms and until_ms or now_ms
    zadd[#zadd + 1] = pushed[k]
  end
  redis.call(unpack(zadd))
end
for c, k in pairs(counts) do redis.call('HINCRBY', KEYS[8], c, k) end
for t, ms in pairs(last) do redis.call('HSET', KEYS[9], t, ms) end
out[#out + 1] = wake and ensure_drainer(now_ms, now_iso, cap, reserve_ms) or false
return out
