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

// lookedUp is a request context carrying the account a Lookup returned,
// as paywall.Authenticate's is.
type lookedUp struct {
	context.Context
	a *store.Account
}

func (c *lookedUp) LookedUpAccount() *store.Account { return c.a }

// lookUp stores an account with the given balance and a key for it in m,
// and returns the context a request authenticated with that key carries.
func lookUp(t *testing.T, m *store.Memory, id string, balance int64) *lookedUp {
	t.Helper()
	ctx := context.Background()
	if err := m.PutAccount(ctx, store.Account{ID: id, Balance: balance}); err != nil {
		t.Fatal(err)
	}
	k := store.NewKey("sk_test_"+id+"_0123456789abcdef", id)
	if err := m.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	_, a, _, err := m.LookupShared(ctx, k.Digest) // as paywall.Authenticate does
	if err != nil {
		t.Fatal(err)
	}
	return &lookedUp{Context: ctx, a: a}
}

// A spend whose context carries the looked-up account debits that account,
// and only when it is the account asked for and belongs to the store.
func TestMemorySpendWithLookedUpAccount(t *testing.T) {
	a, b := store.NewMemory(nil), store.NewMemory(nil)
	ctxA := lookUp(t, a, "acct_1", 100)
	lookUp(t, a, "acct_2", 100)
	lookUp(t, b, "acct_1", 100) // the same ID in another store

	spend := func(m *store.Memory, ctx context.Context, id string, cost int64) {
		t.Helper()
		if r, err := m.Spend(ctx, id, cost); err != nil || !r.OK {
			t.Fatalf("Spend(%s, %d) = %+v, %v", id, cost, r, err)
		}
		bucket := store.Bucket{Account: id, Key: "default", Rate: 1, Burst: 10, Cost: 1}
		if r, _, err := m.SpendWithTokens(ctx, id, cost, bucket); err != nil || !r.OK {
			t.Fatalf("SpendWithTokens(%s, %d) = %+v, %v", id, cost, r, err)
		}
	}
	spend(a, ctxA, "acct_1", 1) // the looked-up account
	spend(a, ctxA, "acct_2", 2) // another account of the same store
	spend(b, ctxA, "acct_1", 3) // the same ID in another store
	spend(b, context.Background(), "acct_1", 4)
	for _, c := range []struct {
		m    *store.Memory
		id   string
		want int64
	}{{a, "acct_1", 98}, {a, "acct_2", 96}, {b, "acct_1", 86}} {
		got, err := c.m.Account(context.Background(), c.id)
		if err != nil || got.Balance != c.want {
			t.Errorf("balance of %s = %d (%v), want %d", c.id, got.Balance, err, c.want)
		}
	}
}

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
	long := store.Bucket{Account: strings.Repeat("x", store.MaxIDLength+1), Key: "default", Rate: 1, Burst: 1, Cost: 1}
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
