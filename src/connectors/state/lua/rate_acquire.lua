-- GCRA reservation. KEYS[1] = bucket "<theoretical arrival time> <blocked until>".
-- ARGV: clock, rate, burst, cost, max_wait, grace. Returns the wait, prefixed with 'r' when refused (nothing reserved).
local now = clock(ARGV[1])
local rate, burst, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local max_wait, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
local tat, blocked = bucket_get(KEYS[1])
if not tat then
  tat = now + cost / rate
  bucket_set(KEYS[1], tat, 0, tat - now + grace)
  return '0'
end
local start = math.max(now, blocked, tat - (burst - cost) / rate)
local wait = start - now
if wait > max_wait then
  return 'r' .. fmt(wait)
end
tat = math.max(tat, start) + cost / rate
bucket_set(KEYS[1], tat, blocked, math.max(tat, blocked) - now + grace)
return fmt(wait)
