package paywall_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// bucketStore is the fixture's memory store, which keeps token buckets and
// can take tokens and debit credits in one call, wrapped to count its calls
// and to be told to fail, as a Redis store can.
type bucketStore struct {
	*store.Memory

	mu    sync.Mutex
	calls map[string]int
	fail  bool
}

var (
	_ store.Buckets       = (*bucketStore)(nil)
	_ store.BucketSpender = (*bucketStore)(nil)
)

func newBucketStore(f *fixture) *bucketStore {
	return &bucketStore{Memory: f.mem, calls: map[string]int{}}
}

var errRedisDown = errors.New("dial tcp 10.0.0.9:6379: connection refused")

// count records a call and reports whether it fails. s.mu must be held.
func (s *bucketStore) count(op string) error {
	s.calls[op]++
	if s.fail {
		return errRedisDown
	}
	return nil
}

// Calls returns the number of calls of each operation so far.
func (s *bucketStore) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		m[k] = v
	}
	return m
}

func (s *bucketStore) setFail(fail bool) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

func (s *bucketStore) Spend(ctx context.Context, id string, cost int64) (store.SpendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.count("Spend"); err != nil {
		return store.SpendResult{}, err
	}
	return s.Memory.Spend(ctx, id, cost)
}

func (s *bucketStore) TakeTokens(ctx context.Context, b store.Bucket) (store.BucketResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.count("TakeTokens"); err != nil {
		return store.BucketResult{}, err
	}
	return s.Memory.TakeTokens(ctx, b)
}

func (s *bucketStore) SpendWithTokens(ctx context.Context, id string, cost int64, b store.Bucket) (store.SpendResult, store.BucketResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.count("SpendWithTokens"); err != nil {
		return store.SpendResult{}, store.BucketResult{}, err
	}
	return s.Memory.SpendWithTokens(ctx, id, cost, b)
}

// rateLimited is a fixture for charges with a rate limit: the memory
// store's accounts behind a bucketStore, and the decisions of the paywall
// and the limiters in one list.
type rateLimited struct {
	*fixture
	s      *bucketStore
	events decisions
}

func newRateLimited(t *testing.T) *rateLimited {
	f := newFixture(t)
	return &rateLimited{fixture: f, s: newBucketStore(f)}
}

func (rl *rateLimited) paywall(t *testing.T, opts *paywall.Options) *paywall.Paywall {
	t.Helper()
	var o paywall.Options
	if opts != nil {
		o = *opts
	}
	o.OnDecision = rl.events.record
	return newPaywall(t, rl.s, rl.clock, &o)
}

// limiter returns a limiter on the fixture's clock, reporting to its
// events; opts.Store is the bucketStore unless opts.Store is set or
// inProcess.
func (rl *rateLimited) limiter(t *testing.T, r float64, burst int, opts limiter.Options, inProcess bool) *limiter.Limiter {
	t.Helper()
	if opts.By == nil {
		opts.By = limiter.ByAccount()
	}
	if opts.Store == nil && !inProcess {
		opts.Store = rl.s
	}
	opts.Clock = rl.clock.Now
	opts.OnDecision = rl.events.record
	l, err := limiter.New(r, burst, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// step is one request of a sequence and what it must get.
type step struct {
	advance   time.Duration
	status    int
	rateLimit string // the RateLimit header, if any expected
	balance   int64  // of acct_pro afterwards
}

func (rl *rateLimited) run(t *testing.T, h http.Handler, steps []step) {
	t.Helper()
	for i, st := range steps {
		rl.clock.Advance(st.advance)
		w := serve(h, request("POST", "/generate", keyPro, ""))
		if w.Code != st.status {
			t.Fatalf("request %d: status %d, want %d: %s", i, w.Code, st.status, w.Body)
		}
		if got := w.Header().Get("RateLimit"); got != st.rateLimit {
			t.Errorf("request %d: RateLimit %q, want %q", i, got, st.rateLimit)
		}
		if got := rl.balance(t, "acct_pro"); got != st.balance {
			t.Errorf("request %d: balance %d, want %d", i, got, st.balance)
		}
	}
}

// TestChargeRateLimit checks the fused decision: one store call per
// request, a 402 that takes no tokens, a 429 that debits no credits, and
// the decisions of both steps.
func TestChargeRateLimit(t *testing.T) {
	rl := newRateLimited(t)
	p := rl.paywall(t, nil)
	lim := rl.limiter(t, 1, 2, limiter.Options{}, false)
	h := p.Authenticate(lim.Handler(p.ChargeWith(paywall.ChargeOptions{Cost: 400})(ok)))

	rl.run(t, h, []step{
		{status: 200, rateLimit: `"default";r=1;t=1`, balance: 600},
		{status: 200, rateLimit: `"default";r=0;t=1`, balance: 200},
		{advance: time.Second, status: 402, rateLimit: `"default";r=1;t=1`, balance: 200}, // the token is not taken
	})
	if _, err := rl.mem.TopUp(context.Background(), "acct_pro", 1000); err != nil {
		t.Fatal(err)
	}
	rl.run(t, h, []step{
		{status: 200, rateLimit: `"default";r=0;t=1`, balance: 800}, // the token the 402 left
		{status: 429, rateLimit: `"default";r=0;t=1`, balance: 800},
	})
	if got := rl.s.Calls(); got["SpendWithTokens"] != 5 || len(got) != 1 {
		t.Errorf("store calls %v, want 5 × SpendWithTokens and nothing else", got)
	}

	var got []string
	for _, e := range rl.events.all() {
		got = append(got, e.Step+" "+string(e.Code))
	}
	want := []string{
		"authenticate ", "limit ", "charge ",
		"authenticate ", "limit ", "charge ",
		"authenticate ", "limit ", "charge insufficient_credits",
		"authenticate ", "limit ", "charge ",
		"authenticate ", "limit rate_limited",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("decisions\n%q\nwant\n%q", got, want)
	}
}

// TestChargeRateLimitSameAnswers runs the same requests through a fused
// route and through the limiter's Handler in front of an unfused charge, on
// separate but identical stores: while no 402 intervenes, every response —
// status, headers, body — and every decision is the same.
func TestChargeRateLimitSameAnswers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  float64
		burst int
		opts  limiter.Options
		cost  int64
	}{
		{name: "defaults", rate: 1, burst: 3},
		{name: "slow refill", rate: 0.1, burst: 2, cost: 5},
		{name: "plan", rate: 1, burst: 3, opts: limiter.Options{Plans: map[string]store.RateLimit{"pro": {Rate: 2, Burst: 4}}}},
		{name: "legacy headers, 402 denial", rate: 1, burst: 2, opts: limiter.Options{LegacyHeaders: true, DenyStatus: http.StatusPaymentRequired, Name: "per-account"}},
		{name: "cost func", rate: 1, burst: 5, opts: limiter.Options{CostFunc: func(*http.Request) (int, error) { return 2, nil }}},
		{name: "cost above burst", rate: 1, burst: 5, opts: limiter.Options{CostFunc: func(*http.Request) (int, error) { return 6, nil }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cost := max(tc.cost, 1)
			fused, plain := newRateLimited(t), newRateLimited(t)
			pf, pp := fused.paywall(t, nil), plain.paywall(t, nil)
			lf := fused.limiter(t, tc.rate, tc.burst, tc.opts, false)
			lp := plain.limiter(t, tc.rate, tc.burst, tc.opts, false)
			hf := pf.Authenticate(lf.Handler(pf.Charge(cost)(ok)))
			// A charge the limiter does not recognise: decided apart.
			hp := pp.Authenticate(lp.Handler(http.HandlerFunc(pp.Charge(cost)(ok).ServeHTTP)))
			for i, advance := range []time.Duration{0, 0, 0, 0, 0, 300 * time.Millisecond, 700 * time.Millisecond, 0, 0, 5 * time.Second, 0} {
				fused.clock.Advance(advance)
				plain.clock.Advance(advance)
				for _, accept := range []string{"", "text/html"} {
					wf := serve(hf, request("POST", "/generate", keyPro, accept))
					wp := serve(hp, request("POST", "/generate", keyPro, accept))
					if wf.Code != wp.Code || wf.Body.String() != wp.Body.String() {
						t.Fatalf("request %d: fused %d %s\nunfused %d %s", i, wf.Code, wf.Body, wp.Code, wp.Body)
					}
					if hf, hp := wf.Header(), wp.Header(); !equalHeaders(hf, hp) {
						t.Fatalf("request %d: fused headers %v\nunfused %v", i, hf, hp)
					}
				}
			}
			if bf, bp := fused.balance(t, "acct_pro"), plain.balance(t, "acct_pro"); bf != bp {
				t.Errorf("balances %d fused, %d unfused", bf, bp)
			}
			ef, ep := fused.events.all(), plain.events.all()
			if len(ef) != len(ep) {
				t.Fatalf("%d decisions fused, %d unfused", len(ef), len(ep))
			}
			for i := range ef {
				if ef[i] != ep[i] {
					t.Errorf("decision %d: fused %+v\nunfused %+v", i, ef[i], ep[i])
				}
			}
			if calls := fused.s.Calls(); calls["Spend"]+calls["TakeTokens"] != 0 {
				t.Errorf("fused route made unfused calls: %v", calls)
			}
		})
	}
}

func equalHeaders(a, b http.Header) bool {
	return maps.EqualFunc(a, b, slices.Equal)
}

// Decisions that cannot be fused fall back to the limiter's Handler in
// front of the charge.
func TestChargeRateLimitUnfused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		plain     bool // the paywall's store cannot fuse
		inProcess bool // the limiter keeps its buckets in the process
		by        limiter.Keyer
		noAuth    bool // no Authenticate in front of the charge
		key       string
		status    int
		calls     map[string]int
	}{
		{name: "store cannot fuse", plain: true, key: keyPro, status: 200, calls: map[string]int{"TakeTokens": 1}},
		{name: "in-process limiter", inProcess: true, key: keyPro, status: 200, calls: map[string]int{"Spend": 1}},
		{name: "keyed by address", by: limiter.ByClientAddr(), key: keyPro, status: 200, calls: map[string]int{"TakeTokens": 1, "Spend": 1}},
		{name: "no key", key: "", status: 401, calls: map[string]int{}},
		{name: "no Authenticate", noAuth: true, key: keyPro, status: 500, calls: map[string]int{}}, // misconfigured
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := newRateLimited(t)
			var p *paywall.Paywall
			if tc.plain {
				// Only the Store methods of the memory store: no BucketSpender.
				p = newPaywall(t, struct{ store.Store }{rl.mem}, rl.clock, &paywall.Options{OnDecision: rl.events.record})
			} else {
				p = rl.paywall(t, nil)
			}
			lim := rl.limiter(t, 1, 2, limiter.Options{By: tc.by}, tc.inProcess)
			h := lim.Handler(p.ChargeWith(paywall.ChargeOptions{Cost: 10})(ok))
			if !tc.noAuth {
				h = p.Authenticate(h)
			}
			w := serve(h, request("POST", "/generate", tc.key, ""))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if w.Code == 200 && (w.Header().Get("RateLimit") != `"default";r=1;t=1` || rl.balance(t, "acct_pro") != 990) {
				t.Errorf("RateLimit %q, balance %d", w.Header().Get("RateLimit"), rl.balance(t, "acct_pro"))
			}
			if calls := rl.s.Calls(); !maps.Equal(calls, tc.calls) {
				t.Errorf("store calls %v, want %v", calls, tc.calls)
			}
		})
	}
}

// A zero cost is decided by the limiter alone: a zero fixed Cost when the
// middleware is built, a CostFunc that says 0 per request.
func TestChargeRateLimitFree(t *testing.T) {
	for _, opts := range []paywall.ChargeOptions{
		{Cost: 0},
		{CostFunc: func(*http.Request) (int64, error) { return 0, nil }},
	} {
		rl := newRateLimited(t)
		p := rl.paywall(t, nil)
		lim := rl.limiter(t, 1, 1, limiter.Options{}, false)
		h := p.Authenticate(lim.Handler(p.ChargeWith(opts)(ok)))
		rl.run(t, h, []step{
			{status: 200, rateLimit: `"default";r=0;t=1`, balance: 1000},
			{status: 429, rateLimit: `"default";r=0;t=1`, balance: 1000},
		})
		if calls := rl.s.Calls(); !maps.Equal(calls, map[string]int{"TakeTokens": 2}) {
			t.Errorf("CostFunc %v: store calls %v", opts.CostFunc != nil, calls)
		}
		var charged int
		for _, e := range rl.events.all() {
			if e.Step == "charge" {
				charged++
				if !e.Allowed || e.Cost != 0 || e.Balance != 1000 {
					t.Errorf("charge decision %+v", e)
				}
			}
		}
		if charged != 1 {
			t.Errorf("%d charge decisions, want 1", charged)
		}
	}
}

// When the store fails, a fused charge answers as the paywall does: 503,
// or, failing open, the request passes uncharged through the limiter alone,
// which falls back as it is configured to.
func TestChargeRateLimitStoreDown(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		paywallOpen, limiterOpn bool
		status                  int
		code                    string
		rateLimit               bool
	}{
		{name: "fail closed", status: 503, code: "store_unavailable"},
		{name: "paywall open, limiter closed", paywallOpen: true, status: 503, code: "store_unavailable"},
		{name: "both open", paywallOpen: true, limiterOpn: true, status: 200, rateLimit: true},
		{name: "limiter open only", limiterOpn: true, status: 503, code: "store_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := newRateLimited(t)
			p := rl.paywall(t, &paywall.Options{FailOpen: tc.paywallOpen})
			lim := rl.limiter(t, 1, 1, limiter.Options{FailOpen: tc.limiterOpn}, false)
			var charged int64 = -1
			h := p.Authenticate(lim.Handler(p.ChargeWith(paywall.ChargeOptions{Cost: 10})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, _ := paywall.CallerFromContext(r.Context())
				charged = c.Charged
			}))))
			serve(h, request("POST", "/generate", keyPro, "")) // caches nothing: the memory store looks up itself
			rl.s.setFail(true)
			rl.clock.Advance(time.Second)
			w := serve(h, request("POST", "/generate", keyPro, ""))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.code != "" {
				if p := decodeProblem(t, w); p.Code != tc.code || w.Header().Get("Retry-After") == "" {
					t.Errorf("code %q, Retry-After %q", p.Code, w.Header().Get("Retry-After"))
				}
			}
			if got := w.Header().Get("RateLimit") != ""; got != tc.rateLimit {
				t.Errorf("RateLimit header %q", w.Header().Get("RateLimit"))
			}
			if tc.status == 200 && charged != 0 {
				t.Errorf("failed open, charged %d", charged)
			}
			if got := rl.balance(t, "acct_pro"); got != 990 {
				t.Errorf("balance %d, want 990 (only the first request charged)", got)
			}
		})
	}
}

// A retry with a remembered Idempotency-Key is not charged but still takes
// its tokens: rate limits count requests.
func TestChargeRateLimitIdempotency(t *testing.T) {
	rl := newRateLimited(t)
	p := rl.paywall(t, &paywall.Options{IdempotencyWindow: time.Hour})
	lim := rl.limiter(t, 1, 2, limiter.Options{}, false)
	var replays int
	h := p.Authenticate(lim.Handler(p.Charge(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _ := paywall.CallerFromContext(r.Context()); c.Replay {
			replays++
		}
	}))))
	req := func() *http.Request {
		r := request("POST", "/generate", keyPro, "")
		r.Header.Set("Idempotency-Key", `"abc"`)
		return r
	}
	for i, want := range []struct {
		status    int
		rateLimit string
	}{
		{200, `"default";r=1;t=1`}, // charged
		{200, `"default";r=0;t=1`}, // a replay, not charged, one token
		{429, `"default";r=0;t=1`}, // a replay, no token left
	} {
		w := serve(h, req())
		if w.Code != want.status || w.Header().Get("RateLimit") != want.rateLimit {
			t.Fatalf("request %d: %d %q, want %d %q", i, w.Code, w.Header().Get("RateLimit"), want.status, want.rateLimit)
		}
	}
	if replays != 1 || rl.balance(t, "acct_pro") != 990 {
		t.Errorf("%d replays, balance %d; want 1 and 990", replays, rl.balance(t, "acct_pro"))
	}
	if calls := rl.s.Calls(); !maps.Equal(calls, map[string]int{"SpendWithTokens": 1, "TakeTokens": 2}) {
		t.Errorf("store calls %v", calls)
	}

	// A malformed key is refused before the store call: no tokens.
	rl.clock.Advance(time.Hour)
	r := request("POST", "/generate", keyPro, "")
	r.Header.Set("Idempotency-Key", `"unterminated`)
	if w := serve(h, r); w.Code != 400 || w.Header().Get("RateLimit") != "" {
		t.Errorf("malformed Idempotency-Key: %d %q", w.Code, w.Header().Get("RateLimit"))
	}
	if calls := rl.s.Calls(); calls["SpendWithTokens"]+calls["TakeTokens"] != 3 {
		t.Errorf("store calls %v after a refused Idempotency-Key", calls)
	}
}

// A refund gives the credits back, not the tokens.
func TestChargeRateLimitRefund(t *testing.T) {
	rl := newRateLimited(t)
	p := rl.paywall(t, nil)
	lim := rl.limiter(t, 1, 2, limiter.Options{}, false)
	h := p.Authenticate(lim.Handler(p.ChargeWith(paywall.ChargeOptions{Cost: 10, Refund: true})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))))
	rl.run(t, h, []step{
		{status: 502, rateLimit: `"default";r=1;t=1`, balance: 1000},
		{status: 502, rateLimit: `"default";r=0;t=1`, balance: 1000},
		{status: 429, rateLimit: `"default";r=0;t=1`, balance: 1000},
	})
}

// A limiter and a charge are decided together in any order, and through
// Require between them; a limiter applied twice takes its tokens twice.
func TestChargeRateLimitAnyOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wire  func(p *paywall.Paywall, lim *limiter.Limiter) http.Handler
		calls map[string]int
		steps []step
	}{
		{"limiter outside", func(p *paywall.Paywall, lim *limiter.Limiter) http.Handler {
			return p.Authenticate(lim.Handler(p.Charge(10)(ok)))
		}, map[string]int{"SpendWithTokens": 3}, nil},
		{"limiter inside", func(p *paywall.Paywall, lim *limiter.Limiter) http.Handler {
			return p.Authenticate(p.Charge(10)(lim.Handler(ok)))
		}, map[string]int{"SpendWithTokens": 3}, nil},
		{"require between", func(p *paywall.Paywall, lim *limiter.Limiter) http.Handler {
			return p.Authenticate(lim.Handler(p.Require(paywall.Requirement{Plans: []string{"pro"}})(p.Charge(10)(ok))))
		}, map[string]int{"SpendWithTokens": 3}, nil},
		{"limiter twice", func(p *paywall.Paywall, lim *limiter.Limiter) http.Handler {
			return p.Authenticate(lim.Handler(lim.Handler(p.Charge(10)(ok))))
		}, map[string]int{"TakeTokens": 2, "SpendWithTokens": 1}, []step{
			{status: 200, rateLimit: `"default";r=0;t=1`, balance: 990},
			{status: 429, rateLimit: `"default";r=0;t=1`, balance: 990},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := newRateLimited(t)
			p := rl.paywall(t, nil)
			lim := rl.limiter(t, 1, 2, limiter.Options{}, false)
			steps := tc.steps
			if steps == nil {
				steps = []step{
					{status: 200, rateLimit: `"default";r=1;t=1`, balance: 990},
					{status: 200, rateLimit: `"default";r=0;t=1`, balance: 980},
					{status: 429, rateLimit: `"default";r=0;t=1`, balance: 980},
				}
			}
			rl.run(t, tc.wire(p, lim), steps)
			if calls := rl.s.Calls(); !maps.Equal(calls, tc.calls) {
				t.Errorf("store calls %v, want %v", calls, tc.calls)
			}
		})
	}
}

// A limiter whose buckets live in another store than the paywall's is not
// fused, even when the paywall's store could take tokens: its Handler
// decides, with its own store's buckets, as on every other route it guards.
func TestChargeRateLimitOtherStore(t *testing.T) {
	f := newFixture(t)
	buckets := store.NewMemory(nil) // where the limiter keeps its buckets
	p := newPaywall(t, f.mem, newClock(), nil)
	lim, err := limiter.New(1e-9, 1, &limiter.Options{By: limiter.ByAccount(), Store: buckets})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Authenticate(lim.Handler(p.Charge(1)(ok)))
	for i, want := range []int{200, 429} {
		if w := serve(h, request("POST", "/generate", keyPro, "")); w.Code != want {
			t.Fatalf("request %d: status %d, want %d: %s", i+1, w.Code, want, w.Body)
		}
	}
	b := store.Bucket{Account: "acct_pro", Key: "default", Rate: 1e-9, Burst: 1, Cost: 1}
	if r, err := buckets.TakeTokens(context.Background(), b); err != nil || r.OK {
		t.Errorf("the limiter's store: %+v, %v; want its bucket drained", r, err)
	}
	if r, err := f.mem.TakeTokens(context.Background(), b); err != nil || !r.OK {
		t.Errorf("the paywall's store: %+v, %v; want its bucket untouched", r, err)
	}
	if got := f.balance(t, "acct_pro"); got != 999 {
		t.Errorf("balance %d, want 999", got)
	}
}
