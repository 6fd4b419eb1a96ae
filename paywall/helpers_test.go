package paywall_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// t0 is the fixed time the tests' clock starts at.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Demo keys of the fixture.
const (
	keyPro     = "sk_test_pro_0123456789abcdef"
	keyFree    = "sk_test_free_0123456789abcdef"
	keyLapsed  = "sk_test_lapsed_0123456789abcdef"
	keyRevoked = "sk_test_revoked_0123456789abcdef"
	keyExpired = "sk_test_expired_0123456789abcdef"
	keyQuota   = "sk_test_quota_0123456789abcdef"
)

// fixture is a memory store with a few accounts and keys, on a fake clock.
type fixture struct {
	clock *clock
	mem   *store.Memory
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clock: newClock()}
	f.mem = store.NewMemory(&store.MemoryOptions{Clock: f.clock.Now})
	ctx := context.Background()
	accounts := []store.Account{
		{ID: "acct_pro", Plan: "pro", Status: store.StatusActive, Features: []string{"reports", "export"}, Balance: 1000},
		{ID: "acct_free", Plan: "free", Status: store.StatusActive},
		{ID: "acct_lapsed", Plan: "pro", Status: store.StatusPastDue, Features: []string{"reports"}, Balance: 50},
		{ID: "acct_quota", Plan: "starter", Status: store.StatusTrialing, Balance: 0,
			Refill: &store.Refill{Amount: 100, Every: 24 * time.Hour, Anchor: t0.Add(-time.Hour)}, RefilledAt: t0.Add(-time.Hour)},
	}
	for _, a := range accounts {
		if err := f.mem.PutAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	keys := []store.Key{
		store.NewKey(keyPro, "acct_pro"),
		store.NewKey(keyFree, "acct_free"),
		store.NewKey(keyLapsed, "acct_lapsed"),
		store.NewKey(keyRevoked, "acct_pro"),
		store.NewKey(keyExpired, "acct_pro"),
		store.NewKey(keyQuota, "acct_quota"),
	}
	keys[3].Revoked = true
	keys[4].ExpiresAt = t0.Add(-time.Minute)
	for _, k := range keys {
		if err := f.mem.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// paywall returns a Paywall on the fixture's store with opts (nil for
// defaults) and the fixture's clock.
func (f *fixture) paywall(t testing.TB, opts *paywall.Options) *paywall.Paywall {
	t.Helper()
	return newPaywall(t, f.mem, f.clock, opts)
}

func newPaywall(t testing.TB, s store.Store, c *clock, opts *paywall.Options) *paywall.Paywall {
	t.Helper()
	var o paywall.Options
	if opts != nil {
		o = *opts
	}
	if o.Clock == nil {
		o.Clock = c.Now
	}
	p, err := paywall.New(s, &o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) balance(t testing.TB, accountID string) int64 {
	t.Helper()
	a, err := f.mem.Account(context.Background(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

// ok is a handler that answers 200 "ok".
var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "ok")
})

// request builds a request with the key in the X-API-Key header (if key is
// non-empty) and the given Accept header (if non-empty).
func request(method, target, key, accept string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// problem is a decoded problem+json body.
type problem struct {
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Status     int      `json:"status"`
	Detail     string   `json:"detail"`
	Code       string   `json:"code"`
	Balance    *int64   `json:"balance"`
	Cost       int64    `json:"cost"`
	RefillAt   string   `json:"refill_at"`
	RetryAfter int64    `json:"retry_after"`
	Features   []string `json:"features"`
	UpgradeURL string   `json:"upgrade_url"`
	PaymentURL string   `json:"payment_url"`
	Plans      []string `json:"plans"`
}

func decodeProblem(t testing.TB, w *httptest.ResponseRecorder) problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, w.Body)
	}
	var p problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("decoding %s: %v", w.Body, err)
	}
	if p.Status != w.Code {
		t.Errorf("status member %d, response status %d", p.Status, w.Code)
	}
	return p
}

// failingStore fails every operation with err, or passes through to Store
// while err is nil.
type failingStore struct {
	store.Store
	mu         sync.Mutex
	lookupErr  error
	spendErr   error
	refundErr  error
	refundedTo []int64
}

var errBackend = errors.New("backend: connection refused to 10.0.0.7:5432 (password=hunter2)")

func (s *failingStore) Lookup(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
	s.mu.Lock()
	err := s.lookupErr
	s.mu.Unlock()
	if err != nil {
		return store.Key{}, store.Account{}, err
	}
	return s.Store.Lookup(ctx, d)
}

func (s *failingStore) Spend(ctx context.Context, id string, cost int64) (store.SpendResult, error) {
	s.mu.Lock()
	err := s.spendErr
	s.mu.Unlock()
	if err != nil {
		return store.SpendResult{}, err
	}
	return s.Store.Spend(ctx, id, cost)
}

func (s *failingStore) Refund(ctx context.Context, id string, amount int64) (int64, error) {
	s.mu.Lock()
	err := s.refundErr
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	bal, err := s.Store.(store.Refunder).Refund(ctx, id, amount)
	s.mu.Lock()
	s.refundedTo = append(s.refundedTo, bal)
	s.mu.Unlock()
	return bal, err
}

// decisions records OnDecision events.
type decisions struct {
	mu   sync.Mutex
	list []paywall.Decision
}

func (d *decisions) record(_ context.Context, dec paywall.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, dec)
}

func (d *decisions) all() []paywall.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]paywall.Decision(nil), d.list...)
}

func contextWithValue(r *http.Request, k, v any) context.Context {
	return context.WithValue(r.Context(), k, v)
}
