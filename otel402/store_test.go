package otel402_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/otel402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// The wrapped Memory and Callback stores have exactly their capabilities.
func TestStoreKeepsCapabilities(t *testing.T) {
	rec := newRecorder(t, nil)
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
			return store.Key{}, store.Account{}, nil
		},
		Spend: func(context.Context, string, int64) (store.SpendResult, error) { return store.SpendResult{}, nil },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mem := store.NewMemory(nil)
	if capabilitiesOf(mem) == 0 || capabilitiesOf(mem) == capabilitiesOf(cb) {
		t.Fatalf("Memory has capabilities %09b, Callback %09b", capabilitiesOf(mem), capabilitiesOf(cb))
	}
	for _, s := range []store.Store{mem, cb} {
		if got, want := capabilitiesOf(rec.Store(s)), capabilitiesOf(s); got != want {
			t.Errorf("the wrapped %T has capabilities %09b, want %09b", s, got, want)
		}
	}
}

// A metered charge through a wrapped Memory holds the most the request may
// cost, settles what its Meter reports, and times the hold and the
// settlement, each with its span.
func TestStoreMeteredCharge(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	rec := newRecorder(t, &otel402.Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))})
	mem := memoryWith(t, nil, store.Account{ID: "acct_1", Plan: "pro", Balance: 100})
	pw, err := paywall.New(rec.Store(mem), &paywall.Options{OnDecision: rec.OnDecision})
	if err != nil {
		t.Fatal(err)
	}
	var held int64 = -1
	h := pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: 30, Metered: true})(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			a, err := mem.Account(r.Context(), "acct_1")
			if err != nil {
				t.Error(err)
			}
			held = a.Balance
			paywall.MeterFrom(r.Context()).Add(12)
		})))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, authorized("sk_test_acct_1"))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	a, err := mem.Account(context.Background(), "acct_1")
	if err != nil {
		t.Fatal(err)
	}
	if held != 70 || a.Balance != 88 {
		t.Errorf("balance %d while held, %d settled; want 70 and 88", held, a.Balance)
	}
	got := rec.collect(t)
	for _, op := range []string{"hold", "settle"} {
		if n := sum(got["go402.store.duration"], map[string]string{"go402.store.operation": op}); n != 1 {
			t.Errorf("%s timed %v times, want 1", op, n)
		}
		if !slices.ContainsFunc(sr.Ended(), func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "go402.store."+op }) {
			t.Errorf("no span go402.store.%s", op)
		}
	}
}

// A metered charge behind a limiter on the same wrapped Memory takes the
// tokens and holds the credits in one store call, hold_with_tokens.
func TestStoreMeteredChargeWithLimit(t *testing.T) {
	rec := newRecorder(t, nil)
	mem := memoryWith(t, nil, store.Account{ID: "acct_1", Plan: "pro", Balance: 100})
	st := rec.Store(mem)
	pw, lim := paywallAndLimiter(t, st, rec.Metrics)
	h := pw.Authenticate(lim.Handler(pw.ChargeWith(paywall.ChargeOptions{Cost: 30, Metered: true})(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { paywall.MeterFrom(r.Context()).Add(5) }))))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, authorized("sk_test_acct_1"))
	if a, err := mem.Account(context.Background(), "acct_1"); err != nil || w.Code != http.StatusOK || a.Balance != 95 {
		t.Fatalf("status %d, balance %d (%v); want 200 and 95", w.Code, a.Balance, err)
	}
	got := rec.collect(t)
	for op, want := range map[string]float64{"hold_with_tokens": 1, "settle": 1, "hold": 0, "take_tokens": 0} {
		if n := sum(got["go402.store.duration"], map[string]string{"go402.store.operation": op}); n != want {
			t.Errorf("%s timed %v times, want %v", op, n, want)
		}
	}
}

// Two limiters with MaxInFlight 1 on one wrapped Memory, replicas of one
// route, share its slots: while one serves a request, the other refuses
// the account's next.
func TestStoreInFlightSlots(t *testing.T) {
	rec := newRecorder(t, nil)
	st := rec.Store(memoryWith(t, nil, store.Account{ID: "acct_1", Plan: "pro", Balance: 100}))
	pw, err := paywall.New(st, &paywall.Options{OnDecision: rec.OnDecision})
	if err != nil {
		t.Fatal(err)
	}
	replica := func(next http.HandlerFunc) http.Handler {
		lim, err := limiter.New(1000, 1000, &limiter.Options{By: limiter.ByAccount(), Store: st.(store.Buckets), MaxInFlight: 1})
		if err != nil {
			t.Fatal(err)
		}
		return pw.Authenticate(lim.Handler(next))
	}
	entered, leave, done := make(chan struct{}), make(chan struct{}), make(chan int)
	a := replica(func(http.ResponseWriter, *http.Request) { close(entered); <-leave })
	b := replica(func(http.ResponseWriter, *http.Request) {})
	go func() {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, authorized("sk_test_acct_1"))
		done <- w.Code
	}()
	<-entered
	w := httptest.NewRecorder()
	b.ServeHTTP(w, authorized("sk_test_acct_1"))
	close(leave)
	if code := <-done; code != http.StatusOK || w.Code != http.StatusTooManyRequests {
		t.Fatalf("statuses %d and, while it ran, %d; want 200 and 429", code, w.Code)
	}
	w = httptest.NewRecorder()
	b.ServeHTTP(w, authorized("sk_test_acct_1"))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d after the first returned, want 200", w.Code)
	}
	got := rec.collect(t)
	for op, want := range map[string]float64{"acquire_slot": 3, "release_slot": 2} {
		if n := sum(got["go402.store.duration"], map[string]string{"go402.store.operation": op}); n != want {
			t.Errorf("%s timed %v times, want %v", op, n, want)
		}
	}
}

// paywallAndLimiter are a paywall on the wrapped store st and a limiter,
// by account and high enough never to refuse, taking its tokens from st,
// both reporting their decisions to m.
func paywallAndLimiter(t *testing.T, st store.Store, m *otel402.Metrics) (*paywall.Paywall, *limiter.Limiter) {
	t.Helper()
	pw, err := paywall.New(st, &paywall.Options{OnDecision: m.OnDecision})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limiter.New(1000, 1000, &limiter.Options{By: limiter.ByAccount(), Store: st.(store.Buckets), OnDecision: m.OnDecision})
	if err != nil {
		t.Fatal(err)
	}
	return pw, lim
}

// authorized is a request with the API key raw.
func authorized(raw string) *http.Request {
	r := httptest.NewRequest("POST", "/generate", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	return r
}

func TestStoreErrors(t *testing.T) {
	rec := newRecorder(t, nil)
	down := errors.New("dial tcp 10.0.0.7:6379: connection refused")
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
			return store.Key{}, store.Account{}, down
		},
		Spend: func(ctx context.Context, id string, _ int64) (store.SpendResult, error) {
			if id == "gone" {
				return store.SpendResult{}, store.ErrNotFound
			}
			return store.SpendResult{}, ctx.Err()
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := rec.Store(cb)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Lookup(ctx, store.DigestOf("sk_x")); !errors.Is(err, down) {
		t.Fatalf("Lookup error %v, want the store's", err)
	}
	_, _ = s.Spend(ctx, "acct", 1)
	_, _ = s.Spend(ctx, "gone", 1)
	got := rec.collect(t)
	for _, c := range []struct {
		name  string
		attrs map[string]string
		want  float64
	}{
		{"go402.store.errors", map[string]string{"go402.store.operation": "lookup", "error.type": "_OTHER"}, 1},
		{"go402.store.errors", map[string]string{"go402.store.operation": "spend", "error.type": "canceled"}, 1},
		{"go402.store.errors", map[string]string{"error.type": "not_found"}, 0},
		{"go402.store.duration", map[string]string{"go402.store.operation": "spend", "error.type": "not_found"}, 1},
		{"go402.store.duration", map[string]string{"go402.store.operation": "spend"}, 2},
	} {
		if v := sum(got[c.name], c.attrs); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.attrs, v, c.want)
		}
	}
}

// TestStoreCreateAccountExists checks that CreateAccount goes through the
// wrapper, and that an account created twice is timed with error.type
// "exists" but not counted as a store error.
func TestStoreCreateAccountExists(t *testing.T) {
	rec := newRecorder(t, nil)
	ad := rec.Store(store.NewMemory(nil)).(store.Admin)
	ctx := context.Background()
	if err := ad.CreateAccount(ctx, store.Account{ID: "acct_1"}); err != nil {
		t.Fatal(err)
	}
	if err := ad.CreateAccount(ctx, store.Account{ID: "acct_1"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateAccount: %v, want ErrExists", err)
	}
	got := rec.collect(t)
	for _, c := range []struct {
		name  string
		attrs map[string]string
		want  float64
	}{
		{"go402.store.duration", map[string]string{"go402.store.operation": "create_account"}, 2},
		{"go402.store.duration", map[string]string{"go402.store.operation": "create_account", "error.type": "exists"}, 1},
		{"go402.store.errors", map[string]string{"go402.store.operation": "create_account"}, 0},
	} {
		if v := sum(got[c.name], c.attrs); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.attrs, v, c.want)
		}
	}
}
