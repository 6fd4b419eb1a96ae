package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestServer(t *testing.T) (http.Handler, *store.Memory, *fakeClock) {
	t.Helper()
	mem := store.NewMemory(nil)
	if err := seed(context.Background(), mem); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h, err := newHandler(mem, nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return h, mem, clock
}

type body struct {
	Code    string `json:"code"`
	Balance *int64 `json:"balance"`
	Charged int64  `json:"charged"`
	Message string `json:"message"`
}

// TestKeysAndRoutes checks the documented status and code of every demo key
// on every route.
func TestKeysAndRoutes(t *testing.T) {
	type want struct {
		status int
		code   string
	}
	tests := []struct {
		key                      string
		hello, reports, generate want
	}{
		{"", want{401, "missing_key"}, want{401, "missing_key"}, want{401, "missing_key"}},
		{"sk_test_pro", want{200, ""}, want{200, ""}, want{200, ""}},
		{"sk_test_free", want{200, ""}, want{402, "feature_not_in_plan"}, want{402, "insufficient_credits"}},
		{"sk_test_lapsed", want{200, ""}, want{402, "subscription_inactive"}, want{402, "subscription_inactive"}},
		{"sk_test_revoked", want{401, "key_revoked"}, want{401, "key_revoked"}, want{401, "key_revoked"}},
		{"sk_test_unknown", want{401, "invalid_key"}, want{401, "invalid_key"}, want{401, "invalid_key"}},
	}
	for _, tt := range tests {
		for _, rt := range []struct {
			method, path string
			want         want
		}{
			{"GET", "/hello", tt.hello},
			{"GET", "/reports", tt.reports},
			{"POST", "/generate", tt.generate},
		} {
			t.Run(tt.key+" "+rt.method+" "+rt.path, func(t *testing.T) {
				h, _, _ := newTestServer(t)
				r := httptest.NewRequest(rt.method, rt.path, nil)
				if tt.key != "" {
					r.Header.Set("Authorization", "Bearer "+tt.key)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != rt.want.status {
					t.Fatalf("status %d, want %d; body %s", w.Code, rt.want.status, w.Body)
				}
				var b body
				if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
					t.Fatalf("body %s: %v", w.Body, err)
				}
				if b.Code != rt.want.code {
					t.Errorf("code %q, want %q", b.Code, rt.want.code)
				}
				if w.Code == 401 && w.Header().Get("Www-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if w.Code >= 400 && w.Header().Get("Cache-Control") != "no-store" {
					t.Error("denial without Cache-Control: no-store")
				}
				if w.Code == 402 && !strings.Contains(w.Body.String(), `"/billing"`) {
					t.Errorf("402 without a billing link: %s", w.Body)
				}
				if rt.path == "/generate" && w.Code == 200 && (b.Balance == nil || *b.Balance != 990 || b.Charged != 10) {
					t.Errorf("generate answered %s", w.Body)
				}
			})
		}
	}
}

// TestConcurrentGenerate sends 200 concurrent POST /generate with
// sk_test_pro: exactly 100 pass, 100 get 402 insufficient_credits, and the
// balance ends at 0.
func TestConcurrentGenerate(t *testing.T) {
	h, mem, _ := newTestServer(t)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
	)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("POST", "/generate", nil)
			r.Header.Set("X-API-Key", "sk_test_pro")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var b body
			_ = json.Unmarshal(w.Body.Bytes(), &b)
			mu.Lock()
			counts[http.StatusText(w.Code)+" "+b.Code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts["OK "] != 100 || counts["Payment Required insufficient_credits"] != 100 || len(counts) != 2 {
		t.Errorf("outcomes %v", counts)
	}
	a, err := mem.Account(context.Background(), "acct_pro")
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != 0 {
		t.Errorf("balance %d, want 0", a.Balance)
	}
}

// TestRateLimit: a free account gets its burst of two, then 429
// rate_limited with the standard headers, and one more request a second; a
// request the limiter refuses is not charged.
func TestRateLimit(t *testing.T) {
	h, mem, clock := newTestServer(t)
	do := func(method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Authorization", "Bearer sk_test_free")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i, want := range []int{200, 200, 429} {
		if w := do("GET", "/hello"); w.Code != want {
			t.Fatalf("request %d: status %d, want %d; body %s", i+1, w.Code, want, w.Body)
		}
	}
	w := do("GET", "/hello")
	var b body
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Code != 429 || b.Code != "rate_limited" {
		t.Fatalf("status %d, body %s, want 429 rate_limited", w.Code, w.Body)
	}
	for name, want := range map[string]string{
		"Retry-After":      "1",
		"Ratelimit":        `"default";r=0;t=1`,
		"Ratelimit-Policy": `"default";q=2;w=2`,
		"Cache-Control":    "no-store",
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}

	// The limit is per account, not per route, and a request it refuses
	// costs nothing: with credits, a charge would show.
	free := demoKeys[1].account
	free.Balance = 100
	if err := mem.PutAccount(context.Background(), free); err != nil {
		t.Fatal(err)
	}
	if w := do("POST", "/generate"); w.Code != 429 {
		t.Fatalf("POST /generate: status %d, want 429; body %s", w.Code, w.Body)
	}
	if a, err := mem.Account(context.Background(), "acct_free"); err != nil || a.Balance != 100 {
		t.Fatalf("balance %d (%v) after a refused request, want 100", a.Balance, err)
	}

	clock.Advance(time.Second)
	if w := do("POST", "/generate"); w.Code != 200 {
		t.Fatalf("a second later: status %d, want 200; body %s", w.Code, w.Body)
	}
	if w := do("GET", "/hello"); w.Code != 429 {
		t.Fatalf("then: status %d, want 429; body %s", w.Code, w.Body)
	}
}

func TestBanner(t *testing.T) {
	var b strings.Builder
	printBanner(&b, ":8080")
	out := b.String()
	for _, want := range []string{"http://localhost:8080", "GET /hello", "GET /reports", "POST /generate",
		"sk_test_pro", "sk_test_free", "sk_test_lapsed", "sk_test_revoked", "curl -i"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
}
