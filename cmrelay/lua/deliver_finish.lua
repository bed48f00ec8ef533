-- Finish one delivery attempt atomically, and only while we still hold the lease: drain the
-- events read (never ones that arrived meanwhile), commit the attribute clock, record or clear
-- the retry state, write a dead letter, set the pause, bump counters, re-schedule, release.
-- KEYS: lease, mailbox, due, clock, retry, counters, dlq_index, dlq_entry, dlq_status, pause,
--       dlq_reasons, due_live
-- ARGV: token, entity, drain, delay ('' = due again after coalesce if events remain),
--       coalesce, retry_mode (clear | record | keep), now (worker clock, for the retry state),
--       last_error, dlq_id ('' = no dead letter), dlq_json, dlq_ttl, pause_reason ('' = none),
--       clock_json, counters_json, attempt_json ('' = none; kept as field attempt:<n> for the
--       DLQ's attempt history), dlq_reason (for the metrics' DLQ size by reason)
-- The live hint (`due_live`) follows the entity's new due time down (never up: the hint may say
-- earlier than due, never later) and goes with it when the entity is unscheduled.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local drain = tonumber(ARGV[3])
if drain > 0 then redis.call('LTRIM', KEYS[2], drain, -1) end
for k, v in pairs(cjson.decode(ARGV[13])) do redis.call('HSET', KEYS[4], k, v) end
local mode = ARGV[6]
if mode == 'clear' then
  redis.call('DEL', KEYS[5])
elseif mode == 'record' then
  local n = redis.call('HINCRBY', KEYS[5], 'attempts', 1)
  if ARGV[15] ~= '' then redis.call('HSET', KEYS[5], 'attempt:' .. n, ARGV[15]) end
  redis.call('HSETNX', KEYS[5], 'first_failure', ARGV[7])
  redis.call('HSET', KEYS[5], 'last_failure', ARGV[7], 'last_error', ARGV[8])
end
if ARGV[9] ~= '' then
  redis.call('SET', KEYS[8], ARGV[10], 'EX', ARGV[11])
  redis.call('HSET', KEYS[9], ARGV[9], 'dead')
  redis.call('ZADD', KEYS[7], ARGV[7], ARGV[9])
  redis.call('HSET', KEYS[11], ARGV[9], ARGV[16])
end
if ARGV[12] ~= '' then redis.call('SET', KEYS[10], ARGV[12]) end
for k, v in pairs(cjson.decode(ARGV[14])) do redis.call('HINCRBY', KEYS[6], k, v) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local next_at = nil
if ARGV[4] ~= '' then
  next_at = string.format('%.6f', now + tonumber(ARGV[4]))
elseif redis.call('LLEN', KEYS[2]) > 0 then
  next_at = string.format('%.6f', now + tonumber(ARGV[5]))
end
if next_at then
  redis.call('ZADD', KEYS[3], next_at, ARGV[2])
  redis.call('ZADD', KEYS[12], 'XX', 'LT', next_at, ARGV[2])
else
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[12], ARGV[2])
end
redis.call('DEL', KEYS[1])
return 1
