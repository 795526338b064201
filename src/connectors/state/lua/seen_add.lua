-- Remember an id (SET NX with the logical expiry as value). KEYS[1] = id.
-- ARGV: clock, ttl, grace. Returns 1 the first time within ttl, else 0.
local now = clock(ARGV[1])
local ttl, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local e = redis.call('GET', KEYS[1])
if e and tonumber(e) > now then return 0 end
redis.call('SET', KEYS[1], fmt(now + ttl), 'PX', math.max(1, math.ceil((ttl + grace) * 1000)))
return 1
