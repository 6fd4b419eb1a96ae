package otel402_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/otel402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// recorder is a Metrics whose measurements a test collects.
type recorder struct {
	*otel402.Metrics
	reader *sdkmetric.ManualReader
}

func newRecorder(t testing.TB, opts *otel402.Options) *recorder {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	o := otel402.Options{}
	if opts != nil {
		o = *opts
	}
	o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m, err := otel402.New(&o)
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{Metrics: m, reader: reader}
}

// point is one data point: its attributes and its value (a sum's value, a
// histogram's count).
type point struct {
	attrs map[string]string
	value float64
}

// collect returns the data points of every instrument, by name.
func (r *recorder) collect(t testing.TB) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]point{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrMap(p.Attributes), float64(p.Value)})
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrMap(p.Attributes), float64(p.Count)})
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

func attrMap(s attribute.Set) map[string]string {
	m := map[string]string{}
	for _, kv := range s.ToSlice() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// sum adds the values of the points whose attributes include want.
func sum(points []point, want map[string]string) float64 {
	var total float64
	for _, p := range points {
		match := true
		for k, v := range want {
			if p.attrs[k] != v {
				match = false
			}
		}
		if match {
			total += p.value
		}
	}
	return total
}

// memoryWith is a Memory made with opts holding accounts, each with a key
// "sk_test_<ID>".
func memoryWith(t testing.TB, opts *store.MemoryOptions, accounts ...store.Account) *store.Memory {
	t.Helper()
	mem := store.NewMemory(opts)
	for _, a := range accounts {
		if err := mem.PutAccount(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		if err := mem.PutKey(context.Background(), store.NewKey("sk_test_"+a.ID, a.ID)); err != nil {
			t.Fatal(err)
		}
	}
	return mem
}

// stack is a paywalled API on a memory store, instrumented by rec.
func stack(t testing.TB, rec *recorder, accounts ...store.Account) http.Handler {
	t.Helper()
	clock := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	st := rec.Store(memoryWith(t, &store.MemoryOptions{Clock: clock}, accounts...))
	pw, err := paywall.New(st, &paywall.Options{OnDecision: rec.OnDecision, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limiter.New(1, 2, &limiter.Options{Name: "burst", By: limiter.ByAccount(), Store: st.(store.Buckets),
		OnDecision: rec.OnDecision, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	fail := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", pw.Authenticate(lim.Handler(ok)))
	mux.Handle("POST /generate", pw.Authenticate(lim.Handler(pw.Charge(10)(ok))))
	mux.Handle("POST /fail", pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: 3, Refund: true})(fail)))
	return rec.Handler(mux)
}

func do(t testing.TB, h http.Handler, method, path, key string) int {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestDecisionsCreditsAndRefusals(t *testing.T) {
	rec := newRecorder(t, nil)
	h := stack(t, rec,
		store.Account{ID: "pro", Plan: "pro", Balance: 100},
		store.Account{ID: "free", Plan: "free"})
	for _, c := range []struct {
		method, path, key string
		status            int
	}{
		{"GET", "/items/1", "", 401},
		{"GET", "/items/1", "sk_test_nope", 401},
		{"POST", "/generate", "sk_test_pro", 200},
		{"POST", "/generate", "sk_test_pro", 200},
		{"POST", "/generate", "sk_test_free", 402},
		{"GET", "/items/1", "sk_test_free", 200},
		{"GET", "/items/2", "sk_test_free", 200},
		{"GET", "/items/3", "sk_test_free", 429}, // the free bucket's burst of 2 is spent
		{"POST", "/fail", "sk_test_pro", 500},
	} {
		if got := do(t, h, c.method, c.path, c.key); got != c.status {
			t.Fatalf("%s %s with %q: status %d, want %d", c.method, c.path, c.key, got, c.status)
		}
	}
	got := rec.collect(t)
	for _, c := range []struct {
		name  string
		attrs map[string]string
		want  float64
	}{
		{"go402.decisions", map[string]string{"go402.step": "authenticate", "go402.code": "missing_key", "go402.allowed": "false", "http.route": "GET /items/{id}"}, 1},
		{"go402.decisions", map[string]string{"go402.step": "authenticate", "go402.code": "invalid_key"}, 1},
		{"go402.decisions", map[string]string{"go402.step": "authenticate", "go402.allowed": "true", "go402.plan": "pro"}, 3},
		{"go402.decisions", map[string]string{"go402.step": "charge", "go402.allowed": "true", "http.route": "POST /generate", "go402.plan": "pro"}, 2},
		{"go402.decisions", map[string]string{"go402.step": "charge", "go402.code": "insufficient_credits", "go402.plan": "free"}, 1},
		{"go402.decisions", map[string]string{"go402.step": "limit", "go402.code": "rate_limited", "go402.plan": "free", "http.route": "GET /items/{id}"}, 1},
		{"go402.decisions", map[string]string{"go402.step": "refund", "go402.allowed": "true", "http.route": "POST /fail"}, 1},
		{"go402.decision.duration", map[string]string{"go402.step": "charge", "go402.allowed": "true"}, 3},
		{"go402.decision.duration", map[string]string{"go402.step": "refund"}, 0},
		{"go402.decision.duration", map[string]string{"go402.step": "authenticate", "go402.allowed": "true"}, 0}, // a later step decided
		{"go402.decision.duration", nil, 9}, // once per request
		{"go402.credits.debited", map[string]string{"http.route": "POST /generate", "go402.plan": "pro"}, 20},
		{"go402.credits.debited", map[string]string{"http.route": "POST /fail"}, 3},
		{"go402.credits.debited", map[string]string{"go402.plan": "free"}, 0},
		{"go402.credits.refunded", map[string]string{"http.route": "POST /fail", "go402.plan": "pro"}, 3},
		{"go402.ratelimit.refusals", map[string]string{"go402.policy": "burst", "http.route": "GET /items/{id}", "go402.plan": "free"}, 1},
		{"go402.store.duration", map[string]string{"go402.store.operation": "lookup"}, 8},
		{"go402.store.duration", map[string]string{"go402.store.operation": "lookup", "error.type": "not_found"}, 1},
		// the limiter and the charge take tokens and credits in one call
		{"go402.store.duration", map[string]string{"go402.store.operation": "spend_with_tokens"}, 3},
		{"go402.store.duration", map[string]string{"go402.store.operation": "refund"}, 1},
		{"go402.store.errors", nil, 0},
	} {
		if v := sum(got[c.name], c.attrs); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.attrs, v, c.want)
		}
	}
}

// Many paths and many accounts make no more series than routes and plans.
func TestCardinalityBounded(t *testing.T) {
	rec := newRecorder(t, nil)
	var accounts []store.Account
	for i := range 300 {
		accounts = append(accounts, store.Account{ID: fmt.Sprintf("acct%03d", i), Plan: []string{"free", "pro"}[i%2], Balance: 100})
	}
	h := stack(t, rec, accounts...)
	for i, a := range accounts {
		do(t, h, "GET", fmt.Sprintf("/items/%d", i), "sk_test_"+a.ID)
		do(t, h, "GET", fmt.Sprintf("/items/%d", i), "sk_test_unknown"+a.ID)
		do(t, h, "POST", "/generate", "sk_test_"+a.ID)
	}
	got := rec.collect(t)
	series := 0
	for name, points := range got {
		series += len(points)
		for _, p := range points {
			for k, v := range p.attrs {
				if len(v) > 0 && (v[0] == '/' || len(v) >= 4 && v[:4] == "acct" || len(v) >= 3 && v[:3] == "sk_") {
					t.Errorf("%s: attribute %s=%q names a path, an account or a key", name, k, v)
				}
			}
		}
	}
	// steps × outcomes × routes × plans, and the store's operations: a few
	// dozen, whatever the number of paths and accounts.
	if series > 40 {
		t.Errorf("%d series for 300 accounts and paths; want at most 40", series)
	}
	if v := sum(got["go402.decisions"], map[string]string{"go402.step": "authenticate", "go402.allowed": "true", "http.route": "GET /items/{id}"}); v != 300 {
		t.Errorf("authenticated item requests = %v, want 300", v)
	}
}

func TestMaxRoutesAndPlans(t *testing.T) {
	rec := newRecorder(t, &otel402.Options{MaxRoutes: 3, MaxPlans: 2})
	ctx := context.Background()
	for i := range 50 {
		rec.OnDecision(ctx, paywall.Decision{Step: "limit", Code: paywall.CodeRateLimited, Policy: "burst", Route: fmt.Sprintf("GET /r%d", i)})
	}
	got := rec.collect(t)
	routes := map[string]float64{}
	for _, p := range got["go402.ratelimit.refusals"] {
		routes[p.attrs["http.route"]] += p.value
	}
	if len(routes) != 4 || routes["_OTHER"] != 47 || routes["GET /r0"] != 1 {
		t.Fatalf("routes %v, want 3 of them and 47 _OTHER", routes)
	}
	if _, err := otel402.New(&otel402.Options{MaxRoutes: -1}); err == nil {
		t.Fatal("New accepted a negative MaxRoutes")
	}
}

// A retry let through by its Idempotency-Key, a request let through
// uncharged by FailOpen, and one a shadow paywall would charge debit
// nothing, and are not counted as debited.
func TestNoDebitCountedWithoutADebit(t *testing.T) {
	rec := newRecorder(t, nil)
	ctx := context.Background()
	mem := memoryWith(t, nil, store.Account{ID: "a", Plan: "pro", Balance: 100})
	pw, err := paywall.New(rec.Store(mem), &paywall.Options{OnDecision: rec.OnDecision, IdempotencyWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	down := errors.New("down")
	failing, err := store.NewCallback(store.Callbacks{
		Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
			return store.NewKey("sk_test_a", "b"), store.Account{ID: "b", Plan: "pro", Balance: 100}, nil
		},
		Spend: func(context.Context, string, int64) (store.SpendResult, error) { return store.SpendResult{}, down },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	open, err := paywall.New(rec.Store(failing), &paywall.Options{OnDecision: rec.OnDecision, FailOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	shadow, err := paywall.New(rec.Store(mem), &paywall.Options{OnDecision: rec.OnDecision, Shadow: true})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("POST /shadow", shadow.Authenticate(shadow.Charge(7)(ok)))
	mux.Handle("POST /once", pw.Authenticate(pw.Charge(7)(ok)))
	mux.Handle("POST /open", open.Authenticate(open.Charge(7)(ok)))
	for _, path := range []string{"/once", "/once", "/open", "/shadow"} {
		r := httptest.NewRequest("POST", path, nil)
		r.Header.Set("Authorization", "Bearer sk_test_a")
		r.Header.Set("Idempotency-Key", `"retry-1"`)
		w := httptest.NewRecorder()
		rec.Handler(mux).ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("POST %s: status %d", path, w.Code)
		}
	}
	got := rec.collect(t)
	if v := sum(got["go402.credits.debited"], nil); v != 7 {
		t.Errorf("debited %v, want 7: one debit, a replay, a request let through uncharged and a shadow charge", v)
	}
	if v := sum(got["go402.decisions"], map[string]string{"go402.step": "charge", "go402.allowed": "true", "go402.code": "store_unavailable"}); v != 1 {
		t.Errorf("failed-open charges %v, want 1", v)
	}
	if v := sum(got["go402.store.errors"], map[string]string{"go402.store.operation": "spend"}); v != 1 {
		t.Errorf("spend errors %v, want 1", v)
	}
	if a, _ := mem.Account(ctx, "a"); a.Balance != 93 {
		t.Errorf("balance %d, want 93", a.Balance)
	}
}

// A metered charge's hold counts as held, its settlement as debited, and
// the settlement (after the handler) is not a decision's latency.
func TestMeteredCredits(t *testing.T) {
	rec := newRecorder(t, nil)
	mem := memoryWith(t, nil, store.Account{ID: "pro", Plan: "pro", Balance: 100})
	pw, err := paywall.New(mem, &paywall.Options{OnDecision: rec.OnDecision})
	if err != nil {
		t.Fatal(err)
	}
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { paywall.MeterFrom(r.Context()).Add(7) })
	mux := http.NewServeMux()
	mux.Handle("POST /complete", pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: 10, Metered: true})(stream)))
	h := rec.Handler(mux)
	for range 2 {
		if code := do(t, h, "POST", "/complete", "sk_test_pro"); code != 200 {
			t.Fatalf("status %d, want 200", code)
		}
	}
	got := rec.collect(t)
	route := map[string]string{"http.route": "POST /complete", "go402.plan": "pro"}
	for name, want := range map[string]float64{"go402.credits.held": 20, "go402.credits.debited": 14, "go402.credits.refunded": 0} {
		if v := sum(got[name], route); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := sum(got["go402.decision.duration"], map[string]string{"go402.step": "settle"}); v != 0 {
		t.Errorf("settlements timed as decisions: %v", v)
	}
}
