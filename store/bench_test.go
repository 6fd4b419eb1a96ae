package store_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// benchAccounts is how many accounts the uncontended benchmarks spread
// their goroutines over.
const benchAccounts = 256

// benchMemory returns a memory store with benchAccounts accounts, each
// with one key and a balance no benchmark exhausts.
func benchMemory(b *testing.B) (*store.Memory, []store.Digest, []string) {
	b.Helper()
	m := store.NewMemory(nil)
	digests := make([]store.Digest, benchAccounts)
	ids := make([]string, benchAccounts)
	for i := range digests {
		ids[i] = fmt.Sprintf("acct_%d", i)
		if err := m.PutAccount(ctx, store.Account{ID: ids[i], Plan: "pro", Features: []string{"reports"}, Balance: math.MaxInt64}); err != nil {
			b.Fatal(err)
		}
		k := store.NewKey(fmt.Sprintf("sk_bench_%032d", i), ids[i])
		if err := m.PutKey(ctx, k); err != nil {
			b.Fatal(err)
		}
		digests[i] = k.Digest
	}
	return m, digests, ids
}

// lookupSpend is what the middlewares do for a charged request.
func lookupSpend(b *testing.B, s store.Store, d store.Digest) {
	_, a, err := s.Lookup(context.Background(), d)
	if err != nil {
		b.Fatal(err)
	}
	if r, err := s.Spend(context.Background(), a.ID, 1); err != nil || !r.OK {
		b.Fatalf("Spend = %+v, %v", r, err)
	}
}

func BenchmarkMemoryLookupSpend(b *testing.B) {
	m, digests, _ := benchMemory(b)
	serialLookupSpend(b, m, digests)
}

// BenchmarkMemoryLookupSpendParallel spreads goroutines over many
// accounts, as many customers would.
func BenchmarkMemoryLookupSpendParallel(b *testing.B) {
	m, digests, _ := benchMemory(b)
	parallelLookupSpend(b, m, digests)
}

// BenchmarkMemoryLookupSpendParallelOneAccount has every goroutine spend
// from one account: the worst case of the per-account lock.
func BenchmarkMemoryLookupSpendParallelOneAccount(b *testing.B) {
	m, digests, _ := benchMemory(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			lookupSpend(b, m, digests[0])
		}
	})
}

// BenchmarkMemorySpendParallel has goroutines spend by account ID, each
// from an account of its own: finding the account shares no lock.
func BenchmarkMemorySpendParallel(b *testing.B) {
	m, _, ids := benchMemory(b)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := ids[next.Add(1)%int64(len(ids))]
		for pb.Next() {
			if r, err := m.Spend(ctx, id, 1); err != nil || !r.OK {
				b.Fatalf("Spend = %+v, %v", r, err)
			}
		}
	})
}

// BenchmarkCallbackLookupSpend measures the callback store with every
// lookup a cache hit, over a memory store standing in for a database.
func BenchmarkCallbackLookupSpend(b *testing.B) {
	cb, digests := benchCallback(b)
	serialLookupSpend(b, cb, digests)
}

func BenchmarkCallbackLookupSpendParallel(b *testing.B) {
	cb, digests := benchCallback(b)
	parallelLookupSpend(b, cb, digests)
}

// benchCallback returns a callback store over benchMemory's store.
func benchCallback(b *testing.B) (store.Store, []store.Digest) {
	m, digests, _ := benchMemory(b)
	cb, err := store.NewCallback(store.Callbacks{Lookup: m.Lookup, Spend: m.Spend}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return cb, digests
}

// serialLookupSpend times lookupSpend on s, cycling through digests.
func serialLookupSpend(b *testing.B, s store.Store, digests []store.Digest) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lookupSpend(b, s, digests[i%len(digests)])
	}
}

// parallelLookupSpend times lookupSpend on s from parallel goroutines,
// each on an account of its own.
func parallelLookupSpend(b *testing.B, s store.Store, digests []store.Digest) {
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		d := digests[next.Add(1)%int64(len(digests))]
		for pb.Next() {
			lookupSpend(b, s, d)
		}
	})
}

// TestMemoryHotPathAllocs holds the memory store to its budget of no
// allocation per Lookup+Spend, and per Lookup+SpendWithTokens, of an
// account with credits and of one with a periodic quota, so a regression
// fails the tests and not only the benchmarks.
func TestMemoryHotPathAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	m := store.NewMemory(nil)
	mustPut(t, m, store.Account{ID: "acct", Balance: math.MaxInt64})
	mustPut(t, m, store.Account{ID: "quota", Balance: math.MaxInt64,
		Refill: &store.Refill{Amount: math.MaxInt64, Every: 24 * time.Hour, Anchor: time.Now().Add(-time.Hour)}})
	cb, err := store.NewCallback(store.Callbacks{Lookup: m.Lookup, Spend: m.Spend}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acct", "quota"} {
		k := store.NewKey("sk_test_allocs_0123456789_"+id, id)
		if err := m.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		for _, s := range []store.Store{m, cb} {
			s.Lookup(ctx, k.Digest) // fill the callback store's cache
			if allocs := testing.AllocsPerRun(100, func() { lookupThen(t, s, k.Digest, false) }); allocs != 0 {
				t.Errorf("%T, %s: Lookup+Spend allocates %v times, want 0", s, id, allocs)
			}
		}
		if allocs := testing.AllocsPerRun(100, func() { lookupThen(t, m, k.Digest, true) }); allocs != 0 {
			t.Errorf("%s: Lookup+SpendWithTokens allocates %v times, want 0", id, allocs)
		}
	}
}

// A spend of an account with thresholds that it does not cross allocates
// only its SpendResult's CapResult.
func TestMemoryThresholdSpendAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	m := store.NewMemory(nil)
	mustPut(t, m, store.Account{ID: "a", Balance: math.MaxInt64, Thresholds: []store.Threshold{{Kind: store.ThresholdBalance, Value: 1}}})
	allocs := testing.AllocsPerRun(100, func() {
		if r, err := m.Spend(ctx, "a", 1); err != nil || !r.OK || r.Cap == nil {
			t.Fatalf("Spend = %+v, %v", r, err)
		}
	})
	if allocs != 1 {
		t.Errorf("Spend allocates %v times, want 1", allocs)
	}
}

// lookupThen looks digest up in s and spends a credit of its account,
// with a token of its bucket if tokens.
func lookupThen(t *testing.T, s store.Store, digest store.Digest, tokens bool) {
	_, a, err := s.Lookup(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	r := store.SpendResult{}
	if tokens {
		bucket := store.Bucket{Account: a.ID, Key: "default", Rate: 1e9, Burst: 1e9, Cost: 1}
		r, _, err = s.(*store.Memory).SpendWithTokens(ctx, a.ID, 1, bucket)
	} else {
		r, err = s.Spend(ctx, a.ID, 1)
	}
	if err != nil || !r.OK {
		t.Fatalf("spend = %+v, %v", r, err)
	}
}

// BenchmarkMemorySpendWithTokens is the store's part of a charge that
// decides its rate limit too: a lookup, then the fused take and debit.
func BenchmarkMemorySpendWithTokens(b *testing.B) {
	m, digests, _ := benchMemory(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, a, err := m.Lookup(ctx, digests[i%benchAccounts])
		if err != nil {
			b.Fatal(err)
		}
		bucket := store.Bucket{Account: a.ID, Key: "default", Rate: 1e9, Burst: 1e9, Cost: 1}
		if r, br, err := m.SpendWithTokens(ctx, a.ID, 1, bucket); err != nil || !r.OK || !br.OK {
			b.Fatalf("SpendWithTokens = %+v %+v, %v", r, br, err)
		}
	}
}

// BenchmarkMemorySpendCapped spends from an account with a spend cap and
// two thresholds that the spends never cross, as most of a capped
// account's spends do not.
func BenchmarkMemorySpendCapped(b *testing.B) {
	m := store.NewMemory(nil)
	a := store.Account{ID: "acct_capped", Balance: math.MaxInt64,
		SpendCap: &store.SpendCap{Limit: math.MaxInt64, Period: store.PeriodMonth},
		Thresholds: []store.Threshold{
			{Kind: store.ThresholdCapPercent, Value: 100},
			{Kind: store.ThresholdBalance, Value: 0},
		}}
	if err := m.PutAccount(ctx, a); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if r, err := m.Spend(ctx, a.ID, 1); err != nil || !r.OK {
			b.Fatalf("Spend = %+v, %v", r, err)
		}
	}
}
