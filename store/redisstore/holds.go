package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// Holds. An account's holds are the hash HoldsRedisKey: one field per hold,
// its ID, valued "AMOUNT EXPIRES" (microseconds of the server's clock). The
// account's hash keeps the next hold ID ("hold_seq") and the earliest time a
// hold may expire ("holds_next"), so that a spend learns from the one read
// it makes anyway whether a hold is due for release.

// luaReleaseLib defines release, which gives back the ended holds; see
// extra in luaLib, which defines it when a call needs it.
const luaReleaseLib = `
-- release gives every hold of hash hk that expired by now_us back to
-- account k, and to its spend cap's current period, if hn (its
-- "holds_next") says one may have, and reports whether it gave any.
local function release(k, hk, hn, now_us)
  if not hn or tonumber(hn) > now_us then return false end
  local all, nxt, back = redis.call('HGETALL', hk), nil, nil
  for i = 1, #all, 2 do
    local amt, exp = string.match(all[i + 1], '^(%S+) (%S+)$')
    if tonumber(exp) <= now_us then
      redis.call('HDEL', hk, all[i])
      redis.call('HINCRBY', k, 'balance', amt)
      back = dadd(back or '0', amt)
    elseif not nxt or tonumber(exp) < nxt then
      nxt = tonumber(exp)
    end
  end
  if nxt then redis.call('HSET', k, 'holds_next', int(nxt)) else redis.call('HDEL', k, 'holds_next') end
  if not back then return false end
  local sec = math.floor(now_us / 1e6)
  caps_give_back(k, back, {sec, (now_us - sec * 1e6) * 1000})
  return true
end
`

// luaHolds defines add_hold, for the scripts that hold credits; it follows
// luaCaps.
const luaHolds = `
-- add_hold records a hold of amt (a decimal string) until exp in hash hk
-- of account k, whose "holds_next" is hn, and returns the hold's ID.
local function add_hold(k, hk, hn, amt, exp)
  local id = redis.call('HINCRBY', k, 'hold_seq', 1)
  redis.call('HSET', hk, id, amt .. ' ' .. int(exp))
  if not hn or tonumber(hn) > exp then redis.call('HSET', k, 'holds_next', int(exp)) end
  return id
end
`

// settleScript: KEYS[1] account, KEYS[2] its holds, KEYS[3] the hold's
// settlement marker; ARGV time, hold ID, amount, actual, marker TTL (ms).
// Returns {-4} if there is no such hold, else {1, balance}; run again with
// the same actual after it settled (its answer lost), it finds the marker
// and answers the same. What it releases goes back to the spend cap's
// current period too.
var settleScript = redis.NewScript(luaLib + `
if redis.call('GET', KEYS[3]) == ARGV[4] then return {1, redis.call('HGET', KEYS[1], 'balance')} end
local v = redis.call('HGET', KEYS[2], ARGV[2])
if not v or string.match(v, '^(%S+) ') ~= ARGV[3] then return {-4} end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
if ARGV[3] ~= ARGV[4] then
  local back = dsub(ARGV[3], ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'balance', back)
  extra().caps_give_back(KEYS[1], back, now_pair(server_time()))
end
return {1, redis.call('HGET', KEYS[1], 'balance')}
`)

// HoldsRedisKey returns the name of the Redis hash that holds the account's
// credits held ([Store.Hold]), in the account's hash slot.
func (s *Store) HoldsRedisKey(accountID string) string {
	return s.prefix + "{acct:" + accountID + "}:holds"
}

// Hold implements [store.Holder] in one round trip: it applies any due
// refill, releases the account's expired holds, and debits amount, as Spend
// does. A hold that fails with an error may have held the credits unseen:
// its lease gives them back.
func (s *Store) Hold(ctx context.Context, accountID string, amount int64, lease time.Duration) (store.Hold, store.SpendResult, error) {
	if err := checkHold(amount, lease); err != nil {
		return store.Hold{}, store.SpendResult{}, err
	}
	ctx, stop := s.withTimeout(ctx)
	defer stop()
	v, err := holdScript.Run(ctx, s.rdb, []string{s.AccountRedisKey(accountID), s.HoldsRedisKey(accountID)},
		s.timeArg(), strconv.FormatInt(amount, 10), strconv.FormatInt(lease.Microseconds(), 10), 0, 0).Slice()
	if err != nil {
		return store.Hold{}, store.SpendResult{}, backendError("hold", err)
	}
	if notFound(v) {
		return store.Hold{}, store.SpendResult{}, fmt.Errorf("redisstore: hold: account %q: %w", accountID, store.ErrNotFound)
	}
	if len(v) < 9 {
		return store.Hold{}, store.SpendResult{}, errReply("hold")
	}
	return decodeHold(accountID, amount, v, 9)
}

// decodeHold decodes the reply v of holdScript, at least nine
// elements long, whose cap part, if any, starts at v[capAt].
func decodeHold(accountID string, amount int64, v []any, capAt int) (store.Hold, store.SpendResult, error) {
	res, err := decodeSpend(v, capAt)
	if err != nil {
		return store.Hold{}, store.SpendResult{}, err
	}
	if !res.OK {
		return store.Hold{}, res, nil
	}
	id, _ := v[5].(int64)
	exp, _ := v[6].(string)
	us, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return store.Hold{}, store.SpendResult{}, errReply("hold")
	}
	return store.Hold{AccountID: accountID, ID: id, Amount: amount, Expires: time.UnixMicro(us)}, res, nil
}

// Settle implements [store.Holder] in one round trip, trying again (the
// script is idempotent for [Options.OperationTTL]) up to three times, each
// bounded by the store's timeout, while Redis does not answer. A settlement that fails
// leaves the hold to its lease, which gives every credit back.
func (s *Store) Settle(ctx context.Context, h store.Hold, actual int64) (int64, error) {
	if actual < 0 || actual > h.Amount {
		return 0, fmt.Errorf("redisstore: settle %d of a hold of %d: %w", actual, h.Amount, store.ErrInvalidAmount)
	}
	ctx = context.WithoutCancel(ctx)
	id := strconv.FormatInt(h.ID, 10)
	keys := []string{s.AccountRedisKey(h.AccountID), s.HoldsRedisKey(h.AccountID),
		s.HoldsRedisKey(h.AccountID) + ":settled:" + id}
	args := []any{s.timeArg(), id, strconv.FormatInt(h.Amount, 10), strconv.FormatInt(actual, 10), s.ttlArg}
	var v []any
	var err error
	for range 3 {
		rctx, stop := s.withTimeout(ctx)
		v, err = settleScript.Run(rctx, s.rdb, keys, args...).Slice()
		stop()
		if err == nil {
			break
		}
	}
	switch {
	case err != nil:
		return 0, backendError("settle", err)
	case status(v, -4):
		return 0, fmt.Errorf("redisstore: settle: hold %d of account %q ended: %w", h.ID, h.AccountID, store.ErrNotFound)
	case len(v) != 2:
		return 0, errReply("settle")
	}
	return parseBalance("settle", v[1])
}

// readReleased defines read_released, which gives back the ended holds
// of account k (holds hk) at now_us, then reads k's fields for a spend or
// a hold with n windows (ARGV from 6, see windowLib) in the order of read:
// the refill fields, holds_next (9), caps (10), then the windows' state.
// The refill's six time fields are read, by a second HMGET, only for an
// account that has a refill: most have none. It follows luaLib,
// luaCaps and windowLib.
const readReleased = `
local function read_account(k, n)
  local r = hmget_windows(k, 6, n, 'balance', 'refill_amount', 'holds_next', 'caps')
  local f = {r[1], r[2], false, false, false, false, false, false, r[3], r[4]}
  if r[2] then
    local rf = redis.call('HMGET', k, 'refill_every_s', 'refill_every_ns', 'refill_anchor_s',
      'refill_anchor_ns', 'refilled_at_s', 'refilled_at_ns')
    for i = 1, 6 do f[2 + i] = rf[i] end
  end
  for i = 1, n do f[10 + i] = r[4 + i] end
  return f
end
local function read_released(k, hk, n, now_us)
  local f = read_account(k, n)
  if release(k, hk, f[9], now_us) then f = read_account(k, n) end
  return f
end
`

// holdScript: KEYS[1] account (which holds the windows), KEYS[2] its
// holds; ARGV time, amount, lease (µs), token cost, number of windows (0
// for a hold alone), then the windows (see windowLib). Returns {-1} for an
// unknown account, else {ok, balance, hasNext, nextSec, nextNsec, id,
// expires (µs), windowsOK, server time in microseconds, then held and
// tokens per window, then for an account with a spend cap or thresholds,
// if the windows admitted, the cap part (see decodeCapReply)}: a hold
// counts against the cap as a spend.
var holdScript = redis.NewScript(luaLib + luaCaps + luaHolds + windowLib + readReleased + `
local t = server_time()
local now_us = micros(t)
local tcost, n = tonumber(ARGV[4]), tonumber(ARGV[5])
local f, w = read_released(KEYS[1], KEYS[2], n, now_us), {}
local now = (f[2] or f[10]) and now_pair(t)
local bal, nx = refill(f, now, w)
if not bal then return {-1} end
local st, bok = check_windows(f, 10, 6, n, now_us, tcost)
local ok, c, reached, crossed = false, nil, false, ''
if bok then
  c = caps_load(f[10], f, now)
  ok, bal, reached, crossed = caps_debit(c, bal, ARGV[2], nx, f, now, w)
end
local h, s, nsec = next_fields(nx)
local id, exp = 0, now_us + tonumber(ARGV[3])
local r = {ok and 1 or 0, bal, h, s, nsec, id, int(exp), bok and 1 or 0, now_us}
save_windows(st, 6, n, ok, tcost, now_us, w, r)
flush(KEYS[1], f, bal, w)
if ok then r[6] = add_hold(KEYS[1], KEYS[2], f[9], ARGV[2], exp) end
return caps_append(r, c, reached, crossed)
`)

// HoldWithTokens implements [store.BucketHolder]: it takes b.Cost tokens
// from the account's bucket b and holds amount as [Store.Hold] does, in
// one script — one round trip — taking nothing if either refuses. Its
// arguments and results follow [Store.SpendWithTokens].
func (s *Store) HoldWithTokens(ctx context.Context, accountID string, amount int64, lease time.Duration, b store.Bucket) (store.Hold, store.SpendResult, store.BucketResult, error) {
	if err := checkHold(amount, lease); err != nil {
		return store.Hold{}, store.SpendResult{}, store.BucketResult{}, err
	}
	if err := checkAccountBucket("hold with tokens", accountID, &b); err != nil {
		return store.Hold{}, store.SpendResult{}, store.BucketResult{}, err
	}
	if unlimited(&b) {
		h, r, err := s.Hold(ctx, accountID, amount, lease)
		return h, r, store.BucketResult{OK: err == nil, Remaining: b.Burst}, err
	}
	ctx, stop := s.withTimeout(ctx)
	defer stop()
	args := windowArgs(&b, s.timeArg(), strconv.FormatInt(amount, 10), strconv.FormatInt(lease.Microseconds(), 10),
		b.Cost, len(b.More)+1)
	v, err := holdScript.Run(ctx, s.rdb, []string{s.AccountRedisKey(accountID), s.HoldsRedisKey(accountID)}, args...).Slice()
	switch {
	case err != nil:
		return store.Hold{}, store.SpendResult{}, store.BucketResult{}, backendError("hold with tokens", err)
	case notFound(v):
		return store.Hold{}, store.SpendResult{}, store.BucketResult{},
			fmt.Errorf("redisstore: hold with tokens: account %q: %w", accountID, store.ErrNotFound)
	case len(v) < 9+2*(len(b.More)+1):
		return store.Hold{}, store.SpendResult{}, store.BucketResult{}, errReply("hold with tokens")
	}
	end := 9 + 2*(len(b.More)+1)
	h, sr, err := decodeHold(accountID, amount, v, end)
	if err != nil {
		return store.Hold{}, store.SpendResult{}, store.BucketResult{}, err
	}
	bok, _ := v[7].(int64)
	br, err := windowResults(&b, bok == 1, v[8], v[9:end])
	if err != nil {
		return store.Hold{}, store.SpendResult{}, store.BucketResult{}, err
	}
	return h, sr, br, nil
}

// checkHold checks the amount and lease of a hold: the scripts count
// leases in microseconds.
func checkHold(amount int64, lease time.Duration) error {
	if amount < 0 || lease < time.Microsecond {
		return fmt.Errorf("redisstore: hold %d for %v: %w", amount, lease, store.ErrInvalidAmount)
	}
	return nil
}

var (
	_ store.Holder       = (*Store)(nil)
	_ store.BucketHolder = (*Store)(nil)
)
