package redisstore

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// nopWriter is a ResponseWriter that discards everything, reusing one header
// map.
type nopWriter struct {
	h      http.Header
	status int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkMiddleware measures the allowed path through the go402
// middlewares on the Redis store — a prebuilt request with a cached key,
// a no-op ResponseWriter — and reports the Redis round trips per request
// counted by a go-redis hook. Every request must be allowed (and charged,
// where there is a charge).
func BenchmarkMiddleware(b *testing.B) {
	c, hook := countedClient(b)
	s := newTestStore(b, c, nil)
	ctx := context.Background()
	const id = "bench-mw"
	if err := s.PutAccount(ctx, store.Account{ID: id, Plan: "pro", Balance: math.MaxInt64}); err != nil {
		b.Fatal(err)
	}
	raw, _, err := s.CreateKey(ctx, id, "sk_bench_")
	if err != nil {
		b.Fatal(err)
	}
	pw, err := paywall.New(s, nil)
	if err != nil {
		b.Fatal(err)
	}
	lim, err := limiter.New(1e9, math.MaxInt32, &limiter.Options{By: limiter.ByAccount(), Store: s})
	if err != nil {
		b.Fatal(err)
	}
	var refused atomic.Int64
	served := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	charged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := paywall.CallerFromContext(r.Context()); !ok || c.Charged != 1 {
			refused.Add(1)
		}
	})
	metered := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		charged.ServeHTTP(w, r) // the hold of 1
		paywall.MeterFrom(r.Context()).Set(1)
	})
	meter := pw.ChargeWith(paywall.ChargeOptions{Cost: 1, Metered: true})
	routes := []struct {
		name string
		h    http.Handler
	}{
		{"Authenticate", pw.Authenticate(served)},
		{"Authenticate+Charge", pw.Authenticate(pw.Charge(1)(charged))},
		{"Authenticate+Limiter", pw.Authenticate(lim.Handler(served))},
		{"Authenticate+Limiter+Charge", pw.Authenticate(lim.Handler(pw.Charge(1)(charged)))},
		{"Authenticate+Limiter+Charge/unfused", pw.Authenticate(lim.Handler(http.HandlerFunc(pw.Charge(1)(charged).ServeHTTP)))},
		{"Authenticate+Limiter+Charge/metered", pw.Authenticate(lim.Handler(meter(metered)))},
		{"Authenticate+Limiter+Charge/metered-unfused", pw.Authenticate(lim.Handler(http.HandlerFunc(meter(metered).ServeHTTP)))},
	}
	newRequest := func() *http.Request {
		r := httptest.NewRequest("POST", "/work", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		return r
	}
	serve := func(h http.Handler, w *nopWriter, r *http.Request) {
		w.status = 0
		h.ServeHTTP(w, r)
		if w.status != 0 && w.status != http.StatusOK {
			refused.Add(1)
		}
		clear(w.h)
	}
	for _, rt := range routes {
		// Fill the lookup cache, load the scripts.
		serve(rt.h, &nopWriter{h: http.Header{}}, newRequest())
		for _, parallel := range []bool{false, true} {
			name := rt.name
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				if parallel { // open the pool's connections before counting
					var wg sync.WaitGroup
					for i := 0; i < 4*runtime.GOMAXPROCS(0); i++ {
						wg.Add(1)
						go func() { defer wg.Done(); serve(rt.h, &nopWriter{h: http.Header{}}, newRequest()) }()
					}
					wg.Wait()
				}
				refused.Store(0)
				start := hook.n.Load()
				b.ReportAllocs()
				b.ResetTimer()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						w, r := &nopWriter{h: http.Header{}}, newRequest()
						for pb.Next() {
							serve(rt.h, w, r)
						}
					})
				} else {
					w, r := &nopWriter{h: http.Header{}}, newRequest()
					for i := 0; i < b.N; i++ {
						serve(rt.h, w, r)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(hook.n.Load()-start)/float64(b.N), "roundtrips/op")
				if n := refused.Load(); n > 0 {
					b.Fatalf("%d of %d requests refused or not charged", n, b.N)
				}
			})
		}
	}
}
