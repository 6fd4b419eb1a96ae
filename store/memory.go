package store

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Memory is a [Store] that keeps accounts and keys in the memory of one
// process. It also implements [Refunder], [Holder], [Buckets],
// [BucketSpender], [BucketHolder] and [SpendCapper], manages keys and
// accounts itself (PutAccount, CreateKey, …), and can save itself to a JSON
// file and restore itself from one ([Memory.SaveFile], [Memory.LoadFile]),
// so that a restart of a small server loses nothing.
//
// Lookup and Spend allocate nothing (but spends of an account with a
// [SpendCap] or [Threshold]s) and take no lock shared between accounts;
// concurrent spends against one account admit exactly as many as the balance
// covers. Create a Memory with [NewMemory]; the zero value is not usable. A
// Memory is safe for concurrent use.
type Memory struct {
	now  func() time.Time
	tick func() int64 // times buckets, in Unix nanoseconds

	keys       table[Digest, memoryKey]
	accounts   table[string, *memoryAccount] // never replaced once added
	standalone standaloneTable
	slots      slotTable
	mu         sync.Mutex // serialises the writers of keys and accounts
	holdSeq    atomic.Int64
}

// memoryKey is a key with its account, for Lookup to find both at once.
type memoryKey struct {
	key     Key
	account *memoryAccount
}

// memoryAccount is one account. What spends write is on a cache line of
// its own, so that on a busy account one line bounces between cores.
type memoryAccount struct {
	accountHot
	_ [(64 - unsafe.Sizeof(accountHot{})%64) % 64]byte
	accountCold
	_ [(64 - unsafe.Sizeof(accountCold{})%64) % 64]byte
}

// accountHot is what spends write, under mu.
type accountHot struct {
	mu      sync.Mutex
	balance atomic.Int64 // Lookup reads it without mu
	bucket  memoryBucket // the first token bucket; unused while its burst is zero
}

// accountCold is what spends and lookups read.
type accountCold struct {
	// put is the account as put, replaced under mu but never modified, so
	// that Lookup reads it without mu; balance overrides its Balance.
	put     atomic.Pointer[Account]
	buckets []*memoryBucket      // the token buckets after the first
	holds   map[int64]memoryHold // credits held, under mu
}

// setLocked makes a, owned by the store, the account: under e.mu if shared.
func (e *memoryAccount) setLocked(a Account) {
	e.balance.Store(a.Balance)
	e.put.Store(&a)
}

// accountLocked returns the account as it is: under e.mu if it has a refill.
func (e *memoryAccount) accountLocked() Account {
	a := *e.put.Load()
	a.Balance = e.balance.Load()
	return a
}

// MemoryOptions configures [NewMemory]. A nil *MemoryOptions, like the zero
// value, means all defaults.
type MemoryOptions struct {
	// Clock, if set, replaces time.Now for refills, token buckets and the
	// CreatedAt of keys: tests inject a fake clock here instead of sleeping.
	Clock func() time.Time
}

// NewMemory returns an empty memory store.
func NewMemory(opts *MemoryOptions) *Memory {
	// By default buckets read only the monotonic clock: half time.Now's cost.
	start := time.Now()
	base := start.UnixNano()
	m := &Memory{now: time.Now, tick: func() int64 { return base + int64(time.Since(start)) }}
	m.keys.hash = digestHash
	m.accounts.hash = stringHash()
	m.standalone.m = make(map[string]*standaloneBucket)
	if opts != nil && opts.Clock != nil {
		clock := opts.Clock
		m.now, m.tick = clock, func() int64 { return clock().UnixNano() }
	}
	return m
}

var (
	_ Store         = (*Memory)(nil)
	_ Refunder      = (*Memory)(nil)
	_ Buckets       = (*Memory)(nil)
	_ BucketSpender = (*Memory)(nil)
)

// Errors made once, so that returning them allocates nothing.
var (
	errKeyNotFound     = errorf("key: %w", ErrNotFound)
	errAccountNotFound = errorf("account: %w", ErrNotFound)
	errBadAccountID    = errorf("account ID empty or longer than %d bytes: %w", maxIDLength, ErrNotFound)
	errNegativeCost    = errorf("negative cost: %w", ErrInvalidAmount)
)

// account returns the account id, or an error wrapping [ErrNotFound].
func (m *Memory) account(id string) (*memoryAccount, error) {
	if id == "" || len(id) > maxIDLength {
		return nil, errBadAccountID
	}
	e := m.accounts.get(id)
	if e == nil {
		return nil, errAccountNotFound
	}
	return *e, nil
}

// Lookup implements [Store], with any refill due now applied; it takes no
// lock for an account without one. [Memory.Account] returns a copy that
// shares nothing with the store.
func (m *Memory) Lookup(_ context.Context, digest Digest) (Key, Account, error) {
	k := m.keys.get(digest)
	if k == nil {
		return Key{}, Account{}, errKeyNotFound
	}
	if p := k.account.put.Load(); p.Refill == nil {
		// A racing PutAccount may pair with the old balance, as if after it.
		a := *p
		a.Balance = k.account.balance.Load()
		return k.key, a, nil
	}
	return k.key, m.current(k.account), nil
}

// current returns the account e with any refill due now applied.
func (m *Memory) current(e *memoryAccount) Account {
	e.mu.Lock()
	defer e.mu.Unlock()
	m.applyRefillLocked(e)
	return e.accountLocked()
}

// applyRefillLocked applies any refill due now to e, which must be locked,
// releases its holds whose lease ended, and returns the next refill time.
// Only if it has a refill or holds does it read the clock.
func (m *Memory) applyRefillLocked(e *memoryAccount) (next time.Time) {
	if len(e.holds) > 0 {
		m.releaseExpiredLocked(e, m.now())
	}
	if e.put.Load().Refill == nil {
		return time.Time{}
	}
	now := m.now()
	a := e.accountLocked()
	if a.applyRefill(now) { // at most once a period
		e.setLocked(a) // the only copy that escapes
	}
	return a.nextRefill(now)
}

// Spend implements [Store].
func (m *Memory) Spend(_ context.Context, accountID string, cost int64) (SpendResult, error) {
	if cost < 0 {
		return SpendResult{}, errNegativeCost
	}
	e, err := m.account(accountID)
	if err != nil {
		return SpendResult{}, err
	}
	e.mu.Lock()
	r := m.spendLocked(e, m.applyRefillLocked(e), cost, true)
	e.mu.Unlock()
	return r, nil
}

// spendLocked is debitLocked that also keeps e's spend cap and thresholds,
// if it has any.
func (m *Memory) spendLocked(e *memoryAccount, next time.Time, cost int64, allowed bool) SpendResult {
	if !e.put.Load().capped() {
		return e.debitLocked(next, cost, allowed)
	}
	a := e.accountLocked()
	if !allowed {
		return SpendResult{Balance: a.Balance, NextRefill: next}
	}
	r := a.spendCapped(m.now(), cost)
	r.NextRefill = next
	if a.SpendCap == nil && len(r.Cap.Crossed) == 0 {
		e.balance.Store(a.Balance) // nothing else changed
	} else {
		e.setLocked(a) // also a refused spend may have started a new period
	}
	return r
}

// debitLocked debits cost if allowed and covered, under e.mu after refilling.
func (e *memoryAccount) debitLocked(next time.Time, cost int64, allowed bool) SpendResult {
	r := SpendResult{Balance: e.balance.Load(), NextRefill: next}
	if allowed && cost <= r.Balance {
		r.OK, r.Balance = true, r.Balance-cost
		e.balance.Store(r.Balance)
	}
	return r
}

// Refund implements [Refunder]. It applies any due refill first, so that a
// later top-up never swallows the refund, and refuses an amount that would
// overflow the balance with an error wrapping [ErrInvalidAmount].
func (m *Memory) Refund(_ context.Context, accountID string, amount int64) (int64, error) {
	return m.add("refund", accountID, amount)
}

// TopUp adds amount, which must be positive, to the account's balance and
// returns the new balance, as [Memory.Refund] does.
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
	if op == "refund" {
		return m.giveBackLocked(e, amount), nil
	}
	e.balance.Store(b + amount)
	return b + amount, nil
}

// giveBackLocked gives amount back to e, under e.mu, for a refund or a
// hold settled or released: to its balance, and to its spend cap's current
// period as refundCapped does. It returns the balance after it.
func (m *Memory) giveBackLocked(e *memoryAccount, amount int64) int64 {
	if amount == 0 || e.put.Load().SpendCap == nil {
		return e.balance.Add(amount)
	}
	a := e.accountLocked()
	a.refundCapped(m.now(), amount)
	e.setLocked(a)
	return a.Balance
}

// PutAccount validates a and stores a deep copy, replacing every field of
// any account with its ID: spends between reading an account and putting it
// back are lost, so change balances with [Memory.TopUp] and [Memory.Spend].
func (m *Memory) PutAccount(_ context.Context, a Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putAccountLocked(a.clone())
	return nil
}

// CreateAccount implements [Admin]: it validates a and stores a deep copy,
// or fails with an error wrapping [ErrExists] if an account has its ID.
func (m *Memory) CreateAccount(_ context.Context, a Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.accounts.get(a.ID) != nil {
		return errorf("create account %q: %w", a.ID, ErrExists)
	}
	m.putAccountLocked(a.clone())
	return nil
}

// putAccountLocked stores a, which the store now owns. m.mu must be held.
func (m *Memory) putAccountLocked(a Account) {
	if e := m.accounts.get(a.ID); e != nil {
		(*e).mu.Lock()
		(*e).setLocked(a)
		(*e).mu.Unlock()
		return
	}
	e := new(memoryAccount)
	e.setLocked(a)
	m.accounts.set(a.ID, e)
}

// Account returns a deep copy of the account, with any refill due now
// applied, or an error wrapping [ErrNotFound].
func (m *Memory) Account(_ context.Context, id string) (Account, error) {
	e, err := m.account(id)
	if err != nil {
		return Account{}, err
	}
	return m.current(e).clone(), nil
}

// CreateKey stores a new key from [GenerateKey] for an existing account
// and returns the raw key, never available again, and the Key ([NewKey],
// CreatedAt by the store's clock).
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
	if m.keys.get(k.Digest) != nil { // 160 random bits: the random source is broken
		return "", Key{}, errorf("generated key collides with an existing key")
	}
	m.keys.set(k.Digest, memoryKey{k, e})
	return raw, k, nil
}

// PutKey stores a key made by [NewKey], replacing any with its digest,
// which must not be zero; its account must exist. A Prefix longer than a
// display prefix is cut to one. A revoked key stays revoked.
func (m *Memory) PutKey(_ context.Context, k Key) error {
	if err := k.validate(); err != nil {
		return err
	}
	e, err := m.account(k.AccountID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.keys.get(k.Digest); old != nil && old.key.Revoked {
		k.Revoked = true
	}
	m.keys.set(k.Digest, memoryKey{k, e})
	return nil
}

// RevokeKey marks the key revoked, so that it no longer authenticates.
// Revoking a revoked key succeeds and changes nothing; revoking an unknown
// key yields an error wrapping [ErrNotFound].
func (m *Memory) RevokeKey(_ context.Context, digest Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.keys.get(digest)
	if k == nil {
		return errKeyNotFound
	}
	revoked := *k
	revoked.key.Revoked = true
	m.keys.set(digest, revoked)
	return nil
}

// KeepsSpendCaps implements [SpendCapper].
func (*Memory) KeepsSpendCaps() {}
