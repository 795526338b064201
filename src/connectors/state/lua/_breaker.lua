-- Circuit-breaker state, prepended to the breaker_* scripts: a port of connectors/state/memory.py
-- (_Breaker) that must stay step-for-step identical. The state is one MessagePack value per key:
--   st state, g generation, cf consecutive failures, oa opened at, ou open until,
--   inf probes in flight, sc probe successes, pd probe deadline,
--   bw bucket width, le last epoch, be/ca/fa/sa ratio-window buckets, tc/tf/ts window totals.
-- Config ARGV (after the clock at ARGV[1]): mode, failure_threshold, failure_ratio, minimum_calls,
-- window, reset_timeout, half_open_max_calls, slow_call_ratio, probe_lease, ttl, forced_ttl.
local BUCKETS = 10

local function config_from(argv, at)
  return {
    mode = argv[at], threshold = tonumber(argv[at + 1]), ratio = tonumber(argv[at + 2]),
    minimum = tonumber(argv[at + 3]), window = tonumber(argv[at + 4]),
    reset = tonumber(argv[at + 5]), half_open = tonumber(argv[at + 6]),
    slow_ratio = tonumber(argv[at + 7]), lease = tonumber(argv[at + 8]),
    ttl = tonumber(argv[at + 9]), forced_ttl = tonumber(argv[at + 10]),
  }
end

local function clear_window(b)
  b.be, b.ca, b.fa, b.sa = {}, {}, {}, {}
  for i = 1, BUCKETS do
    b.be[i], b.ca[i], b.fa[i], b.sa[i] = -1, 0, 0, 0
  end
  b.tc, b.tf, b.ts = 0, 0, 0
end

local function new_breaker()
  local b = {st = 'closed', g = 0, cf = 0, ou = 0, inf = 0, sc = 0, pd = 0, bw = 0, le = 0}
  clear_window(b)
  return b
end

local function load(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  return cmsgpack.unpack(raw)
end

local function save(key, b, cfg)
  local ttl = cfg.ttl
  if b.st == 'forced_open' then ttl = cfg.forced_ttl end
  local ms = math.max(1, math.ceil(ttl * 1000))
  redis.call('SET', key, cmsgpack.pack(b), 'PX', ms)
end

-- Python's float floor division (a // w), so bucket epochs match the in-memory backend.
local function floordiv(a, w)
  local mod = math.fmod(a, w)
  local div = (a - mod) / w
  if mod ~= 0 and ((w < 0) ~= (mod < 0)) then
    div = div - 1
  end
  if div ~= 0 then
    local f = math.floor(div)
    if div - f > 0.5 then f = f + 1 end
    return f
  end
  return 0
end

local function drop(b, idx)
  local i = idx + 1
  b.tc = b.tc - b.ca[i]
  b.tf = b.tf - b.fa[i]
  b.ts = b.ts - b.sa[i]
  b.ca[i], b.fa[i], b.sa[i] = 0, 0, 0
  b.be[i] = -1
end

-- Drop the buckets that slid out of the window; return the current bucket index (0-based).
local function advance(b, window, now)
  local width = window / BUCKETS
  if width ~= b.bw then
    b.bw = width
    clear_window(b)
    b.le = floordiv(now, width)
  end
  local epoch = floordiv(now, width)
  if epoch > b.le then
    if epoch - b.le >= BUCKETS then
      clear_window(b)
    else
      for e = b.le + 1, epoch do
        drop(b, e % BUCKETS)
      end
    end
    b.le = epoch
  end
  local idx = epoch % BUCKETS
  if b.be[idx + 1] ~= epoch then
    drop(b, idx)
    b.be[idx + 1] = epoch
  end
  return idx
end

local function move(b, to, cfg, now)
  local before = b.st
  b.st = to
  b.g = b.g + 1
  b.inf = 0
  b.sc = 0
  if to == 'closed' then
    b.cf = 0
    b.oa = nil
    clear_window(b)
  elseif to == 'open' or to == 'forced_open' then
    b.oa = now
    if to == 'open' then b.ou = now + cfg.reset else b.ou = 0 end
    b.cf = 0
    clear_window(b)
  else
    b.pd = now + cfg.lease
  end
  return {before, to}
end
