-- Move up to ARGV[1] envelopes (oldest first) from the ingest list into this accepter's claim
-- list, with a deadline, in one step: a crash after this leaves them for the reaper, not lost.
-- KEYS: ingest, claim, claims_index
-- ARGV: limit, token, claim_seconds
local items = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not items then return {} end
redis.call('RPUSH', KEYS[2], unpack(items))
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[3], string.format('%.6f', now + tonumber(ARGV[3])), ARGV[2])
return items
