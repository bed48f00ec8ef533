-- Take ('acquire') or renew ('renew') an entity lease, and keep the entity in the due set at
-- now + claim timeout while we hold it: if this worker dies, the entity comes back by itself.
-- KEYS: lease, due
-- ARGV: mode, token, ttl_ms, entity, claim_seconds
if ARGV[1] == 'acquire' then
  if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
else
  if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[2], string.format('%.6f', now + tonumber(ARGV[5])), ARGV[4])
return 1
