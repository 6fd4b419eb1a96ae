package store_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
)

// memoryCallbacks returns Callbacks backed by a memory store, as an
// application would back them by its database.
func memoryCallbacks(m *store.Memory, withRefund bool) store.Callbacks {
	fns := store.Callbacks{Lookup: m.Lookup, Spend: m.Spend}
	if withRefund {
		fns.Refund = m.Refund
	}
	return fns
}

func TestCallbackConformance(t *testing.T) {
	for _, withRefund := range []bool{true, false} {
		name := map[bool]string{true: "WithRefund", false: "WithoutRefund"}[withRefund]
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Harness {
				clock := new(storetest.Clock)
				m := store.NewMemory(&store.MemoryOptions{Clock: clock.Now})
				cb, err := store.NewCallback(memoryCallbacks(m, withRefund), &store.CallbackOptions{Clock: clock.Now})
				if err != nil {
					t.Fatal(err)
				}
				return storetest.Harness{
					Store: cb,
					Seed: func(ctx context.Context, a store.Account, keys ...store.Key) error {
						if err := m.PutAccount(ctx, a); err != nil {
							return err
						}
						for _, k := range keys {
							if err := m.PutKey(ctx, k); err != nil {
								return err
							}
						}
						return nil
					},
					Now:     clock.Now,
					Advance: clock.Advance,
				}
			})
		})
	}
}

func TestNewCallbackErrors(t *testing.T) {
	lookup := func(context.Context, store.Digest) (store.Key, store.Account, error) {
		return store.Key{}, store.Account{}, store.ErrNotFound
	}
	spend := func(context.Context, string, int64) (store.SpendResult, error) { return store.SpendResult{}, nil }
	tests := []struct {
		name string
		fns  store.Callbacks
		want string
	}{
		{"no funcs", store.Callbacks{}, "store: Callbacks.Lookup is nil"},
		{"no Lookup", store.Callbacks{Spend: spend}, "store: Callbacks.Lookup is nil"},
		{"no Spend", store.Callbacks{Lookup: lookup}, "store: Callbacks.Spend is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb, err := store.NewCallback(tt.fns, nil)
			if err == nil || err.Error() != tt.want || cb != nil {
				t.Errorf("NewCallback = %v, %v; want nil, %q", cb, err, tt.want)
			}
		})
	}
}

// TestCallbackRefunderCapability checks that the store implements
// Refunder exactly when Callbacks.Refund is set.
func TestCallbackRefunderCapability(t *testing.T) {
	m := store.NewMemory(nil)
	for _, withRefund := range []bool{false, true} {
		cb, err := store.NewCallback(memoryCallbacks(m, withRefund), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cb.(store.Refunder); ok != withRefund {
			t.Errorf("Refund set: %v; store implements Refunder: %v", withRefund, ok)
		}
	}
}

// countingLookup is a Callbacks.Lookup over fixed outcomes by raw key:
// "known" is found, "unknown" is not, anything else fails.
type countingLookup struct {
	calls map[store.Digest]*atomic.Int32
}

var errDatabaseDown = errors.New("database down")

func newCountingLookup() *countingLookup {
	c := &countingLookup{calls: map[store.Digest]*atomic.Int32{}}
	for _, raw := range []string{"known", "unknown", "broken"} {
		c.calls[store.DigestOf(raw)] = new(atomic.Int32)
	}
	return c
}

func (c *countingLookup) lookup(_ context.Context, d store.Digest) (store.Key, store.Account, error) {
	c.calls[d].Add(1)
	switch d {
	case store.DigestOf("known"):
		return store.Key{Prefix: "sk_"}, store.Account{ID: "acct", Balance: 10}, nil
	case store.DigestOf("unknown"):
		return store.Key{}, store.Account{}, store.ErrNotFound
	}
	return store.Key{}, store.Account{}, errDatabaseDown
}

func noSpend(context.Context, string, int64) (store.SpendResult, error) {
	return store.SpendResult{}, errors.New("not used")
}

func TestCallbackCache(t *testing.T) {
	tests := []struct {
		name string
		opts store.CallbackOptions // Clock is set by the test
		raw  string
		// at lists the times (since the first lookup) of the lookups, and
		// calls the number of callback calls after each.
		at    []time.Duration
		calls []int32
	}{
		{"found: default TTL", store.CallbackOptions{}, "known",
			[]time.Duration{0, 5*time.Second - 1, 5 * time.Second, 5 * time.Second},
			[]int32{1, 1, 2, 2}},
		{"not found: default negative TTL", store.CallbackOptions{}, "unknown",
			[]time.Duration{0, time.Second - 1, time.Second},
			[]int32{1, 1, 2}},
		{"failure: never cached", store.CallbackOptions{}, "broken",
			[]time.Duration{0, 0, 0},
			[]int32{1, 2, 3}},
		{"found: TTL set", store.CallbackOptions{TTL: time.Minute}, "known",
			[]time.Duration{0, time.Minute - 1, time.Minute},
			[]int32{1, 1, 2}},
		{"not found: negative TTL set", store.CallbackOptions{NegativeTTL: 10 * time.Second}, "unknown",
			[]time.Duration{0, 10*time.Second - 1, 10 * time.Second},
			[]int32{1, 1, 2}},
		{"found: TTL disabled", store.CallbackOptions{TTL: -1}, "known",
			[]time.Duration{0, 0},
			[]int32{1, 2}},
		{"not found: still cached with TTL disabled", store.CallbackOptions{TTL: -1}, "unknown",
			[]time.Duration{0, 0},
			[]int32{1, 1}},
		{"not found: negative TTL disabled", store.CallbackOptions{NegativeTTL: -1}, "unknown",
			[]time.Duration{0, 0},
			[]int32{1, 2}},
		{"found: still cached with negative TTL disabled", store.CallbackOptions{NegativeTTL: -1}, "known",
			[]time.Duration{0, time.Second},
			[]int32{1, 1}},
		{"nothing cached", store.CallbackOptions{TTL: -1, NegativeTTL: -1}, "unknown",
			[]time.Duration{0, 0},
			[]int32{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := new(storetest.Clock)
			start := clock.Now()
			c := newCountingLookup()
			opts := tt.opts
			opts.Clock = clock.Now
			cb, err := store.NewCallback(store.Callbacks{Lookup: c.lookup, Spend: noSpend}, &opts)
			if err != nil {
				t.Fatal(err)
			}
			d := store.DigestOf(tt.raw)
			for i, at := range tt.at {
				clock.Advance(start.Add(at).Sub(clock.Now()))
				k, a, err := cb.Lookup(ctx, d)
				switch tt.raw {
				case "known":
					if err != nil || a.ID != "acct" || k.Digest != d || k.AccountID != "acct" {
						t.Errorf("Lookup %d = %+v, %+v, %v", i, k, a, err)
					}
				case "unknown":
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("Lookup %d error = %v, want ErrNotFound", i, err)
					}
				default:
					if !errors.Is(err, errDatabaseDown) {
						t.Errorf("Lookup %d error = %v, want %v", i, err, errDatabaseDown)
					}
				}
				if got := c.calls[d].Load(); got != tt.calls[i] {
					t.Errorf("after lookup %d at +%v: %d callback calls, want %d", i, at, got, tt.calls[i])
				}
			}
		})
	}
}

func TestCallbackInvalidate(t *testing.T) {
	c := newCountingLookup()
	cb, err := store.NewCallback(store.Callbacks{Lookup: c.lookup, Spend: noSpend}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := store.DigestOf("known")
	for _, step := range []struct {
		invalidate bool
		calls      int32
	}{{false, 1}, {false, 1}, {true, 2}, {false, 2}} {
		if step.invalidate {
			cb.Invalidate(d)
		}
		if _, _, err := cb.Lookup(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := c.calls[d].Load(); got != step.calls {
			t.Errorf("%d callback calls, want %d", got, step.calls)
		}
	}
	cb.Invalidate(store.DigestOf("never looked up")) // harmless
}

// TestCallbackLookupChecksResult checks what the store fills in and what it
// refuses in a result of Callbacks.Lookup.
func TestCallbackLookupChecksResult(t *testing.T) {
	d := store.DigestOf("k")
	tests := []struct {
		name    string
		k       store.Key
		a       store.Account
		wantK   store.Key
		wantErr string
	}{
		{"fills digest and account", store.Key{Prefix: "sk_"}, store.Account{ID: "acct"},
			store.Key{Digest: d, Prefix: "sk_", AccountID: "acct"}, ""},
		{"keeps matching digest", store.Key{Digest: d, AccountID: "other"}, store.Account{ID: "acct"},
			store.Key{Digest: d, AccountID: "other"}, ""},
		{"other digest", store.Key{Digest: store.DigestOf("x")}, store.Account{ID: "acct"},
			store.Key{}, "another digest"},
		{"account without ID", store.Key{}, store.Account{},
			store.Key{}, "account without an ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			cb, err := store.NewCallback(store.Callbacks{
				Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
					calls++
					return tt.k, tt.a, nil
				},
				Spend: noSpend,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				k, _, err := cb.Lookup(ctx, d)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("Lookup error = %v, want one containing %q", err, tt.wantErr)
					}
					continue
				}
				if err != nil || k != tt.wantK {
					t.Errorf("Lookup = %+v, %v; want %+v", k, err, tt.wantK)
				}
			}
			if want := map[bool]int{true: 1, false: 2}[tt.wantErr == ""]; calls != want {
				t.Errorf("%d callback calls, want %d (errors are not cached)", calls, want)
			}
		})
	}
}

// TestCallbackCachedAccountIsStale documents that the cached account's
// balance does not follow spends, and that it is the store's own copy.
func TestCallbackCachedAccountIsStale(t *testing.T) {
	m := store.NewMemory(nil)
	features := []string{"reports"}
	mustPut(t, m, store.Account{ID: "acct", Balance: 100})
	k := store.NewKey("sk_test_stale_0123456789", "acct")
	if err := m.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
			k, a, err := m.Lookup(ctx, d)
			a.Features = features // shared with the application
			return k, a, err
		},
		Spend: m.Spend,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, a, _ := cb.Lookup(ctx, k.Digest); a.Balance != 100 {
		t.Fatalf("Lookup balance = %d, want 100", a.Balance)
	}
	if r, err := cb.Spend(ctx, "acct", 30); err != nil || r.Balance != 70 {
		t.Fatalf("Spend = %+v, %v; want balance 70", r, err)
	}
	features[0] = "changed"
	_, a, _ := cb.Lookup(ctx, k.Digest)
	if a.Balance != 100 {
		t.Errorf("cached Lookup balance = %d, want the stale 100", a.Balance)
	}
	if a.Features[0] != "reports" {
		t.Errorf("cached Features = %q: the cache shares the application's slice", a.Features)
	}
}

type ctxKey struct{}

// TestCallbackPassesContextAndChecksArguments checks that the request's
// context reaches every callback, that bad arguments are refused before
// any callback runs, and that spends are never cached.
func TestCallbackPassesContextAndChecksArguments(t *testing.T) {
	var calls atomic.Int32
	check := func(ctx context.Context) {
		calls.Add(1)
		if ctx.Value(ctxKey{}) != "request" {
			t.Errorf("callback's context lacks the request's value")
		}
		if _, ok := ctx.Deadline(); !ok {
			t.Errorf("callback's context lacks the request's deadline")
		}
	}
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(ctx context.Context, _ store.Digest) (store.Key, store.Account, error) {
			check(ctx)
			return store.Key{}, store.Account{ID: "acct"}, nil
		},
		Spend: func(ctx context.Context, _ string, cost int64) (store.SpendResult, error) {
			check(ctx)
			return store.SpendResult{OK: true, Balance: 100 - cost}, nil
		},
		Refund: func(ctx context.Context, _ string, amount int64) (int64, error) {
			check(ctx)
			return 100 + amount, nil
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(context.WithValue(ctx, ctxKey{}, "request"), time.Hour)
	defer cancel()
	refunder := cb.(store.Refunder)

	if _, _, err := cb.Lookup(rctx, store.DigestOf("k")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r, err := cb.Spend(rctx, "acct", 1); err != nil || r.Balance != 99 {
			t.Fatalf("Spend = %+v, %v", r, err)
		}
	}
	if b, err := refunder.Refund(rctx, "acct", 1); err != nil || b != 101 {
		t.Fatalf("Refund = %d, %v", b, err)
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("%d callback calls, want 4 (1 lookup, 2 spends, 1 refund)", n)
	}

	long := strings.Repeat("x", 256+1)
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"Spend negative", spendErr(cb.Spend(rctx, "acct", -1)), store.ErrInvalidAmount},
		{"Spend empty ID", spendErr(cb.Spend(rctx, "", 1)), store.ErrNotFound},
		{"Spend long ID", spendErr(cb.Spend(rctx, long, 1)), store.ErrNotFound},
		{"Refund zero", refundErr(refunder.Refund(rctx, "acct", 0)), store.ErrInvalidAmount},
		{"Refund negative", refundErr(refunder.Refund(rctx, "acct", -1)), store.ErrInvalidAmount},
		{"Refund empty ID", refundErr(refunder.Refund(rctx, "", 1)), store.ErrNotFound},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("callbacks ran for refused arguments: %d calls, want 4", n)
	}
}

func spendErr(_ store.SpendResult, err error) error { return err }
func refundErr(_ int64, err error) error            { return err }

// A flood of distinct unknown keys, each cached as not found for ten
// minutes, holds no more than the cache's size and the memory the
// documentation of Callback states for it: under 8 MiB at the default
// size.
func TestCallbackFloodOfUnknownKeys(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 200_000
	}
	clock := new(storetest.Clock)
	notFound := fmt.Errorf("no such key: %w", store.ErrNotFound)
	var calls atomic.Int64
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
			calls.Add(1)
			return store.Key{}, store.Account{}, notFound
		},
		Spend: noSpend,
	}, &store.CallbackOptions{TTL: 10 * time.Minute, NegativeTTL: 10 * time.Minute, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var d store.Digest
	for i := range n {
		binary.LittleEndian.PutUint64(d[:], uint64(i)+1)
		if _, _, err := cb.Lookup(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup of unknown key %d: %v", i, err)
		}
		if i%1000 == 0 {
			clock.Advance(time.Millisecond) // a flood of a million a second
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d unknown keys: %d callback calls, %.1f MiB held", n, calls.Load(), float64(held)/(1<<20))
	if held > 8<<20 {
		t.Errorf("a flood of %d unknown keys holds %.1f MiB, want under 8 MiB", n, float64(held)/(1<<20))
	}
	// The last key looked up is cached: asking again calls nothing.
	c := calls.Load()
	cb.Lookup(ctx, d)
	if calls.Load() != c {
		t.Errorf("the last unknown key looked up was not cached")
	}
	runtime.KeepAlive(cb)
}

// A key whose Prefix, as the application's database holds it, shows most
// of the key is returned with the Prefix cut to a display prefix.
func TestCallbackCutsLongPrefixes(t *testing.T) {
	raw := "sk_live_q8Vd_x3kA6oTn_Qw1eRt5yUi9oPa2sDf_gH7jK"
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
			return store.Key{Prefix: raw[:len(raw)-1]}, store.Account{ID: "acct"}, nil
		},
		Spend: noSpend,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // from the callback, then from the cache
		if k, _, err := cb.Lookup(ctx, store.DigestOf(raw)); err != nil || k.Prefix != "sk_live_q8Vd" {
			t.Errorf("Lookup = %+v, %v; want Prefix sk_live_q8Vd", k, err)
		}
	}
}
