-- A breaker's state and counts (read only). KEYS[1] = breaker. ARGV: clock, config.
-- Returns {state, calls, failures, slow, consecutive, opened_at|nil, next_probe_at|nil,
-- in_flight, now}.
local now = clock(ARGV[1])
local cfg = config_from(ARGV, 2)
local b = load(KEYS[1])
if not b then
  return {'closed', 0, 0, 0, 0, false, false, 0, fmt(now)}
end
if b.st == 'closed' and cfg.mode == 'ratio' then
  advance(b, cfg.window, now) -- on a copy: the next write advances the same way
end
local state = b.st
if state == 'open' and now >= b.ou then state = 'half_open' end
local opened, next_probe, in_flight = false, false, 0
if b.oa then opened = fmt(b.oa) end
if b.st == 'open' then next_probe = fmt(b.ou) end
if b.st == 'half_open' then in_flight = b.inf end
return {state, b.tc, b.tf, b.ts, b.cf, opened, next_probe, in_flight, fmt(now)}
