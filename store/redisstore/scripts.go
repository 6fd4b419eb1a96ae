package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each runs atomically on the Redis server and reads the
// server's clock (TIME), so replicas never disagree about time. ARGV[1] of
// every script that reads the clock is empty, except in tests that control
// the clock, which pass the time there.
//
// Money is exact: balances, costs and refill amounts travel, are compared
// and are subtracted as decimal strings, never as Lua numbers, which are
// doubles; top-ups use HINCRBY (64-bit integers on the server). Times are
// pairs {seconds, nanoseconds} whose parts are exact in a double; the refill
// boundary is found with exact pair arithmetic. Token counts are floats, as
// in golang.org/x/time/rate.
//
// An account is one hash: its balance and refill state, its other fields as
// one JSON document, its spend cap and thresholds as another (fieldCaps),
// the bookkeeping of its holds ("hold_seq", "holds_next"), and one field
// "bucket:NAME" per token bucket of the account ("TOKENS MICROS RATE
// BURST": the tokens left at the server time MICROS, and the rate and burst
// they were counted at). A decision reads it with one HMGET and writes it
// with one HSET.

// luaLib holds the functions the scripts share. Those that only some
// accounts need are defined by extra, on first use.
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
local function micros(t)
  return tonumber(t[1]) * 1e6 + tonumber(t[2])
end
-- dlt compares two non-negative integers written as canonical decimals.
local function dlt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
-- dsub returns a - b for canonical decimals a >= b >= 0. Below 2^53 they
-- are exact in a double (a decimal of more digits reads as 2^53 or more);
-- larger ones are cut into parts of at most 14 digits, whose differences
-- are exact in a double.
local function dsub(a, b)
  local x = tonumber(a)
  if x < 9007199254740992 then return string.format('%.0f', x - tonumber(b)) end
  local ah, al = tonumber(string.sub(a, 1, -15)), tonumber(string.sub(a, -14))
  local bh, bl = 0, tonumber(b)
  if #b > 14 then bh, bl = tonumber(string.sub(b, 1, -15)), tonumber(string.sub(b, -14)) end
  local l, h = al - bl, ah - bh
  if l < 0 then l, h = l + 1e14, h - 1 end
  if h == 0 then return string.format('%.0f', l) end
  return string.format('%.0f%014.0f', h, l)
end
local function int(x)
  return string.format('%.0f', x)
end
local function put(w, f, v)
  w[#w + 1] = f
  w[#w + 1] = v
end
-- read returns the account fields of hash k that the decisions need, in
-- this order, then the extra fields.
local function read(k, ...)
  return redis.call('HMGET', k, 'balance', 'refill_amount',
    'refill_every_s', 'refill_every_ns', 'refill_anchor_s', 'refill_anchor_ns',
    'refilled_at_s', 'refilled_at_ns', ...)
end
-- flush writes w, and the balance if it is not f's any more, to hash k.
local function flush(k, f, bal, w)
  if bal and bal ~= f[1] then put(w, 'balance', bal) end
  if #w > 0 then redis.call('HSET', k, unpack(w)) end
end
local function next_fields(nx)
  if nx then return 1, nx[1], nx[2] end
  return 0, 0, 0
end
-- claim marks operation marker k applied with cost (a decimal string),
-- unless it is marked already, and returns what it held: false if nothing
-- (the operation is new), 'x' if it was cancelled, else the cost of the
-- operation, applied by an earlier attempt that the client retried. A cost
-- of zero needs no mark.
local function claim(k, cost, ttl)
  if cost == '0' then return false end
  return redis.call('SET', k, cost, 'PX', ttl, 'NX', 'GET')
end
local extra_fns
-- extra returns the functions of luaRefillLib, luaCapsLib and
-- luaReleaseLib, defining them on its first call only: a script defines
-- its functions on every call, and most calls find an account without a
-- refill, a spend cap, thresholds or ended holds. refill, and caps_load,
-- caps_debit, caps_append and release (see luaCaps), answer such an
-- account themselves and hand any other to extra's function of the same
-- name.
local function extra()
  if extra_fns then return extra_fns end
  extra_fns = (function()
` + luaRefillLib + luaCapsLib + luaReleaseLib + `
    return {refill = refill, caps_load = caps_load, caps_debit = caps_debit,
      caps_give_back = caps_give_back, caps_append = caps_append, release = release}
  end)()
  return extra_fns
end
local function refill(f, now, w)
  if not f[1] then return false end
  if not f[2] then return f[1], nil end
  return extra().refill(f, now, w)
end
`

// luaRefillLib holds the time pair arithmetic ({seconds, nanoseconds}),
// the refill and dadd; see extra in luaLib.
const luaRefillLib = `
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
-- dadd returns a + b for canonical decimals whose sum fits an int64.
local function dadd(a, b)
  local ah, al = tonumber(string.sub(a, 1, -15)) or 0, tonumber(string.sub(a, -14))
  local bh, bl = tonumber(string.sub(b, 1, -15)) or 0, tonumber(string.sub(b, -14))
  local l, h = al + bl, ah + bh
  if l >= 1e14 then l, h = l - 1e14, h + 1 end
  if h == 0 then return string.format('%.0f', l) end
  return string.format('%.0f%014.0f', h, l)
end
-- refill applies the periodic refill due at now to the account fields f
-- (the semantics of store.Account.ApplyRefill), appending the refill time
-- to the writes w, and returns the balance and the next refill time, or nil
-- if there is none. It returns false if there is no account.
local function refill(f, now, w)
  local bal = f[1]
  if not bal then return false end
  if not f[2] then return bal, nil end
  local every = {tonumber(f[3]), tonumber(f[4])}
  local anchor = {tonumber(f[5]), tonumber(f[6])}
  if tlt(now, anchor) then return bal, anchor end
  local b = tsub(now, tmod(tsub(now, anchor), every))
  if not f[7] or tlt({tonumber(f[7]), tonumber(f[8])}, b) then
    put(w, 'refilled_at_s', int(b[1]))
    put(w, 'refilled_at_ns', int(b[2]))
    if dlt(bal, f[2]) then bal = f[2] end
  end
  return bal, tadd(b, every)
end
`

// spendScript: KEYS[1] account, KEYS[2] operation marker, KEYS[3] the
// account's holds; ARGV time, cost, marker TTL (ms). Returns {-1} for an
// unknown account, {-3} for an operation already cancelled, else {ok,
// balance, hasNext, nextSec, nextNsec, then for an account with a spend
// cap or thresholds the cap part (see decodeCapReply)}.
var spendScript = redis.NewScript(luaLib + luaCaps + `
local t = server_time()
local f, w = read(KEYS[1], 'holds_next', 'caps'), {}
if release(KEYS[1], KEYS[3], f[9], micros(t)) then f = read(KEYS[1], 'holds_next', 'caps') end
local now = now_pair(t)
local bal, nx = refill(f, now, w)
if not bal then return {-1} end
local prior = claim(KEYS[2], ARGV[2], ARGV[3])
if prior == 'x' then return {-3} end
local ok, c, reached, crossed = 1, nil, false, ''
if not prior and ARGV[2] ~= '0' then
  c = caps_load(f[10], f, now)
  local debited
  debited, bal, reached, crossed = caps_debit(c, bal, ARGV[2], nx, f, now, w)
  if not debited then
    ok = 0
    redis.call('DEL', KEYS[2])
  end
end
flush(KEYS[1], f, bal, w)
local h, s, n = next_fields(nx)
local r = {ok, bal, h, s, n}
return caps_append(r, c, reached, crossed)
`)

// cancelScript: KEYS[1] account, KEYS[2] operation marker; ARGV marker TTL
// (ms). Gives back the credits of the operation if it was applied and
// leaves a tombstone, so that the operation, arriving later, does nothing.
// Returns the credits given back ("0" for none).
var cancelScript = redis.NewScript(`
local v = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], 'x', 'PX', ARGV[1])
if not v or v == 'x' then return '0' end
if not redis.call('HGET', KEYS[1], 'balance') then return '0' end
local r = redis.pcall('HINCRBY', KEYS[1], 'balance', v)
if type(r) == 'table' and r.err then return '0' end
return v
`)

// creditScript: KEYS[1] account; ARGV time, amount (positive), "1" for a
// refund, which gives the amount back to the spend cap's period.
// Returns {-1} for an unknown account, {-2} on overflow, else {1, balance}.
var creditScript = redis.NewScript(luaLib + `
local f, w = read(KEYS[1]), {}
local now = now_pair(server_time())
local bal = refill(f, now, w)
if not bal then return {-1} end
flush(KEYS[1], f, bal, w)
local r = redis.pcall('HINCRBY', KEYS[1], 'balance', ARGV[2])
if type(r) == 'table' and r.err then return {-2} end
if ARGV[3] == '1' then extra().caps_give_back(KEYS[1], ARGV[2], now) end
return {1, redis.call('HGET', KEYS[1], 'balance')}
`)

// accountScript: KEYS[1] account; ARGV time. Applies the refill due and
// returns the account hash as HGETALL does (empty if there is none).
var accountScript = redis.NewScript(luaLib + luaCaps + `
local t = server_time()
local f, w = read(KEYS[1], 'holds_next'), {}
if release(KEYS[1], KEYS[2], f[9], micros(t)) then f = read(KEYS[1], 'holds_next') end
local bal = refill(f, now_pair(t), w)
if not bal then return {} end
flush(KEYS[1], f, bal, w)
return redis.call('HGETALL', KEYS[1])
`)

// lookupScript: KEYS[1] key record; ARGV time, then the name of the
// account hash before and after the account ID. Returns {} for an unknown
// key, else {key record, account hash} as HGETALL does, the account with
// its due refill applied (empty if there is none). It reads a hash it is
// not given in KEYS, which a single Redis allows and a Cluster does not.
var lookupScript = redis.NewScript(luaLib + `
local key = redis.call('HGETALL', KEYS[1])
if #key == 0 then return {} end
local id
for i = 1, #key, 2 do
  if key[i] == 'account' then id = key[i + 1] end
end
if not id then return {key, {}} end
local k = ARGV[2] .. id .. ARGV[3]
local f, w = read(k), {}
local bal = refill(f, now_pair(server_time()), w)
if not bal then return {key, {}} end
flush(k, f, bal, w)
return {key, redis.call('HGETALL', k)}
`)

// revokeScript: KEYS[1] key record. Returns 0 if there is none, else 1.
var revokeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1
`)
