-- Close the breaker and clear its counts. KEYS[1] = breaker. ARGV: clock, config.
local now = clock(ARGV[1])
local cfg = config_from(ARGV, 2)
local b = load(KEYS[1])
if not b then return false end
if b.st == 'closed' then
  b.cf = 0
  clear_window(b)
  save(KEYS[1], b, cfg)
  return false
end
local tr = move(b, 'closed', cfg, now)
save(KEYS[1], b, cfg)
return tr
