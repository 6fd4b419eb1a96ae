package limiter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// noopWriter is a ResponseWriter that keeps headers, discards the body
// and counts the requests served (status 200, which okHandler writes) and
// denied (any other status).
type noopWriter struct {
	h      http.Header
	served int
	denied int
}

func (w *noopWriter) Header() http.Header         { return w.h }
func (w *noopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *noopWriter) WriteHeader(code int) {
	if code == http.StatusOK {
		w.served++
	} else {
		w.denied++
	}
}

// serve sends r to h with w's headers cleared first, as a new response's
// are.
func (w *noopWriter) serve(h http.Handler, r *http.Request) {
	clear(w.h)
	h.ServeHTTP(w, r)
}

// check fails b unless all n requests were served and the last response
// carried a RateLimit header.
func (w *noopWriter) check(b *testing.B, n int) {
	b.Helper()
	if w.served != n || w.denied > 0 {
		b.Fatalf("of %d requests, %d served and %d denied", n, w.served, w.denied)
	}
	if len(w.h[HeaderRateLimit]) != 1 {
		b.Fatalf("no RateLimit header: %v", w.h)
	}
}

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
		h := mustNew(b, 1e9, 1e9, &Options{By: KeyFunc(headerKey)}).Handler(okHandler)
		warm(b, h, reqs)
		b.Run("keys="+strconv.Itoa(keys)+"/serial", func(b *testing.B) {
			w := &noopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w.serve(h, reqs[i%keys])
			}
			w.check(b, b.N)
		})
		// A bucket that drains (a token every 1000 s, from a huge burst) is
		// never full, so its RateLimit value is built for every response.
		drain := mustNew(b, 1e-3, 1<<40, &Options{By: KeyFunc(headerKey)}).Handler(okHandler)
		warm(b, drain, reqs)
		b.Run("keys="+strconv.Itoa(keys)+"/serial-draining", func(b *testing.B) {
			w := &noopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w.serve(drain, reqs[i%keys])
			}
			w.check(b, b.N)
		})
		b.Run("keys="+strconv.Itoa(keys)+"/parallel", func(b *testing.B) {
			var next, served, denied atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &noopWriter{h: make(http.Header)}
				i := int(next.Add(7919))
				for pb.Next() {
					i++
					w.serve(h, reqs[i%keys])
				}
				served.Add(int64(w.served))
				denied.Add(int64(w.denied))
			})
			if served.Load() != int64(b.N) || denied.Load() > 0 {
				b.Fatalf("of %d requests, %d served and %d denied", b.N, served.Load(), denied.Load())
			}
		})
	}
}

// warm sends every request to h once, so that the buckets exist before
// timing starts, and checks that all were served.
func warm(b *testing.B, h http.Handler, reqs []*http.Request) {
	b.Helper()
	w := &noopWriter{h: make(http.Header)}
	for _, r := range reqs {
		w.serve(h, r)
	}
	w.check(b, len(reqs))
}

// BenchmarkClients measures the limiter with the default MaxKeys as the
// number of active clients grows past it: 1,000 to 1,000,000 clients,
// each request from the next one in turn, so that beyond MaxKeys nearly
// every request finds its client's bucket evicted and makes room for it.
// Full: every bucket is full again by its client's next request; draining:
// none ever is.
func BenchmarkClients(b *testing.B) {
	for _, clients := range []int{1_000, 10_000, 100_000, 1_000_000} {
		keys := make([]string, clients)
		for i := range keys {
			keys[i] = "client-" + strconv.Itoa(1_000_000+i)
		}
		for _, c := range []struct {
			name  string
			rate  float64
			burst int
		}{{"full", 1e9, 1e9}, {"draining", 1e-3, 1 << 40}} {
			b.Run(fmt.Sprintf("clients=%d/%s", clients, c.name), func(b *testing.B) {
				h := mustNew(b, c.rate, c.burst, &Options{By: KeyFunc(headerKey)}).Handler(okHandler)
				r := httptest.NewRequest("GET", "/", nil)
				key := []string{""}
				r.Header["X-Api-Key"] = key
				w := &noopWriter{h: make(http.Header)}
				for _, k := range keys { // every client once, as in the steady state
					key[0] = k
					w.serve(h, r)
				}
				w.check(b, clients)
				w.served = 0
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					key[0] = keys[i%clients]
					w.serve(h, r)
				}
				w.check(b, b.N)
			})
		}
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
