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

// lookupCache holds lookups by digest, at most max of them. Reads take a
// shared lock and allocate nothing.
type lookupCache struct {
	mu  sync.RWMutex
	m   map[store.Digest]*cacheEntry
	max int
}

func newLookupCache(max int) *lookupCache {
	return &lookupCache{m: make(map[store.Digest]*cacheEntry), max: max}
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

// put stores e for d, making room first if the cache is full: expired
// entries go, then, if that is not enough, an arbitrary eighth.
func (c *lookupCache) put(d store.Digest, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	delete(c.m, d)
	c.mu.Unlock()
}

// dropAccount forgets every key of the account, so that a change to it made
// through this store is seen here at once.
func (c *lookupCache) dropAccount(id string) {
	c.mu.Lock()
	for k, e := range c.m {
		if !e.notFound && e.key.AccountID == id {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}
