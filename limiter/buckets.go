package limiter

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
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
// under its own mutex, each bucket under a mutex of its own.
type table struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard
	// epoch is the time buckets count their last take from (bucket.seen).
	epoch time.Time
}

type shard struct {
	mu sync.Mutex // guards m, lastSweep, and the removal of buckets
	m  map[string]*bucket
	// hot is the bucket of the latest take that looked in the map, read
	// without mu: while the same client keeps coming, its requests find
	// their bucket without the shard's lock, and wait for each other only
	// on the bucket's own. It is stored only under mu, always a bucket of
	// the map then; a take that finds it removed since looks again.
	hot       atomic.Pointer[bucket]
	max       int       // most buckets the shard holds
	lastSweep time.Time // when full buckets were last removed
	_         [64]byte  // keeps the locks of neighbouring shards on different cache lines
}

// bucket is one key's token bucket. The rate.Limiter is part of it rather
// than pointed to: one allocation per key and one cache miss less per
// request. Its own mutex, beside the rate.Limiter's, is the lock requests
// for the key contend for: the rate.Limiter's lock is then always free. It
// takes 128 bytes, a size class whose objects start on a cache line, so
// that the lock, the rate.Limiter and the rest take two lines, which a
// test holds.
type bucket struct {
	mu  sync.Mutex // guards the fields below but key
	lim rate.Limiter
	// pol is the rate and burst lim has, with their headers; it is set to
	// nil, under the shard's lock too, when the bucket leaves the map, and
	// a take that found the bucket before must then look the key up again.
	pol *policy
	// seen is the latest time tokens were taken (or tried), after the
	// table's epoch. Durations saturate about 292 years away from it.
	seen time.Duration
	// tokens is what lim held at seen, after that take, as lim reported it.
	// It tells when the bucket has certainly filled up again (see take).
	tokens float64
	key    string // the bucket's key in the map, never changed
}

// removed reports whether the bucket has left the map. b.mu must be held.
func (b *bucket) removed() bool { return b.pol == nil }

// remove marks the bucket as no longer in the map. The caller holds the
// shard's lock.
func (b *bucket) remove() {
	b.mu.Lock()
	b.pol = nil
	b.mu.Unlock()
}

// newBucket returns a full bucket with rate and burst lim, last seen at
// seen. A zero rate.Limiter was last updated at the zero time, so setting
// its limit and burst as of then makes it fill up over the two thousand
// years since (in practice: the largest Duration, 292 years) — full at any
// date after 292 AD, for any rate above one token per 292 years per unit of
// burst. This avoids copying a rate.Limiter, which holds a mutex.
func newBucket(key string, lim store.RateLimit, pol *policy, seen time.Duration) *bucket {
	b := &bucket{key: key, pol: pol, seen: seen, tokens: float64(lim.Burst)}
	b.lim.SetLimitAt(time.Time{}, rate.Limit(lim.Rate))
	b.lim.SetBurstAt(time.Time{}, lim.Burst)
	return b
}

// newTable returns a table for at most about maxKeys buckets, whose
// buckets count time from epoch.
func newTable(maxKeys int, epoch time.Time) *table {
	n := maxShards
	for n > 1 && maxKeys/n < minShardKeys {
		n /= 2
	}
	t := &table{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n), epoch: epoch}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*bucket)
		t.shards[i].max = maxKeys / n
	}
	return t
}

// take takes n tokens at now from key's bucket, which has rate and burst
// lim, creating the bucket if needed. pol is lim's precomputed policy, or nil
// if there is none (a per-account override): the bucket's own policy is kept
// if it matches lim, or ps gives one.
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
func (t *table) take(key string, lim store.RateLimit, pol *policy, ps *policies, n int, now time.Time) (ok bool, tokens float64, _ *policy) {
	s := &t.shards[maphash.String(t.seed, key)&t.mask]
	b := s.hot.Load()
	at := now.Sub(t.epoch)
	for {
		if b == nil || b.key != key {
			b = s.lookup(key, lim, pol, ps, now, at)
		}
		b.mu.Lock()
		if !b.removed() {
			break
		}
		b.mu.Unlock() // removed since it was found: look again
		b = nil
	}
	if at < b.seen {
		at = b.seen
		now = t.epoch.Add(at)
	}
	if b.pol != pol {
		if pol == nil && b.pol.limit == lim {
			pol = b.pol
		} else {
			if pol == nil {
				pol = ps.ofLimit(lim)
			}
			b.reconfigure(lim, pol, now)
		}
	}
	burst := float64(lim.Burst)
	full := b.tokens+(at-b.seen).Seconds()*lim.Rate >= burst+burst*1e-9+1e-9
	b.seen = at
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
	b.mu.Unlock()
	return ok, tokens, pol
}

// lookup returns key's bucket from the map, adding a full one with rate and
// burst lim (and policy pol, or ps's) if there is none, and makes it
// the shard's hot bucket. at is now after the table's epoch.
func (s *shard) lookup(key string, lim store.RateLimit, pol *policy, ps *policies, now time.Time, at time.Duration) *bucket {
	s.mu.Lock()
	b := s.m[key]
	if b == nil {
		if pol == nil {
			pol = ps.ofLimit(lim)
		}
		b = newBucket(key, lim, pol, at)
		s.insert(key, b, now)
	}
	if s.hot.Load() != b {
		s.hot.Store(b)
	}
	s.mu.Unlock()
	return b
}

// reconfigure gives the bucket rate and burst lim, with policy pol, as of
// now, which is not before b.seen: it has other limits (the account's
// override or plan changed). The caller holds b.mu.
func (b *bucket) reconfigure(lim store.RateLimit, pol *policy, now time.Time) {
	if b.pol.limit.Rate != lim.Rate {
		b.lim.SetLimitAt(now, rate.Limit(lim.Rate))
	}
	if b.pol.limit.Burst != lim.Burst {
		b.lim.SetBurstAt(now, lim.Burst)
	}
	b.pol = pol
	b.tokens = math.Inf(-1) // unknown: take asks lim
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
		b.mu.Lock()
		if b.lim.TokensAt(now) >= float64(b.pol.limit.Burst) {
			b.pol = nil // removed
			delete(s.m, k)
		}
		b.mu.Unlock()
	}
}

// evict removes the bucket seen longest ago among the first evictSample
// ones that map iteration (which starts at a random place) yields. The
// caller holds s.mu.
func (s *shard) evict() {
	var (
		old    *bucket
		oldest time.Duration
		i      int
	)
	for _, b := range s.m {
		b.mu.Lock()
		seen := b.seen
		b.mu.Unlock()
		if old == nil || seen < oldest {
			old, oldest = b, seen
		}
		if i++; i == evictSample {
			break
		}
	}
	old.remove()
	delete(s.m, old.key)
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
