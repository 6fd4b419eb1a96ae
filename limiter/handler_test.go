package limiter

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
})

// serve runs one request through h and returns the recorded response.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// checkHeaders checks the RateLimit headers of a response against the
// draft-10 grammar and returns the r and t parameters.
func checkHeaders(t *testing.T, h http.Header, name string, q, w int64) (r, tt int64) {
	t.Helper()
	if n := len(h.Values("RateLimit-Policy")); n != 1 {
		t.Fatalf("%d RateLimit-Policy fields, want 1", n)
	}
	pol, err := parseSFList(h.Get("RateLimit-Policy"))
	if err != nil {
		t.Fatalf("RateLimit-Policy: %v", err)
	}
	if len(pol) != 1 || pol[0].value != name {
		t.Fatalf("RateLimit-Policy %q: want one policy named %q", h.Get("RateLimit-Policy"), name)
	}
	if v, _ := pol[0].param("q"); v != q {
		t.Fatalf("RateLimit-Policy %q: q = %v, want %d", h.Get("RateLimit-Policy"), v, q)
	}
	if v, _ := pol[0].param("w"); v != w {
		t.Fatalf("RateLimit-Policy %q: w = %v, want %d", h.Get("RateLimit-Policy"), v, w)
	}

	if n := len(h.Values("RateLimit")); n != 1 {
		t.Fatalf("%d RateLimit fields, want 1", n)
	}
	lim, err := parseSFList(h.Get("RateLimit"))
	if err != nil {
		t.Fatalf("RateLimit: %v", err)
	}
	if len(lim) != 1 || lim[0].value != name {
		t.Fatalf("RateLimit %q: want one item named %q", h.Get("RateLimit"), name)
	}
	rv, ok := lim[0].param("r")
	tv, ok2 := lim[0].param("t")
	r, _ = rv.(int64)
	tt, _ = tv.(int64)
	if !ok || !ok2 || r < 0 || tt < 0 {
		t.Fatalf("RateLimit %q: want non-negative integers r and t", h.Get("RateLimit"))
	}
	if len(lim[0].params) != 2 {
		t.Fatalf("RateLimit %q: unexpected parameters", h.Get("RateLimit"))
	}
	return r, tt
}

// problem decodes a problem+json body.
func problem(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return m
}

func TestHandler(t *testing.T) {
	clk := newClock()
	l := mustNew(t, 0.5, 3, &Options{Clock: clk.Now}) // a token every 2 s; w = 6
	h := l.Handler(okHandler)
	req := httptest.NewRequest("GET", "/v1/things", nil)
	req.RemoteAddr = "192.0.2.10:4711"

	for i, want := range []int64{2, 1, 0} {
		w := serve(h, req)
		if w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
		r, tt := checkHeaders(t, w.Header(), "default", 3, 6)
		if r != want || tt != 2 {
			t.Fatalf("request %d: r=%d t=%d, want r=%d t=2", i, r, tt, want)
		}
		if w.Header().Get("Retry-After") != "" || w.Header().Get("X-Ratelimit-Limit") != "" {
			t.Fatalf("request %d: unexpected headers %v", i, w.Header())
		}
	}

	clk.Advance(500 * time.Millisecond)
	w := serve(h, req)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("denial: status %d", w.Code)
	}
	r, tt := checkHeaders(t, w.Header(), "default", 3, 6)
	ra, err := strconv.ParseInt(w.Header().Get("Retry-After"), 10, 64)
	if err != nil || ra < 1 || ra < tt || r != 0 || tt != 2 || ra != 2 {
		t.Fatalf("denial: Retry-After %q, r=%d t=%d; want Retry-After 2 ≥ t = 2", w.Header().Get("Retry-After"), r, tt)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("denial: Cache-Control %q", cc)
	}
	p := problem(t, w)
	if p["type"] != quotaExceeded || p["status"] != 429.0 || p["code"] != "rate_limited" || p["title"] != "Quota Exceeded" {
		t.Fatalf("denial body %v", p)
	}
	if vp, _ := p["violated-policies"].([]any); len(vp) != 1 || vp[0] != "default" {
		t.Fatalf("violated-policies = %v", p["violated-policies"])
	}
	if p["retry_after"] != 2.0 || !strings.Contains(p["detail"].(string), "Retry after 2 seconds") {
		t.Fatalf("denial body %v", p)
	}

	// Waiting as told lets the request through.
	clk.Advance(time.Duration(ra) * time.Second)
	if w := serve(h, req); w.Code != http.StatusOK {
		t.Fatalf("after Retry-After: status %d", w.Code)
	}
}

// Retry-After is never earlier than t, whatever the rate, burst, cost and
// timing.
func TestRetryAfterConsistent(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		clk := newClock()
		burst := 1 + rng.Intn(20)
		rate := []float64{0.01, 0.3, 1, 2.5, 7, 100, 5000}[rng.Intn(7)]
		cost := 1 + rng.Intn(burst)
		l := mustNew(t, rate, burst, &Options{Clock: clk.Now, By: KeyFunc(oneKey), Cost: cost})
		h := l.Handler(okHandler)
		req := httptest.NewRequest("GET", "/", nil)
		for j := 0; j < 30; j++ {
			w := serve(h, req)
			_, tt := checkHeaders(t, w.Header(), "default", int64(burst), window(store.RateLimit{Rate: rate, Burst: burst}))
			if w.Code == http.StatusTooManyRequests {
				ra, err := strconv.ParseInt(w.Header().Get("Retry-After"), 10, 64)
				if err != nil || ra < 1 || ra < tt {
					t.Fatalf("rate %v burst %d cost %d: Retry-After %q with t=%d", rate, burst, cost, w.Header().Get("Retry-After"), tt)
				}
				// And it is enough: after Retry-After seconds the request passes.
				if j%3 == 0 {
					clk.Advance(time.Duration(ra) * time.Second)
					if w := serve(h, req); w.Code != http.StatusOK {
						t.Fatalf("rate %v burst %d cost %d: refused %d after waiting Retry-After %d", rate, burst, cost, w.Code, ra)
					}
				}
			}
			clk.Advance(time.Duration(rng.Int63n(int64(time.Second))))
		}
	}
}

// Names are quoted as Structured Field strings; legacy headers are sent
// when asked for.
func TestHeaderSyntax(t *testing.T) {
	for _, name := range []string{"default", "burst", `we"ird\name`, "with space", "a,b;c=d"} {
		clk := newClock()
		l := mustNew(t, 10, 20, &Options{Name: name, Clock: clk.Now, By: KeyFunc(oneKey), LegacyHeaders: true})
		w := serve(l.Handler(okHandler), httptest.NewRequest("GET", "/", nil))
		r, tt := checkHeaders(t, w.Header(), name, 20, 2)
		if r != 19 || tt != 1 {
			t.Fatalf("%q: r=%d t=%d", name, r, tt)
		}
		for k, want := range map[string]string{"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "19", "X-RateLimit-Reset": "1"} {
			if got := w.Header().Values(k); len(got) != 1 || got[0] != want {
				t.Fatalf("%q: %s = %q, want %q", name, k, got, want)
			}
		}
	}
	// A full bucket: t=0. Windows round up and are at least 1.
	for _, tc := range []struct {
		rate  float64
		burst int
		w     int64
	}{{100, 10, 1}, {10, 10, 1}, {3, 10, 4}, {0.1, 1, 10}, {0.001, 5, 5000}} {
		clk := newClock()
		l := mustNew(t, tc.rate, tc.burst, &Options{Clock: clk.Now, By: KeyFunc(oneKey), Cost: 1, CostFunc: func(*http.Request) (int, error) { return 0, nil }})
		w := serve(l.Handler(okHandler), httptest.NewRequest("GET", "/", nil))
		if r, tt := checkHeaders(t, w.Header(), "default", int64(tc.burst), tc.w); r != int64(tc.burst) || tt != 0 {
			t.Fatalf("%+v: r=%d t=%d for a full bucket", tc, r, tt)
		}
	}
}

func TestHandlerDenials(t *testing.T) {
	failing := newFakeBuckets(time.Now)
	failing.fail.Store(true)
	for _, tc := range []struct {
		name       string
		opts       Options
		burst      int
		status     int
		code       string
		retryAfter string
		detail     string
		headers    bool // RateLimit headers expected
	}{
		{
			name: "402 for upgrade", opts: Options{DenyStatus: 402}, burst: 1,
			status: 402, code: "rate_limited", retryAfter: "1", detail: "exceeded", headers: true,
		},
		{
			name: "cost above burst", opts: Options{Name: "burst", CostFunc: func(*http.Request) (int, error) { return 5, nil }}, burst: 4,
			status: 429, code: "rate_limited", detail: "can never succeed", headers: true,
		},
		{
			name: "cost error", opts: Options{CostFunc: func(*http.Request) (int, error) { return 0, errors.New("body too large to price") }}, burst: 4,
			status: 400, code: "invalid_request", detail: "body too large to price",
		},
		{
			name: "store down", opts: Options{Store: failing, RetryAfterUnavailable: 3 * time.Second}, burst: 4,
			status: 503, code: "store_unavailable", retryAfter: "3", detail: "right now",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			o := tc.opts
			o.Clock, o.By = clk.Now, KeyFunc(oneKey)
			var events []paywall.Decision
			o.OnDecision = func(_ context.Context, d paywall.Decision) { events = append(events, d) }
			l := mustNew(t, 1, tc.burst, &o)
			h := l.Handler(okHandler)
			req := httptest.NewRequest("GET", "/x", nil)
			var w *httptest.ResponseRecorder
			for i := 0; i <= tc.burst; i++ {
				if w = serve(h, req); w.Code != http.StatusOK {
					break
				}
			}
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if got := w.Header().Get("RateLimit") != ""; got != tc.headers {
				t.Fatalf("RateLimit header present = %v, want %v", got, tc.headers)
			}
			p := problem(t, w)
			if p["code"] != tc.code || p["status"] != float64(tc.status) || !strings.Contains(p["detail"].(string), tc.detail) {
				t.Fatalf("body %v", p)
			}
			if strings.Contains(w.Body.String(), "10.0.0.7") {
				t.Fatalf("the store's error leaked into the body: %s", w.Body)
			}
			last := events[len(events)-1]
			wantPolicy := tc.opts.Name
			if wantPolicy == "" {
				wantPolicy = "default"
			}
			if last.Step != "limit" || last.Allowed || string(last.Code) != tc.code || last.Status != tc.status || last.Route != "" ||
				!last.Time.Equal(clk.Now()) || last.Policy != wantPolicy {
				t.Fatalf("decision %+v", last)
			}
		})
	}
}

// A replacement DenyFunc receives the whole denial, headers included.
func TestCustomDeny(t *testing.T) {
	clk := newClock()
	var got *paywall.Denial
	l := mustNew(t, 1, 1, &Options{Clock: clk.Now, By: KeyFunc(oneKey), Name: "tight", Deny: func(w http.ResponseWriter, r *http.Request, d *paywall.Denial) {
		got = d
		w.WriteHeader(http.StatusTeapot)
	}})
	h := l.Handler(okHandler)
	serve(h, httptest.NewRequest("GET", "/", nil))
	w := serve(h, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusTeapot || got == nil {
		t.Fatalf("custom deny not used: %d", w.Code)
	}
	if got.Code != paywall.CodeRateLimited || got.Status != 429 || got.Type != quotaExceeded || got.RetryAfter != time.Second || got.Extensions["tokens"] != 1 {
		t.Fatalf("denial %+v", got)
	}
	if vp, _ := got.Extensions["violated-policies"].([]string); len(vp) != 1 || vp[0] != "tight" {
		t.Fatalf("violated-policies %v", got.Extensions)
	}
	if got.Header.Get("RateLimit") != `"tight";r=0;t=1` || got.Header.Get("RateLimit-Policy") != `"tight";q=1;w=1` {
		t.Fatalf("denial headers %v", got.Header)
	}
	if w.Header().Get("RateLimit") != "" {
		t.Fatal("headers written to the response behind the DenyFunc's back")
	}
}

func TestHandlerPanicsOnNil(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	mustNew(t, 1, 1, nil).Handler(nil)
}

// paywalled returns a Paywall on a memory store holding the accounts (each
// with one key, "sk_test_" + its ID), and the store.
func paywalled(t *testing.T, clk *clock, accounts ...store.Account) (*paywall.Paywall, *store.Memory) {
	t.Helper()
	ctx := context.Background()
	m := store.NewMemory(&store.MemoryOptions{Clock: clk.Now})
	for _, a := range accounts {
		if err := m.PutAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := m.PutKey(ctx, store.NewKey("sk_test_"+a.ID, a.ID)); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := paywall.New(m, &paywall.Options{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return pw, m
}

func keyRequest(key string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

// An account's own rate beats its plan's, which beats the limiter's.
func TestPrecedence(t *testing.T) {
	clk := newClock()
	pw, _ := paywalled(t, clk,
		store.Account{ID: "own", Plan: "pro", RateLimit: &store.RateLimit{Rate: 1, Burst: 7}},
		store.Account{ID: "pro", Plan: "pro"},
		store.Account{ID: "free", Plan: "free"},
	)
	var events []paywall.Decision
	l := mustNew(t, 1, 3, &Options{
		By:         ByAccount(),
		Clock:      clk.Now,
		Plans:      map[string]store.RateLimit{"pro": {Rate: 1, Burst: 5}},
		OnDecision: func(_ context.Context, d paywall.Decision) { events = append(events, d) },
	})
	h := pw.Authenticate(l.Handler(okHandler))
	for _, tc := range []struct {
		account string
		burst   int
	}{{"own", 7}, {"pro", 5}, {"free", 3}} {
		req := keyRequest("sk_test_" + tc.account)
		allowed := 0
		for i := 0; i < 10; i++ {
			w := serve(h, req)
			if w.Code == http.StatusOK {
				allowed++
			}
			checkHeaders(t, w.Header(), "default", int64(tc.burst), int64(tc.burst))
		}
		if allowed != tc.burst {
			t.Errorf("account %q: %d allowed, want its burst %d", tc.account, allowed, tc.burst)
		}
	}
	for _, e := range events {
		if e.AccountID == "" || e.KeyPrefix != "sk_test_" || e.Step != "limit" {
			t.Fatalf("decision %+v", e)
		}
	}

	// Without Authenticate in front, a ByAccount limiter is misconfigured.
	direct := l.Handler(okHandler)
	for i, want := range []int{500, 500} {
		if w := serve(direct, httptest.NewRequest("GET", "/", nil)); w.Code != want {
			t.Fatalf("unauthenticated request %d: %d, want %d", i, w.Code, want)
		}
	}
}

// Changing an account's rate takes effect on its next request, without
// handing out tokens.
func TestRateChange(t *testing.T) {
	clk := newClock()
	ctx := context.Background()
	acct := store.Account{ID: "a", Plan: "free"}
	pw, m := paywalled(t, clk, acct)
	l := mustNew(t, 1, 2, &Options{By: ByAccount(), Clock: clk.Now})
	h := pw.Authenticate(l.Handler(okHandler))
	req := keyRequest("sk_test_a")
	count := func() (n int) {
		for serve(h, req).Code == http.StatusOK {
			n++
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("default: %d allowed", n)
	}
	acct.RateLimit = &store.RateLimit{Rate: 10, Burst: 50}
	if err := m.PutAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("a raised burst handed out %d tokens at once", n)
	}
	clk.Advance(time.Second)
	if n := count(); n != 10 {
		t.Fatalf("after 1s at 10/s: %d allowed", n)
	}
	clk.Advance(time.Minute)
	w := serve(h, req)
	if r, _ := checkHeaders(t, w.Header(), "default", 50, 5); r != 49 {
		t.Fatalf("r = %d after refilling to the new burst", r)
	}
}

// Composed after the whole paywall, the limiter refuses before Charge
// spends anything.
func TestStack(t *testing.T) {
	clk := newClock()
	pw, m := paywalled(t, clk, store.Account{ID: "a", Plan: "pro", Balance: 100})
	l := mustNew(t, 1, 2, &Options{By: ByAccount(), Clock: clk.Now})
	h := pw.Authenticate(pw.Require(paywall.Requirement{Plans: []string{"pro"}})(l.Handler(pw.Charge(10)(okHandler))))
	req := keyRequest("sk_test_a")
	for i, want := range []int{200, 200, 429, 429} {
		if w := serve(h, req); w.Code != want {
			t.Fatalf("request %d: %d, want %d", i, w.Code, want)
		}
	}
	a, err := m.Account(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != 80 {
		t.Fatalf("balance %d, want 80: refused requests were charged", a.Balance)
	}
}

// A client behind an untrusted peer cannot pick its bucket with
// X-Forwarded-For; behind a trusted proxy, its own address is used.
func TestHandlerForwardedFor(t *testing.T) {
	clk := newClock()
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    []int
	}{
		{"untrusted peer: header ignored, one bucket", nil, []int{200, 429, 429}},
		{"trusted proxy: one bucket per client", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, []int{200, 200, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, 1, 1, &Options{Clock: clk.Now, By: ByClientAddr(tc.trusted...)})
			h := l.Handler(okHandler)
			for i, want := range tc.want {
				req := httptest.NewRequest("GET", "/", nil)
				req.RemoteAddr = "10.0.0.1:50000"
				req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
				if w := serve(h, req); w.Code != want {
					t.Fatalf("request %d: %d, want %d", i, w.Code, want)
				}
			}
		})
	}
}

func TestHandlerConcurrent(t *testing.T) {
	clk := newClock()
	l := mustNew(t, 1, 100, &Options{Clock: clk.Now, By: KeyFunc(headerKey)})
	h := l.Handler(okHandler)
	var (
		mu      sync.Mutex
		allowed = map[string]int{}
	)
	concurrently(8, func(int) {
		for i := 0; i < 200; i++ {
			key := "k" + strconv.Itoa(i%4)
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("X-Api-Key", key)
			if serve(h, req).Code == http.StatusOK {
				mu.Lock()
				allowed[key]++
				mu.Unlock()
			}
		}
	})
	for k, n := range allowed {
		if n != 100 {
			t.Errorf("key %s: %d allowed, want exactly the burst, 100", k, n)
		}
	}
}

// A store failure let through by FailOpen is an allowed decision with code
// store_unavailable, limited by the local bucket.
func TestFailOpenDecision(t *testing.T) {
	clk := newClock()
	fb := newFakeBuckets(clk.Now)
	fb.fail.Store(true)
	var events []paywall.Decision
	l := mustNew(t, 1, 1, &Options{By: KeyFunc(oneKey), Clock: clk.Now, Store: fb, FailOpen: true,
		OnDecision: func(_ context.Context, d paywall.Decision) { events = append(events, d) }})
	h := l.Handler(okHandler)
	if w := serve(h, httptest.NewRequest("GET", "/", nil)); w.Code != 200 || w.Header().Get("RateLimit") != `"default";r=0;t=1` {
		t.Fatalf("fail-open: %d %v", w.Code, w.Header())
	}
	if w := serve(h, httptest.NewRequest("GET", "/", nil)); w.Code != 429 {
		t.Fatalf("fail-open, local bucket empty: %d", w.Code)
	}
	if e := events[0]; !e.Allowed || e.Code != paywall.CodeStoreUnavailable || e.Status != 0 {
		t.Fatalf("decision %+v", e)
	}
}

// An allowed request costs no allocation when its bucket was full (a client
// under its limit), and one (the RateLimit value) when it was not, or two
// with a policy name too long to share it.
func TestAllocs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rate     float64
		want     float64
		wantFull bool
	}{
		{"default", 1e9, 0, true},
		{"default", 1e-3, 1, false},
		{strings.Repeat("n", 64), 1e-3, 2, false},
	} {
		clk := newClock()
		l := mustNew(t, tc.rate, 1<<30, &Options{Name: tc.name, By: KeyFunc(headerKey), Clock: clk.Now})
		h := l.Handler(okHandler)
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Api-Key", "k")
		w := &noopWriter{h: make(http.Header)}
		h.ServeHTTP(w, req)
		clk.Advance(time.Second) // refills the 1e9/s bucket, not the other
		h.ServeHTTP(w, req)
		r, _ := checkHeaders(t, w.h, tc.name, 1<<30, window(store.RateLimit{Rate: tc.rate, Burst: 1 << 30}))
		if full := r == 1<<30-1; full != tc.wantFull {
			t.Fatalf("%+v: r = %d", tc, r)
		}
		if n := testing.AllocsPerRun(1000, func() { clk.Advance(time.Microsecond); h.ServeHTTP(w, req) }); n > tc.want {
			t.Errorf("%+v: %v allocations per allowed request, want %v", tc, n, tc.want)
		}
	}
}

// The precomputed value for a full bucket is the one the general path
// writes.
func TestRateLimitValue(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 500; i++ {
		clk := newClock()
		burst := 1 + rng.Intn(1000)
		rate := []float64{1e-3, 0.3, 1, 2.5, 7, 100, 5000, 1e9}[rng.Intn(8)]
		cost := 1 + rng.Intn(burst)
		l := mustNew(t, rate, burst, &Options{Clock: clk.Now, By: KeyFunc(oneKey), Cost: cost, Name: "p"})
		for j := 0; j < 3; j++ {
			res := take(t, l, httptest.NewRequest("GET", "/", nil))
			h := http.Header{}
			l.setHeaders(h, &res)
			want := `"p";r=` + strconv.Itoa(res.Remaining) + ";t=" + strconv.FormatInt(seconds(res.Reset), 10)
			if got := h.Get("RateLimit"); got != want {
				t.Fatalf("rate %v burst %d cost %d, take %d: RateLimit %q, want %q", rate, burst, cost, j, got, want)
			}
			clk.Advance(time.Duration(rng.Int63n(int64(time.Second))))
		}
	}
}
