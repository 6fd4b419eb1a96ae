package limiter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// noopWriter is a ResponseWriter that keeps headers and discards the rest.
type noopWriter struct{ h http.Header }

func (w *noopWriter) Header() http.Header         { return w.h }
func (w *noopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *noopWriter) WriteHeader(int)             {}

// BenchmarkHandler measures the allowed path: one bucket or 10,000, serial
// or parallel, with the RateLimit headers on. The rate is high enough that
// every request passes and finds its bucket full again, as a client under
// its limit does; the draining variant shows the cost when it does not.
func BenchmarkHandler(b *testing.B) {
	for _, keys := range []int{1, 10_000} {
		reqs := make([]*http.Request, keys)
		for i := range reqs {
			reqs[i] = httptest.NewRequest("GET", "/", nil)
			reqs[i].Header["X-Api-Key"] = []string{"key-" + strconv.Itoa(i)}
		}
		l := mustNew(b, 1e9, 1e9, &Options{By: KeyFunc(headerKey)})
		h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		b.Run("keys="+strconv.Itoa(keys)+"/serial", func(b *testing.B) {
			w := &noopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				h.ServeHTTP(w, reqs[i%keys])
			}
		})
		// A bucket that drains (a token every 1000 s, from a huge burst) is
		// never full, so its RateLimit value is built for every response.
		drain := mustNew(b, 1e-3, 1<<40, &Options{By: KeyFunc(headerKey)}).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		b.Run("keys="+strconv.Itoa(keys)+"/serial-draining", func(b *testing.B) {
			w := &noopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				drain.ServeHTTP(w, reqs[i%keys])
			}
		})
		b.Run("keys="+strconv.Itoa(keys)+"/parallel", func(b *testing.B) {
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &noopWriter{h: make(http.Header)}
				i := int(next.Add(7919))
				for pb.Next() {
					i++
					h.ServeHTTP(w, reqs[i%keys])
				}
			})
		})
	}
}

// TestStackAllocs checks the allocation budget of the whole stack —
// Authenticate, Require, the limiter keyed by account and a charge, on the
// memory store — wired both ways: fused (the charge takes the tokens from
// the store's account bucket in the same operation as its debit) and
// unfused (the limiter's Handler with in-process buckets in front of the
// charge). Each allocates once per request: the request copy that carries
// the caller.
func TestStackAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocations")
	}
	const key = "sk_live_stackallocs0123456789abcdef"
	ctx := context.Background()
	mem := store.NewMemory(nil)
	if err := mem.PutAccount(ctx, store.Account{ID: "acct_stack", Plan: "pro", Balance: 1 << 62}); err != nil {
		t.Fatal(err)
	}
	if err := mem.PutKey(ctx, store.NewKey(key, "acct_stack")); err != nil {
		t.Fatal(err)
	}
	if err := mem.PutAccount(ctx, store.Account{ID: "acct_override", Plan: "pro", Balance: 1 << 62, RateLimit: &store.RateLimit{Rate: 2e9, Burst: 2e9}}); err != nil {
		t.Fatal(err)
	}
	const overrideKey = "sk_live_stackallocsoverride0123456"
	if err := mem.PutKey(ctx, store.NewKey(overrideKey, "acct_override")); err != nil {
		t.Fatal(err)
	}
	pw, err := paywall.New(mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	final := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := paywall.CallerFromContext(r.Context()); !ok || c.Charged != 1 || w.Header().Get(HeaderRateLimit) == "" {
			panic("not limited and charged")
		}
	})
	plans := map[string]store.RateLimit{"pro": {Rate: 1e9, Burst: 1e9}}
	fused := mustNew(t, 1, 1, &Options{By: ByAccount(), Plans: plans, Store: mem})
	local := mustNew(t, 1, 1, &Options{By: ByAccount(), Plans: plans})
	require := pw.Require(paywall.Requirement{Plans: []string{"pro"}})
	for name, h := range map[string]http.Handler{
		"fused":   pw.Authenticate(require(fused.Handler(pw.Charge(1)(final)))),
		"unfused": pw.Authenticate(require(local.Handler(http.HandlerFunc(pw.Charge(1)(final).ServeHTTP)))),
	} {
		for _, k := range []string{key, overrideKey} {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["X-Api-Key"] = []string{k}
			w := &noopWriter{h: make(http.Header)}
			if n := testing.AllocsPerRun(100, func() { clear(w.h); h.ServeHTTP(w, r) }); n > 2 {
				t.Errorf("%s, key %s: %v allocations per request, want at most 2", name, k, n)
			}
		}
	}
}
