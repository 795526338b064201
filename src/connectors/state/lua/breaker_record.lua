-- Record a permitted call's outcome. KEYS[1] = breaker.
-- ARGV: clock, config (11 values), permit generation, permit is_probe (0/1),
-- outcome ('success' | 'failure' | 'ignored'), slow (0/1). Returns {from, to} or nil.
local now = clock(ARGV[1])
local cfg = config_from(ARGV, 2)
local gen, is_probe = tonumber(ARGV[13]), ARGV[14] == '1'
local outcome, slow = ARGV[15], ARGV[16] == '1'
local b = load(KEYS[1])
if not b then
  if gen ~= 0 or outcome == 'ignored' then return false end
  if cfg.mode == 'consecutive' and not slow and outcome ~= 'failure' then
    return false -- a success on a fresh breaker changes nothing
  end
  b = new_breaker()
end
if gen ~= b.g or outcome == 'ignored' then
  if outcome == 'ignored' and is_probe and gen == b.g then
    b.inf = b.inf - 1
    save(KEYS[1], b, cfg)
  end
  return false
end
local bad = outcome == 'failure'
local tr = nil
if b.st == 'closed' then
  if cfg.mode == 'consecutive' then
    if bad or slow then
      b.cf = b.cf + 1
      if b.cf >= cfg.threshold then tr = move(b, 'open', cfg, now) end
    else
      if b.cf == 0 then return false end
      b.cf = 0
    end
  else
    local idx = advance(b, cfg.window, now)
    local i = idx + 1
    b.ca[i] = b.ca[i] + 1
    b.tc = b.tc + 1
    if bad then
      b.fa[i] = b.fa[i] + 1
      b.tf = b.tf + 1
      b.cf = b.cf + 1
    else
      b.cf = 0
    end
    if slow then
      b.sa[i] = b.sa[i] + 1
      b.ts = b.ts + 1
    end
    if b.tc >= cfg.minimum and (b.tf >= cfg.ratio * b.tc or b.ts >= cfg.slow_ratio * b.tc) then
      tr = move(b, 'open', cfg, now)
    end
  end
elseif b.st == 'half_open' and is_probe then
  b.inf = b.inf - 1
  if bad or slow then
    tr = move(b, 'open', cfg, now)
  else
    b.sc = b.sc + 1
    if b.sc >= cfg.half_open then tr = move(b, 'closed', cfg, now) end
  end
else
  return false
end
save(KEYS[1], b, cfg)
if tr then return tr end
return false
