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
-- check_windows reads the n windows from ARGV[a] on, whose stored values
-- are vals[1..n], at now_us, and returns them with whether each holds
-- cost tokens, and whether all do.
local function check_windows(vals, a, n, now_us, cost)
  local ws, all = {}, true
  for i = 1, n do
    local o = a + (i - 1) * 5
    local x = {field = ARGV[o], rate = ARGV[o + 1], burst = tonumber(ARGV[o + 2]),
      start = tonumber(ARGV[o + 3]), stop = tonumber(ARGV[o + 4])}
    local v = vals[i]
    if x.rate == 'f' then
      x.tk, x.changed, x.ts = fixed_tokens(v, x.start, x.burst)
    elseif v and string.find(v, ' f ', 1, true) then
      x.tk, x.changed = x.burst, true
    else
      x.tk, x.changed = tokens(v, now_us, tonumber(x.rate), x.burst)
    end
    x.held = cost <= x.tk
    all = all and x.held
    ws[i] = x
  end
  return ws, all
end
-- save_windows takes cost tokens from every window of ws if take, appends
-- the values that changed to the writes w, and returns the reply for the
-- windows: held (1 or 0) and tokens left, for each; and the longest time
-- in milliseconds until one is full again.
local function save_windows(ws, take, cost, now_us, w)
  local out, ms = {}, 0
  for _, x in ipairs(ws) do
    if take and cost > 0 then
      x.tk, x.changed = x.tk - cost, true
    end
    if x.rate == 'f' then
      if x.changed then put(w, x.field, fmt_tokens(x.tk) .. ' ' .. int(x.ts) .. ' f ' .. x.burst) end
      if x.tk < x.burst then ms = math.max(ms, (x.stop - now_us) / 1000) end
    else
      if x.changed then put(w, x.field, bucket_value(x.tk, now_us, x.rate, x.burst)) end
      ms = math.max(ms, (x.burst - x.tk) / tonumber(x.rate) * 1000)
    end
    out[#out + 1] = x.held and 1 or 0
    out[#out + 1] = fmt_tokens(x.tk)
  end
  return out, ms
end
-- hmget_windows reads hash k's fields pre... and the n window fields from
-- ARGV[a] on.
local function hmget_windows(k, a, n, ...)
  local fs = {...}
  for i = 1, n do fs[#fs + 1] = ARGV[a + (i - 1) * 5] end
  return redis.call('HMGET', k, unpack(fs))
end
local function tail(t, from)
  local r = {}
  for i = from, #t do r[#r + 1] = t[i] end
  return r
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
local now_us = micros(server_time())
local cost, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local f = hmget_windows(KEYS[1], 4, n, 'balance')
local ws, ok = check_windows(tail(f, 2), 4, n, now_us, cost)
local w = {}
local out, ms = save_windows(ws, ok, cost, now_us, w)
if #w > 0 then
  redis.call('HSET', KEYS[1], unpack(w))
  if not f[1] then
    ms = math.ceil(ms) + 1000
    if ms > 1e13 then ms = 1e13 end
    redis.call('PEXPIRE', KEYS[1], int(ms))
  end
end
local r = {ok and 1 or 0, int(now_us)}
for _, v in ipairs(out) do r[#r + 1] = v end
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
var spendTokensScript = redis.NewScript(luaLib + windowLib + luaCaps + luaHolds + readReleased + `
local t = server_time()
local now_us, now = micros(t), now_pair(t)
local tcost, n = tonumber(ARGV[4]), tonumber(ARGV[5])
local f, w = read_released(KEYS[1], KEYS[3], n, now_us), {}
local bal, nx = refill(f, now, w)
if not bal then return {-1} end
local prior = claim(KEYS[2], ARGV[2], ARGV[3])
if prior == 'x' then return {-3} end
local ws, bok = check_windows(tail(f, 11), 6, n, now_us, tcost)
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
local out = save_windows(ws, ok == 1 and not prior, tcost, now_us, w)
flush(KEYS[1], f, bal, w)
local h, s, nsec = next_fields(nx)
local r = {ok, bal, h, s, nsec, (bok or prior) and 1 or 0, int(now_us)}
for _, v in ipairs(out) do r[#r + 1] = v end
return caps_append(r, c, reached, crossed)
`)
