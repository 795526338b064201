-- Shared helpers, prepended to every script (see connectors/state/redis.py).
-- Times are seconds as doubles; they cross the wire as '%.17g' strings so nothing is rounded.
-- ARGV clock argument: 'server' = Redis TIME (one clock for every process), else the caller's now.
local function clock(arg)
  if arg == 'server' then
    local t = redis.call('TIME')
    return tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  return tonumber(arg)
end

local function fmt(x)
  return string.format('%.17g', x)
end

-- Rate buckets are one string "<tat> <blocked until>" (GET/SET PX: two commands, not three).
local function bucket_get(key)
  local v = redis.call('GET', key)
  if not v then return nil, nil end
  local t, b = string.match(v, '^(%S+) (%S+)$')
  return tonumber(t), tonumber(b)
end

local function bucket_set(key, tat, blocked, seconds)
  local ms = math.ceil(seconds * 1000)
  if ms < 1 then ms = 1 end
  if ms > 315360000000 then ms = 315360000000 end
  redis.call('SET', key, fmt(tat) .. ' ' .. fmt(blocked), 'PX', ms)
end

-- Every key gets a real TTL (bounded memory); the logical expiry stays inside the value so the
-- semantics follow the chosen clock exactly. Capped at ten years, at least one millisecond.
local function expire_in(key, seconds)
  local ms = math.ceil(seconds * 1000)
  if ms < 1 then ms = 1 end
  if ms > 315360000000 then ms = 315360000000 end
  redis.call('PEXPIRE', key, ms)
end
