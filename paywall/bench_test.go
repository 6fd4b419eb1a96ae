package paywall_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// nopWriter is a ResponseWriter that discards everything, reusing one header
// map.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// reset empties the header map without reallocating it.
func (w *nopWriter) reset() { clear(w.h) }

// chargedStack returns Authenticate → Require(feature) → Charge(1) on the
// memory store, a Paywall with opts, in front of a handler that checks the
// request was charged (or let through as a retry), and a function that
// makes a request it allows.
func chargedStack(tb testing.TB, opts *paywall.Options) (http.Handler, func() *http.Request) {
	tb.Helper()
	return chargedStackOn(tb, opts, func(s store.Store) store.Store { return s })
}

// chargedStackOn is chargedStack on wrap(the memory store).
func chargedStackOn(tb testing.TB, opts *paywall.Options, wrap func(store.Store) store.Store) (http.Handler, func() *http.Request) {
	tb.Helper()
	const key = "sk_live_benchmark0123456789abcdefghijklmn" // 40 bytes, like a generated key
	mem := store.NewMemory(nil)
	ctx := context.Background()
	if err := mem.PutAccount(ctx, store.Account{
		ID: "acct_bench", Plan: "pro", Status: store.StatusActive, Features: []string{"reports"}, Balance: 1 << 62,
	}); err != nil {
		tb.Fatal(err)
	}
	if err := mem.PutKey(ctx, store.NewKey(key, "acct_bench")); err != nil {
		tb.Fatal(err)
	}
	p, err := paywall.New(wrap(mem), opts)
	if err != nil {
		tb.Fatal(err)
	}
	final := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := paywall.CallerFromContext(r.Context()); !ok || c.Charged != 1 && !c.Replay {
			panic("not charged")
		}
		w.WriteHeader(http.StatusOK)
	})
	h := p.Authenticate(p.Require(paywall.Requirement{Features: []string{"reports"}})(p.Charge(1)(final)))
	return h, func() *http.Request {
		r := httptest.NewRequest("POST", "/generate", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		return r
	}
}

// BenchmarkStack measures the allowed path through Authenticate,
// Require(feature) and Charge(1) on the memory store, with a prebuilt
// request and a no-op ResponseWriter.
func BenchmarkStack(b *testing.B) {
	h, newRequest := chargedStack(b, nil)

	b.Run("serial", func(b *testing.B) {
		r := newRequest()
		w := &nopWriter{h: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h.ServeHTTP(w, r)
			w.reset()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := newRequest()
			w := &nopWriter{h: http.Header{}}
			for pb.Next() {
				h.ServeHTTP(w, r)
				w.reset()
			}
		})
	})
}

// BenchmarkStackIdempotency is BenchmarkStack with IdempotencyWindow set:
// without an Idempotency-Key header, which must cost nothing more; and with
// one that was charged before, so that every request is a retry let through
// uncharged.
func BenchmarkStackIdempotency(b *testing.B) {
	h, newRequest := chargedStack(b, &paywall.Options{IdempotencyWindow: time.Hour})
	for _, bc := range []struct{ name, idempotencyKey string }{
		{"no key", ""},
		{"replay", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := newRequest()
			if bc.idempotencyKey != "" {
				r.Header.Set("Idempotency-Key", bc.idempotencyKey)
			}
			w := &nopWriter{h: http.Header{}}
			h.ServeHTTP(w, r) // charged once
			w.reset()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.ServeHTTP(w, r)
				w.reset()
			}
		})
	}
}

// TestAuthenticateAllocs checks that the allowed path through Authenticate,
// Require and Charge makes two allocations — the request's state with its
// copy of the request, and the context that carries the state — and how
// large they are (the state holds a copy of the account, billing state
// included).
func TestAuthenticateAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocations")
	}
	h, newRequest := chargedStackOn(t, nil, func(s store.Store) store.Store { return s })
	r := newRequest()
	w := &nopWriter{h: http.Header{}}
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n > 2 {
		t.Errorf("%v allocations per request, want at most 2", n)
	}
	// 768 + 48: the state (the Caller's Key and Account as values) and the
	// request's copy, with the allocation header of objects over 512 bytes,
	// in the 768-byte class; the context.
	if b := bytesPerRun(1000, func() { h.ServeHTTP(w, r) }); b > 816 {
		t.Errorf("%d bytes allocated per request, want at most 816", b)
	}
}

// bytesPerRun returns the bytes allocated per call of f, the least of
// three measurements of runs calls (anything else the process allocates
// meanwhile can only add).
func bytesPerRun(runs int, f func()) uint64 {
	var least uint64 = math.MaxUint64
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			f()
		}
		runtime.ReadMemStats(&after)
		least = min(least, (after.TotalAlloc-before.TotalAlloc)/uint64(runs))
	}
	return least
}

// meteredStack is chargedStack with a metered charge: 10 credits held, 3
// settled, as the handler checks.
func meteredStack(tb testing.TB) (http.Handler, func() *http.Request, *store.Memory) {
	tb.Helper()
	const key = "sk_live_benchmark0123456789abcdefghijklmn"
	mem := store.NewMemory(nil)
	ctx := context.Background()
	if err := mem.PutAccount(ctx, store.Account{ID: "acct_bench", Features: []string{"reports"}, Balance: 1 << 62}); err != nil {
		tb.Fatal(err)
	}
	if err := mem.PutKey(ctx, store.NewKey(key, "acct_bench")); err != nil {
		tb.Fatal(err)
	}
	p, err := paywall.New(mem, nil)
	if err != nil {
		tb.Fatal(err)
	}
	final := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := paywall.MeterFrom(r.Context())
		if c, ok := paywall.CallerFromContext(r.Context()); !ok || c.Charged != 10 || m == nil {
			panic("not held")
		}
		m.Set(3)
		w.WriteHeader(http.StatusOK)
	})
	charge := p.ChargeWith(paywall.ChargeOptions{Cost: 10, Metered: true})
	h := p.Authenticate(p.Require(paywall.Requirement{Features: []string{"reports"}})(charge(final)))
	return h, func() *http.Request {
		r := httptest.NewRequest("POST", "/generate", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		return r
	}, mem
}

// BenchmarkStackMetered compares a metered charge (hold, then settle) with
// a plain one, serially, in one run.
func BenchmarkStackMetered(b *testing.B) {
	plain, newPlain := chargedStack(b, nil)
	metered, newMetered, mem := meteredStack(b)
	for _, bc := range []struct {
		name string
		h    http.Handler
		r    *http.Request
	}{{"plain", plain, newPlain()}, {"metered", metered, newMetered()}} {
		b.Run(bc.name, func(b *testing.B) {
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, bc.r)
				w.reset()
			}
		})
	}
	if a, _ := mem.Account(context.Background(), "acct_bench"); (1<<62-a.Balance)%3 != 0 {
		b.Fatalf("metered requests charged %d in all, not 3 each", 1<<62-a.Balance)
	}
}

// TestMeteredAllocs checks that a metered request allocates no more than a
// plain one: the state and its context.
func TestMeteredAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocations")
	}
	h, newRequest, _ := meteredStack(t)
	r := newRequest()
	w := &nopWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // the account's map of holds
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n > 2 {
		t.Errorf("%v allocations per metered request, want at most 2", n)
	}
}
