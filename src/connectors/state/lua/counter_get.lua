-- A counter's value, 0 when missing or expired (read only). KEYS[1] = hash. ARGV: clock.
local now = clock(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'v', 'e')
if not h[1] or tonumber(h[2]) <= now then return 0 end
return tonumber(h[1])
