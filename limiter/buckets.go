package limiter

import (
	"hash/maphash"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/go402/go402/store"
)

// DefaultMaxKeys is the default of [Options.MaxKeys].
const DefaultMaxKeys = 100_000

// BytesPerKey bounds the memory one in-process bucket takes, its map entry
// included, apart from the bytes of its key. A limiter's buckets never take
// more than about MaxKeys × (BytesPerKey + key length) bytes; the test that
// floods a limiter with a million random keys checks it.
const BytesPerKey = 256

const (
	// maxShards is the number of shards of a large table. Each shard has its
	// own lock, so requests for different keys rarely wait for each other.
	maxShards = 64
	// minShardKeys is the fewest keys a shard is given room for, so that
	// eviction has a useful number of buckets to choose from.
	minShardKeys = 64
	// evictSample is how many buckets eviction looks at to find the one
	// seen longest ago.
	evictSample = 8
	// sweepEvery is how often a shard removes full buckets as new keys
	// arrive; sweepFullEvery is how often it may do so when it is full.
	sweepEvery     = time.Minute
	sweepFullEvery = time.Second
)

// table holds the limiter's in-process token buckets in shards, each a map
// under its own mutex.
type table struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]*bucket
	// hot is the bucket of the latest take, under hotKey, found without a
	// map lookup while the same client keeps coming, so that the lock is
	// held for less time. It is always in the map: buckets leave the map
	// only in insert, whose new bucket then becomes hot.
	hot       *bucket
	hotKey    string
	max       int       // most buckets the shard holds
	lastSweep time.Time // when full buckets were last removed
	_         [64]byte  // keeps the locks of neighbouring shards on different cache lines
}

// bucket is one key's token bucket. The rate.Limiter is part of it rather
// than pointed to: one allocation per key and one cache miss less per
// request.
type bucket struct {
	lim  rate.Limiter
	pol  *policy   // the rate and burst lim has, with their headers
	seen time.Time // the latest time tokens were taken (or tried)
	// tokens is what lim held at seen, after that take, as lim reported it.
	// It tells when the bucket has certainly filled up again (see take).
	tokens float64
}

// newBucket returns a full bucket with rate and burst lim. A zero
// rate.Limiter was last updated at the zero time, so setting its limit and
// burst as of then makes it fill up over the two thousand years since (in
// practice: the largest Duration, 292 years) — full at any date after 292
// AD, for any rate above one token per 292 years per unit of burst. This
// avoids copying a rate.Limiter, which holds a mutex.
func newBucket(lim store.RateLimit, pol *policy, now time.Time) *bucket {
	b := &bucket{pol: pol, seen: now, tokens: float64(lim.Burst)}
	b.lim.SetLimitAt(time.Time{}, rate.Limit(lim.Rate))
	b.lim.SetBurstAt(time.Time{}, lim.Burst)
	return b
}

func newTable(maxKeys int) *table {
	n := maxShards
	for n > 1 && maxKeys/n < minShardKeys {
		n /= 2
	}
	t := &table{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n)}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*bucket)
		t.shards[i].max = maxKeys / n
	}
	return t
}

// take takes n tokens at now from key's bucket, which has rate and burst
// lim, creating the bucket if needed. pol is lim's precomputed policy, or nil
// if there is none (a per-account override): the bucket's own policy is kept
// if it matches lim, or one is built with policyFor.
//
// It returns whether the tokens were taken, the tokens left, and the policy.
// Time never runs backwards for a bucket: a now earlier than the bucket's
// last take (two requests racing to the lock) counts as that moment.
//
// The tokens left come from lim.TokensAt, except when the bucket has
// certainly filled up since its last take — it held b.tokens then and has
// gained more than the rest of its burst since, with a margin far above
// floating-point error — which is the common case of a client under its
// limit. Then they are exactly Burst − n, and the lock held by every request
// for this key is held for one call to the rate.Limiter instead of two.
func (t *table) take(key string, lim store.RateLimit, pol *policy, policyFor func(store.RateLimit) *policy, n int, now time.Time) (ok bool, tokens float64, _ *policy) {
	s := &t.shards[maphash.String(t.seed, key)&t.mask]
	s.mu.Lock()
	b := s.hot
	if b == nil || s.hotKey != key {
		b = s.m[key]
		s.hot, s.hotKey = b, key
	}
	switch {
	case b == nil:
		if pol == nil {
			pol = policyFor(lim)
		}
		b = newBucket(lim, pol, now)
		s.insert(key, b, now)
		s.hot = b
	case b.pol != pol:
		if pol == nil {
			if b.pol.limit == lim {
				pol = b.pol
				break
			}
			pol = policyFor(lim)
		}
		if now.Before(b.seen) {
			now = b.seen
		}
		if b.pol.limit.Rate != lim.Rate {
			b.lim.SetLimitAt(now, rate.Limit(lim.Rate))
		}
		if b.pol.limit.Burst != lim.Burst {
			b.lim.SetBurstAt(now, lim.Burst)
		}
		b.pol = pol
		b.tokens = math.Inf(-1) // unknown: ask lim below
	}
	if now.Before(b.seen) {
		now = b.seen
	}
	burst := float64(lim.Burst)
	full := b.tokens+now.Sub(b.seen).Seconds()*lim.Rate >= burst+burst*1e-9+1e-9
	b.seen = now
	ok = b.lim.AllowN(now, n)
	switch {
	case !full:
		tokens = b.lim.TokensAt(now)
	case ok:
		tokens = burst - float64(n)
	default: // n > burst
		tokens = burst
	}
	b.tokens = tokens
	s.mu.Unlock()
	return ok, tokens, pol
}

// insert adds b under key, first making room if the shard is full: it
// removes the buckets that have filled up again (at most once a second), and
// if that frees nothing, evicts the bucket seen longest ago among a few.
// Every sweepEvery it removes full buckets anyway, so idle keys do not
// linger. The caller holds s.mu.
func (s *shard) insert(key string, b *bucket, now time.Time) {
	since := now.Sub(s.lastSweep)
	if len(s.m) >= s.max && since >= sweepFullEvery || since >= sweepEvery {
		s.sweep(now)
	}
	if len(s.m) >= s.max {
		s.evict()
	}
	s.m[key] = b
}

// sweep removes the buckets that are full at now. A full bucket is exactly
// what a new one would be, so removing it changes no decision. The caller
// holds s.mu.
func (s *shard) sweep(now time.Time) {
	s.lastSweep = now
	for k, b := range s.m {
		if b.lim.TokensAt(now) >= float64(b.pol.limit.Burst) {
			delete(s.m, k)
		}
	}
}

// evict removes the bucket seen longest ago among the first evictSample
// ones that map iteration (which starts at a random place) yields. The
// caller holds s.mu.
func (s *shard) evict() {
	var (
		oldKey string
		oldest time.Time
		i      int
	)
	for k, b := range s.m {
		if i == 0 || b.seen.Before(oldest) {
			oldKey, oldest = k, b.seen
		}
		if i++; i == evictSample {
			break
		}
	}
	delete(s.m, oldKey)
}

// len returns the number of buckets in the table.
func (t *table) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
