-- Replay one dead letter at most once: flip its status and queue its envelopes in one step.
-- KEYS: dlq_status, ingest
-- ARGV: entry_id, ... per envelope: envelope (already flagged replay)
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'dead' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'replayed')
for i = 2, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end
return 1
