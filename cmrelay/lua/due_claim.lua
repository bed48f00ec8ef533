-- Claim up to ARGV[1] due entities: re-score each to now + claim timeout, so that if the deliver
-- task we are about to publish is lost, the entity is due again by itself.
-- KEYS: due
-- ARGV: limit, claim_seconds
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local entities = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now),
  'LIMIT', 0, tonumber(ARGV[1]))
local later = string.format('%.6f', now + tonumber(ARGV[2]))
for _, entity in ipairs(entities) do redis.call('ZADD', KEYS[1], later, entity) end
return entities
