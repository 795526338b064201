-- GCRA reservation. KEYS[1] = bucket "<theoretical arrival time> <blocked until>".
-- ARGV: clock, rate, burst, cost, max_wait, grace. Returns the wait, prefixed with 'r' when refused
-- (nothing reserved), or the integer 0 when admitted at once (the commonest answer, and an integer
-- reply is the cheapest to read).
-- The hot path of every distributed limit, so it runs without the prelude: the clock, the bucket
-- format and the TTL rule are inlined here and must stay identical to _prelude.lua's.
local key = KEYS[1]
local now = ARGV[1]
if now == 'server' then
  local t = redis.call('TIME')
  now = t[1] + t[2] / 1000000
else
  now = tonumber(now)
end
local rate, cost, grace = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[6])
local v = redis.call('GET', key)
local tat, ms
if not v then
  tat = now + cost / rate
  ms = math.ceil((tat - now + grace) * 1000)
  if ms < 1 then ms = 1 elseif ms > 315360000000 then ms = 315360000000 end
  redis.call('SET', key, string.format('%.17g 0', tat), 'PX', ms)
  return 0
end
-- The value is "<tat> <blocked>"; blocked is kept as its text (it is rewritten unchanged).
local space = string.find(v, ' ', 1, true)
local blocked_text = string.sub(v, space + 1)
local blocked = tonumber(blocked_text)
tat = tonumber(string.sub(v, 1, space - 1))
local start = tat - (tonumber(ARGV[3]) - cost) / rate
if start < now then start = now end
if blocked > start then start = blocked end
local wait = start - now
if wait > tonumber(ARGV[5]) then
  return 'r' .. string.format('%.17g', wait)
end
if start > tat then tat = start end
tat = tat + cost / rate
local last = tat
if blocked > last then last = blocked end
ms = math.ceil((last - now + grace) * 1000)
if ms < 1 then ms = 1 elseif ms > 315360000000 then ms = 315360000000 end
redis.call('SET', key, string.format('%.17g ', tat) .. blocked_text, 'PX', ms)
if wait == 0 then return 0 end
return string.format('%.17g', wait)
