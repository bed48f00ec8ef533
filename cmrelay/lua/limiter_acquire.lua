-- One grant of the global gate: not blocked, an in-flight slot free, and the GCRA due time
-- reached. All three are checked before anything is taken, so a refusal costs nothing.
-- Times in integer microseconds of the Redis clock (one clock for every host).
-- KEYS: rate_bucket, in_flight, blocked_until, backfill_bucket, live_waiting
-- ARGV: rate, max_in_flight, token, slot_ttl_us, recover_per_second, tolerance_us, lane, backfill_share, live_hold_ms
-- rate_bucket is a HASH (tat, factor, changed), in_flight a ZSET of slot token -> deadline,
-- blocked_until a STRING, backfill_bucket a HASH (tat), live_waiting a STRING with a PX TTL.
-- lane "backfill": while live_waiting exists, a second GCRA at backfill_share of the rate
-- applies too, so live traffic keeps the rest; a "live" grant renews live_waiting. Lane
-- "started" (the later requests of a backfill delivery that has begun) takes neither: a
-- delivery once started finishes at the full rate, so it frees its worker thread soon.
-- Reply: {1, granted_at_us} or {0, wait_us}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return {0, blocked - now} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return {0, 20000} end
local st = redis.call('HMGET', KEYS[1], 'tat', 'factor', 'changed')
local tat = tonumber(st[1] or '0')
local factor = tonumber(st[2] or '1')
if factor < 1 then
  -- additive increase: back to the full rate at ARGV[5] of it per second since the last cut
  factor = math.min(1, factor + (now - tonumber(st[3] or '0')) / 1000000 * tonumber(ARGV[5]))
end
-- A grant may come up to `tol` early, and the next due time follows the schedule (tat), not
-- the moment the waiter woke up: otherwise every waiter's wake-up lag (sleep overshoot, the
-- round trip) is added to every interval and the rate is never reached (measured: 37.9/s of 39).
local tol = tonumber(ARGV[6])
if tat - tol > now then return {0, tat - tol - now} end
-- Spacing of at least (1e6 + tol)/rate us on the schedule, with grants at most tol early, means
-- `rate` consecutive grants span at least 1 s: no 1 s window ever holds more than `rate` grants.
local rate = tonumber(ARGV[1]) * factor
local lane_tat = nil
if ARGV[7] == 'backfill' then
  if redis.call('EXISTS', KEYS[5]) == 1 then
    lane_tat = tonumber(redis.call('HGET', KEYS[4], 'tat') or '0')
    if lane_tat - tol > now then return {0, lane_tat - tol - now} end
  end
elseif ARGV[7] == 'live' then
  redis.call('SET', KEYS[5], '1', 'PX', ARGV[9])
end
local interval = math.ceil((1000000 + tol) / rate)
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', math.max(tat, now) + interval))
if lane_tat then
  local lane_interval = math.ceil((1000000 + tol) / (rate * tonumber(ARGV[8])))
  redis.call('HSET', KEYS[4], 'tat', string.format('%.0f', math.max(lane_tat, now) + lane_interval))
end
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[4])), ARGV[3])
return {1, now}
