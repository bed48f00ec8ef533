-- Push every envelope of one request onto the ingest list, or none of them.
-- KEYS: ingest
-- ARGV: high_water, ... per envelope: envelope
-- Returns the new length, or -1 (nothing pushed) when the list is at or above the mark.
-- One script = one atomic step: no other client sees half a request queued.
local length = redis.call('LLEN', KEYS[1])
if length >= tonumber(ARGV[1]) then
  return -1
end
local chunk = 1000  -- unpack() is bounded by Lua's C stack; a batch holds at most 2,500
for first = 2, #ARGV, chunk do
  length = redis.call('LPUSH', KEYS[1], unpack(ARGV, first, math.min(first + chunk - 1, #ARGV)))
end
return length
