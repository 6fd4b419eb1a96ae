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

const (
	maxShards    = 64 // shards of a large table, each with its own lock
	minShardKeys = 64 // fewest keys a shard has room for, for eviction to choose from
	evictScan    = 32 // most recently used buckets eviction passes over before evicting one anyway
	// A shard removes its full buckets as new keys arrive every sweepEvery,
	// and when it is full at most every sweepFullEvery.
	sweepEvery     = time.Minute
	sweepFullEvery = time.Second
)

// table holds the in-process token buckets in shards, each an index under
// its own mutex, each bucket under a mutex of its own.
type table struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard
	epoch  time.Time // buckets count nanoseconds from it, saturating ~292 years away
	// epochNs is epoch in Unix nanoseconds: a fixed window's period starts
	// at its start's Unix nanoseconds minus epochNs.
	epochNs int64
	ps      *policies // for a limit whose policy a take does not know (an override's)
}

// shard is one lock's share of a table. Eviction walks idx as a CLOCK
// (second chance): the hand passes over buckets used since it last passed
// them, clearing their mark, and evicts the first that was not, so making
// room costs a bucket or two however many a shard holds.
type shard struct {
	mu  sync.Mutex // guards idx, hand, free, lastSweep, and the removal of buckets
	idx index
	// hot is the bucket of the latest lookup, read without mu, so that a
	// client's repeated requests wait only on their bucket's lock. It is
	// stored under mu; a take that finds it removed since looks again.
	hot  atomic.Pointer[bucket]
	hand int // the slot of idx eviction looks at next
	// free holds buckets a sweep of the full shard removed, for new keys
	// to take over; the periodic sweep releases them.
	free      []*bucket
	max       int   // most buckets the shard holds
	lastSweep int64 // when full buckets were last removed, after the epoch
	_         [64]byte
}

// bucket is one key's token bucket, and the other windows of its policy
// if it has any, all under one lock: 64 bytes, a size class aligned to a
// cache line, so a take touches one line. Eviction hands a bucket to a new
// key rather than dropping it: no allocation, memory already in cache.
type bucket struct {
	mu sync.Mutex // guards the fields below but hash
	// hash is the high half of the key's hash, read without a lock to
	// check the hot bucket (a take then checks key under mu).
	hash atomic.Uint32
	used bool // set by every take, cleared by eviction passing: its second chance
	tb   tokenbucket.Bucket
	// pol is tb's rate and burst with their headers; nil (set under the
	// shard's lock too) once the bucket leaves the index.
	pol *policy
	// key is the bucket's key, changed under both locks when eviction hands
	// the bucket on: a take that found it checks key and pol under mu.
	key string
	// more holds the state of pol's other windows, in their order (a
	// fixed window's: the tokens left in the period that starts at Last);
	// nil until a policy has some.
	more *[]tokenbucket.Bucket
}

// hashTag is the part of a key's hash h that a bucket keeps.
func hashTag(h uint64) uint32 { return uint32(h >> 32) }

// removed reports whether the bucket has left the index. b.mu must be held.
func (b *bucket) removed() bool { return b.pol == nil }

// leaveIfFull marks b removed if it is full at at, and reports whether it was.
func (b *bucket) leaveIfFull(at int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim := tokenbucket.Limit(b.pol.limit)
	if b.tb.TokensAt(lim, at) < float64(lim.Burst) {
		return false
	}
	b.pol = nil
	return true
}

// want is what a take asks of its shard: key's bucket with rate and burst
// lim (policy pol, or nil if unknown) at at.
type want struct {
	key  string
	hash uint64
	lim  store.RateLimit
	pol  *policy
	at   int64
}

// newTable returns a table for about maxKeys buckets counting from epoch.
func newTable(maxKeys int, epoch time.Time) *table {
	n := maxShards
	for n > 1 && maxKeys/n < minShardKeys {
		n /= 2
	}
	t := &table{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n), epoch: epoch, epochNs: epoch.UnixNano()}
	for i := range t.shards {
		t.shards[i].max = maxKeys / n
	}
	return t
}

// take takes n tokens at now (or the bucket's last take, if later) from
// key's bucket with rate and burst lim (policy pol, nil for an override's),
// made if needed, and returns whether they were taken, the tokens left and
// the policy.
func (t *table) take(key string, lim store.RateLimit, pol *policy, n int, now time.Time) (ok bool, tokens float64, _ *policy) {
	b, at, pol := t.acquire(key, lim, pol, now)
	ok, tokens = b.tb.AllowN(tokenbucket.Limit(lim), at, n)
	b.mu.Unlock()
	return ok, tokens, pol
}

// takeWindows is take for pol, a policy with other windows: it takes n
// tokens from every window of key's bucket or from none, and returns
// whether it took them, whether the main window held them and the tokens
// left in it. wins has one windowTake per window of pol.set, which it
// fills.
func (t *table) takeWindows(key string, pol *policy, n int, now time.Time, wins []windowTake) (ok, held bool, tokens float64) {
	b, at, pol := t.acquire(key, pol.limit, pol, now)
	ok, held, tokens = b.takeAll(pol, at, n, wins)
	b.mu.Unlock()
	return ok, held, tokens
}

// acquire returns key's bucket, locked and given the limit lim (policy
// pol, nil for an override's), the time now as the table counts it, and
// the bucket's policy.
func (t *table) acquire(key string, lim store.RateLimit, pol *policy, now time.Time) (*bucket, int64, *policy) {
	h := keyHash(maphash.String(t.seed, key))
	s := &t.shards[h&t.mask]
	w := want{key: key, hash: h, lim: lim, pol: pol, at: int64(now.Sub(t.epoch))}
	b := s.hot.Load()
	for {
		if b == nil || b.hash.Load() != hashTag(h) {
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
	return b, w.at, pol
}

// reconfigure gives b, whose policy is not pol, the rate and burst lim at
// at, and returns lim's policy: pol, else b's own if it has lim and no
// other window, else the table's. The caller holds b.mu.
func (t *table) reconfigure(b *bucket, lim store.RateLimit, pol *policy, at int64) *policy {
	if pol == nil {
		if b.pol.limit == lim && b.pol.set == nil {
			return b.pol
		}
		pol = t.ps.ofLimit(lim)
	}
	b.tb.SetLimitAt(tokenbucket.Limit(b.pol.limit), tokenbucket.Limit(lim), at)
	if b.pol.set != pol.set {
		b.setMore(remapWindows(b.windows(), b.pol.set, pol.set, at))
	}
	b.pol = pol
	return pol
}

// lookup returns w's bucket from s, adding a full one if there is none,
// and makes it the shard's hot bucket.
func (t *table) lookup(s *shard, w *want) *bucket {
	s.mu.Lock()
	if s.idx.slots == nil { // made on first use
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

// insert adds w's bucket with policy pol at slot i (from find). A full
// shard first removes full buckets (at most every sweepFullEvery), else
// evicts one, and reuses its memory; every sweepEvery it sweeps anyway and
// releases those kept. The caller holds s.mu.
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
	switch n := len(s.free); {
	case n > 0:
		b = s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
	case s.idx.live >= s.max:
		b, removed = s.evict(), true
	default:
		b = new(bucket)
	}
	b.mu.Lock()
	b.takeOver(w, pol)
	b.mu.Unlock()
	if removed {
		_, i = s.idx.find(w.hash, w.key) // entries moved
	}
	s.idx.put(i, w.hash, b)
	return b
}

// takeOver makes b w's full bucket with policy pol, under b.mu and the
// shard's lock.
func (b *bucket) takeOver(w *want, pol *policy) {
	b.key, b.pol, b.used = w.key, pol, false
	b.hash.Store(hashTag(w.hash))
	b.tb = tokenbucket.Full(tokenbucket.Limit(pol.limit), w.at)
	if pol.set != nil || b.more != nil {
		b.setMore(remapWindows(b.windows()[:0], nil, pol.set, w.at))
	}
}

// sweep removes the buckets full at at, which changes no decision (a full
// bucket is a new one), keeping them in s.free if keep. The caller holds s.mu.
func (s *shard) sweep(at int64, keep bool) {
	s.lastSweep = at
	for i := 0; i < len(s.idx.slots); {
		b := s.idx.slots[i].b
		if b == nil || !b.leaveIfFull(at) {
			i++
			continue
		}
		s.idx.remove(i) // which may move another bucket to i: look again
		if keep {
			s.free = append(s.free, b)
		}
	}
}

// evict removes and returns the first bucket from the hand on not used
// since the hand last passed (clearing the mark of up to evictScan that
// were). The shard holds a bucket; the caller holds s.mu.
func (s *shard) evict() *bucket {
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
		b.pol = nil
		b.mu.Unlock()
		s.hand = (s.hand + 1) & mask
		return b
	}
}

// windows returns the state of b's other windows. b.mu is held.
func (b *bucket) windows() []tokenbucket.Bucket {
	if b.more == nil {
		return nil
	}
	return *b.more
}

// setMore sets the state of b's other windows. b.mu is held.
func (b *bucket) setMore(more []tokenbucket.Bucket) {
	if b.more == nil {
		b.more = new([]tokenbucket.Bucket)
	}
	*b.more = more
}
