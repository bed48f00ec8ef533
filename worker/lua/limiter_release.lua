-- KEYS: in_flight   ARGV: slot token
return redis.call('ZREM', KEYS[1], ARGV[1])
