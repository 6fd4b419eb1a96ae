package store

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"
)

// Callbacks are the functions through which a store made by [NewCallback]
// reaches the application's database. Each must be safe for concurrent use
// and should honour its context, that of the request being served.
type Callbacks struct {
	// Lookup resolves a digest with the contract of [Store.Lookup]. A zero
	// Digest in the returned Key is set to the one looked up, an empty
	// AccountID to the account's ID, and a Prefix longer than a display
	// prefix is cut to one (see [Key.Prefix]). Required.
	Lookup func(ctx context.Context, digest Digest) (Key, Account, error)
	// Spend has the contract of [Store.Spend], called only with a cost ≥ 0
	// and an account ID of 1 to 256 bytes. Required.
	Spend func(ctx context.Context, accountID string, cost int64) (SpendResult, error)
	// Refund has the contract of [Refunder], called only with an amount > 0
	// and a valid account ID. Optional.
	Refund func(ctx context.Context, accountID string, amount int64) (balance int64, err error)
}

// CallbackOptions configures [NewCallback]. A nil *CallbackOptions, like
// the zero value, means all defaults.
type CallbackOptions struct {
	// TTL is how long a found lookup is cached: if zero 5 seconds, if
	// negative not at all. A revoked key keeps authenticating for up to
	// TTL unless the application calls [Callback.Invalidate].
	TTL time.Duration
	// NegativeTTL is how long a lookup that found no key is cached: if
	// zero 1 second, if negative not at all. A new key may be refused for
	// up to NegativeTTL if it was looked up just before.
	NegativeTTL time.Duration
	// CacheSize caps the number of cached lookups, found and not found.
	// If zero, 65536; it must not be negative. See [Callback].
	CacheSize int
	// Clock, if set, replaces time.Now, by which cached lookups expire.
	Clock func() time.Time
}

// Callback is a [Store] built from [Callbacks] by [NewCallback], with a
// read-through cache of lookups. A Callback is safe for concurrent use.
//
// Found lookups are cached for [CallbackOptions.TTL], not-found ones for
// NegativeTTL (then reported as this package's [ErrNotFound]), other errors
// never. A cached Balance may be stale, which is harmless: the middlewares
// decide on the balance Spend reports, never cached.
//
// The cache holds at most CacheSize lookups: when full, it drops expired
// entries, then not-found ones, then any, until an eighth is free; misses drop
// expired entries at least every min(TTL, NegativeTTL). An unknown key holds
// about 110 bytes (under 8 MiB at the default size), a found one about 300 more
// plus its account's Features and Metadata.
//
// Callback is an interface so that it implements [Refunder] exactly when
// Callbacks.Refund is set.
type Callback interface {
	Store

	// Invalidate removes any cached result for digest, so that a key
	// revoked takes effect at once. A lookup in flight is not cached,
	// though its callers still receive its result.
	Invalidate(digest Digest)
}

// NewCallback returns a [Callback] that calls fns. A nil fns.Lookup or
// fns.Spend, or a negative CacheSize, is an error.
//
// Lookups of one digest that miss the cache at once make one call of
// fns.Lookup, with the first caller's context; the others wait for its result,
// or their own context's end, and retry if the first caller's context ended and
// the call failed. If fns.Lookup panics, the panic reaches the first caller and
// the others receive an error.
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
		ttl:     cmp.Or(o.TTL, 5*time.Second),
		negTTL:  cmp.Or(o.NegativeTTL, time.Second),
		size:    cmp.Or(o.CacheSize, 1<<16),
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
	mu          sync.RWMutex
	cache       map[Digest]cacheEntry // nil if nothing is cached
	nextSweep   time.Time
	flights     map[Digest]*lookupCall
}

// refundingCallbackStore is the Callback with Refund.
type refundingCallbackStore struct {
	*callbackStore
}

var _ Refunder = (*refundingCallbackStore)(nil)

// cacheEntry is a cached result of Callbacks.Lookup.
type cacheEntry struct {
	found   *foundLookup // nil: not found
	expires int64        // Unix nanoseconds
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

// lookupCall is a Callbacks.Lookup in flight, shared by concurrent misses.
type lookupCall struct {
	done    chan struct{} // closed when the fields below are final
	key     Key
	account Account
	err     error
	retry   bool // the leader's context ended: waiters try again
	noCache bool // set by Invalidate, under callbackStore.mu
	waiters int  // callers that joined, under callbackStore.mu
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
		// A call that completed since the check above cached its result.
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

// cachedLocked returns the fresh cache entry for digest, if any, under s.mu.
func (s *callbackStore) cachedLocked(digest Digest) (cacheEntry, bool) {
	e, ok := s.cache[digest]
	if !ok || s.now().UnixNano() >= e.expires {
		return cacheEntry{}, false
	}
	return e, true
}

// lead calls Callbacks.Lookup for c, caches it if it may, and ends c.
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

// storeLocked caches the result of c if it may be. s.mu must be held.
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

// dropLocked keeps, under s.mu, at most keep of the entries not expired at
// now, found lookups first, in a new map (one deleted from keeps memory).
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

// Spend implements [Store]; spends are never cached.
func (s *callbackStore) Spend(ctx context.Context, accountID string, cost int64) (SpendResult, error) {
	if cost < 0 {
		return SpendResult{}, errNegativeCost
	}
	if accountID == "" || len(accountID) > maxIDLength {
		return SpendResult{}, errBadAccountID
	}
	return s.fns.Spend(ctx, accountID, cost)
}

// Refund implements [Refunder].
func (s *refundingCallbackStore) Refund(ctx context.Context, accountID string, amount int64) (int64, error) {
	if amount <= 0 {
		return 0, errorf("refund of %d: %w", amount, ErrInvalidAmount)
	}
	if accountID == "" || len(accountID) > maxIDLength {
		return 0, errBadAccountID
	}
	return s.fns.Refund(ctx, accountID, amount)
}
