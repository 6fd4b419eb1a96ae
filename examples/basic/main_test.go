package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go402/go402/store"
)

func newTestServer(t *testing.T) (http.Handler, *store.Memory) {
	t.Helper()
	mem := store.NewMemory(nil)
	if err := seed(context.Background(), mem); err != nil {
		t.Fatal(err)
	}
	h, err := newHandler(mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h, mem
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
				h, _ := newTestServer(t)
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
	h, mem := newTestServer(t)
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
