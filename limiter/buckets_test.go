package limiter

import (
	"fmt"
	"hash/maphash"
	"math/rand"
	"net/http/httptest"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/time/rate"

	"github.com/go402/go402/store"
)

// A bucket takes more than 48 bytes and at most 64, so that it is
// allocated in the 64-byte size class, whose objects start on a cache line:
// a take touches one line of its bucket.
func TestBucketSize(t *testing.T) {
	if n := unsafe.Sizeof(bucket{}); n <= 48 || n > 64 {
		t.Errorf("a bucket takes %d bytes, want 49 to 64", n)
	}
}

// A new bucket is full, whatever its rate and burst and whatever the date.
func TestNewBucketFull(t *testing.T) {
	epoch := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, now := range []time.Time{epoch, epoch.Add(time.Nanosecond), epoch.Add(100 * 365 * 24 * time.Hour)} {
		for _, lim := range []store.RateLimit{{Rate: 1, Burst: 1}, {Rate: 1e-6, Burst: 1000}, {Rate: 1e9, Burst: 1 << 30}, {Rate: 0.5, Burst: 3}} {
			tb := newTable(64, epoch)
			tb.ps = &policies{quoted: `"p"`, cost: 1}
			if ok, tokens, _ := tb.take("k", lim, nil, 0, now); !ok || tokens != float64(lim.Burst) {
				t.Errorf("%v at %v: a new bucket holds %v tokens", lim, now, tokens)
			}
			if ok, _, _ := tb.take("k", lim, nil, lim.Burst, now); !ok {
				t.Errorf("%v at %v: a new bucket does not hold its burst", lim, now)
			}
			if ok, _, _ := tb.take("k", lim, nil, 1, now); ok {
				t.Errorf("%v at %v: a new bucket holds more than its burst", lim, now)
			}
		}
	}
}

// A bucket's takes, with its limit changing now and then (an account's
// override or plan changing), decide and leave exactly what a rate.Limiter
// given the same limits with SetLimitAt and SetBurstAt does.
func TestTakeMatchesRate(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	ps := &policies{quoted: `"p"`, cost: 1} // none configured: every limit gets a new policy
	for i := 0; i < 500; i++ {
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		tb := newTable(64, now)
		tb.ps = ps
		limits := []store.RateLimit{
			{Rate: []float64{1e-3, 0.7, 1, 3, 1000, 1 << 30}[rng.Intn(6)], Burst: 1 + rng.Intn(100)},
			{Rate: []float64{0.5, 2, 1e6}[rng.Intn(3)], Burst: 1 + rng.Intn(1<<20)},
		}
		lim := limits[0]
		twin := rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst)
		for j := 0; j < 100; j++ {
			if next := limits[rng.Intn(2)]; rng.Intn(20) == 0 && next != lim && j > 0 {
				twin.SetLimitAt(now, rate.Limit(next.Rate))
				twin.SetBurstAt(now, next.Burst)
				lim = next
			}
			n := rng.Intn(lim.Burst + 2)
			ok, tokens, pol := tb.take("k", lim, nil, n, now)
			if wantOK := twin.AllowN(now, n); ok != wantOK || tokens != twin.TokensAt(now) || pol.limit != lim {
				t.Fatalf("case %d step %d (%+v, n=%d): %v, %v tokens, policy of %+v; rate.Limiter %v, %v",
					i, j, lim, n, ok, tokens, pol.limit, wantOK, twin.TokensAt(now))
			}
			now = now.Add(time.Duration(rng.Int63n(int64([]time.Duration{time.Microsecond, time.Millisecond, time.Second, time.Hour}[rng.Intn(4)]))))
		}
	}
}

// get returns key's bucket, nil if none, for tests that run no take
// meanwhile.
func (t *table) get(key string) *bucket {
	h := keyHash(maphash.String(t.seed, key))
	s := &t.shards[h&t.mask]
	if s.idx.slots == nil {
		return nil
	}
	b, _ := s.idx.find(h, key)
	return b
}

// When a shard is full, a new key evicts a bucket not used since the
// eviction hand last passed it: a client that keeps coming keeps its
// bucket while a flood of new keys passes through.
func TestEvictionSecondChance(t *testing.T) {
	clk := newClock()
	var key string
	l := oneShardLimiter(t, clk, &key) // room for 64 keys, burst 2
	s := &l.buckets.shards[0]
	req := httptest.NewRequest("GET", "/", nil)
	key = "regular"
	take(t, l, req) // one token left
	for i := range 10_000 {
		key = fmt.Sprintf("flood-%d", i)
		take(t, l, req)
		if i%32 == 0 { // the regular client comes back now and then
			key = "regular"
			take(t, l, req)
			clk.Advance(time.Millisecond) // too little to refill: never swept
		}
		if n := l.buckets.len(); n > s.max {
			t.Fatalf("after %d new keys: %d buckets, room for %d", i, n, s.max)
		}
	}
	if l.buckets.get("regular") == nil {
		t.Fatalf("the regular client's bucket was evicted")
	}
}

// After every take the shard's hot bucket, found without the shard's lock
// by the next take of the same client, is that client's bucket as the
// index holds it — also when the take evicted or swept buckets, the hot one
// among them — and every bucket that left the index is marked removed or
// holds another key, so that a take holding it looks again.
func TestHotBucketFollowsTheIndex(t *testing.T) {
	clk := newClock()
	var key string
	l := oneShardLimiter(t, clk, &key)
	s := &l.buckets.shards[0]
	req := httptest.NewRequest("GET", "/", nil)
	known := map[*bucket]string{}
	takeAs := func(k string) {
		t.Helper()
		key = k
		take(t, l, req)
		if b, hot := l.buckets.get(k), s.hot.Load(); b == nil || hot != b || hot.key != k || hot.removed() {
			t.Fatalf("after a take of %q: hot bucket %p, the index's %p", k, hot, b)
		}
		for b, k := range known {
			if inIndex := l.buckets.get(k) == b; inIndex != (!b.removed() && b.key == k) {
				t.Fatalf("bucket of %q: in the index %v, removed %v, now of %q", k, inIndex, b.removed(), b.key)
			}
			delete(known, b)
		}
		for i := range s.idx.slots {
			if b := s.idx.slots[i].b; b != nil {
				known[b] = b.key
			}
		}
	}
	for round := range 200 {
		// The same client twice, then others until buckets are evicted
		// or swept, often the hot one.
		takeAs("hot")
		takeAs("hot")
		for i := range 70 {
			takeAs(fmt.Sprintf("k%d-%d", round, i))
		}
		clk.Advance(time.Duration(round%3) * time.Second)
	}
}

// A take that finds the hot bucket removed from the index since (another
// take swept it between loading the hot bucket and locking it), or handed
// to another key (evicted), looks the key up again instead of taking from
// that bucket.
func TestTakeSkipsRemovedBucket(t *testing.T) {
	for _, handed := range []bool{false, true} {
		clk := newClock()
		key := "a"
		l := oneShardLimiter(t, clk, &key) // burst 2
		s := &l.buckets.shards[0]
		req := httptest.NewRequest("GET", "/", nil)
		take(t, l, req)
		old := s.hot.Load()
		// What sweep or evict does, leaving hot as a racing take would
		// have loaded it.
		s.mu.Lock()
		h := keyHash(maphash.String(l.buckets.seed, "a"))
		_, i := s.idx.find(h, "a")
		s.idx.remove(i)
		old.mu.Lock()
		if handed {
			old.takeOver(&want{key: "b", hash: h, at: old.tb.Last}, old.pol)
		} else {
			old.pol = nil
		}
		old.mu.Unlock()
		s.mu.Unlock()
		if res := take(t, l, req); !res.Allowed || res.Remaining != 1 {
			t.Errorf("handed %v: take after the removal: %+v, want a new bucket's (1 left)", handed, res)
		}
		if b := l.buckets.get("a"); b == nil || b == old || s.hot.Load() != b {
			t.Errorf("handed %v: the index holds %p, hot %p, removed %p", handed, b, s.hot.Load(), old)
		}
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
