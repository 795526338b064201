-- Give a lease back, only by its owner. KEYS[1] = lease hash.
-- ARGV: clock ('none' = do not check expiry), owner. Returns 1 if the owner held a live lease.
local h = redis.call('HMGET', KEYS[1], 'o', 'e')
if not h[1] or h[1] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], 'o', 'e')
if ARGV[1] == 'none' then return 1 end
if tonumber(h[2]) > clock(ARGV[1]) then return 1 end
return 0
