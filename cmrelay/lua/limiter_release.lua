-- Give one in-flight slot back.
-- KEYS: in_flight
-- ARGV: token
return redis.call('ZREM', KEYS[1], ARGV[1])
