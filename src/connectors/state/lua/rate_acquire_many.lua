-- GCRA reservation on every key at one common start time, all or nothing.
-- KEYS = buckets (one hash tag). ARGV: clock, max_wait, grace, then rate, burst, cost per key.
local now = clock(ARGV[1])
local max_wait, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local tats, blocks = {}, {}
local start = now
for i, key in ipairs(KEYS) do
  local base = 3 + (i - 1) * 3
  local rate, burst, cost = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local tat, blocked = bucket_get(key)
  tats[i], blocks[i] = tat or false, blocked or false
  if tat then
    start = math.max(start, blocked, tat - (burst - cost) / rate)
  end
end
local wait = start - now
if wait > max_wait then
  return 'r' .. fmt(wait)
end
for i, key in ipairs(KEYS) do
  local base = 3 + (i - 1) * 3
  local rate, cost = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 3])
  if not tats[i] then
    local tat = start + cost / rate
    bucket_set(key, tat, 0, tat - now + grace)
  else
    local blocked = blocks[i]
    local tat = math.max(tats[i], start) + cost / rate
    bucket_set(key, tat, blocked, math.max(tat, blocked) - now + grace)
  end
end
return fmt(wait)
