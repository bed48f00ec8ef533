-- Commit one accepted batch atomically: per event, the dedupe mark and the mailbox (or waiting
-- list) write happen together, so a mark never exists without its event queued.
-- KEYS: claims_index, claim, due, counters, user_groups, due_live,
--       ... per event: dedupe, target, waiting, trace
-- ARGV: token, coalesce_seconds, dedupe_ttl, waiting_ttl, trace_ttl,
--       ... per event: kind (m = mailbox, w = wait for a group, c = count only), payload,
--       entity, counter, link_user, link_group, replay ('1' skips the dedupe check), info,
--       live ('1': a live, not backfilled, event)
-- `trace` is the event's trail (`cmrelay trace`), written when trace_ttl > 0 and info (a JSON
-- object: source, origin, type, received_at) is not empty; a duplicate only counts on it.
-- `target` is the entity's mailbox (kind m) or the user's waiting list (kind w); `waiting` is
-- the list of Identify events held for link_user, released into target when a Group links it.
-- A live event also puts its entity in `due_live` (the scheduler's hint to claim it first),
-- scored at most its due time; `due` stays the schedule.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return -1  -- our claim was reaped (we were too slow): the batch is back on the queue
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due_at = string.format('%.6f', now + tonumber(ARGV[2]))
local ttl, wttl, trace_ttl = ARGV[3], ARGV[4], tonumber(ARGV[5])
local n = (#ARGV - 5) / 9
local queued = 0
local function trail(key, info, state, entity)
  redis.call('HSET', key, 'info', info, 'state', state, 'accepted_at', string.format('%.3f', now))
  if entity ~= '' then redis.call('HSET', key, 'entity', entity) end
  redis.call('EXPIRE', key, trace_ttl)
end
for i = 0, n - 1 do
  local a, k = 5 + i * 9, 6 + i * 4
  local kind, payload, entity, counter = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local info = ARGV[a + 8]
  local tracing = trace_ttl > 0 and info ~= ''
  if kind == 'c' then
    redis.call('HINCRBY', KEYS[4], counter, 1)
    if tracing then trail(KEYS[k + 4], info, counter, '') end
  else
    local fresh
    if ARGV[a + 7] == '1' then
      redis.call('SET', KEYS[k + 1], '1', 'EX', ttl)
      fresh = true
    else
      fresh = redis.call('SET', KEYS[k + 1], '1', 'NX', 'EX', ttl)
    end
    if not fresh then
      redis.call('HINCRBY', KEYS[4], 'duplicate', 1)
      if tracing then
        redis.call('HINCRBY', KEYS[k + 4], 'duplicates', 1)
        redis.call('EXPIRE', KEYS[k + 4], trace_ttl)
      end
    else
      queued = queued + 1
      if tracing then trail(KEYS[k + 4], info, counter, entity) end
      redis.call('RPUSH', KEYS[k + 2], payload)
      redis.call('HINCRBY', KEYS[4], counter, 1)
      if kind == 'm' then
        redis.call('ZADD', KEYS[3], 'NX', due_at, entity)
        if ARGV[a + 9] == '1' then
          redis.call('ZADD', KEYS[6], 'LT', redis.call('ZSCORE', KEYS[3], entity), entity)
        end
      else
        redis.call('EXPIRE', KEYS[k + 2], wttl)
      end
      if ARGV[a + 5] ~= '' then
        redis.call('HSET', KEYS[5], ARGV[a + 5], ARGV[a + 6])
        local waiting = redis.call('LRANGE', KEYS[k + 3], 0, -1)
        if #waiting > 0 then
          for j = 1, #waiting, 1000 do  -- unpack() is limited to a few thousand values
            redis.call('RPUSH', KEYS[k + 2], unpack(waiting, j, math.min(j + 999, #waiting)))
          end
          redis.call('DEL', KEYS[k + 3])
          redis.call('HINCRBY', KEYS[4], 'released_from_wait', #waiting)
        end
      end
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return queued
