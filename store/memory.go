package store

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is a [Store] that keeps accounts and keys in the memory of one
// process. It also implements [Refunder] and [Admin], and can save itself to
// and restore itself from a JSON file ([Memory.SaveFile], [Memory.LoadFile])
// so that a restart of a small server loses nothing. It keeps token buckets
// too ([Buckets], [BucketSpender]), so a limiter whose Options.Store is the
// Memory and a charge with a rate limit decide both under one lock (see
// paywall.ChargeOptions.RateLimit).
//
// Lookup, LookupShared and Spend allocate nothing. Spend is an exact
// check-and-subtract under a per-account lock, so concurrent spends against
// one account admit exactly as many as the balance covers. Lookup takes no
// lock for an account without a periodic refill, and a spend whose context
// carries the account the request was looked up with ([AccountContext], as
// after paywall.Authenticate) reaches it without a second lookup.
//
// Create a Memory with [NewMemory]; the zero value is not usable. A Memory is
// safe for concurrent use.
type Memory struct {
	now func() time.Time
	// tick times token buckets, in nanoseconds since the Unix epoch:
	// MemoryOptions.Clock if set, else a clock that reads only the
	// monotonic clock, which costs half of time.Now. A bucket needs only
	// elapsed time; refills and key times need the wall clock.
	tick func() int64

	// keys maps digests to *memoryKeys. A stored *memoryKey is never
	// modified; RevokeKey and PutKey replace it.
	keys keyTable
	// accounts maps an account ID to a *memoryAccount, which is never
	// replaced once created, so a spend cannot land on a stale copy.
	accounts *shardedCache
	// standalone holds the stand-alone token buckets (see TakeTokens),
	// made on first use.
	standalone  *standaloneTable
	bucketsOnce sync.Once
	// mu serialises the writers of keys and the creation of accounts, so
	// read-modify-write operations on them (RevokeKey, PutAccount) are
	// atomic. Readers do not take it.
	mu sync.Mutex
}

// memoryAccount is one account. What PutAccount stored is kept in put,
// which is replaced but never modified, so that Lookup reads it without
// taking the lock and LookupShared hands it out; what spends change — the
// balance, the token buckets — is guarded by mu, and so is the replacing of
// put when a refill moves its RefilledAt.
//
// Its fields are laid out in three cache lines (the struct is 192 bytes,
// a size class whose objects are 64-byte aligned): what every spend writes,
// what reads need, and the rest, so that on a busy account the line that
// bounces between cores is one.
type memoryAccount struct {
	// Written by spends.
	mu sync.Mutex
	// balance is the account's balance: written under mu, read by Lookup
	// without it.
	balance atomic.Int64
	// bucket is the account's first token bucket (see Memory.TakeTokens),
	// unused while its burst is zero.
	bucket memoryBucket

	// Read by spends and lookups; written when the account is put.
	//
	// put is the account, a deep copy the store owns, whose entry is this
	// memoryAccount. Its Balance is as put (balance is current); its other
	// fields are current.
	put atomic.Pointer[Account]
	// owner is the store the account belongs to.
	owner *Memory
	// hasRefill reports whether put has a Refill, which a read of the
	// account must apply under mu first. It is put.Refill != nil, kept
	// here so that a spend need not follow put to another cache line.
	hasRefill bool
	_         [40]byte

	// buckets are the account's token buckets after the first.
	buckets []*memoryBucket
	_       [40]byte
}

// setLocked makes a, which the store owns, the account. e.mu must be held
// unless e is not yet shared.
func (e *memoryAccount) setLocked(a Account) {
	a.entry = e // a may come from another store's Lookup
	e.balance.Store(a.Balance)
	e.hasRefill = a.Refill != nil
	e.put.Store(&a)
}

// accountLocked returns the account as it is. e.mu must be held unless the
// account has no refill.
func (e *memoryAccount) accountLocked() Account {
	a := *e.put.Load()
	a.Balance = e.balance.Load()
	return a
}

// memoryKey is a stored key with its account's entry, which Lookup so
// reaches without a second map lookup. Account entries are never removed
// or replaced, so the pointer stays valid.
type memoryKey struct {
	key     Key
	account *memoryAccount
}

// MemoryOptions configures [NewMemory]. A nil *MemoryOptions, like the zero
// value, means all defaults.
type MemoryOptions struct {
	// Clock returns the current time, which decides when refills are due
	// and when keys are created. If nil, time.Now is used. Tests inject a
	// fake clock here instead of sleeping.
	Clock func() time.Time
}

// NewMemory returns an empty memory store.
func NewMemory(opts *MemoryOptions) *Memory {
	m := &Memory{
		now:      time.Now,
		accounts: newShardedCache(),
	}
	m.tick = monotonicNanos()
	if opts != nil && opts.Clock != nil {
		clock := opts.Clock
		m.now, m.tick = clock, func() int64 { return clock().UnixNano() }
	}
	return m
}

// monotonicNanos returns a clock that reads only the monotonic clock: the
// wall time when it was made, in nanoseconds since the Unix epoch, plus the
// time elapsed since (time.Since of a time with a monotonic reading does
// not read the wall clock).
func monotonicNanos() func() int64 {
	start := time.Now()
	base := start.UnixNano()
	return func() int64 { return base + int64(time.Since(start)) }
}

// Compile-time checks of the capabilities Memory offers.
var (
	_ Store        = (*Memory)(nil)
	_ SharedLookup = (*Memory)(nil)
	_ Refunder     = (*Memory)(nil)
	_ Admin        = (*Memory)(nil)
)

// Errors returned on hot paths, made once so returning them allocates
// nothing.
var (
	errKeyNotFound     = errorf("key: %w", ErrNotFound)
	errAccountNotFound = errorf("account: %w", ErrNotFound)
	errBadAccountID    = errorf("account ID empty or longer than %d bytes: %w", MaxIDLength, ErrNotFound)
	errNegativeCost    = errorf("negative cost: %w", ErrInvalidAmount)
)

// account returns the entry for id, or an error wrapping [ErrNotFound].
func (m *Memory) account(id string) (*memoryAccount, error) {
	if id == "" || len(id) > MaxIDLength {
		return nil, errBadAccountID
	}
	v, ok := m.accounts.Get(id)
	if !ok {
		return nil, errAccountNotFound
	}
	return v.(*memoryAccount), nil
}

// accountFor returns the entry for id, from ctx if it is an
// [AccountContext] holding the account with that ID as this store's Lookup
// or LookupShared returned it (entries are never replaced, so it is the one
// the map holds), else from the map.
func (m *Memory) accountFor(ctx context.Context, id string) (*memoryAccount, error) {
	if ac, ok := ctx.(AccountContext); ok {
		if a := ac.LookedUpAccount(); a != nil && a.entry != nil && a.entry.owner == m && a.ID == id {
			return a.entry, nil
		}
	}
	return m.account(id)
}

// Lookup implements [Store]. The returned Account reflects any refill due
// now. It is a shallow copy: its Features, Metadata, Refill and RateLimit
// are shared with the store and must not be modified (use [Account.Clone]
// for a copy of one's own).
func (m *Memory) Lookup(ctx context.Context, digest Digest) (Key, Account, error) {
	k, a, balance, err := m.LookupShared(ctx, digest)
	if err != nil {
		return Key{}, Account{}, err
	}
	acct := *a
	acct.Balance = balance
	return *k, acct, nil
}

// LookupShared implements [SharedLookup]: it is Lookup without the copies,
// and allocates nothing. It takes no lock for an account without a periodic
// refill; for one with a refill, it applies any refill due now first.
//
// paywall.Authenticate calls LookupShared rather than Lookup, so a type
// that embeds *Memory to change what Lookup returns must define
// LookupShared too.
func (m *Memory) LookupShared(_ context.Context, digest Digest) (*Key, *Account, int64, error) {
	k := m.keys.get(&digest)
	if k == nil {
		return nil, nil, 0, errKeyNotFound
	}
	e := k.account
	if p := e.put.Load(); p.Refill == nil {
		// Nothing to apply: no lock. A PutAccount racing with this may
		// pair the new account with the old balance, as if it came after.
		return &k.key, p, e.balance.Load(), nil
	}
	e.mu.Lock()
	m.applyRefillLocked(e)
	p, balance := e.put.Load(), e.balance.Load()
	e.mu.Unlock()
	return &k.key, p, balance, nil
}

// applyRefillLocked applies any refill due now to e, which must be locked,
// and returns the next refill time. It reads the clock only for accounts
// with a refill: on some machines a clock read costs more than the rest of
// a spend.
func (m *Memory) applyRefillLocked(e *memoryAccount) (next time.Time) {
	if !e.hasRefill {
		return time.Time{}
	}
	now := m.now()
	a := e.accountLocked()
	if a.ApplyRefill(now) {
		// At most once a period: put is never modified, so it is
		// replaced.
		e.balance.Store(a.Balance)
		e.put.Store(&a)
	}
	return a.NextRefill(now)
}

// Spend implements [Store].
func (m *Memory) Spend(ctx context.Context, accountID string, cost int64) (SpendResult, error) {
	if cost < 0 {
		return SpendResult{}, errNegativeCost
	}
	e, err := m.accountFor(ctx, accountID)
	if err != nil {
		return SpendResult{}, err
	}
	e.mu.Lock()
	r := e.debitLocked(m.applyRefillLocked(e), cost, true)
	e.mu.Unlock()
	return r, nil
}

// debitLocked subtracts cost from the balance if allowed and the balance
// covers it, and returns the outcome, with next as the next refill time.
// e.mu must be held and any due refill applied.
func (e *memoryAccount) debitLocked(next time.Time, cost int64, allowed bool) SpendResult {
	r := SpendResult{Balance: e.balance.Load(), NextRefill: next}
	if allowed && cost <= r.Balance {
		r.OK, r.Balance = true, r.Balance-cost
		e.balance.Store(r.Balance)
	}
	return r
}

// Refund implements [Refunder]. It applies any refill due now first, so a
// refund is never swallowed by a later top-up to the refill amount. A
// refund that would take the balance past the largest int64 is refused with
// an error wrapping [ErrInvalidAmount].
func (m *Memory) Refund(_ context.Context, accountID string, amount int64) (int64, error) {
	return m.add("refund", accountID, amount)
}

// TopUp implements [Admin]. Like [Memory.Refund], it applies any due refill
// first and refuses an amount that would overflow the balance.
func (m *Memory) TopUp(_ context.Context, accountID string, amount int64) (int64, error) {
	return m.add("top-up", accountID, amount)
}

// add adds amount to an account's balance for Refund and TopUp.
func (m *Memory) add(op, accountID string, amount int64) (int64, error) {
	if amount <= 0 {
		return 0, errorf("%s of %d: %w", op, amount, ErrInvalidAmount)
	}
	e, err := m.account(accountID)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m.applyRefillLocked(e)
	b := e.balance.Load()
	if b > math.MaxInt64-amount {
		return b, errorf("%s of %d would overflow balance %d: %w", op, amount, b, ErrInvalidAmount)
	}
	e.balance.Store(b + amount)
	return b + amount, nil
}

// PutAccount implements [Admin]. It validates a with [Account.Validate] and
// stores a deep copy. Replacing an account replaces every field, Balance
// and RefilledAt included, so spends that land between reading an account
// and putting it back are lost; change balances with [Memory.TopUp] and
// [Memory.Spend] instead.
func (m *Memory) PutAccount(_ context.Context, a Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	a = a.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putAccountLocked(a)
	return nil
}

// putAccountLocked stores a, which the store now owns. m.mu must be held.
func (m *Memory) putAccountLocked(a Account) {
	if v, ok := m.accounts.Get(a.ID); ok {
		e := v.(*memoryAccount)
		e.mu.Lock()
		e.setLocked(a)
		e.mu.Unlock()
		return
	}
	e := &memoryAccount{owner: m}
	e.setLocked(a)
	m.accounts.Set(a.ID, e)
}

// Account implements [Admin]. The result is a deep copy, with any refill
// due now applied, that the caller may modify freely.
func (m *Memory) Account(_ context.Context, id string) (Account, error) {
	e, err := m.account(id)
	if err != nil {
		return Account{}, err
	}
	e.mu.Lock()
	m.applyRefillLocked(e)
	a := e.accountLocked()
	e.mu.Unlock()
	return a.Clone(), nil
}

// CreateKey implements [Admin]. The prefix must suit [GenerateKey]; the
// stored key's Prefix is [DisplayPrefix] of the raw key and its CreatedAt
// is the store's clock.
func (m *Memory) CreateKey(_ context.Context, accountID, prefix string) (string, Key, error) {
	e, err := m.account(accountID)
	if err != nil {
		return "", Key{}, err
	}
	raw, err := GenerateKey(prefix)
	if err != nil {
		return "", Key{}, err
	}
	k := NewKey(raw, accountID)
	k.CreatedAt = m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys.get(&k.Digest) != nil {
		// 160 random bits: this means the random source is broken.
		return "", Key{}, errorf("generated key collides with an existing key")
	}
	m.putKeyLocked(k, e)
	return raw, k, nil
}

// PutKey implements [Admin]. It validates k with [Key.Validate] and
// requires its account to exist.
func (m *Memory) PutKey(_ context.Context, k Key) error {
	if err := k.Validate(); err != nil {
		return err
	}
	e, err := m.account(k.AccountID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putKeyLocked(k, e)
	return nil
}

// putKeyLocked stores k, belonging to the account e. m.mu must be held.
func (m *Memory) putKeyLocked(k Key, e *memoryAccount) {
	m.keys.set(&memoryKey{key: k, account: e})
}

// RevokeKey implements [Admin]. Revoking a revoked key succeeds and changes
// nothing.
func (m *Memory) RevokeKey(_ context.Context, digest Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.keys.get(&digest)
	if v == nil {
		return errKeyNotFound
	}
	k := *v
	k.key.Revoked = true
	m.keys.set(&k)
	return nil
}
