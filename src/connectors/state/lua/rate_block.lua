-- Admit nothing on KEYS[1] until now + seconds. ARGV: clock, seconds, grace.
local now = clock(ARGV[1])
local seconds, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local tat, blocked = bucket_get(KEYS[1])
if not tat then
  bucket_set(KEYS[1], now, now + seconds, seconds + grace)
  return 1
end
blocked = math.max(blocked, now + seconds)
bucket_set(KEYS[1], tat, blocked, math.max(tat, blocked) - now + grace)
return 1
