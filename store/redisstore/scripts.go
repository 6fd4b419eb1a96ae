package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each runs atomically on the Redis server and reads the
// server's clock (TIME), so replicas never disagree about time. ARGV[1] of
// every script that reads the clock is empty, except in tests that control
// the clock, which pass the time there.
//
// Money is exact: balances, costs and refill amounts travel and are compared
// as decimal strings and changed with HINCRBY (64-bit integers on the
// server), never as Lua numbers, which are doubles. Times are pairs
// {seconds, nanoseconds} whose parts are exact in a double; the refill
// boundary is found with exact pair arithmetic. Token counts are floats, as
// in golang.org/x/time/rate.

// luaLib holds the functions the scripts share.
const luaLib = `
-- server_time returns {seconds, microseconds}: the server's TIME, or the
-- time in microseconds given in ARGV[1] by tests that control the clock.
local function server_time()
  if ARGV[1] == '' then return redis.call('TIME') end
  local us = tonumber(ARGV[1])
  local sec = math.floor(us / 1e6)
  return {sec, us - sec * 1e6}
end
local function now_pair(t)
  return {tonumber(t[1]), tonumber(t[2]) * 1000}
end
local function tlt(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end
local function tadd(a, b)
  local s, n = a[1] + b[1], a[2] + b[2]
  if n >= 1e9 then return {s + 1, n - 1e9} end
  return {s, n}
end
local function tsub(a, b)
  local s, n = a[1] - b[1], a[2] - b[2]
  if n < 0 then return {s - 1, n + 1e9} end
  return {s, n}
end
-- tmod returns d mod e for d >= 0, e > 0, by binary long division.
local function tmod(d, e)
  local p = {e}
  while true do
    local dbl = tadd(p[#p], p[#p])
    if tlt(d, dbl) then break end
    p[#p + 1] = dbl
  end
  for i = #p, 1, -1 do
    if not tlt(d, p[i]) then d = tsub(d, p[i]) end
  end
  return d
end
-- dlt compares two non-negative integers written as canonical decimals.
local function dlt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function int(x)
  return string.format('%.0f', x)
end
-- refill applies the periodic refill due at now to the account hash k (the
-- semantics of store.Account.ApplyRefill) and returns its balance and the
-- next refill time, or nil if there is none. It returns false if the account
-- does not exist.
local function refill(k, now)
  local f = redis.call('HMGET', k, 'balance', 'refill_amount',
    'refill_every_s', 'refill_every_ns', 'refill_anchor_s', 'refill_anchor_ns',
    'refilled_at_s', 'refilled_at_ns')
  local bal = f[1]
  if not bal then return false end
  if not f[2] then return bal, nil end
  local every = {tonumber(f[3]), tonumber(f[4])}
  local anchor = {tonumber(f[5]), tonumber(f[6])}
  if tlt(now, anchor) then return bal, anchor end
  local b = tsub(now, tmod(tsub(now, anchor), every))
  if not f[7] or tlt({tonumber(f[7]), tonumber(f[8])}, b) then
    redis.call('HSET', k, 'refilled_at_s', int(b[1]), 'refilled_at_ns', int(b[2]))
    if dlt(bal, f[2]) then
      redis.call('HSET', k, 'balance', f[2])
      bal = f[2]
    end
  end
  return bal, tadd(b, every)
end
-- debit subtracts cost (a decimal string, at most the balance) and returns
-- the new balance.
local function debit(k, bal, cost)
  if cost == '0' then return bal end
  redis.call('HINCRBY', k, 'balance', '-' .. cost)
  return redis.call('HGET', k, 'balance')
end
local function next_fields(nx)
  if nx then return 1, nx[1], nx[2] end
  return 0, 0, 0
end
-- tokens returns the tokens in bucket k at now_us (microseconds), as
-- golang.org/x/time/rate would: a missing bucket is full.
local function tokens(k, now_us, rate, burst)
  local f = redis.call('HMGET', k, 'tokens', 'ts')
  if not f[1] then return burst end
  local tk = tonumber(f[1])
  local el = now_us - tonumber(f[2])
  if el > 0 then tk = tk + el * rate / 1e6 end
  if tk > burst then tk = burst end
  return tk
end
-- save stores bucket k's tokens at now_us. The bucket expires when it would
-- be full again (plus a second), since a missing bucket is a full one.
local function save(k, now_us, tk, rate, burst)
  redis.call('HSET', k, 'tokens', string.format('%.17g', tk), 'ts', int(now_us))
  local ms = math.ceil((burst - tk) / rate * 1000) + 1000
  if ms > 1e13 then ms = 1e13 end
  redis.call('PEXPIRE', k, int(ms))
end
`

// spendScript: KEYS[1] account; ARGV time, cost.
// Returns {-1} for an unknown account, else
// {ok, balance, hasNext, nextSec, nextNsec}.
var spendScript = redis.NewScript(luaLib + `
local bal, nx = refill(KEYS[1], now_pair(server_time()))
if not bal then return {-1} end
local ok = 0
if not dlt(bal, ARGV[2]) then
  ok = 1
  bal = debit(KEYS[1], bal, ARGV[2])
end
local h, s, n = next_fields(nx)
return {ok, bal, h, s, n}
`)

// creditScript: KEYS[1] account; ARGV time, amount (positive).
// Returns {-1} for an unknown account, {-2} on overflow, else {1, balance}.
var creditScript = redis.NewScript(luaLib + `
local bal = refill(KEYS[1], now_pair(server_time()))
if not bal then return {-1} end
local r = redis.pcall('HINCRBY', KEYS[1], 'balance', ARGV[2])
if type(r) == 'table' and r.err then return {-2} end
return {1, redis.call('HGET', KEYS[1], 'balance')}
`)

// takeScript: KEYS[1] bucket; ARGV time, rate, burst, cost.
// Returns {ok, tokens}.
var takeScript = redis.NewScript(luaLib + `
local t = server_time()
local now_us = tonumber(t[1]) * 1e6 + tonumber(t[2])
local rate, burst, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tk = tokens(KEYS[1], now_us, rate, burst)
local ok = 0
if cost <= tk then
  ok = 1
  if cost > 0 then
    tk = tk - cost
    save(KEYS[1], now_us, tk, rate, burst)
  end
end
return {ok, string.format('%.17g', tk)}
`)

// spendTokensScript: KEYS[1] account, KEYS[2] bucket; ARGV time, cost, rate,
// burst, token cost. Returns {-1} for an unknown account, else
// {ok, balance, hasNext, nextSec, nextNsec, bucketOK, tokens}.
var spendTokensScript = redis.NewScript(luaLib + `
local t = server_time()
local now_us = tonumber(t[1]) * 1e6 + tonumber(t[2])
local bal, nx = refill(KEYS[1], now_pair(t))
if not bal then return {-1} end
local rate, burst, tcost = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tk = tokens(KEYS[2], now_us, rate, burst)
local bok, ok = 0, 0
if tcost <= tk then
  bok = 1
  if not dlt(bal, ARGV[2]) then
    ok = 1
    bal = debit(KEYS[1], bal, ARGV[2])
    if tcost > 0 then
      tk = tk - tcost
      save(KEYS[2], now_us, tk, rate, burst)
    end
  end
end
local h, s, n = next_fields(nx)
return {ok, bal, h, s, n, bok, string.format('%.17g', tk)}
`)

// accountScript: KEYS[1] account; ARGV time. Applies the refill due and
// returns the account hash as HGETALL does (empty if there is none).
var accountScript = redis.NewScript(luaLib + `
if not refill(KEYS[1], now_pair(server_time())) then return {} end
return redis.call('HGETALL', KEYS[1])
`)

// revokeScript: KEYS[1] key record. Returns 0 if there is none, else 1.
var revokeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1
`)
