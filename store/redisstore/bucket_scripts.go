package redisstore

import "github.com/redis/go-redis/v9"

// windowLib holds the functions of the scripts that take tokens from the
// windows of a store.Bucket. A window is a hash field: a token bucket's
// value is "TOKENS MICROS RATE BURST" (see tokens), a fixed window's
// "TOKENS START f BURST": the tokens left in the period that starts at the
// server time START, in microseconds.
//
// The windows are given in ARGV from index a on, five arguments each: the
// field, the rate ("f" for a fixed window), the burst, and a fixed window's
// period start and end in microseconds ("0" for a token bucket).
const windowLib = `
-- tokens returns the tokens of a bucket stored as v ("TOKENS MICROS RATE
-- BURST", or false for none) at now_us with rate and burst, as
-- golang.org/x/time/rate would: a missing bucket is full, and a bucket
-- stored with another rate or burst gains tokens at its old rate up to now,
-- as SetLimitAt and SetBurstAt do. The second result reports such a change,
-- which must be saved even when the take is refused.
--
-- The rate and burst are given both as ARGV's strings (rs, bs) and as
-- numbers: a value stored with the same strings needs no conversion.
local function tokens(v, now_us, rs, bs, rate, burst)
  if not v then return burst, false end
  local tk, ts, r0, b0 = string.match(v, '^(%S+) (%S+) ?(%S*) ?(%S*)$')
  tk = tonumber(tk)
  if r0 == rs and b0 == bs then
    r0, b0 = rate, burst
  else
    r0, b0 = tonumber(r0) or rate, tonumber(b0) or burst
  end
  local el = now_us - tonumber(ts)
  if el > 0 then tk = tk + el * r0 / 1e6 end
  if tk > b0 then tk = b0 end
  if tk > burst then tk = burst end
  return tk, r0 ~= rate or b0 ~= burst
end
-- fixed_tokens returns the tokens of a fixed window stored as v in the
-- period that starts at start, whether its value must be saved even if
-- nothing is taken, and the period it counts in: the latest of start and
-- the stored one, so a lagging clock never resets a newer period.
local function fixed_tokens(v, start, burst)
  if not v then return burst, false, start end
  local tk, ts, r0, b0 = string.match(v, '^(%S+) (%S+) (%S+) (%S+)$')
  if r0 ~= 'f' then return burst, true, start end
  ts = tonumber(ts)
  if ts < start then return burst, false, start end
  tk, b0 = tonumber(tk), tonumber(b0)
  local changed = false
  if b0 ~= burst then
    tk, changed = math.max(0, tk + burst - b0), true
  end
  if tk > burst then tk = burst end
  return tk, changed, ts
end
-- window_tokens returns the tokens of the window whose arguments start at
-- ARGV[o], stored as v, at now_us; whether its value must be saved even if
-- nothing is taken; and a fixed window's period (0 for a token bucket).
local function window_tokens(o, v, now_us)
  local rate, bs = ARGV[o + 1], ARGV[o + 2]
  local burst = tonumber(bs)
  if rate == 'f' then return fixed_tokens(v, tonumber(ARGV[o + 3]), burst) end
  if v and string.find(v, ' f ', 1, true) then return burst, true, 0 end
  local tk, changed = tokens(v, now_us, rate, bs, tonumber(rate), burst)
  return tk, changed, 0
end
-- check_windows reads the n windows from ARGV[a] on, whose stored values
-- are f[at + 1 .. at + n], at now_us. It returns their states, three
-- entries per window (the result of window_tokens), and whether every
-- window holds cost tokens.
local function check_windows(f, at, a, n, now_us, cost)
  local st, all = {}, true
  for i = 1, n do
    local j = 3 * i
    st[j - 2], st[j - 1], st[j] = window_tokens(a + (i - 1) * 5, f[at + i], now_us)
    if cost > st[j - 2] then all = false end
  end
  return st, all
end
-- save_windows takes cost tokens from every window of the states st (see
-- check_windows) if take, keeping the tokens left in st, and appends the
-- values that changed to the writes w and, for each window, whether it
-- held cost tokens (1 or 0) and the tokens left to the reply r.
local function save_windows(st, a, n, take, cost, now_us, w, r)
  local now_s
  for i = 1, n do
    local o, j = a + (i - 1) * 5, 3 * i
    local tk, changed = st[j - 2], st[j - 1]
    r[#r + 1] = cost <= tk and 1 or 0
    if take and cost > 0 then tk, changed = tk - cost, true end
    st[j - 2] = tk
    local left = string.format('%.17g', tk)
    r[#r + 1] = left
    if changed and ARGV[o + 1] == 'f' then
      put(w, ARGV[o], left .. ' ' .. int(st[j]) .. ' f ' .. ARGV[o + 2])
    elseif changed then
      now_s = now_s or int(now_us)
      put(w, ARGV[o], left .. ' ' .. now_s .. ' ' .. ARGV[o + 1] .. ' ' .. ARGV[o + 2])
    end
  end
end
-- hmget_windows reads hash k's fields pre... and the n window fields from
-- ARGV[a] on.
local function hmget_windows(k, a, n, ...)
  local fs = {...}
  for i = 1, n do fs[#fs + 1] = ARGV[a + (i - 1) * 5] end
  return redis.call('HMGET', k, unpack(fs))
end
`

// takeScript: KEYS[1] the hash holding the windows (their account's, or
// their own); ARGV time, cost, number of windows, then the windows (see
// windowLib). Returns {ok, server time in microseconds, then held and
// tokens per window}. Windows in an account's hash never expire (an
// account has a few, one per limit window); any other hash expires once
// every window would be full again (plus a second), since a missing window
// is a full one.
var takeScript = redis.NewScript(luaLib + windowLib + `
-- full_ms returns the longest time in milliseconds until one of the
-- windows of the states st (see save_windows) is full again.
local function full_ms(st, a, n, now_us)
  local ms = 0
  for i = 1, n do
    local o, tk = a + (i - 1) * 5, st[3 * i - 2]
    local burst = tonumber(ARGV[o + 2])
    if ARGV[o + 1] ~= 'f' then
      ms = math.max(ms, (burst - tk) / tonumber(ARGV[o + 1]) * 1000)
    elseif tk < burst then
      ms = math.max(ms, (tonumber(ARGV[o + 4]) - now_us) / 1000)
    end
  end
  return ms
end
local now_us = micros(server_time())
local cost, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local f = hmget_windows(KEYS[1], 4, n, 'balance')
local st, ok = check_windows(f, 1, 4, n, now_us, cost)
local w, r = {}, {ok and 1 or 0, now_us}
save_windows(st, 4, n, ok, cost, now_us, w, r)
if #w > 0 then
  redis.call('HSET', KEYS[1], unpack(w))
  if not f[1] then
    local ms = math.ceil(full_ms(st, 4, n, now_us)) + 1000
    if ms > 1e13 then ms = 1e13 end
    redis.call('PEXPIRE', KEYS[1], int(ms))
  end
end
return r
`)

// spendTokensScript: KEYS[1] account (which holds the windows), KEYS[2]
// operation marker, KEYS[3] the account's holds, whose ended leases it
// releases first as spendScript does; ARGV time, cost, marker TTL (ms),
// token cost, number of windows, then the windows (see windowLib). Returns {-1} for an unknown
// account, {-3} for an operation already cancelled, else {ok, balance,
// hasNext, nextSec, nextNsec, windowsOK, server time in microseconds, then
// held and tokens per window, then for an account with a spend cap or
// thresholds the cap part (see decodeCapReply)}.
var spendTokensScript = redis.NewScript(luaLib + luaCaps + windowLib + readReleased + `
local t = server_time()
local now_us = micros(t)
local tcost, n = tonumber(ARGV[4]), tonumber(ARGV[5])
local f, w = read_released(KEYS[1], KEYS[3], n, now_us), {}
local now = (f[2] or f[10]) and now_pair(t)
local bal, nx = refill(f, now, w)
if not bal then return {-1} end
local prior = claim(KEYS[2], ARGV[2], ARGV[3])
if prior == 'x' then return {-3} end
local st, bok = check_windows(f, 10, 6, n, now_us, tcost)
local ok, c, reached, crossed = 1, nil, false, ''
if not prior then
  local debited = bok
  if bok and ARGV[2] ~= '0' then
    c = caps_load(f[10], f, now)
    debited, bal, reached, crossed = caps_debit(c, bal, ARGV[2], nx, f, now, w)
  end
  if not debited then
    ok = 0
    if ARGV[2] ~= '0' then redis.call('DEL', KEYS[2]) end
  end
end
local h, s, nsec = next_fields(nx)
local r = {ok, bal, h, s, nsec, (bok or prior) and 1 or 0, now_us}
save_windows(st, 6, n, ok == 1 and not prior, tcost, now_us, w, r)
flush(KEYS[1], f, bal, w)
return caps_append(r, c, reached, crossed)
`)
