package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// clock is a fake clock that tests advance by hand; safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// concurrently calls f(0), …, f(n-1) in goroutines of their own and waits
// for them to return.
func concurrently(n int, f func(w int)) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w)
		}()
	}
	wg.Wait()
}

// oneKey keys every request alike.
func oneKey(*http.Request) (string, bool) { return "k", true }

// headerKey keys requests by their X-Api-Key header.
func headerKey(r *http.Request) (string, bool) {
	v := r.Header["X-Api-Key"]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func mustNew(t testing.TB, r float64, burst int, o *Options) *Limiter {
	t.Helper()
	l, err := New(r, burst, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func take(t testing.TB, l *Limiter, r *http.Request) Result {
	t.Helper()
	res, err := l.Take(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestNewValidates(t *testing.T) {
	ok := func(*http.Request) (int, error) { return 1, nil }
	for _, tc := range []struct {
		name  string
		rate  float64
		burst int
		opts  *Options
		want  string // substring of the error; "" means no error
	}{
		{"defaults", 1, 1, nil, ""},
		{"fractional rate", 0.001, 1, &Options{}, ""},
		{"zero rate", 0, 1, nil, "Rate must be a positive"},
		{"negative rate", -1, 1, nil, "Rate must be a positive"},
		{"NaN rate", math.NaN(), 1, nil, "Rate must be a positive"},
		{"infinite rate", math.Inf(1), 1, nil, "Rate must be a positive"},
		{"zero burst", 1, 0, nil, "Burst must be > 0, got 0"},
		{"negative burst", 1, -1, nil, "Burst must be > 0, got -1"},
		{"bad plan", 1, 1, &Options{Plans: map[string]store.RateLimit{"pro": {Rate: 1}}}, `Plans["pro"].Burst must be > 0`},
		{"negative cost", 1, 1, &Options{Cost: -1}, "Cost must be >= 0"},
		{"cost above every burst", 1, 2, &Options{Cost: 3}, "Cost 3 exceeds every configured burst"},
		{"cost within a plan's burst", 1, 2, &Options{Cost: 3, Plans: map[string]store.RateLimit{"pro": {Rate: 1, Burst: 3}}}, ""},
		{"cost func ignores burst", 1, 2, &Options{Cost: 3, CostFunc: ok}, ""},
		{"status 402", 1, 1, &Options{DenyStatus: 402}, ""},
		{"status 503", 1, 1, &Options{DenyStatus: 503}, "DenyStatus must be in 400–499, got 503"},
		{"status 200", 1, 1, &Options{DenyStatus: 200}, "DenyStatus"},
		{"negative max keys", 1, 1, &Options{MaxKeys: -1}, "MaxKeys must be > 0"},
		{"negative retry", 1, 1, &Options{RetryAfterUnavailable: -time.Second}, "RetryAfterUnavailable"},
		{"name with newline", 1, 1, &Options{Name: "a\nb"}, "Name must be printable ASCII"},
		{"long name", 1, 1, &Options{Name: strings.Repeat("n", 65)}, "Name longer than 64"},
		{"name with quote", 1, 1, &Options{Name: `a"b\c`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.rate, tc.burst, tc.opts)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New: error %v, want one containing %q", err, tc.want)
			case err != nil && !strings.HasPrefix(err.Error(), "limiter: "):
				t.Fatalf("New: error %q lacks the package prefix", err)
			}
		})
	}
}

// Over an interval T a bucket of rate r and burst b admits b + r·T requests,
// give or take one.
func TestAccuracySerial(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
		T     time.Duration
		step  time.Duration // mean step; steps are jittered
	}{
		{10, 5, 10 * time.Second, 7 * time.Millisecond},
		{1, 1, time.Minute, 5 * time.Millisecond}, // with burst 1, tokens overflow by up to a step's worth: keep steps short
		{0.5, 3, 2 * time.Minute, 900 * time.Millisecond},
		{3.7, 10, 30 * time.Second, 50 * time.Millisecond},
		{1000, 50, 2 * time.Second, 3 * time.Millisecond},
	} {
		clk := newClock()
		l := mustNew(t, tc.rate, tc.burst, &Options{By: KeyFunc(oneKey), Clock: clk.Now})
		req := httptest.NewRequest("GET", "/", nil)
		rng := rand.New(rand.NewSource(1))
		end := clk.Now().Add(tc.T)
		admitted := 0
		for {
			// Enough attempts to drain whatever accumulated since the last step.
			for i := 0; i < tc.burst+int(tc.rate*2*tc.step.Seconds())+2; i++ {
				if take(t, l, req).Allowed {
					admitted++
				}
			}
			d := time.Duration(rng.Int63n(int64(2 * tc.step)))
			if now := clk.Now(); now.Add(d).After(end) {
				clk.Advance(end.Sub(now))
				for i := 0; i < tc.burst+int(tc.rate*2*tc.step.Seconds())+2; i++ {
					if take(t, l, req).Allowed {
						admitted++
					}
				}
				break
			}
			clk.Advance(d)
		}
		checkAdmitted(t, admitted, tc.rate, tc.burst, tc.T)
	}
}

func checkAdmitted(t *testing.T, admitted int, r float64, b int, T time.Duration) {
	t.Helper()
	want := float64(b) + r*T.Seconds()
	if float64(admitted) > want+1 || float64(admitted) < want-1 {
		t.Errorf("rate %v burst %d over %v: admitted %d, want %v ± 1", r, b, T, admitted, want)
	}
}

// The same bound holds when many goroutines take from one bucket, both in
// lock step with the clock and racing it.
func TestAccuracyConcurrent(t *testing.T) {
	const workers = 8
	t.Run("lockstep", func(t *testing.T) {
		clk := newClock()
		const rate, burst, T, step = 50.0, 20, 5 * time.Second, 10 * time.Millisecond
		l := mustNew(t, rate, burst, &Options{By: KeyFunc(oneKey), Clock: clk.Now})
		var admitted atomic.Int64
		for elapsed := time.Duration(0); ; elapsed += step {
			concurrently(workers, func(int) {
				req := httptest.NewRequest("GET", "/", nil)
				for i := 0; i < burst; i++ {
					if res, _ := l.Take(req); res.Allowed {
						admitted.Add(1)
					}
				}
			})
			if elapsed == T {
				break
			}
			clk.Advance(step)
		}
		checkAdmitted(t, int(admitted.Load()), rate, burst, T)
	})
	t.Run("racing", func(t *testing.T) {
		clk := newClock()
		const rate, burst, T = 200.0, 10, time.Second
		l := mustNew(t, rate, burst, &Options{By: KeyFunc(oneKey), Clock: clk.Now})
		var (
			admitted atomic.Int64
			attempts atomic.Int64
			done     atomic.Bool
			wg       sync.WaitGroup
		)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := httptest.NewRequest("GET", "/", nil)
				for !done.Load() {
					if res, _ := l.Take(req); res.Allowed {
						admitted.Add(1)
					}
					attempts.Add(1)
					// Let the clock's goroutine in: with one P it would
					// otherwise wait for the scheduler to preempt us.
					runtime.Gosched()
				}
				// The clock has stopped at T: drain what is left.
				for {
					res, _ := l.Take(req)
					if !res.Allowed {
						return
					}
					admitted.Add(1)
				}
			}()
		}
		// Advance 1ms (0.2 tokens) at a time, while the workers take
		// concurrently, but wait for a few of their attempts after each
		// step so that the bucket never overflows unobserved.
		for elapsed := time.Duration(0); elapsed < T; elapsed += time.Millisecond {
			clk.Advance(time.Millisecond)
			for a := attempts.Load(); attempts.Load() < a+2; {
				runtime.Gosched()
			}
		}
		done.Store(true)
		wg.Wait()
		checkAdmitted(t, int(admitted.Load()), rate, burst, T)
	})
	// New clients arriving in the same shard move its hot bucket away from
	// the client whose bucket workers drain, and the workers find it again
	// under the shard's lock, while others take it without: the clock
	// standing still, exactly its burst is admitted. (No bucket is evicted:
	// the shard has room for all.)
	t.Run("while others arrive", func(t *testing.T) {
		const burst, arrivals = 50, 30
		var admitted atomic.Int64
		l := mustNew(t, 1, burst, &Options{
			By:      KeyFunc(headerKey),
			Clock:   newClock().Now,
			MaxKeys: 127, // one shard, room for every client
		})
		concurrently(workers, func(w int) {
			req := httptest.NewRequest("GET", "/", nil)
			if w%2 == 1 { // a worker bringing new clients
				for i := range arrivals {
					req.Header.Set("X-Api-Key", fmt.Sprintf("new-%d-%d", w, i))
					if res, _ := l.Take(req); !res.Allowed || res.Remaining != burst-1 {
						t.Errorf("new client %q: %+v", req.Header.Get("X-Api-Key"), res)
						return
					}
				}
				return
			}
			req.Header.Set("X-Api-Key", "drained")
			for range 500 {
				if res, _ := l.Take(req); res.Allowed {
					admitted.Add(1)
				}
			}
		})
		if got := admitted.Load(); got != burst {
			t.Errorf("admitted %d of the drained client's requests, want %d", got, burst)
		}
		if n := l.buckets.len(); n != 1+workers/2*arrivals {
			t.Errorf("%d buckets, want %d: some were evicted", n, 1+workers/2*arrivals)
		}
	})
	// With room for one bucket, every new client evicts the last one,
	// often while a take of it is under way, which must then look again.
	t.Run("one bucket", func(t *testing.T) {
		l := mustNew(t, 1, 5, &Options{By: KeyFunc(headerKey), Clock: newClock().Now, MaxKeys: 1})
		concurrently(workers, func(w int) {
			req := httptest.NewRequest("GET", "/", nil)
			for i := range 2000 {
				req.Header.Set("X-Api-Key", strconv.Itoa((w+i)%3))
				res, _ := l.Take(req)
				if res.Limit.Burst != 5 || res.Remaining < 0 || res.Remaining > 4 && res.Allowed {
					t.Errorf("take %d of worker %d: %+v", i, w, res)
					return
				}
			}
		})
		if n := l.buckets.len(); n != 1 {
			t.Errorf("%d buckets, want 1", n)
		}
	})
}

func TestResultFields(t *testing.T) {
	clk := newClock()
	l := mustNew(t, 2, 3, &Options{By: KeyFunc(oneKey), Clock: clk.Now}) // a token every 500ms
	req := httptest.NewRequest("GET", "/", nil)

	res := take(t, l, req)
	if !res.Allowed || res.Remaining != 2 || res.Reset != 500*time.Millisecond || res.RetryAfter != 0 || res.Cost != 1 {
		t.Fatalf("first take: %+v", res)
	}
	if res.Limit != (store.RateLimit{Rate: 2, Burst: 3}) {
		t.Fatalf("Limit = %+v", res.Limit)
	}
	take(t, l, req)
	take(t, l, req)
	clk.Advance(100 * time.Millisecond)
	res = take(t, l, req)
	if res.Allowed || res.Remaining != 0 || res.Reset != 400*time.Millisecond || res.RetryAfter != 400*time.Millisecond {
		t.Fatalf("empty bucket: %+v", res)
	}
	clk.Advance(time.Hour)
	res = take(t, l, req)
	if !res.Allowed || res.Remaining != 2 {
		t.Fatalf("after an hour: %+v", res)
	}
	clk.Advance(time.Hour)
	if _, tokens, _ := l.buckets.take("k", l.configured.def.limit, l.configured.def, 0, clk.Now()); tokens != 3 {
		t.Fatalf("full bucket holds %v tokens", tokens)
	}
	res = take(t, l, req)
	if res.Reset != 500*time.Millisecond {
		t.Fatalf("Reset after one take from a full bucket = %v", res.Reset)
	}
}

func TestCost(t *testing.T) {
	clk := newClock()
	var cost atomic.Int64
	l := mustNew(t, 1, 5, &Options{By: KeyFunc(oneKey), Clock: clk.Now, CostFunc: func(r *http.Request) (int, error) {
		c := int(cost.Load())
		if c == 99 {
			return 0, errors.New("no cost for you")
		}
		return c, nil
	}})
	req := httptest.NewRequest("GET", "/", nil)

	cost.Store(4)
	if res := take(t, l, req); !res.Allowed || res.Remaining != 1 || res.Cost != 4 {
		t.Fatalf("cost 4: %+v", res)
	}
	cost.Store(2)
	res := take(t, l, req)
	if res.Allowed || res.RetryAfter != time.Second {
		t.Fatalf("cost 2 with 1 left: %+v", res)
	}
	cost.Store(0)
	if res := take(t, l, req); !res.Allowed || res.Remaining != 1 {
		t.Fatalf("cost 0: %+v", res)
	}
	cost.Store(6)
	if res := take(t, l, req); res.Allowed || res.RetryAfter >= 0 {
		t.Fatalf("cost above burst: %+v", res)
	}
	cost.Store(-1)
	if _, err := l.Take(req); !errors.Is(err, ErrInvalidCost) {
		t.Fatalf("negative cost: err = %v", err)
	}
	cost.Store(99)
	if _, err := l.Take(req); !errors.Is(err, ErrInvalidCost) || !strings.Contains(err.Error(), "no cost for you") {
		t.Fatalf("failing CostFunc: err = %v", err)
	}
}

func TestFixedCost(t *testing.T) {
	clk := newClock()
	l := mustNew(t, 1, 10, &Options{By: KeyFunc(oneKey), Clock: clk.Now, Cost: 4})
	req := httptest.NewRequest("GET", "/", nil)
	for i, want := range []bool{true, true, false} {
		if res := take(t, l, req); res.Allowed != want || res.Cost != 4 {
			t.Fatalf("take %d: %+v", i, res)
		}
	}
}

// Requests their KeyFunc cannot key share one bucket.
func TestUnkeyedShareABucket(t *testing.T) {
	clk := newClock()
	l := mustNew(t, 1, 2, &Options{By: KeyFunc(headerKey), Clock: clk.Now})
	anon := httptest.NewRequest("GET", "/", nil)
	keyed := httptest.NewRequest("GET", "/", nil)
	keyed.Header.Set("X-Api-Key", "a")
	for i, want := range []bool{true, true, false} {
		if res := take(t, l, anon); res.Allowed != want {
			t.Fatalf("anonymous take %d: %+v", i, res)
		}
	}
	if res := take(t, l, keyed); !res.Allowed {
		t.Fatalf("keyed request shares the anonymous bucket: %+v", res)
	}
}

// fakeBuckets is a store.Buckets that records the buckets it is asked
// for and can be told to fail; its buckets are a memory store's.
type fakeBuckets struct {
	mem  *store.Memory
	fail atomic.Bool
	mu   sync.Mutex
	seen []store.Bucket
}

// newFakeBuckets returns fakeBuckets timed by now.
func newFakeBuckets(now func() time.Time) *fakeBuckets {
	return &fakeBuckets{mem: store.NewMemory(&store.MemoryOptions{Clock: now})}
}

func (f *fakeBuckets) TakeTokens(ctx context.Context, b store.Bucket) (store.BucketResult, error) {
	f.mu.Lock()
	f.seen = append(f.seen, b)
	f.mu.Unlock()
	if f.fail.Load() {
		return store.BucketResult{}, errors.New("dial tcp 10.0.0.7:6379: connection refused")
	}
	return f.mem.TakeTokens(ctx, b)
}

var _ store.Buckets = (*fakeBuckets)(nil)

func TestStore(t *testing.T) {
	clk := newClock()
	fb := newFakeBuckets(clk.Now)
	l := mustNew(t, 2, 3, &Options{Name: "shared", By: KeyFunc(oneKey), Clock: clk.Now, Store: fb})
	req := httptest.NewRequest("GET", "/", nil)
	for i, want := range []int{2, 1, 0} {
		res := take(t, l, req)
		if !res.Allowed || res.Remaining != want {
			t.Fatalf("take %d: %+v", i, res)
		}
	}
	if l.buckets.len() != 0 {
		t.Fatal("the limiter kept buckets of its own although it has a store")
	}
	res := take(t, l, req)
	if res.Allowed || res.RetryAfter != 500*time.Millisecond || res.Reset != 500*time.Millisecond {
		t.Fatalf("empty shared bucket: %+v", res)
	}
	clk.Advance(750 * time.Millisecond)
	res = take(t, l, req)
	if !res.Allowed || res.Remaining != 0 || res.Reset != 250*time.Millisecond {
		t.Fatalf("after 750ms: %+v", res)
	}
	if got := fb.seen[0]; !reflect.DeepEqual(got, store.Bucket{Key: "shared:k", Rate: 2, Burst: 3, Cost: 1}) {
		t.Fatalf("store asked for %+v", got)
	}

	fb.fail.Store(true)
	if _, err := l.Take(req); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("failing store, fail-closed: err = %v", err)
	}

	open := mustNew(t, 2, 3, &Options{By: KeyFunc(oneKey), Clock: clk.Now, Store: fb, FailOpen: true})
	for i, want := range []bool{true, true, true, false} {
		res, err := open.Take(req)
		if err != nil || res.Allowed != want {
			t.Fatalf("failing store, fail-open, take %d: %+v, %v", i, res, err)
		}
	}
	fb.fail.Store(false)
	if res := take(t, open, req); !res.Allowed {
		t.Fatalf("store back: %+v", res)
	}
}

func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a limiter with a million keys")
	}
	// A million random keys into the default MaxKeys; a tenth of each
	// under the race detector, which makes this test slow, not wrong.
	keys, maxKeys := 1_000_000, defaultMaxKeys
	if raceEnabled {
		keys, maxKeys = keys/10, maxKeys/10
	}
	const keyLen = 16
	clk := newClock()
	var key string
	l := mustNew(t, 1, 10, &Options{
		By:      KeyFunc(func(*http.Request) (string, bool) { return key, true }),
		Clock:   clk.Now,
		MaxKeys: maxKeys,
	})
	req := httptest.NewRequest("GET", "/", nil)
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, keyLen)
	const hex = "0123456789abcdef"

	before := heapInUse()
	for i := 0; i < keys; i++ {
		for j := range buf {
			buf[j] = hex[rng.Intn(16)]
		}
		key = string(buf)
		if res := take(t, l, req); !res.Allowed {
			t.Fatalf("new key %d refused: %+v", i, res)
		}
		clk.Advance(100 * time.Nanosecond) // buckets stay partly drained: eviction, not sweeping, makes room
	}
	after := heapInUse()
	n := l.buckets.len()
	if n > maxKeys {
		t.Errorf("%d buckets, want at most MaxKeys = %d", n, maxKeys)
	}
	const bytesPerKey = 256 // the bound per bucket that Options.MaxKeys documents
	bound := uint64(maxKeys * (bytesPerKey + keyLen))
	grew := after - min(before, after)
	t.Logf("%d keys: %d buckets, heap grew %d bytes (%.0f per bucket), bound %d", keys, n, grew, float64(grew)/float64(n), bound)
	if grew > bound {
		t.Errorf("heap grew %d bytes, more than MaxKeys × (bytesPerKey + key length) = %d", grew, bound)
	}
	// The newest key is there and still limited.
	for res := take(t, l, req); res.Allowed; res = take(t, l, req) {
	}
	runtime.KeepAlive(l)
}

// oneShardLimiter returns a limiter at 1 token per second, burst 2, with
// room for 64 keys in one shard, timed by clk and keyed by *key.
func oneShardLimiter(t *testing.T, clk *clock, key *string) *Limiter {
	t.Helper()
	return mustNew(t, 1, 2, &Options{
		By:      KeyFunc(func(*http.Request) (string, bool) { return *key, true }),
		Clock:   clk.Now,
		MaxKeys: 64, // one shard
	})
}

// Full buckets are removed as new keys arrive; a full table evicts a
// bucket not used since the eviction hand last passed it, never the one
// being used.
func TestSweepAndEvict(t *testing.T) {
	clk := newClock()
	var key string
	l := oneShardLimiter(t, clk, &key)
	if len(l.buckets.shards) != 1 {
		t.Fatalf("%d shards for 64 keys", len(l.buckets.shards))
	}
	req := httptest.NewRequest("GET", "/", nil)
	for i := 0; i < 64; i++ {
		key = string(rune('A' + i))
		take(t, l, req)
	}
	if n := l.buckets.len(); n != 64 {
		t.Fatalf("%d buckets, want 64", n)
	}
	// A 65th key evicts one (within the second, so no sweep).
	key = "new"
	take(t, l, req)
	if n := l.buckets.len(); n != 64 {
		t.Fatalf("%d buckets after eviction, want 64", n)
	}
	if res := take(t, l, req); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("the new key's bucket was evicted: %+v", res)
	}
	// Two seconds later every bucket but the newest has refilled; a further
	// new key triggers a sweep of the full table.
	clk.Advance(2*time.Second - time.Millisecond)
	key = "newer"
	take(t, l, req)
	if n := l.buckets.len(); n != 2 {
		t.Fatalf("%d buckets after the sweep, want 2 (the two not yet full)", n)
	}
	// After sweepEvery, full buckets go even when the table has room.
	clk.Advance(sweepEvery)
	key = "newest"
	take(t, l, req)
	if n := l.buckets.len(); n != 1 {
		t.Fatalf("%d buckets after the periodic sweep, want 1", n)
	}
}

func TestShardCount(t *testing.T) {
	for _, tc := range []struct{ maxKeys, shards, perShard int }{
		{1, 1, 1},
		{100, 1, 100},
		{128, 2, 64},
		{defaultMaxKeys, 64, defaultMaxKeys / 64},
		{10_000_000, 64, 10_000_000 / 64},
	} {
		tb := newTable(tc.maxKeys, time.Now())
		if len(tb.shards) != tc.shards || tb.shards[0].max != tc.perShard {
			t.Errorf("MaxKeys %d: %d shards of %d, want %d of %d", tc.maxKeys, len(tb.shards), tb.shards[0].max, tc.shards, tc.perShard)
		}
	}
}

// heapInUse returns the bytes of live heap objects after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// An override that no validating store would accept is ignored in favour of
// the plan's rate (the limiter takes its caller from the paywall as is).
func TestInvalidOverrideIgnored(t *testing.T) {
	clk := newClock()
	l := mustNew(t, 1, 3, &Options{By: KeyFunc(oneKey), Clock: clk.Now, Plans: map[string]store.RateLimit{"pro": {Rate: 1, Burst: 5}}})
	req := httptest.NewRequest("GET", "/", nil)
	for _, rl := range []store.RateLimit{{Rate: 0, Burst: 10}, {Rate: -1, Burst: 10}, {Rate: math.NaN(), Burst: 10}, {Rate: math.Inf(1), Burst: 10}, {Rate: 1, Burst: 0}} {
		rl := rl
		c := &paywall.Caller{Account: store.Account{ID: "a", Plan: "pro", RateLimit: &rl}}
		res, err := l.take(req, c)
		if err != nil || res.Limit != (store.RateLimit{Rate: 1, Burst: 5}) {
			t.Errorf("override %+v: limit %+v, %v; want the plan's", rl, res.Limit, err)
		}
	}
}

func TestMonotonicClock(t *testing.T) {
	clock := monotonicClock()
	a := clock()
	b := clock()
	if b.Before(a) {
		t.Fatal("the default clock ran backwards")
	}
	if d := time.Since(a); d < 0 || d > time.Minute {
		t.Fatalf("the default clock is %v away from time.Now", d)
	}
	if a.Round(0) == a {
		t.Fatal("the default clock's times have no monotonic reading")
	}
}

// With ByAccount, a store is asked for the account's own bucket; with any
// other KeyFunc, for a stand-alone one.
func TestStoreAccountBucket(t *testing.T) {
	clk := newClock()
	fb := newFakeBuckets(clk.Now)
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "192.0.2.1:1"
	c := &paywall.Caller{Account: store.Account{ID: "acct_1", Plan: "pro"}}

	l := mustNew(t, 2, 3, &Options{Name: "burst", By: ByAccount(), Clock: clk.Now, Store: fb})
	if !l.byAccount {
		t.Fatal("ByAccount not recognised")
	}
	if _, err := l.take(req, c); err != nil {
		t.Fatal(err)
	}
	if _, err := l.take(req, nil); err != nil { // no caller: the shared keyless bucket
		t.Fatal(err)
	}
	other := mustNew(t, 2, 3, &Options{Name: "burst", By: ByClientAddr(), Clock: clk.Now, Store: fb})
	if other.byAccount {
		t.Fatal("ByClientAddr taken for ByAccount")
	}
	if _, err := other.take(req, c); err != nil {
		t.Fatal(err)
	}
	want := []store.Bucket{
		{Account: "acct_1", Key: "burst", Rate: 2, Burst: 3, Cost: 1},
		{Key: "burst:", Rate: 2, Burst: 3, Cost: 1},
		{Key: "burst:192.0.2.1", Rate: 2, Burst: 3, Cost: 1},
	}
	if len(fb.seen) != len(want) {
		t.Fatalf("store asked for %+v", fb.seen)
	}
	for i := range want {
		if !reflect.DeepEqual(fb.seen[i], want[i]) {
			t.Errorf("take %d: store asked for %+v, want %+v", i, fb.seen[i], want[i])
		}
	}
}

// ofLimit returns the configured policy of a configured limit (a plan's,
// or the default's), whether it compares a few or looks many up in a map,
// and a new policy for any other limit; byPlan finds a plan's policy by its
// name either way.
func TestPolicies(t *testing.T) {
	for _, plans := range []int{0, 3, maxScanned + 4} {
		o := &Options{Plans: map[string]store.RateLimit{}}
		for i := range plans {
			o.Plans[fmt.Sprintf("plan%d", i)] = store.RateLimit{Rate: float64(i + 2), Burst: 10 * (i + 2)}
		}
		l := mustNew(t, 1, 10, o)
		if p := l.configured.ofLimit(store.RateLimit{Rate: 1, Burst: 10}); p != l.configured.def {
			t.Errorf("%d plans: the default's limit gave %+v, want the default policy", plans, p)
		}
		for name, lim := range o.Plans {
			pp := l.configured.byPlan.get(name)
			if pp == nil || pp.limit != lim {
				t.Errorf("%d plans: plan %s has policy %+v, want one of %+v", plans, name, pp, lim)
			}
			if p := l.configured.ofLimit(lim); p != pp {
				t.Errorf("%d plans: %s's limit %+v gave %+v, want its policy", plans, name, lim, p)
			}
		}
		if p := l.configured.byPlan.get("other"); p != nil {
			t.Errorf("%d plans: an unconfigured plan has policy %+v", plans, p)
		}
		other := store.RateLimit{Rate: 1, Burst: 11}
		p := l.configured.ofLimit(other)
		if p == nil || p.limit != other || p == l.configured.def {
			t.Errorf("%d plans: an unconfigured limit gave %+v, want a new policy for it", plans, p)
		}
		if again := l.configured.ofLimit(other); again != p {
			t.Errorf("%d plans: the unconfigured limit's policy was made again", plans)
		}
	}
}

// The policies made for limits that are not configured are kept up to
// maxOverridePolicies; beyond, each request gets a new one.
func TestOverridePoliciesBounded(t *testing.T) {
	l := mustNew(t, 1, 10, nil)
	for i := range maxOverridePolicies + 10 {
		l.configured.ofLimit(store.RateLimit{Rate: 1, Burst: 100 + i})
	}
	if n := l.configured.nOverrides.Load(); n != maxOverridePolicies {
		t.Fatalf("%d override policies kept, want %d", n, maxOverridePolicies)
	}
	kept := store.RateLimit{Rate: 1, Burst: 100}
	if first, again := l.configured.ofLimit(kept), l.configured.ofLimit(kept); first != again {
		t.Errorf("a kept override policy was made again")
	}
	beyond := store.RateLimit{Rate: 1, Burst: 100 + maxOverridePolicies + 5}
	if p := l.configured.ofLimit(beyond); p.limit != beyond || p == l.configured.ofLimit(beyond) {
		t.Errorf("an override beyond the cap: %+v, kept or wrong", p)
	}
}
