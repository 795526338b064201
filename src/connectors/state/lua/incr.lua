-- Add to a counter (INCRBY + EXPIRE from the first increment). KEYS[1] = hash {v, e}.
-- ARGV: clock, amount, ttl, grace. Returns the new value.
local now = clock(ARGV[1])
local amount, ttl, grace = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'v', 'e')
if not h[1] or tonumber(h[2]) <= now then
  redis.call('HSET', KEYS[1], 'v', amount, 'e', fmt(now + ttl))
  expire_in(KEYS[1], ttl + grace)
  return amount
end
return redis.call('HINCRBY', KEYS[1], 'v', amount)
