package redisstore

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// fakeClockStore returns a store whose scripts and cache read a fake clock.
func fakeClockStore(t *testing.T) (*Store, *storetest.Clock) {
	t.Helper()
	clock := new(storetest.Clock)
	s := newTestStore(t, newClient(t), &Options{Clock: clock.Now})
	s.scriptClock = clock.Now
	return s, clock
}

// TestTakeTokensMatchesRate checks the bucket script against
// golang.org/x/time/rate, step by step, with random costs and clock jumps.
func TestTakeTokensMatchesRate(t *testing.T) {
	s, clock := fakeClockStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		rate  float64
		burst int
	}{{1, 1}, {10, 5}, {0.5, 3}, {1000, 100}, {3.7, 20}} {
		b := store.Bucket{Key: "match-" + randomHex(4), Rate: c.rate, Burst: c.burst}
		lim := rate.NewLimiter(rate.Limit(c.rate), c.burst)
		for step := 0; step < 200; step++ {
			// whole milliseconds: the script clock has µs resolution
			clock.Advance(time.Duration(rng.Int64N(int64(2000/c.rate)+1)) * time.Millisecond)
			now := clock.Now()
			b.Cost = rng.IntN(c.burst + 2) // sometimes more than the burst
			wantOK := lim.AllowN(now, b.Cost)
			tokens := lim.TokensAt(now)
			got, err := s.TakeTokens(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != wantOK || got.Remaining != int(math.Floor(tokens)) {
				t.Fatalf("rate %v burst %d step %d: take %d = %+v, want OK %v remaining %v",
					c.rate, c.burst, step, b.Cost, got, wantOK, tokens)
			}
			wantFull := time.Duration((float64(c.burst) - tokens) / c.rate * float64(time.Second))
			if d := got.Full - wantFull; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("step %d: Full = %v, want %v", step, got.Full, wantFull)
			}
			switch {
			case b.Cost > c.burst:
				if got.Wait >= 0 {
					t.Fatalf("step %d: cost %d > burst %d, Wait = %v, want negative", step, b.Cost, c.burst, got.Wait)
				}
			case float64(b.Cost) <= tokens:
				if got.Wait != 0 {
					t.Fatalf("step %d: Wait = %v with %v tokens for cost %d", step, got.Wait, tokens, b.Cost)
				}
			default:
				wantWait := time.Duration((float64(b.Cost) - tokens) / c.rate * float64(time.Second))
				if d := got.Wait - wantWait; d < -time.Microsecond || d > time.Microsecond {
					t.Fatalf("step %d: Wait = %v, want %v", step, got.Wait, wantWait)
				}
			}
		}
	}
}

func TestTakeTokensInvalid(t *testing.T) {
	s, _ := fakeClockStore(t)
	for _, b := range []store.Bucket{
		{Key: "x", Rate: 0, Burst: 1, Cost: 1},
		{Key: "x", Rate: math.NaN(), Burst: 1, Cost: 1},
		{Key: "x", Rate: 1, Burst: 0, Cost: 1},
		{Key: "x", Rate: 1, Burst: 1, Cost: -1},
	} {
		if _, err := s.TakeTokens(context.Background(), b); !errors.Is(err, store.ErrInvalidAmount) {
			t.Errorf("TakeTokens(%+v): %v, want ErrInvalidAmount", b, err)
		}
	}
	r, err := s.TakeTokens(context.Background(), store.Bucket{Key: "x", Rate: math.Inf(1), Burst: 3, Cost: 100})
	if err != nil || !r.OK {
		t.Errorf("infinite rate: %+v, %v", r, err)
	}
}

func TestSpendWithTokens(t *testing.T) {
	s, clock := fakeClockStore(t)
	ctx := context.Background()
	const id = "fused"
	if err := s.PutAccount(ctx, store.Account{ID: id, Balance: 1}); err != nil {
		t.Fatal(err)
	}
	b := store.Bucket{Account: id, Key: "default", Rate: 1, Burst: 2, Cost: 1}
	step := func(name string, cost int64, wantOK, wantBucketOK bool, wantBalance int64, wantRemaining int) {
		t.Helper()
		sr, br, err := s.SpendWithTokens(ctx, id, cost, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if sr.OK != wantOK || br.OK != wantBucketOK || sr.Balance != wantBalance || br.Remaining != wantRemaining {
			t.Errorf("%s: got %+v %+v, want OK %v bucket OK %v balance %d remaining %d",
				name, sr, br, wantOK, wantBucketOK, wantBalance, wantRemaining)
		}
	}
	step("both allow", 1, true, true, 0, 1)
	step("credits refuse, no token taken", 1, false, true, 0, 1)
	if _, err := s.TopUp(ctx, id, 10); err != nil {
		t.Fatal(err)
	}
	step("both allow again", 1, true, true, 9, 0)
	step("bucket refuses, no credit taken", 1, false, false, 9, 0)
	clock.Advance(time.Second)
	step("a token later", 3, true, true, 6, 0)

	// TakeTokens draws on the same bucket; a stand-alone bucket of the same
	// Key is another one.
	if r, err := s.TakeTokens(ctx, b); err != nil || r.OK {
		t.Errorf("TakeTokens on the drained account bucket: %+v %v", r, err)
	}
	if r, err := s.TakeTokens(ctx, store.Bucket{Key: b.Key, Rate: b.Rate, Burst: b.Burst, Cost: 1}); err != nil || !r.OK {
		t.Errorf("stand-alone bucket %q: %+v %v", b.Key, r, err)
	}
	clock.Advance(time.Second)
	if r, err := s.TakeTokens(ctx, b); err != nil || !r.OK || r.Remaining != 0 {
		t.Errorf("TakeTokens a second later: %+v %v", r, err)
	}
	step("bucket drained by TakeTokens", 1, false, false, 6, 0)

	// The bucket must be the account's own.
	for _, foreign := range []store.Bucket{
		{Key: "ip:192.0.2.1", Rate: 1, Burst: 1, Cost: 1},
		{Key: "acct:" + id, Rate: 1, Burst: 1, Cost: 1},
		{Account: "other", Key: "default", Rate: 1, Burst: 1, Cost: 1},
		{Account: "other", Key: "default", Rate: math.Inf(1), Burst: 1, Cost: 1},
	} {
		_, _, err := s.SpendWithTokens(ctx, id, 1, foreign)
		if err == nil || !strings.Contains(err.Error(), "belongs to account") {
			t.Errorf("foreign bucket %+v: %v", foreign, err)
		}
	}
	if a, err := s.Account(ctx, id); err != nil || a.Balance != 6 {
		t.Errorf("foreign buckets debited the account: %+v %v", a, err)
	}
	// Unknown account: an error, and the bucket is left alone.
	other := store.Bucket{Account: "nobody", Key: "default", Rate: 1, Burst: 1, Cost: 1}
	if _, _, err := s.SpendWithTokens(ctx, "nobody", 1, other); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
	if r, err := s.TakeTokens(ctx, other); err != nil || !r.OK {
		t.Errorf("bucket of unknown account was touched: %+v %v", r, err)
	}
	if _, _, err := s.SpendWithTokens(ctx, id, -1, b); !errors.Is(err, store.ErrInvalidAmount) {
		t.Errorf("negative cost: %v", err)
	}
	sr, br, err := s.SpendWithTokens(ctx, id, 6, store.Bucket{Account: id, Key: "default", Rate: math.Inf(1), Burst: 1, Cost: 5})
	if err != nil || !sr.OK || !br.OK || sr.Balance != 0 {
		t.Errorf("infinite rate: %+v %+v %v", sr, br, err)
	}
}

// TestBucketAcrossStores hammers one bucket from two stores (two clients,
// as two replicas) for about a second of real time — the Redis server's
// clock times the bucket — and checks the admitted count against
// b + r·T + 1 from above and, loosely, from below.
func TestBucketAcrossStores(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a second of real time")
	}
	testBucketAcrossStores(t, newClient(t), newClient(t))
}

func TestBucketAcrossStoresCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; takes a second of real time")
	}
	testBucketAcrossStores(t, newClusterClient(t), newClusterClient(t))
}

func testBucketAcrossStores(t *testing.T, c1, c2 redis.UniversalClient) {
	const (
		r        = 50.0
		burst    = 10
		interval = time.Second
	)
	s1 := newTestStore(t, c1, nil)
	s2, err := New(c2, &Options{Prefix: s1.prefix, Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	b := store.Bucket{Key: "shared", Rate: r, Burst: burst, Cost: 1}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(interval)
	for _, s := range []*Store{s1, s2, s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				res, err := s.TakeTokens(context.Background(), b)
				if err != nil {
					t.Error(err)
					return
				}
				if res.OK {
					admitted.Add(1)
				} else {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	n := float64(admitted.Load())
	upper := burst + r*elapsed + 1
	lower := burst + r*(elapsed-0.3) - 1 // loose: the first take starts the server's interval a little late
	t.Logf("admitted %v, refused %d in %.3fs; bounds [%.1f, %.1f]", n, refused.Load(), elapsed, lower, upper)
	if n > upper || n < lower {
		t.Errorf("admitted %v, want within [%.1f, %.1f]", n, lower, upper)
	}
	if refused.Load() == 0 {
		t.Error("nothing refused: the test did not hammer the bucket")
	}
}
