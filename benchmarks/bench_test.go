package benchmarks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	tollbooth "github.com/didip/tollbooth/v8"
	tblimiter "github.com/didip/tollbooth/v8/limiter"
	"github.com/go-chi/httprate"
	"github.com/sethvargo/go-limiter/httplimit"
	"github.com/sethvargo/go-limiter/memorystore"
	ulule "github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// Every implementation is configured so generously that every request is
// allowed: the benchmarks measure the allowed path, which is what a limiter
// costs a healthy service.
const (
	perSecond = 1 << 30
	burst     = 1 << 30
)

// apiKey is the header requests are keyed by, in canonical form.
const apiKey = "X-Api-Key"

// headerKey is the key of a request: its X-Api-Key header.
func headerKey(r *http.Request) string {
	if v := r.Header[apiKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// impl builds a middleware for the given prebuilt requests (which carry
// keys that the middleware must know, for the go402 stack).
type impl struct {
	name string
	make func(tb testing.TB, reqs []*http.Request) http.Handler
}

var impls = []impl{
	{"go402-limiter", go402Limiter},
	{"go402-limiter-draining", go402LimiterDraining},
	{"go402-stack", go402Stack},
	{"go402-stack-unfused", go402StackUnfused},
	{"go402-stack-metered", go402StackMetered},
	{"sethvargo-go-limiter", sethvargoLimiter},
	{"ulule-limiter", ululeLimiter},
	{"go-chi-httprate", httprateLimiter},
	{"tollbooth", tollboothLimiter},
}

// final is the handler behind every middleware: it only answers 200, which
// the benchmarks' writer counts as a request served.
var final = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

// byAPIKey keys go402's limiter by the X-Api-Key header.
func byAPIKey(r *http.Request) (string, bool) {
	v := r.Header[apiKey]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// go402Limiter is the limiter alone. At this rate every bucket is full
// again by the next request, as a client under its limit finds it, so the
// RateLimit value is the precomputed one.
func go402Limiter(tb testing.TB, _ []*http.Request) http.Handler {
	l, err := limiter.New(perSecond, burst, &limiter.Options{By: limiter.KeyFunc(byAPIKey)})
	if err != nil {
		tb.Fatal(err)
	}
	return l.Handler(final)
}

// go402LimiterDraining is the limiter alone with buckets that never fill
// up again (a token every 1000 s, from a burst of 2^40): each response's
// RateLimit value is built afresh. Not one of the four scenarios; it
// shows the limiter's cost for a client that is using up its limit.
func go402LimiterDraining(tb testing.TB, _ []*http.Request) http.Handler {
	l, err := limiter.New(1e-3, 1<<40, &limiter.Options{By: limiter.KeyFunc(byAPIKey)})
	if err != nil {
		tb.Fatal(err)
	}
	return l.Handler(final)
}

// go402Stack is key authentication, entitlement, the limiter keyed by
// account, and a charge of one credit, on the memory store, wired as the
// README recommends: the limiter in front of the charge, with its buckets
// in the paywall's store, so that the tokens and the credit are taken in one
// store operation. Each request's key is a real key of its
// own account, with a huge balance.
func go402Stack(tb testing.TB, reqs []*http.Request) http.Handler {
	return stack(tb, reqs, final, true)
}

// go402StackUnfused is the same stack with the limiter's own in-process
// buckets and its Handler in front of a plain charge: two decisions, each
// under its own lock.
func go402StackUnfused(tb testing.TB, reqs []*http.Request) http.Handler {
	return stack(tb, reqs, final, false)
}

// stack is the whole go402 stack in front of h, fused or not.
func stack(tb testing.TB, reqs []*http.Request, h http.Handler, fused bool) http.Handler {
	m, pw := stackStore(tb, reqs)
	require := pw.Require(paywall.Requirement{Plans: []string{"pro"}})
	if fused {
		l := stackLimiter(tb, m)
		return pw.Authenticate(require(l.Handler(pw.Charge(1)(h))))
	}
	l := stackLimiter(tb, nil)
	return pw.Authenticate(require(l.Handler(pw.Charge(1)(h))))
}

// stackStore returns a memory store holding a "pro" account with a huge
// balance for each distinct key of reqs, and a Paywall on it.
func stackStore(tb testing.TB, reqs []*http.Request) (*store.Memory, *paywall.Paywall) {
	ctx := context.Background()
	m := store.NewMemory(nil)
	seen := map[string]bool{}
	for _, r := range reqs {
		raw := headerKey(r)
		if seen[raw] {
			continue
		}
		seen[raw] = true
		id := "acct_" + strconv.Itoa(len(seen))
		if err := m.PutAccount(ctx, store.Account{ID: id, Plan: "pro", Balance: 1 << 62}); err != nil {
			tb.Fatal(err)
		}
		if err := m.PutKey(ctx, store.NewKey(raw, id)); err != nil {
			tb.Fatal(err)
		}
	}
	pw, err := paywall.New(m, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return m, pw
}

// stackLimiter returns a limiter keyed by account at the "pro" plan's rate,
// keeping its buckets in m, or in process if m is nil.
func stackLimiter(tb testing.TB, m *store.Memory) *limiter.Limiter {
	o := &limiter.Options{
		By:    limiter.ByAccount(),
		Plans: map[string]store.RateLimit{"pro": {Rate: perSecond, Burst: burst}},
	}
	if m != nil {
		o.Store = m
	}
	l, err := limiter.New(1, 1, o)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

func sethvargoLimiter(tb testing.TB, _ []*http.Request) http.Handler {
	s, err := memorystore.New(&memorystore.Config{Tokens: burst, Interval: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	mw, err := httplimit.NewMiddleware(s, func(r *http.Request) (string, error) { return headerKey(r), nil })
	if err != nil {
		tb.Fatal(err)
	}
	return mw.Handle(final)
}

func ululeLimiter(tb testing.TB, _ []*http.Request) http.Handler {
	l := ulule.New(ulmemory.NewStore(), ulule.Rate{Period: time.Second, Limit: perSecond})
	return stdlib.NewMiddleware(l, stdlib.WithKeyGetter(headerKey)).Handler(final)
}

func httprateLimiter(tb testing.TB, _ []*http.Request) http.Handler {
	return httprate.LimitBy(perSecond, time.Second, func(r *http.Request) (string, error) { return headerKey(r), nil })(final)
}

func tollboothLimiter(tb testing.TB, _ []*http.Request) http.Handler {
	l := tollbooth.NewLimiter(perSecond, nil)
	l.SetBurst(burst)
	l.SetIPLookup(tblimiter.IPLookup{Name: "RemoteAddr"})
	l.SetIgnoreURL(true)
	l.SetHeader(apiKey, nil) // one bucket per X-Api-Key value
	return tollbooth.LimitHandler(l, final)
}

// noopWriter keeps headers (cleared before each request, so that peers that
// Add headers do not grow them) and discards bodies. It counts the
// responses of the handler behind the middleware (served) and the others
// (denied).
type noopWriter struct {
	h      http.Header
	served int
	denied int
}

func (w *noopWriter) Header() http.Header         { return w.h }
func (w *noopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *noopWriter) WriteHeader(code int) {
	if code == http.StatusOK {
		w.served++
	} else {
		w.denied++
	}
}

// checkServed fails b unless served of n requests reached the handler and
// none was denied.
func checkServed(b *testing.B, served, denied, n int) {
	b.Helper()
	if denied > 0 || served != n {
		b.Fatalf("of %d requests, %d served and %d denied; want all served", n, served, denied)
	}
}

// requests returns n prebuilt requests with distinct API keys.
func requests(n int) []*http.Request {
	reqs := make([]*http.Request, n)
	for i := range reqs {
		r := httptest.NewRequest("GET", "/v1/things", nil)
		r.RemoteAddr = "192.0.2.1:50000"
		r.Header[apiKey] = []string{"sk_live_bench" + strconv.Itoa(100000+i) + "abcdefghijklmnop"}
		reqs[i] = r
	}
	return reqs
}

// BenchmarkLimit runs four scenarios — one key or 10,000, serial or
// parallel — for each implementation.
func BenchmarkLimit(b *testing.B) { runScenarios(b, impls) }

// runScenarios runs the four scenarios for each of ims. Scenarios are the
// outer loop so that the implementations compared in one scenario run close
// together in time.
func runScenarios(b *testing.B, ims []impl) {
	for _, keys := range []int{1, 10_000} {
		reqs := requests(keys)
		for _, parallel := range []bool{false, true} {
			scenario := strconv.Itoa(keys) + "keys-serial"
			if parallel {
				scenario = strconv.Itoa(keys) + "keys-parallel"
			}
			for _, im := range ims {
				b.Run("scenario="+scenario+"/impl="+im.name, func(b *testing.B) {
					h := im.make(b, reqs)
					warm(b, h, reqs)
					b.ReportAllocs()
					b.ResetTimer()
					if parallel {
						runParallel(b, h, reqs)
					} else {
						runSerial(b, h, reqs)
					}
				})
			}
		}
	}
}

// warm sends every request once, so that buckets exist before timing, and
// checks that all are allowed.
func warm(b *testing.B, h http.Handler, reqs []*http.Request) {
	w := &noopWriter{h: make(http.Header)}
	for _, r := range reqs {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	checkServed(b, w.served, w.denied, len(reqs))
}

func runSerial(b *testing.B, h http.Handler, reqs []*http.Request) {
	w := &noopWriter{h: make(http.Header)}
	n := len(reqs)
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.ServeHTTP(w, reqs[i%n])
	}
	checkServed(b, w.served, w.denied, b.N)
}

func runParallel(b *testing.B, h http.Handler, reqs []*http.Request) {
	var start, served, denied atomic.Int64
	n := len(reqs)
	b.RunParallel(func(pb *testing.PB) {
		w := &noopWriter{h: make(http.Header)}
		i := int(start.Add(7919)) // goroutines start at different keys
		for pb.Next() {
			i++
			clear(w.h)
			h.ServeHTTP(w, reqs[i%n])
		}
		served.Add(int64(w.served))
		denied.Add(int64(w.denied))
	})
	checkServed(b, int(served.Load()), int(denied.Load()), b.N)
}
