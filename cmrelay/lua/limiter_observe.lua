-- Feedback from a response: 429 halves the shared rate (at most once a second, so a burst of
-- 429s from many workers does not collapse it) and blocks everyone for Retry-After or a default;
-- 503 (too many parallel connections) only blocks briefly.
-- KEYS: rate_bucket, blocked_until
-- ARGV: status, block_us, decrease, min_factor, recover_per_second
local status = tonumber(ARGV[1])
if status ~= 429 and status ~= 503 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if status == 429 then
  local st = redis.call('HMGET', KEYS[1], 'factor', 'changed')
  local factor = tonumber(st[1] or '1')
  local changed = tonumber(st[2] or '0')
  if factor < 1 then
    factor = math.min(1, factor + (now - changed) / 1000000 * tonumber(ARGV[5]))
  end
  if now - changed > 1000000 then
    factor = math.max(tonumber(ARGV[4]), factor * tonumber(ARGV[3]))
    redis.call('HSET', KEYS[1], 'factor', tostring(factor), 'changed', string.format('%.0f', now))
  end
end
local until_us = now + tonumber(ARGV[2])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if until_us > blocked then
  redis.call('SET', KEYS[2], string.format('%.0f', until_us), 'PX',
    string.format('%.0f', tonumber(ARGV[2]) / 1000 + 1000))
end
return 1
