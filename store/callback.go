package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/patrickmn/go-cache"
)

// Callbacks are the functions through which a store made by [NewCallback]
// reaches the application's own database. Each must be safe for concurrent
// use and should honour its context's cancellation and deadline, which are
// those of the request being served.
type Callbacks struct {
	// Lookup resolves the digest of a raw key to the key and its account,
	// with the contract of [Store.Lookup]: an unknown key yields an error
	// wrapping [ErrNotFound], revoked and expired keys are returned like
	// any other, and any other error means the database is unavailable.
	// If the returned Key's Digest is zero it is set to the digest looked
	// up, and an empty AccountID is set to the account's ID. Required.
	Lookup func(ctx context.Context, digest Digest) (Key, Account, error)

	// Spend atomically applies any due refill and debits cost, with the
	// contract of [Store.Spend]. It is called only with a cost ≥ 0 and a
	// non-empty account ID of at most [MaxIDLength] bytes. Required.
	Spend func(ctx context.Context, accountID string, cost int64) (SpendResult, error)

	// Refund gives credits back, with the contract of [Refunder]. It is
	// called only with an amount > 0 and a non-empty account ID of at most
	// [MaxIDLength] bytes. Optional: if nil, the store does not implement
	// [Refunder].
	Refund func(ctx context.Context, accountID string, amount int64) (balance int64, err error)
}

// CallbackOptions configures [NewCallback]. A nil *CallbackOptions, like
// the zero value, means all defaults.
type CallbackOptions struct {
	// TTL is how long a successful lookup is served from the cache. If
	// zero, 5 seconds; if negative, successful lookups are not cached. A
	// revoked key keeps authenticating for up to TTL unless the
	// application calls [Callback.Invalidate].
	TTL time.Duration

	// NegativeTTL is how long a lookup that found no key (an error
	// wrapping [ErrNotFound]) is served from the cache. If zero, 1 second;
	// if negative, not-found results are not cached. A newly created key
	// may be refused for up to NegativeTTL if it was looked up just before.
	// Expired entries are dropped every max(TTL, NegativeTTL), at least
	// every second, so a flood of random keys holds memory in proportion
	// to its rate times NegativeTTL.
	NegativeTTL time.Duration

	// Clock returns the current time, against which cached lookups expire.
	// If nil, time.Now is used.
	Clock func() time.Time
}

// Default cache lifetimes of [NewCallback].
const (
	defaultCallbackTTL         = 5 * time.Second
	defaultCallbackNegativeTTL = time.Second
)

// Callback is a [Store] built from [Callbacks] by [NewCallback], with a
// read-through cache of lookups. A Callback is safe for concurrent use.
//
// Lookup results are cached for [CallbackOptions.TTL], not-found results
// for [CallbackOptions.NegativeTTL]; other errors are never cached. A cached
// Account is a snapshot: its Balance may be stale by up to the TTL, which is
// harmless because the middlewares decide on the balance [Store.Spend]
// reports, and Spend is never cached. Concurrent misses for the same digest
// collapse into a single call of Callbacks.Lookup; see [NewCallback] for
// whose context that call gets. LookupShared ([SharedLookup]) hands out the
// cached result itself, so a request authenticated from the cache copies
// nothing.
//
// Callback is an interface so that the value [NewCallback] returns can
// implement [Refunder] exactly when Callbacks.Refund is set. Only this
// package implements it; methods may be added to it.
type Callback interface {
	Store
	SharedLookup

	// Invalidate removes any cached result for digest, so the next lookup
	// asks Callbacks.Lookup again; call it after revoking a key to make the
	// revocation take effect at once. A lookup already in flight is not
	// cached when it completes, though its callers still receive its
	// result.
	Invalidate(digest Digest)
}

// NewCallback returns a [Callback] that calls fns. A nil fns.Lookup or
// fns.Spend is reported as the error "store: Callbacks.Lookup is nil" or
// "store: Callbacks.Spend is nil".
//
// The returned store implements [Refunder] if and only if fns.Refund is
// set: callers discover optional capabilities by type assertion, and a
// store whose Refund could only fail must not claim the capability.
//
// When several lookups of one digest miss the cache at once, the first
// caller (the leader) calls fns.Lookup with its own context, so its
// deadline and values reach the function, and the others wait for that
// result. A waiter whose own context ends stops waiting and returns its
// context's error. If the leader's context ends and the call fails, the
// failure is the leader's alone: the waiters retry, and one of them becomes
// the next leader. If fns.Lookup panics, the panic propagates to the
// leader and the waiters receive an error.
func NewCallback(fns Callbacks, opts *CallbackOptions) (Callback, error) {
	switch {
	case fns.Lookup == nil:
		return nil, errorf("Callbacks.Lookup is nil")
	case fns.Spend == nil:
		return nil, errorf("Callbacks.Spend is nil")
	}
	s := &callbackStore{
		fns:     fns,
		ttl:     defaultCallbackTTL,
		negTTL:  defaultCallbackNegativeTTL,
		now:     time.Now,
		flights: make(map[Digest]*lookupCall),
	}
	if opts != nil {
		if opts.TTL != 0 {
			s.ttl = opts.TTL
		}
		if opts.NegativeTTL != 0 {
			s.negTTL = opts.NegativeTTL
		}
		if opts.Clock != nil {
			s.now = opts.Clock
		}
	}
	if longest := max(s.ttl, s.negTTL); longest > 0 {
		// Entries carry go-cache expirations too, by the real clock, so
		// its janitor can drop them; freshness is decided by s.now.
		s.cache = cache.New(cache.NoExpiration, max(longest, time.Second))
	}
	if fns.Refund != nil {
		return &refundingCallbackStore{s}, nil
	}
	return s, nil
}

// callbackStore is the Callback without Refund.
type callbackStore struct {
	fns         Callbacks
	ttl, negTTL time.Duration // ≤ 0: not cached
	now         func() time.Time

	cache *cache.Cache // string(Digest[:]) → *cachedLookup; nil if nothing is cached

	mu      sync.Mutex // guards flights and orders cache writes with Invalidate
	flights map[Digest]*lookupCall
}

// refundingCallbackStore is the Callback with Refund.
type refundingCallbackStore struct {
	*callbackStore
}

var (
	_ Callback = (*callbackStore)(nil)
	_ Callback = (*refundingCallbackStore)(nil)
	_ Refunder = (*refundingCallbackStore)(nil)
)

// cachedLookup is a cached result of Callbacks.Lookup.
type cachedLookup struct {
	key     Key
	account Account // deep copy owned by the cache; handed out shallow
	err     error   // nil or an error wrapping ErrNotFound
	expires time.Time
}

// lookupCall is a call of Callbacks.Lookup in flight, shared by the callers
// that missed the cache for the same digest.
type lookupCall struct {
	done chan struct{} // closed when the fields below are final

	key     Key
	account Account
	err     error
	// retry tells waiters that the call failed because the leader's
	// context ended, so they should try again rather than fail.
	retry bool
	// noCache is set (under callbackStore.mu) by Invalidate.
	noCache bool
	// waiters counts (under callbackStore.mu) the callers that joined.
	waiters int
}

// errLookupPanicked is what waiters receive when Callbacks.Lookup panics.
var errLookupPanicked = errorf("Callbacks.Lookup panicked")

// Lookup implements [Store].
func (s *callbackStore) Lookup(ctx context.Context, digest Digest) (Key, Account, error) {
	k, a, _, err := s.LookupShared(ctx, digest)
	if err != nil {
		return Key{}, Account{}, err
	}
	return *k, *a, nil
}

// LookupShared implements [SharedLookup]: it is Lookup returning the
// cached result itself (or the one the call of Callbacks.Lookup produced),
// which is never modified, instead of copies.
func (s *callbackStore) LookupShared(ctx context.Context, digest Digest) (*Key, *Account, int64, error) {
	if e, ok := s.cached(digest); ok {
		return sharedResult(&e.key, &e.account, e.err)
	}
	for {
		s.mu.Lock()
		// Check again under the lock: a call that completed since the
		// check above has cached its result, and must not be repeated.
		if e, ok := s.cached(digest); ok {
			s.mu.Unlock()
			return sharedResult(&e.key, &e.account, e.err)
		}
		if c, ok := s.flights[digest]; ok {
			c.waiters++
			s.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, nil, 0, errorf("lookup: %w", ctx.Err())
			}
			if c.retry {
				continue
			}
			return sharedResult(&c.key, &c.account, c.err)
		}
		c := &lookupCall{done: make(chan struct{})}
		s.flights[digest] = c
		s.mu.Unlock()
		s.lead(ctx, digest, c)
		return sharedResult(&c.key, &c.account, c.err)
	}
}

// sharedResult returns a lookup's result as LookupShared does.
func sharedResult(k *Key, a *Account, err error) (*Key, *Account, int64, error) {
	if err != nil {
		return nil, nil, 0, err
	}
	return k, a, a.Balance, nil
}

// cached returns the fresh cache entry for digest, if any.
func (s *callbackStore) cached(digest Digest) (*cachedLookup, bool) {
	if s.cache == nil {
		return nil, false
	}
	v, ok := s.cache.Get(string(digest[:]))
	if !ok {
		return nil, false
	}
	e := v.(*cachedLookup)
	if !s.now().Before(e.expires) {
		return nil, false
	}
	return e, true
}

// lead calls Callbacks.Lookup for the flight c, caches what may be cached,
// and releases the waiters.
func (s *callbackStore) lead(ctx context.Context, digest Digest, c *lookupCall) {
	returned := false
	defer func() {
		if !returned {
			c.err = errLookupPanicked
		}
		s.mu.Lock()
		delete(s.flights, digest)
		if returned && !c.noCache {
			s.store(digest, c)
		}
		s.mu.Unlock()
		close(c.done)
	}()
	k, a, err := s.fns.Lookup(ctx, digest)
	returned = true
	if err != nil {
		c.err = err
		c.retry = !errors.Is(err, ErrNotFound) && ctx.Err() != nil
		return
	}
	switch {
	case a.ID == "":
		c.err = errorf("Callbacks.Lookup returned an account without an ID")
		return
	case k.Digest == Digest{}:
		k.Digest = digest
	case k.Digest != digest:
		c.err = errorf("Callbacks.Lookup returned a key with another digest")
		return
	}
	if k.AccountID == "" {
		k.AccountID = a.ID
	}
	c.key, c.account = k, a.Clone()
}

// store caches the result of c if it may be cached. s.mu must be held.
func (s *callbackStore) store(digest Digest, c *lookupCall) {
	ttl := s.ttl
	switch {
	case c.err == nil:
	case errors.Is(c.err, ErrNotFound):
		ttl = s.negTTL
	default:
		return // failures are never cached
	}
	if ttl <= 0 || s.cache == nil {
		return
	}
	e := &cachedLookup{key: c.key, account: c.account, err: c.err, expires: s.now().Add(ttl)}
	s.cache.Set(string(digest[:]), e, ttl)
}

// Invalidate implements [Callback].
func (s *callbackStore) Invalidate(digest Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache != nil {
		s.cache.Delete(string(digest[:]))
	}
	if c, ok := s.flights[digest]; ok {
		c.noCache = true
	}
}

// Spend implements [Store]. It checks its arguments and calls
// Callbacks.Spend; spends are never cached.
func (s *callbackStore) Spend(ctx context.Context, accountID string, cost int64) (SpendResult, error) {
	if cost < 0 {
		return SpendResult{}, errNegativeCost
	}
	if accountID == "" || len(accountID) > MaxIDLength {
		return SpendResult{}, errBadAccountID
	}
	return s.fns.Spend(ctx, accountID, cost)
}

// Refund implements [Refunder]. It checks its arguments and calls
// Callbacks.Refund.
func (s *refundingCallbackStore) Refund(ctx context.Context, accountID string, amount int64) (int64, error) {
	if amount <= 0 {
		return 0, errorf("refund of %d: %w", amount, ErrInvalidAmount)
	}
	if accountID == "" || len(accountID) > MaxIDLength {
		return 0, errBadAccountID
	}
	return s.fns.Refund(ctx, accountID, amount)
}
