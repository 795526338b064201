-- Units available now on KEYS[1] (read only). ARGV: clock, rate, burst.
local now = clock(ARGV[1])
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local tat, blocked = bucket_get(KEYS[1])
if not tat then
  return fmt(burst)
end
if blocked > now then
  return '0'
end
return fmt(math.min(burst, math.max(0, burst - math.max(0, tat - now) * rate)))
