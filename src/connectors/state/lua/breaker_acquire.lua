-- Ask to make a call. KEYS[1] = breaker. ARGV: clock, config (see _breaker.lua).
-- Returns {allowed, state, retry_after|nil, is_probe, generation, from|nil, to|nil, report_success}.
local now = clock(ARGV[1])
local cfg = config_from(ARGV, 2)
local b = load(KEYS[1])
if not b then
  local report = 1
  if cfg.mode == 'consecutive' then report = 0 end
  return {1, 'closed', false, 0, 0, false, false, report}
end
if b.st == 'closed' then
  local report = 1
  if b.cf == 0 and cfg.mode == 'consecutive' then report = 0 end
  return {1, 'closed', false, 0, b.g, false, false, report}
end
local tr = nil
if b.st == 'open' then
  if now < b.ou then
    return {0, 'open', fmt(b.ou - now), 0, 0, false, false, 1}
  end
  tr = move(b, 'half_open', cfg, now)
elseif b.st == 'forced_open' then
  return {0, 'forced_open', false, 0, 0, false, false, 1}
end
if b.inf + b.sc >= cfg.half_open then
  if b.inf == 0 or now < b.pd then
    if tr then save(KEYS[1], b, cfg) end
    return {0, 'half_open', fmt(math.max(0, b.pd - now)), 0, 0, false, false, 1}
  end
  -- The probes in flight outlived their lease (their caller died): start over.
  b.g = b.g + 1
  b.inf, b.sc = 0, 0
  b.pd = now + cfg.lease
end
b.inf = b.inf + 1
save(KEYS[1], b, cfg)
if tr then
  return {1, 'half_open', false, 1, b.g, tr[1], tr[2], 1}
end
return {1, 'half_open', false, 1, b.g, false, false, 1}
