package limiter

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
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
	// evictScan is the most buckets eviction passes over, because they were
	// used since it last passed them, before it evicts one anyway.
	evictScan = 32
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
	// epoch is the time buckets count their time from: a bucket's times
	// are nanoseconds after it. Durations saturate about 292 years away.
	epoch time.Time
	// ps gives the policy of a limit that a take does not know the policy
	// of (a per-account override's).
	ps *policies
}

// shard is one lock's share of a table. Its buckets are in m, by key, and
// in ring, in the order eviction visits them: a CLOCK (second chance)
// replacement, where the hand passes over buckets used since it last
// passed them, clearing their mark, and evicts the first one that was not,
// so that the cost of making room is a bucket or two, however many a
// shard holds.
type shard struct {
	mu sync.Mutex // guards m, ring, hand, lastSweep, and the removal of buckets
	m  map[string]*bucket
	// hot is the bucket of the latest take that looked in the map, read
	// without mu: while the same client keeps coming, its requests find
	// their bucket without the shard's lock, and wait for each other only
	// on the bucket's own. It is stored only under mu, always a bucket of
	// the map then; a take that finds it removed since looks again.
	hot atomic.Pointer[bucket]
	// ring holds the buckets of m (and, briefly, buckets removed from m by
	// other means, which eviction drops when it reaches them); hand is the
	// index eviction looks at next.
	ring      []*bucket
	hand      int
	max       int   // most buckets the shard holds
	lastSweep int64 // when full buckets were last removed, after the epoch
	_         [64]byte
}

// bucket is one key's token bucket: 64 bytes, a size class whose objects
// start on a cache line, so that a take touches one line of its bucket.
type bucket struct {
	mu sync.Mutex // guards the fields below but key and slot
	// used is set by every take and cleared by eviction passing over the
	// bucket: the bucket's second chance.
	used bool
	// slot is the bucket's index in its shard's ring, guarded by the
	// shard's lock.
	slot int32
	tb   tokenbucket.Bucket
	// pol is the rate and burst of tb, with their headers; it is set to
	// nil, under the shard's lock too, when the bucket leaves the map, and
	// a take that found the bucket before must then look the key up again.
	pol *policy
	key string // the bucket's key in the map, never changed
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

// full reports whether the bucket is full at at. b.mu must be held.
func (b *bucket) full(at int64) bool {
	lim := tokenbucket.Limit(b.pol.limit)
	return b.tb.TokensAt(lim, at) >= float64(lim.Burst)
}

// newBucket returns a bucket with policy pol, full at at.
func newBucket(key string, pol *policy, at int64) *bucket {
	return &bucket{key: key, pol: pol, tb: tokenbucket.Full(tokenbucket.Limit(pol.limit), at)}
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
// lim, creating the bucket if needed. pol is lim's precomputed policy, or
// nil if there is none (a per-account override): the bucket's own policy
// is kept if it matches lim, or the table's policies give one.
//
// It returns whether the tokens were taken, the tokens left, and the
// policy. Time never runs backwards for a bucket: a now earlier than the
// bucket's last take (two requests racing to the lock) counts as that
// moment.
func (t *table) take(key string, lim store.RateLimit, pol *policy, n int, now time.Time) (ok bool, tokens float64, _ *policy) {
	s := &t.shards[maphash.String(t.seed, key)&t.mask]
	at := int64(now.Sub(t.epoch))
	b := s.hot.Load()
	for {
		if b == nil || b.key != key {
			b = t.lookup(s, key, lim, pol, at)
		}
		b.mu.Lock()
		if !b.removed() {
			break
		}
		b.mu.Unlock() // removed since it was found: look again
		b = nil
	}
	if b.pol != pol {
		pol = t.reconfigure(b, lim, pol, at)
	}
	b.used = true
	ok, tokens = b.tb.AllowN(tokenbucket.Limit(lim), at, n)
	b.mu.Unlock()
	return ok, tokens, pol
}

// reconfigure gives b, whose policy is not pol, the rate and burst lim as
// of at, and returns the policy of lim: pol, or if that is nil the
// bucket's own if it has lim (an override's policy found before), else the
// table's. The caller holds b.mu.
func (t *table) reconfigure(b *bucket, lim store.RateLimit, pol *policy, at int64) *policy {
	if pol == nil {
		if b.pol.limit == lim {
			return b.pol
		}
		pol = t.ps.ofLimit(lim)
	}
	b.tb.SetLimitAt(tokenbucket.Limit(b.pol.limit), tokenbucket.Limit(lim), at)
	b.pol = pol
	return pol
}

// lookup returns key's bucket from the shard s, adding a full one with
// rate and burst lim (and policy pol, or the table's) if there is none,
// and makes it the shard's hot bucket. at is now after the table's epoch.
func (t *table) lookup(s *shard, key string, lim store.RateLimit, pol *policy, at int64) *bucket {
	s.mu.Lock()
	b := s.m[key]
	if b == nil {
		if pol == nil {
			pol = t.ps.ofLimit(lim)
		}
		b = newBucket(key, pol, at)
		s.insert(b, at)
	}
	if s.hot.Load() != b {
		s.hot.Store(b)
	}
	s.mu.Unlock()
	return b
}

// insert adds b, first making room if the shard is full: it removes the
// buckets that have filled up again (at most once a second), and if that
// frees nothing, evicts one (see shard). Every sweepEvery it removes full
// buckets anyway, so idle keys do not linger. The caller holds s.mu.
func (s *shard) insert(b *bucket, at int64) {
	since := time.Duration(at - s.lastSweep)
	if len(s.m) >= s.max && since >= sweepFullEvery || since >= sweepEvery {
		s.sweep(at)
	}
	if len(s.m) >= s.max {
		if slot := s.evict(); slot >= 0 {
			b.slot = int32(slot)
			s.ring[slot] = b
			s.m[b.key] = b
			return
		}
	}
	b.slot = int32(len(s.ring))
	s.ring = append(s.ring, b)
	s.m[b.key] = b
}

// sweep removes the buckets that are full at at. A full bucket is exactly
// what a new one would be, so removing it changes no decision. The caller
// holds s.mu.
func (s *shard) sweep(at int64) {
	s.lastSweep = at
	for i := 0; i < len(s.ring); {
		b := s.ring[i]
		b.mu.Lock()
		gone := b.removed() || b.full(at)
		if gone && !b.removed() {
			b.pol = nil
			delete(s.m, b.key)
		}
		b.mu.Unlock()
		if gone {
			s.drop(i) // moves the last bucket to i, which is looked at next
		} else {
			i++
		}
	}
}

// drop removes the bucket at index i of the ring, moving the last one
// there. The caller holds s.mu.
func (s *shard) drop(i int) {
	last := len(s.ring) - 1
	s.ring[i] = s.ring[last]
	s.ring[i].slot = int32(i)
	s.ring[last] = nil
	s.ring = s.ring[:last]
	if s.hand >= last {
		s.hand = 0
	}
}

// evict removes a bucket from the map to make room for another, and
// returns its index in the ring for the new one, or -1 if the map had
// room after all (the ring held buckets that had left it). It evicts the
// first bucket at or after the hand that was not used since the hand last
// passed it, clearing the mark of those that were, up to evictScan of them.
// The caller holds s.mu.
func (s *shard) evict() int {
	for scanned := 0; len(s.ring) > 0; {
		i := s.hand
		b := s.ring[i]
		b.mu.Lock()
		switch {
		case b.removed(): // left the map some other way
			b.mu.Unlock()
			s.drop(i)
			if len(s.m) < s.max {
				return -1
			}
			continue
		case b.used && scanned < evictScan:
			b.used = false
			b.mu.Unlock()
			scanned++
			s.hand = (i + 1) % len(s.ring)
			continue
		}
		b.pol = nil
		b.mu.Unlock()
		delete(s.m, b.key)
		s.hand = (i + 1) % len(s.ring)
		return i
	}
	return -1
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
