package store

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"
)

// Callbacks are the functions through which a store made by [NewCallback]
// reaches the application's own database. Each must be safe for concurrent
// use and should honour its context's cancellation and deadline, which are
// those of the request being served.
type Callbacks struct {
	// Lookup resolves the digest of a raw key to the key and its account,
	// with the contract of [Store.Lookup]. If the returned Key's Digest is
	// zero it is set to the digest looked up, an empty AccountID is set to
	// the account's ID, and a Prefix longer than a display prefix is cut
	// to one (see [Key.Prefix]). Required.
	Lookup func(ctx context.Context, digest Digest) (Key, Account, error)

	// Spend atomically applies any due refill (see [Refill]) and debits
	// cost, with the contract of [Store.Spend]. It is called only with a
	// cost ≥ 0 and a non-empty account ID of at most 256 bytes.
	// Required.
	Spend func(ctx context.Context, accountID string, cost int64) (SpendResult, error)

	// Refund gives credits back, with the contract of [Refunder], called
	// only with an amount > 0 and a valid account ID. Optional: if nil,
	// the store does not implement [Refunder].
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
	NegativeTTL time.Duration

	// CacheSize caps the number of cached lookups, found and not found
	// together. If zero, 65536; it must not be negative. See [Callback]
	// for the memory this holds.
	CacheSize int

	// Clock returns the current time, against which cached lookups expire.
	// If nil, time.Now is used.
	Clock func() time.Time
}

// Defaults of [CallbackOptions].
const (
	defaultCallbackTTL         = 5 * time.Second
	defaultCallbackNegativeTTL = time.Second
	defaultCallbackCacheSize   = 1 << 16
)

// Callback is a [Store] built from [Callbacks] by [NewCallback], with a
// read-through cache of lookups. A Callback is safe for concurrent use.
//
// Lookups are cached for [CallbackOptions.TTL], not-found results for
// NegativeTTL (and then reported as an error wrapping [ErrNotFound] of this
// package's own); other errors are never cached. A cached Account's Balance
// may be stale by up to the TTL, which is harmless: the middlewares decide
// on the balance [Store.Spend] reports, and Spend is never cached.
// Concurrent misses for the same digest collapse into a single call of
// Callbacks.Lookup; see [NewCallback] for whose context that call gets.
//
// The cache holds at most CacheSize lookups, whatever the traffic: when
// full, it drops expired entries, then not-found ones, then any, until an
// eighth is free, and lookups that miss drop expired entries at least
// every min(TTL, NegativeTTL). A flood of unknown keys so holds
// about 110 bytes per entry, under 8 MiB with the default size; a found
// lookup holds about 300 bytes more, plus its account's Features and
// Metadata.
//
// Callback is an interface so that the value [NewCallback] returns can
// implement [Refunder] exactly when Callbacks.Refund is set.
type Callback interface {
	Store

	// Invalidate removes any cached result for digest, so the next lookup
	// asks Callbacks.Lookup again; call it after revoking a key to make the
	// revocation take effect at once. A lookup already in flight is not
	// cached when it completes, though its callers still receive its
	// result.
	Invalidate(digest Digest)
}

// NewCallback returns a [Callback] that calls fns. A nil fns.Lookup or
// fns.Spend, or a negative CacheSize, is an error. The returned store
// implements [Refunder] if and only if fns.Refund is set.
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
	var o CallbackOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case fns.Lookup == nil:
		return nil, errorf("Callbacks.Lookup is nil")
	case fns.Spend == nil:
		return nil, errorf("Callbacks.Spend is nil")
	case o.CacheSize < 0:
		return nil, errorf("CallbackOptions.CacheSize must be >= 0, got %d", o.CacheSize)
	}
	s := &callbackStore{
		fns:     fns,
		ttl:     cmp.Or(o.TTL, defaultCallbackTTL),
		negTTL:  cmp.Or(o.NegativeTTL, defaultCallbackNegativeTTL),
		size:    cmp.Or(o.CacheSize, defaultCallbackCacheSize),
		now:     o.Clock,
		flights: make(map[Digest]*lookupCall),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl > 0 || s.negTTL > 0 {
		s.cache = make(map[Digest]cacheEntry)
		s.sweepEvery = s.ttl
		if s.ttl <= 0 || (s.negTTL > 0 && s.negTTL < s.ttl) {
			s.sweepEvery = s.negTTL
		}
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
	size        int
	sweepEvery  time.Duration // the shorter positive TTL
	now         func() time.Time

	mu        sync.RWMutex
	cache     map[Digest]cacheEntry // nil if nothing is cached
	nextSweep time.Time
	flights   map[Digest]*lookupCall
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

// cacheEntry is a cached result of Callbacks.Lookup: a found key and its
// account, or, if found is nil, that the key was not found.
type cacheEntry struct {
	found   *foundLookup
	expires int64 // by the store's clock, in Unix nanoseconds
}

// foundLookup is a key and its account, never modified once cached.
type foundLookup struct {
	key     Key
	account Account
}

// result returns what Lookup returns for e.
func (e cacheEntry) result() (Key, Account, error) {
	if e.found == nil {
		return Key{}, Account{}, errKeyNotFound
	}
	return e.found.key, e.found.account, nil
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
	s.mu.RLock()
	e, ok := s.cachedLocked(digest)
	s.mu.RUnlock()
	if ok {
		return e.result()
	}
	for {
		s.mu.Lock()
		// Check again under the lock: a call that completed since the
		// check above has cached its result, and must not be repeated.
		if e, ok := s.cachedLocked(digest); ok {
			s.mu.Unlock()
			return e.result()
		}
		c, ok := s.flights[digest]
		if !ok {
			c = &lookupCall{done: make(chan struct{})}
			s.flights[digest] = c
			s.mu.Unlock()
			s.lead(ctx, digest, c)
			return c.key, c.account, c.err
		}
		c.waiters++
		s.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return Key{}, Account{}, errorf("lookup: %w", ctx.Err())
		}
		if !c.retry {
			return c.key, c.account, c.err
		}
	}
}

// cachedLocked returns the fresh cache entry for digest, if any. s.mu must
// be held.
func (s *callbackStore) cachedLocked(digest Digest) (cacheEntry, bool) {
	e, ok := s.cache[digest]
	if !ok || s.now().UnixNano() >= e.expires {
		return cacheEntry{}, false
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
			s.storeLocked(digest, c)
		}
		s.mu.Unlock()
		close(c.done)
	}()
	k, a, err := s.fns.Lookup(ctx, digest)
	returned = true
	switch {
	case err != nil:
		c.err = err
		c.retry = !errors.Is(err, ErrNotFound) && ctx.Err() != nil
		return
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
	k.validate() // cuts the Prefix; nothing else can fail here
	c.key, c.account = k, a.clone()
}

// storeLocked caches the result of c if it may be cached. s.mu must be
// held.
func (s *callbackStore) storeLocked(digest Digest, c *lookupCall) {
	var e cacheEntry
	ttl := s.ttl
	switch {
	case c.err == nil:
		e.found = &foundLookup{c.key, c.account}
	case errors.Is(c.err, ErrNotFound):
		ttl = s.negTTL
	default:
		return // failures are never cached
	}
	if ttl <= 0 || s.cache == nil {
		return
	}
	now := s.now()
	if !now.Before(s.nextSweep) {
		s.dropLocked(now.UnixNano(), len(s.cache))
		s.nextSweep = now.Add(s.sweepEvery)
	}
	if _, ok := s.cache[digest]; !ok && len(s.cache) >= s.size {
		s.dropLocked(now.UnixNano(), s.size-1-s.size/8)
	}
	e.expires = now.Add(ttl).UnixNano()
	s.cache[digest] = e
}

// dropLocked keeps, of the cached entries, those not expired at now and,
// of those, at most keep: found lookups first. It copies them to a new map,
// as a map that entries are deleted from holds on to memory. s.mu must be
// held.
func (s *callbackStore) dropLocked(now int64, keep int) {
	expired := 0
	for _, e := range s.cache {
		if now >= e.expires {
			expired++
		}
	}
	if expired == 0 && len(s.cache) <= keep {
		return
	}
	fresh := make(map[Digest]cacheEntry, len(s.cache)-expired)
	for _, found := range []bool{true, false} {
		for d, e := range s.cache {
			if len(fresh) >= keep {
				break
			}
			if (e.found != nil) == found && now < e.expires {
				fresh[d] = e
			}
		}
	}
	s.cache = fresh
}

// Invalidate implements [Callback].
func (s *callbackStore) Invalidate(digest Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, digest)
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
	if accountID == "" || len(accountID) > maxIDLength {
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
	if accountID == "" || len(accountID) > maxIDLength {
		return 0, errBadAccountID
	}
	return s.fns.Refund(ctx, accountID, amount)
}
