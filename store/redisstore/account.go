package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// Fields of an account hash. The balance and the refill state are separate
// fields so the scripts can read and change them; everything else is one
// JSON document the scripts never touch.
const (
	fieldBalance      = "balance"
	fieldData         = "data"
	fieldRefillAmount = "refill_amount"
	fieldEveryS       = "refill_every_s"
	fieldEveryNs      = "refill_every_ns"
	fieldAnchorS      = "refill_anchor_s"
	fieldAnchorNs     = "refill_anchor_ns"
	fieldRefilledS    = "refilled_at_s"
	fieldRefilledNs   = "refilled_at_ns"
)

// accountFields are the fields of an account hash other than its buckets.
var accountFields = []string{fieldBalance, fieldData, fieldRefillAmount, fieldEveryS, fieldEveryNs,
	fieldAnchorS, fieldAnchorNs, fieldRefilledS, fieldRefilledNs, fieldCaps}

// maxScriptSeconds bounds the seconds of the times the scripts compute with,
// so that they stay exact in a Lua number (a double).
const maxScriptSeconds = 1 << 52

// PutAccount creates or replaces an account, balance and refill state
// included, in one transaction; the account's token buckets are kept.
// Spends made between reading an account and putting it back are lost:
// change balances with [Store.TopUp], [Store.Spend] or [Store.UpdateAccount]
// instead. The account's ID is added to the index [Store.Accounts] reads,
// in a second step (the index has its own hash slot). It reports
// an invalid account (see [store.Account.Validate]) without touching Redis.
// Lookups cached for the account's keys are dropped here at once and on the
// other replicas when the announcement reaches them (see
// [Options.LookupTTL]).
func (s *Store) PutAccount(ctx context.Context, a store.Account) error {
	fields, err := encodeAccount(&a)
	if err != nil {
		return err
	}
	k := s.AccountRedisKey(a.ID)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, k, accountFields...)
		p.HSet(ctx, k, fields...)
		p.Persist(ctx, k)
		return nil
	})
	if err != nil {
		return backendError("put account "+strconv.Quote(a.ID), err)
	}
	return s.indexAccount(ctx, "put account", a.ID)
}

// indexAccount adds a stored account to the index [Store.Accounts] reads,
// a second step (the index lives in its own slot) harmless to repeat, and
// drops and announces lookups cached for its keys.
func (s *Store) indexAccount(ctx context.Context, op, id string) error {
	if err := s.rdb.ZAdd(ctx, s.AccountsIndexRedisKey(), redis.Z{Member: id}).Err(); err != nil {
		return backendError(op+" "+strconv.Quote(id), err)
	}
	s.cache.dropAccount(id)
	s.announce(ctx, "a"+id)
	return nil
}

// CreateAccount implements [store.Admin]: it stores a new account as
// [Store.PutAccount] does, or fails with an error wrapping
// [store.ErrExists] if the account exists, checked and written in one
// script, so that of callers creating the same account at once one wins.
func (s *Store) CreateAccount(ctx context.Context, a store.Account) error {
	fields, err := encodeAccount(&a)
	if err != nil {
		return err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	args := make([]any, 0, len(accountFields)+1+len(fields))
	args = append(args, len(accountFields))
	for _, f := range accountFields {
		args = append(args, f)
	}
	created, err := createAccountScript.Run(ctx, s.rdb, []string{s.AccountRedisKey(a.ID)},
		append(args, fields...)...).Int64()
	if err != nil {
		return backendError("create account "+strconv.Quote(a.ID), err)
	}
	if created == 0 {
		return fmt.Errorf("redisstore: create account %q: %w", a.ID, store.ErrExists)
	}
	return s.indexAccount(ctx, "create account", a.ID)
}

// createAccountScript: KEYS[1] account hash; ARGV[1] n, ARGV[2..n+1] the
// account fields to clear, then field, value, … to set. Returns 0 if the
// account exists, else 1.
var createAccountScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], '` + fieldBalance + `') == 1 then return 0 end
local n = tonumber(ARGV[1])
redis.call('HDEL', KEYS[1], unpack(ARGV, 2, n + 1))
redis.call('HSET', KEYS[1], unpack(ARGV, n + 2))
redis.call('PERSIST', KEYS[1])
return 1
`)

// Account returns the account with the given ID, with any periodic refill
// due now applied (and stored), like a spend of zero would.
func (s *Store) Account(ctx context.Context, id string) (store.Account, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return s.account(ctx, id)
}

func (s *Store) account(ctx context.Context, id string) (store.Account, error) {
	v, err := accountScript.Run(ctx, s.rdb, []string{s.AccountRedisKey(id), s.HoldsRedisKey(id)}, s.timeArg()).Slice()
	if err != nil {
		return store.Account{}, backendError("account "+strconv.Quote(id), err)
	}
	if len(v) == 0 {
		return store.Account{}, fmt.Errorf("redisstore: account %q: %w", id, store.ErrNotFound)
	}
	a, err := decodeAccount(pairs(v))
	if err != nil {
		return store.Account{}, fmt.Errorf("redisstore: account %q: %w", id, err)
	}
	return a, nil
}

// Spend applies any due periodic refill and debits cost if the balance
// covers it, atomically, in one round trip (one Lua script on the Redis
// server, timed by the server's clock). See [store.Store.Spend]. A spend
// that fails with an error has not debited the account, even if Redis
// carried it out unseen: see the package documentation.
func (s *Store) Spend(ctx context.Context, accountID string, cost int64) (store.SpendResult, error) {
	if cost < 0 {
		return store.SpendResult{}, fmt.Errorf("redisstore: spend %d: %w", cost, store.ErrInvalidAmount)
	}
	keys := s.spendKeys(accountID)
	op := cancel{account: accountID, marker: keys[1]}
	rctx, stop := s.withTimeout(ctx)
	v, err := spendScript.Run(rctx, s.rdb, keys, s.timeArg(), cost, s.ttlArg).Slice()
	stop()
	if err == nil && cancelled(v) {
		err = errCancelled
	}
	if err != nil {
		s.cancelOp(ctx, op)
		return store.SpendResult{}, backendError("spend", err)
	}
	if notFound(v) {
		return store.SpendResult{}, fmt.Errorf("redisstore: spend: account %q: %w", accountID, store.ErrNotFound)
	}
	return decodeSpend(v, 5)
}

// Refund gives amount credits back to the account, after applying any due
// periodic refill, and returns the new balance. See [store.Refunder].
func (s *Store) Refund(ctx context.Context, accountID string, amount int64) (int64, error) {
	return s.credit(ctx, accountID, amount, true)
}

// TopUp adds amount credits to the account, after applying any due periodic
// refill (so bought credits come on top of the period's quota), and returns
// the new balance. A balance that would exceed the largest int64 is refused
// with an error wrapping [store.ErrInvalidAmount].
func (s *Store) TopUp(ctx context.Context, accountID string, amount int64) (int64, error) {
	return s.credit(ctx, accountID, amount, false)
}

// credit adds amount credits to the account: a refund, which also gives
// them back to the spend cap's period, or else a top-up.
func (s *Store) credit(ctx context.Context, accountID string, amount int64, refund bool) (int64, error) {
	op, flag := "top up", "0"
	if refund {
		op, flag = "refund", "1"
	}
	if amount <= 0 {
		return 0, fmt.Errorf("redisstore: %s %d: %w", op, amount, store.ErrInvalidAmount)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	v, err := creditScript.Run(ctx, s.rdb, []string{s.AccountRedisKey(accountID)},
		s.timeArg(), strconv.FormatInt(amount, 10), flag).Slice()
	if err != nil {
		return 0, backendError(op, err)
	}
	if notFound(v) {
		return 0, fmt.Errorf("redisstore: %s: account %q: %w", op, accountID, store.ErrNotFound)
	}
	if len(v) == 1 { // {-2}: overflow
		return 0, fmt.Errorf("redisstore: %s %d: balance would overflow: %w", op, amount, store.ErrInvalidAmount)
	}
	if len(v) != 2 {
		return 0, errReply(op)
	}
	return parseBalance(op, v[1])
}

// notFound reports whether a script answered {-1}, "no such account".
func notFound(v []any) bool { return status(v, -1) }

// cancelled reports whether a script answered {-3}, "operation cancelled".
func cancelled(v []any) bool { return status(v, -3) }

func status(v []any, code int64) bool {
	if len(v) != 1 {
		return false
	}
	n, ok := v[0].(int64)
	return ok && n == code
}

func errReply(op string) error {
	return fmt.Errorf("redisstore: %s: unexpected reply from Redis", op)
}

// decodeSpend decodes a spend script's reply v: its first five elements,
// {ok, balance, hasNext, nextSec, nextNsec}, and the cap part (see
// decodeCapReply) from v[capAt] on, if the reply goes on that far.
func decodeSpend(v []any, capAt int) (store.SpendResult, error) {
	if len(v) < 5 {
		return store.SpendResult{}, errReply("spend")
	}
	ok, _ := v[0].(int64)
	bal, err := parseBalance("spend", v[1])
	if err != nil {
		return store.SpendResult{}, err
	}
	r := store.SpendResult{OK: ok == 1, Balance: bal}
	if has, _ := v[2].(int64); has == 1 {
		sec, _ := v[3].(int64)
		nsec, _ := v[4].(int64)
		r.NextRefill = time.Unix(sec, nsec)
	}
	if len(v) > capAt {
		r.Cap, err = decodeCapReply(v[capAt:])
	}
	return r, err
}

func parseBalance(op string, v any) (int64, error) {
	str, ok := v.(string)
	if !ok {
		return 0, errReply(op)
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return 0, errReply(op)
	}
	return n, nil
}

// accountData is the part of an account kept as JSON in the data field.
type accountData struct {
	ID        string            `json:"id"`
	Plan      string            `json:"plan,omitempty"`
	Status    store.Status      `json:"status,omitempty"`
	PeriodEnd time.Time         `json:"period_end,omitzero"`
	Features  []string          `json:"features,omitempty"`
	RateLimit *store.RateLimit  `json:"rate_limit,omitempty"`
	Windows   []store.Window    `json:"windows,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	// Billing state; see store.Account.
	GraceUntil time.Time   `json:"grace_until,omitzero"`
	Lapse      store.Lapse `json:"lapse,omitempty"`
	PaymentURL string      `json:"payment_url,omitempty"`
}

// encodeAccount returns the HSET arguments (field, value, …) for account
// a, or an error if a is invalid (see [store.Account.Validate]).
func encodeAccount(a *store.Account) ([]any, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	data, err := json.Marshal(accountData{
		ID: a.ID, Plan: a.Plan, Status: a.Status, PeriodEnd: a.PeriodEnd,
		Features: a.Features, RateLimit: a.RateLimit, Windows: a.Windows, Metadata: a.Metadata,
		GraceUntil: a.GraceUntil, Lapse: a.Lapse, PaymentURL: a.PaymentURL,
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: account %q: %w", a.ID, err)
	}
	f := []any{fieldBalance, strconv.FormatInt(a.Balance, 10), fieldData, string(data)}
	caps, err := encodeCaps(a)
	if err != nil {
		return nil, err
	}
	if caps != "" {
		f = append(f, fieldCaps, caps)
	}
	if r := a.Refill; r != nil {
		if !scriptTime(r.Anchor) || (!a.RefilledAt.IsZero() && !scriptTime(a.RefilledAt)) {
			return nil, fmt.Errorf("redisstore: account %q: refill times out of range", a.ID)
		}
		f = append(f,
			fieldRefillAmount, strconv.FormatInt(r.Amount, 10),
			fieldEveryS, int64(r.Every/time.Second), fieldEveryNs, int64(r.Every%time.Second),
			fieldAnchorS, r.Anchor.Unix(), fieldAnchorNs, r.Anchor.Nanosecond())
		if !a.RefilledAt.IsZero() {
			f = append(f, fieldRefilledS, a.RefilledAt.Unix(), fieldRefilledNs, a.RefilledAt.Nanosecond())
		}
	}
	return f, nil
}

func scriptTime(t time.Time) bool {
	s := t.Unix()
	return s > -maxScriptSeconds && s < maxScriptSeconds
}

// decodeAccount rebuilds an account from its hash.
func decodeAccount(m map[string]string) (store.Account, error) {
	var d accountData
	if err := json.Unmarshal([]byte(m[fieldData]), &d); err != nil {
		return store.Account{}, fmt.Errorf("corrupt account data: %w", err)
	}
	a := store.Account{
		ID: d.ID, Plan: d.Plan, Status: d.Status, PeriodEnd: d.PeriodEnd,
		Features: slices.Clip(d.Features), RateLimit: d.RateLimit, Windows: slices.Clip(d.Windows), Metadata: d.Metadata,
		GraceUntil: d.GraceUntil, Lapse: d.Lapse, PaymentURL: d.PaymentURL,
	}
	if v, ok := m[fieldCaps]; ok {
		if err := decodeCaps(&a, v); err != nil {
			return store.Account{}, err
		}
	}
	var err error
	if a.Balance, err = strconv.ParseInt(m[fieldBalance], 10, 64); err != nil {
		return store.Account{}, fmt.Errorf("corrupt balance: %w", err)
	}
	if amount, ok := m[fieldRefillAmount]; ok {
		ints, err := parseInts(m, fieldEveryS, fieldEveryNs, fieldAnchorS, fieldAnchorNs)
		if err != nil {
			return store.Account{}, err
		}
		r := &store.Refill{
			Every:  time.Duration(ints[0])*time.Second + time.Duration(ints[1]),
			Anchor: time.Unix(ints[2], ints[3]),
		}
		if r.Amount, err = strconv.ParseInt(amount, 10, 64); err != nil {
			return store.Account{}, fmt.Errorf("corrupt refill amount: %w", err)
		}
		a.Refill = r
		if _, ok := m[fieldRefilledS]; ok {
			ints, err := parseInts(m, fieldRefilledS, fieldRefilledNs)
			if err != nil {
				return store.Account{}, err
			}
			a.RefilledAt = time.Unix(ints[0], ints[1])
		}
	}
	return a, nil
}

func parseInts(m map[string]string, fields ...string) ([]int64, error) {
	out := make([]int64, len(fields))
	for i, f := range fields {
		n, err := strconv.ParseInt(m[f], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("corrupt %s: %w", f, err)
		}
		out[i] = n
	}
	return out, nil
}
