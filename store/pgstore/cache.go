package pgstore

import (
	"sync"
	"time"

	"github.com/go402/go402/store"
)

// lookupCache holds recent lookups by digest, found ones for ttl and
// unknown ones for negTTL, at most size of them. A generation counter,
// moved by every invalidation, keeps a lookup that raced with one from
// caching what it read before.
type lookupCache struct {
	ttl, negTTL time.Duration
	size        int

	mu      sync.Mutex
	gen     uint64
	entries map[store.Digest]cacheEntry
}

// cacheEntry is one cached lookup; found is false for an unknown key.
type cacheEntry struct {
	key     store.Key
	account store.Account
	found   bool
	expires time.Time
}

func newLookupCache(size int, ttl, negTTL time.Duration) *lookupCache {
	return &lookupCache{ttl: ttl, negTTL: negTTL, size: size, entries: make(map[store.Digest]cacheEntry)}
}

// get returns the entry of d if it is fresh at now.
func (c *lookupCache) get(d store.Digest, now time.Time) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[d]
	if !ok || !now.Before(e.expires) {
		return cacheEntry{}, false
	}
	return e, true
}

// generation returns the current generation, to pass to put.
func (c *lookupCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches e for d, unless an invalidation happened since gen.
func (c *lookupCache) put(d store.Digest, e cacheEntry, gen uint64, now time.Time) {
	ttl := c.ttl
	if !e.found {
		ttl = c.negTTL
	}
	if ttl <= 0 {
		return
	}
	e.expires = now.Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= c.size {
		c.evict(now)
	}
	c.entries[d] = e
}

// evict drops expired entries and, if that frees too little, an arbitrary
// eighth of the others. c.mu is held.
func (c *lookupCache) evict(now time.Time) {
	for d, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, d)
		}
	}
	for d := range c.entries {
		if len(c.entries) < c.size-c.size/8 {
			return
		}
		delete(c.entries, d)
	}
}

// invalidateKey forgets the lookup of d.
func (c *lookupCache) invalidateKey(d store.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, d)
}

// invalidateAccount forgets the lookups of every key of account id.
func (c *lookupCache) invalidateAccount(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for d, e := range c.entries {
		if e.found && e.key.AccountID == id {
			delete(c.entries, d)
		}
	}
}

// clear forgets every lookup.
func (c *lookupCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
