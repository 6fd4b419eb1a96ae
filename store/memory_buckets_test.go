package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
)

// An account keeps one bucket per Key, each with its own tokens.
func TestMemoryAccountBuckets(t *testing.T) {
	m := store.NewMemory(nil)
	ctx := context.Background()
	if err := m.PutAccount(ctx, store.Account{ID: "acct", Balance: 100}); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		for i, key := range []string{"a", "b", "c"} {
			burst := i + 1
			b := store.Bucket{Account: "acct", Key: key, Rate: 1e-9, Burst: burst, Cost: 1}
			for n := 0; n < burst; n++ {
				if r, err := m.TakeTokens(ctx, b); (r.OK != (round == 0)) || err != nil {
					t.Fatalf("round %d bucket %s take %d: %+v, %v", round, key, n, r, err)
				}
			}
		}
	}
}

// A stand-alone bucket is kept while it is not full, and dropped once it
// is full again by the sweep that a new bucket triggers, all by the store's
// clock; a bucket dropped is a full one.
func TestMemoryStandaloneBuckets(t *testing.T) {
	defer store.SetBucketLinger(20 * time.Millisecond)()
	clock := new(storetest.Clock)
	m := store.NewMemory(&store.MemoryOptions{Clock: clock.Now})
	ctx := context.Background()
	b := store.Bucket{Key: "ip:192.0.2.1", Rate: 1, Burst: 2, Cost: 2}
	if r, err := m.TakeTokens(ctx, b); err != nil || !r.OK || r.Remaining != 0 || r.Full != 2*time.Second {
		t.Fatalf("first take: %+v, %v", r, err)
	}
	if r, err := m.TakeTokens(ctx, b); err != nil || r.OK {
		t.Fatalf("second take: %+v, %v", r, err)
	}
	clock.Advance(2 * time.Second)
	if r, err := m.TakeTokens(ctx, b); err != nil || !r.OK {
		t.Fatalf("take once full again: %+v, %v", r, err)
	}

	// Many clients whose buckets fill up again within 10 ms of the
	// store's clock: all are held until the clock moves on, then a new
	// client's bucket sweeps them away.
	newClients := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			b := store.Bucket{Key: fmt.Sprintf("%s%d", prefix, i), Rate: 1000, Burst: 10, Cost: 10}
			if r, err := m.TakeTokens(ctx, b); err != nil || !r.OK {
				t.Fatalf("client %d: %+v, %v", i, r, err)
			}
		}
	}
	newClients("ip:198.51.100.", 1000)
	if n := m.StandaloneBuckets(); n != 1001 {
		t.Fatalf("%d buckets held right after the takes, want 1001", n)
	}
	clock.Advance(10*time.Millisecond - 1)
	newClients("ip:203.0.113.", 1) // not yet full: none swept
	if n := m.StandaloneBuckets(); n != 1002 {
		t.Fatalf("%d buckets held before they are full, want 1002", n)
	}
	clock.Advance(20 * time.Millisecond)
	newClients("ip:203.0.113.1", 1) // all full but the first: swept
	if n := m.StandaloneBuckets(); n != 2 {
		t.Fatalf("%d buckets held after the sweep, want 2", n)
	}
	// The first bucket, which took 2 tokens 30 ms ago, is still kept.
	if r, err := m.TakeTokens(ctx, b); err != nil || r.OK || r.Remaining != 0 {
		t.Fatalf("the partly refilled bucket: %+v, %v", r, err)
	}
}

// The bucket of an account the store does not hold — a limiter keeping its
// buckets in one memory store for a paywall on another — works, apart from
// stand-alone buckets and from other accounts' buckets.
func TestMemoryBucketOfForeignAccount(t *testing.T) {
	m := store.NewMemory(nil)
	ctx := context.Background()
	take := func(b store.Bucket, wantOK bool) {
		t.Helper()
		if r, err := m.TakeTokens(ctx, b); err != nil || r.OK != wantOK {
			t.Fatalf("TakeTokens(%+v) = %+v, %v; want OK %v", b, r, err, wantOK)
		}
	}
	b := store.Bucket{Account: "elsewhere", Key: "default", Rate: 1e-9, Burst: 1, Cost: 1}
	take(b, true)
	take(b, false)
	take(store.Bucket{Key: "default", Rate: 1e-9, Burst: 1, Cost: 1}, true)
	take(store.Bucket{Account: "other", Key: "default", Rate: 1e-9, Burst: 1, Cost: 1}, true)
	long := store.Bucket{Account: strings.Repeat("x", 256+1), Key: "default", Rate: 1, Burst: 1, Cost: 1}
	if _, err := m.TakeTokens(ctx, long); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("account ID too long: %v", err)
	}
}

// A bucket with a rate so small that it would take longer than the largest
// Duration to fill is still taken from, and refuses once empty.
func TestMemoryStandaloneBucketTinyRate(t *testing.T) {
	m := store.NewMemory(nil)
	b := store.Bucket{Key: "tiny", Rate: 1e-12, Burst: 10, Cost: 10}
	for i, want := range []bool{true, false} {
		r, err := m.TakeTokens(context.Background(), b)
		if err != nil || r.OK != want {
			t.Fatalf("take %d: %+v, %v", i, r, err)
		}
	}
	if n := m.StandaloneBuckets(); n != 1 {
		t.Errorf("%d stand-alone buckets, want 1", n)
	}
	// Kept for about a century, not forever.
	exp, ok := m.StandaloneExpiry("tiny")
	if least := time.Now().Add(99 * 365 * 24 * time.Hour); !ok || exp.Before(least) {
		t.Errorf("expiry %v (%v), want set and after %v", exp, ok, least)
	}
}

// The window results of a take stay what they were when returned while
// later takes run, concurrently too: each take's More is its own.
func TestMemoryWindowResultsKept(t *testing.T) {
	m := store.NewMemory(nil)
	ctx := context.Background()
	if err := m.PutAccount(ctx, store.Account{ID: "acct", Balance: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	more := []store.Bucket{
		{Key: "daily", Burst: 1 << 30, Start: day, End: day.Add(24 * time.Hour)},
		{Key: "minute", Rate: 1e-9, Burst: 1 << 30},
	}
	done := make(chan [][2][]store.BucketResult)
	for g := range 4 {
		go func() {
			var kept [][2][]store.BucketResult
			for range 100 {
				b := store.Bucket{Account: "acct", Key: fmt.Sprint("main", g), Rate: 1e-9, Burst: 1 << 30, Cost: 1, More: more}
				var r store.BucketResult
				var err error
				if g%2 == 0 {
					r, err = m.TakeTokens(ctx, b)
				} else {
					_, r, err = m.SpendWithTokens(ctx, "acct", 1, b)
				}
				if err != nil || !r.OK || len(r.More) != 2 {
					t.Errorf("take: %+v, %v", r, err)
					break
				}
				kept = append(kept, [2][]store.BucketResult{r.More, append([]store.BucketResult(nil), r.More...)})
			}
			done <- kept
		}()
	}
	for range 4 {
		for i, k := range <-done {
			for j := range k[0] {
				if got, was := k[0][j], k[1][j]; got.OK != was.OK || got.Remaining != was.Remaining || got.Wait != was.Wait || got.Full != was.Full || got.More != nil {
					t.Fatalf("take %d: window %d's result changed from %+v to %+v", i, j, was, got)
				}
			}
		}
	}
}
