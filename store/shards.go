package store

import (
	"hash/maphash"

	"github.com/patrickmn/go-cache"
)

// cacheShards is how many go-cache instances a [Memory] spreads its
// accounts over. Each instance has one lock, which every reader takes;
// with one instance, requests on different cores for different accounts
// would all contend for it.
const cacheShards = 32

// shardedCache is a go-cache split into cacheShards instances. Entries never
// expire: a [Memory] keeps them until they are replaced.
type shardedCache struct {
	seed   maphash.Seed
	shards [cacheShards]*cache.Cache
}

// newShardedCache returns an empty cache.
func newShardedCache() *shardedCache {
	c := &shardedCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		// No expiration and no janitor: entries live until replaced.
		c.shards[i] = cache.New(cache.NoExpiration, 0)
	}
	return c
}

// shard returns the instance that holds k.
func (c *shardedCache) shard(k string) *cache.Cache {
	return c.shards[maphash.String(c.seed, k)%cacheShards]
}

// Get returns the entry under k.
func (c *shardedCache) Get(k string) (any, bool) { return c.shard(k).Get(k) }

// Set puts v under k.
func (c *shardedCache) Set(k string, v any) { c.shard(k).Set(k, v, cache.NoExpiration) }

// Items returns a copy of every entry.
func (c *shardedCache) Items() map[string]any {
	out := make(map[string]any)
	for _, s := range c.shards {
		for k, it := range s.Items() {
			out[k] = it.Object
		}
	}
	return out
}
