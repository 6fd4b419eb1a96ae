package limiter

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
	"github.com/go402/go402/store"
)

// defaultMaxKeys is the default of [Options.MaxKeys].
const defaultMaxKeys = 100_000

// bytesPerKey bounds the memory one in-process bucket takes, its index
// entry included, apart from the bytes of its key. A limiter's buckets never take
// more than about MaxKeys × (bytesPerKey + key length) bytes; the test that
// floods a limiter with a million random keys checks it.
const bytesPerKey = 256

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

// table holds the limiter's in-process token buckets in shards, each an
// index under its own mutex, each bucket under a mutex of its own.
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

// shard is one lock's share of a table. Its buckets are in idx, which
// eviction walks as a CLOCK (second chance): the hand passes over buckets
// used since it last passed them, clearing their mark, and evicts the
// first one that was not, so that making room costs a bucket or two,
// however many a shard holds.
type shard struct {
	mu  sync.Mutex // guards idx, hand, free, lastSweep, and the removal of buckets
	idx index
	// hot is the bucket of the latest take that looked in the index, read
	// without mu: while the same client keeps coming, its requests find
	// their bucket without the shard's lock, and wait for each other only
	// on the bucket's own. It is stored only under mu, always a bucket of
	// the index then; a take that finds it removed since looks again.
	hot  atomic.Pointer[bucket]
	hand int // the slot of idx eviction looks at next
	// free holds buckets that a sweep of the full shard removed, for the
	// next new keys to take over; the periodic sweep releases them.
	free      []*bucket
	max       int   // most buckets the shard holds
	lastSweep int64 // when full buckets were last removed, after the epoch
	_         [64]byte
}

// bucket is one key's token bucket: 64 bytes, a size class whose objects
// start on a cache line, so that a take touches one line of its bucket.
// Eviction hands a bucket to a new key rather than dropping it: no
// allocation, and the memory is in cache already.
type bucket struct {
	mu sync.Mutex // guards the fields below but hash
	// used is set by every take and cleared by eviction passing over the
	// bucket: the bucket's second chance.
	used bool
	tb   tokenbucket.Bucket
	// pol is the rate and burst of tb, with their headers; it is set to
	// nil, under the shard's lock too, when the bucket leaves the index,
	// and a take that found the bucket before must then look again.
	pol *policy
	// key is the bucket's key in the index, changed (under both locks) when
	// eviction hands the bucket to another key: a take that found the
	// bucket before checks it under mu. hash is the key's hash, read
	// without a lock to tell whether the shard's hot bucket is the one.
	key  string
	hash atomic.Uint64
}

// removed reports whether the bucket has left the index. b.mu must be
// held.
func (b *bucket) removed() bool { return b.pol == nil }

// full reports whether the bucket is full at at. b.mu must be held.
func (b *bucket) full(at int64) bool {
	lim := tokenbucket.Limit(b.pol.limit)
	return b.tb.TokensAt(lim, at) >= float64(lim.Burst)
}

// want is what a take asks of its shard: the bucket of key, whose hash is
// hash, with rate and burst lim, at at. pol is lim's policy, nil if the
// take does not know it.
type want struct {
	key  string
	hash uint64
	lim  store.RateLimit
	pol  *policy
	at   int64
}

// newBucket returns w's bucket with policy pol, full at w.at.
func newBucket(w *want, pol *policy) *bucket {
	b := new(bucket)
	b.takeOver(w, pol)
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
	h := keyHash(maphash.String(t.seed, key))
	s := &t.shards[h&t.mask]
	w := want{key: key, hash: h, lim: lim, pol: pol, at: int64(now.Sub(t.epoch))}
	b := s.hot.Load()
	for {
		if b == nil || b.hash.Load() != h {
			b = t.lookup(s, &w)
		}
		b.mu.Lock()
		if !b.removed() && b.key == key {
			break
		}
		b.mu.Unlock() // removed or handed to another key since it was found: look again
		b = nil
	}
	if b.pol != pol {
		pol = t.reconfigure(b, lim, pol, w.at)
	}
	b.used = true
	ok, tokens = b.tb.AllowN(tokenbucket.Limit(lim), w.at, n)
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

// lookup returns w's bucket from the shard s, adding a full one (with
// w.pol, or the table's policy of w.lim) if there is none, and makes it
// the shard's hot bucket.
func (t *table) lookup(s *shard, w *want) *bucket {
	s.mu.Lock()
	if s.idx.slots == nil { // made on first use: most shards of small tables have few keys
		s.idx.init(s.max)
	}
	b, i := s.idx.find(w.hash, w.key)
	if b == nil {
		pol := w.pol
		if pol == nil {
			pol = t.ps.ofLimit(w.lim)
		}
		b = s.insert(w, pol, i)
	}
	if s.hot.Load() != b {
		s.hot.Store(b)
	}
	s.mu.Unlock()
	return b
}

// insert adds w's bucket, with policy pol, at slot i of the index, which
// find returned, and returns it. It first makes room if the shard is full:
// it removes the buckets that have filled up again (at most once a second),
// and if that frees nothing, evicts one (see shard). A new bucket takes
// over the memory of a removed or evicted one when it can. Every
// sweepEvery it removes full buckets anyway, and releases the memory of
// those removed, so idle keys do not linger. The caller holds s.mu.
func (s *shard) insert(w *want, pol *policy, i int) *bucket {
	live := s.idx.live
	switch since := time.Duration(w.at - s.lastSweep); {
	case since >= sweepEvery:
		clear(s.free)
		s.free = s.free[:0]
		s.sweep(w.at, false)
	case live >= s.max && since >= sweepFullEvery:
		s.sweep(w.at, true)
	}
	removed := s.idx.live < live
	var b *bucket
	if n := len(s.free); n > 0 {
		b = s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
		b.mu.Lock()
		b.takeOver(w, pol)
		b.mu.Unlock()
	} else if s.idx.live >= s.max {
		b = s.evict(w, pol)
		removed = true
	} else {
		b = newBucket(w, pol)
	}
	if removed {
		_, i = s.idx.find(w.hash, w.key) // entries moved
	}
	s.idx.put(i, w.hash, b)
	return b
}

// takeOver makes b w's bucket, full, with policy pol. b.mu must be held,
// and the shard's lock.
func (b *bucket) takeOver(w *want, pol *policy) {
	b.key, b.pol, b.used = w.key, pol, false
	b.hash.Store(w.hash)
	b.tb = tokenbucket.Full(tokenbucket.Limit(pol.limit), w.at)
}

// sweep removes the buckets that are full at at. A full bucket is exactly
// what a new one would be, so removing it changes no decision. If keep is
// set, the buckets removed go to s.free. The caller holds s.mu.
func (s *shard) sweep(at int64, keep bool) {
	s.lastSweep = at
	for i := 0; i < len(s.idx.slots); {
		b := s.idx.slots[i].b
		if b == nil {
			i++
			continue
		}
		b.mu.Lock()
		full := b.full(at)
		if full {
			b.pol = nil
		}
		b.mu.Unlock()
		if !full {
			i++
			continue
		}
		s.idx.remove(i) // which may move another bucket to i: look again
		if keep {
			s.free = append(s.free, b)
		}
	}
}

// evict removes a bucket from the index to make room for w's, and returns
// it made over to w (full, with policy pol). It evicts the first bucket
// at or after the hand that was not used since the hand last passed it,
// clearing the mark of those that were, up to evictScan of them. The
// shard holds at least one bucket; the caller holds s.mu.
func (s *shard) evict(w *want, pol *policy) *bucket {
	mask := len(s.idx.slots) - 1
	for scanned := 0; ; s.hand = (s.hand + 1) & mask {
		b := s.idx.slots[s.hand].b
		if b == nil {
			continue
		}
		b.mu.Lock()
		if b.used && scanned < evictScan {
			b.used = false
			b.mu.Unlock()
			scanned++
			continue
		}
		s.idx.remove(s.hand) // which may move another bucket to the hand: it is passed over
		b.takeOver(w, pol)
		b.mu.Unlock()
		s.hand = (s.hand + 1) & mask
		return b
	}
}

// len returns the number of buckets in the table.
func (t *table) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.idx.live
		s.mu.Unlock()
	}
	return n
}
