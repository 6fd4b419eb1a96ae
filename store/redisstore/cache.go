package redisstore

import (
	"sync"
	"time"

	"github.com/go402/go402/store"
)

// cacheEntry is one cached lookup: a found key and its account, or the fact
// that the key is unknown. Entries are immutable once stored.
type cacheEntry struct {
	key      store.Key
	account  store.Account
	notFound bool
	expires  time.Time
}

// lookupCache holds lookups by digest, at most max of them, and the
// lookups in flight. Reads take a shared lock and allocate nothing.
type lookupCache struct {
	mu      sync.RWMutex
	m       map[store.Digest]*cacheEntry
	max     int
	flights map[store.Digest]*flight
	gen     uint64 // counts invalidations, so a lookup that raced one is not cached
}

// flight is a lookup in progress that concurrent lookups of the same key
// wait for instead of making their own. Its results are set before done is
// closed and never change after.
type flight struct {
	done    chan struct{}
	gen     uint64 // the cache's gen when the flight started
	key     store.Key
	account store.Account
	err     error
}

func newLookupCache(max int) *lookupCache {
	return &lookupCache{
		m:       make(map[store.Digest]*cacheEntry),
		max:     max,
		flights: make(map[store.Digest]*flight),
	}
}

// join returns the live cache entry for d if there is one now (a flight may
// have landed since get missed); else the flight looking d up, and true if
// the caller started it and must make the lookup (and then call land).
func (c *lookupCache) join(d store.Digest, now time.Time) (*cacheEntry, *flight, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[d]; ok && now.Before(e.expires) {
		return e, nil, false
	}
	if f, ok := c.flights[d]; ok {
		return nil, f, false
	}
	f := &flight{done: make(chan struct{}), gen: c.gen}
	c.flights[d] = f
	return nil, f, true
}

// land ends flight f for d and releases its followers.
func (c *lookupCache) land(d store.Digest, f *flight) {
	c.mu.Lock()
	delete(c.flights, d)
	c.mu.Unlock()
	close(f.done)
}

// get returns the live entry for d.
func (c *lookupCache) get(d store.Digest, now time.Time) (*cacheEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[d]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e, true
}

// put stores e for d, unless an invalidation came after gen, making room
// first if the cache is full: expired entries go, then, if that is not
// enough, an arbitrary eighth.
func (c *lookupCache) put(d store.Digest, e *cacheEntry, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.m[d]; !ok && len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[d] = e
}

// drop forgets d.
func (c *lookupCache) drop(d store.Digest) {
	c.mu.Lock()
	c.gen++
	delete(c.m, d)
	c.mu.Unlock()
}

// flush forgets everything.
func (c *lookupCache) flush() {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}

// dropAccount forgets every key of the account.
func (c *lookupCache) dropAccount(id string) {
	c.mu.Lock()
	c.gen++
	for k, e := range c.m {
		if !e.notFound && e.key.AccountID == id {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}
