-- Open the breaker until reset. KEYS[1] = breaker. ARGV: clock, config.
local now = clock(ARGV[1])
local cfg = config_from(ARGV, 2)
local b = load(KEYS[1])
if not b then b = new_breaker() end
if b.st == 'forced_open' then return false end
local tr = move(b, 'forced_open', cfg, now)
save(KEYS[1], b, cfg)
return tr
