-- Claim due entities, live ones first: re-score each to now + claim timeout, so that if the
-- deliver task we are about to publish is lost, the entity is due again by itself.
-- `due` stays the only schedule; `due_live` is a hint (entities with live events, scored with
-- a time at or before their due time) that says which due entities to take first.
-- KEYS: due, due_live
-- ARGV: limit (entities taken in due order after the live ones), live_limit, claim_seconds
-- Reply: {live entities, other entities}; an entity of the second list still in the hint
-- (past the live scan) is moved to the first.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now_s = string.format('%.6f', now)
local later = string.format('%.6f', now + tonumber(ARGV[3]))
local live, other = {}, {}
local live_limit = tonumber(ARGV[2])
if live_limit > 0 then
  -- A hinted entity not due yet (coalescing, leased, backing off) gets its due score in the
  -- hint, so it leaves this window until then and the scan stays bounded.
  local hinted = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_s, 'LIMIT', 0, live_limit * 2)
  for _, entity in ipairs(hinted) do
    if #live >= live_limit then break end
    local score = redis.call('ZSCORE', KEYS[1], entity)
    if not score then
      redis.call('ZREM', KEYS[2], entity)  -- delivered and unscheduled: a stale hint
    elseif tonumber(score) <= now then
      redis.call('ZADD', KEYS[1], later, entity)
      live[#live + 1] = entity
    else
      redis.call('ZADD', KEYS[2], score, entity)
    end
  end
end
local limit = tonumber(ARGV[1])
if limit > 0 then
  local entities = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s, 'LIMIT', 0, limit)
  for _, entity in ipairs(entities) do
    redis.call('ZADD', KEYS[1], later, entity)
    if redis.call('ZSCORE', KEYS[2], entity) then
      live[#live + 1] = entity
    else
      other[#other + 1] = entity
    end
  end
end
return {live, other}
