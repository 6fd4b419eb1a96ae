package redisstore

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// replicaRoute is one replica of a paid route: a store on its own client
// and the real paywall middlewares, charging 1 credit per request.
type replicaRoute struct {
	store   *Store
	handler http.Handler
}

func newReplicaRoute(t *testing.T, addr string, opts *Options, served *atomic.Int64) replicaRoute {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	s := mustNew(t, c, opts)
	pw, err := paywall.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := pw.Authenticate(pw.Charge(1)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
	})))
	return replicaRoute{store: s, handler: h}
}

func (r replicaRoute) serve(raw string) int {
	req := httptest.NewRequest("GET", "/paid", nil)
	req.Header.Set("Authorization", "Bearer "+raw)
	w := httptest.NewRecorder()
	r.handler.ServeHTTP(w, req)
	return w.Code
}

// balanceOf reads an account's balance straight from Redis.
func balanceOf(t *testing.T, addr, key string) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	n, err := c.HGet(context.Background(), key, fieldBalance).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMoneyExactUnderFaults runs load through the paywall on two replicas,
// and SpendWithTokens on both stores directly, against a test-owned Redis
// (persisting every write) that is paused, stopped (SIGSTOP), and killed
// and restarted mid-load. Afterwards the credits debited must equal the
// requests served plus the spends that succeeded: no request answered 503
// was charged, and nothing was charged without being served.
func TestMoneyExactUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts, stalls and kills redis-server")
	}
	srv := startServer(t, t.Cleanup, "--appendonly", "yes", "--appendfsync", "always", "--dir", t.TempDir())
	const id, balance = "money", 1 << 40
	var served, failed atomic.Int64
	opts := &Options{Prefix: "money:", Timeout: 100 * time.Millisecond}
	reps := []replicaRoute{newReplicaRoute(t, srv.addr(), opts, &served), newReplicaRoute(t, srv.addr(), opts, &served)}
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { admin.Close() })
	seeder := mustNew(t, admin, &Options{Prefix: opts.Prefix, Timeout: testTimeout})
	if err := seeder.PutAccount(ctx, store.Account{ID: id, Balance: balance}); err != nil {
		t.Fatal(err)
	}
	raw := "sk_test_money_0123456789"
	if err := seeder.PutKey(ctx, store.NewKey(raw, id)); err != nil {
		t.Fatal(err)
	}
	stop := startLoad(t, reps, raw, &served, &failed)
	// Each phase lasts until the load has made n more calls that
	// succeeded (healthy) or failed (broken).
	healthy := func(what string) { progress(t, what, &served, 300) }
	broken := func(what string) { progress(t, what, &failed, 32) }
	healthy("start")
	// A paused Redis accepts no command, CLIENT UNPAUSE included, until
	// the pause ends.
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "1000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	progress(t, "paused", &failed, 16)
	healthy("unpaused")
	srv.cmd.Process.Signal(syscall.SIGSTOP)
	broken("stopped")
	srv.cmd.Process.Signal(syscall.SIGCONT)
	healthy("continued")
	srv.kill()
	broken("killed")
	srv.restart(t)
	healthy("restarted")
	stop()
	for _, r := range reps {
		within(t, time.Minute, "the pending cancels are made", func() bool { return r.store.ops.waiting.Load() == 0 })
		r.store.Close()
		if n := r.store.ops.dropped.Load(); n != 0 {
			t.Errorf("%d cancels dropped", n)
		}
	}
	debited := balance - balanceOf(t, srv.addr(), reps[0].store.AccountRedisKey(id))
	t.Logf("served %d, failed %d, debited %d", served.Load(), failed.Load(), debited)
	if failed.Load() == 0 {
		t.Error("no call failed: the faults did not bite")
	}
	if debited != served.Load() {
		t.Errorf("debited %d credits for %d requests served", debited, served.Load())
	}
}

// startLoad starts 16 workers on the replicas: three in four request the
// paid route with raw, the fourth calls SpendWithTokens on the store. It
// counts what was served (or spent) and what failed, and returns the
// function that stops the workers and waits for them.
func startLoad(t *testing.T, reps []replicaRoute, raw string, served, failed *atomic.Int64) func() {
	const id = "money"
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		r := reps[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := store.Bucket{Account: id, Key: "default", Rate: 1e9, Burst: 1 << 30, Cost: 1}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if w%4 == 3 { // the fused spend, straight on the store
					sr, _, err := r.store.SpendWithTokens(ctx, id, 1, b)
					if err == nil && sr.OK {
						served.Add(1)
					} else if err != nil {
						failed.Add(1)
					}
					continue
				}
				if code := r.serve(raw); code == http.StatusServiceUnavailable {
					failed.Add(1)
				} else if code != http.StatusOK {
					t.Errorf("status %d", code)
					return
				}
			}
		}()
	}
	return func() {
		close(stop)
		wg.Wait()
	}
}

// progress waits until counter has grown by n, for at most a minute.
func progress(t *testing.T, what string, counter *atomic.Int64, n int64) {
	t.Helper()
	start := counter.Load()
	within(t, time.Minute, what, func() bool { return counter.Load() >= start+n })
}

// TestBurstOnHealthyRedis sends a burst of 150 concurrent requests across
// two replicas, with the default Timeout, to a healthy Redis: none may be
// answered 503, and exactly 150 credits are debited.
func TestBurstOnHealthyRedis(t *testing.T) {
	c := newClient(t)
	prefix := testPrefix(t, c)
	var served atomic.Int64
	opts := &Options{Prefix: prefix}
	reps := []replicaRoute{
		newReplicaRoute(t, redisAddr(), opts, &served),
		newReplicaRoute(t, redisAddr(), opts, &served),
	}
	ctx := context.Background()
	const id, balance, burst = "burst", 1000, 150
	if err := reps[0].store.PutAccount(ctx, store.Account{ID: id, Balance: balance}); err != nil {
		t.Fatal(err)
	}
	raw := "sk_test_burst_0123456789"
	if err := reps[0].store.PutKey(ctx, store.NewKey(raw, id)); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		codes := make([]int, burst)
		var wg sync.WaitGroup
		release := make(chan struct{})
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				codes[i] = reps[i%2].serve(raw)
			}()
		}
		close(release)
		wg.Wait()
		count := map[int]int{}
		for _, c := range codes {
			count[c]++
		}
		if count[http.StatusOK] != burst {
			t.Errorf("round %d: statuses %v, want %d × 200", round, count, burst)
		}
	}
	if got := balance - balanceOf(t, redisAddr(), reps[0].store.AccountRedisKey(id)); got != served.Load() || got != 3*burst {
		t.Errorf("debited %d, served %d, want %d", got, served.Load(), 3*burst)
	}
}

// TestSpendExactLargeBalances spends random costs from random balances up
// to the largest int64, and first around 2^53, where a double stops being
// exact, through Spend and SpendWithTokens, and checks every new balance
// against Go's integer arithmetic: the scripts subtract decimal strings,
// never losing a credit to a double.
func TestSpendExactLargeBalances(t *testing.T) {
	s := newTestStore(t, newClient(t), nil)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	near := []int64{1<<53 - 2, 1<<53 - 1, 1 << 53, 1<<53 + 1, 1<<53 + 3, 1e15 - 1, 1e15, 1e16 - 1}
	for i := 0; i < 300; i++ {
		bal := rng.Int64()
		switch {
		case i < 4*len(near):
			bal = near[i/4]
		case i%3 == 0:
			bal = math.MaxInt64 - rng.Int64N(1000)
		}
		cost := rng.Int64N(bal + 1)
		switch i % 4 {
		case 1:
			cost = rng.Int64N(1000)
		case 2:
			cost = bal - rng.Int64N(min(bal, 1000)+1)
		}
		if err := s.PutAccount(ctx, store.Account{ID: "big", Balance: bal}); err != nil {
			t.Fatal(err)
		}
		var r store.SpendResult
		var err error
		if i%2 == 0 {
			r, err = s.Spend(ctx, "big", cost)
		} else {
			r, _, err = s.SpendWithTokens(ctx, "big", cost, store.Bucket{Account: "big", Key: "k", Rate: 1, Burst: 1})
		}
		if err != nil || !r.OK || r.Balance != bal-cost {
			t.Fatalf("spend %d from %d = %+v, %v; want balance %d", cost, bal, r, err, bal-cost)
		}
		if a, err := s.Account(ctx, "big"); err != nil || a.Balance != bal-cost {
			t.Fatalf("stored balance %d, %v; want %d", a.Balance, err, bal-cost)
		}
	}
}
