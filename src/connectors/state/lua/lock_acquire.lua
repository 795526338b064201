-- Take a lease. KEYS[1] = lease hash {f = fencing counter, o = owner, e = expires at}.
-- ARGV: clock, owner, ttl, keep (how long the fencing counter outlives an idle lease).
-- Returns the fencing token, or nil when another owner holds a live lease.
local now = clock(ARGV[1])
local owner, ttl, keep = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'o', 'e', 'f')
if h[1] and tonumber(h[2]) > now then
  if h[1] ~= owner then return false end
  redis.call('HSET', KEYS[1], 'e', fmt(now + ttl))
  expire_in(KEYS[1], math.max(ttl, keep))
  return tonumber(h[3])
end
local token = redis.call('HINCRBY', KEYS[1], 'f', 1)
redis.call('HSET', KEYS[1], 'o', owner, 'e', fmt(now + ttl))
expire_in(KEYS[1], math.max(ttl, keep))
return token
