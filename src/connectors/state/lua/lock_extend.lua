-- Extend the owner's live lease. KEYS[1] = lease hash. ARGV: clock, owner, ttl, keep.
local now = clock(ARGV[1])
local owner, ttl, keep = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'o', 'e')
if not h[1] or h[1] ~= owner or tonumber(h[2]) <= now then return 0 end
redis.call('HSET', KEYS[1], 'e', fmt(now + ttl))
expire_in(KEYS[1], math.max(ttl, keep))
return 1
