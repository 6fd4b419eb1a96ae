package paywall_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name       string
		header     http.Header
		lookupErr  error
		failOpen   bool
		wantStatus int
		wantCode   string
		wantAuth   string // WWW-Authenticate
		wantRetry  string // Retry-After
	}{
		{"missing", nil, nil, false, 401, "missing_key", `Bearer realm="api"`, ""},
		{"other scheme", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, nil, false, 401, "missing_key", `Bearer realm="api"`, ""},
		{"malformed", http.Header{"X-Api-Key": {"sk test"}}, nil, false, 401, "invalid_key",
			`Bearer realm="api", error="invalid_token", error_description="The API key is malformed: it must be a single token of letters, digits and - . _ ~ + /."`, ""},
		{"too long", http.Header{"X-Api-Key": {strings.Repeat("a", 300)}}, nil, false, 401, "invalid_key",
			`Bearer realm="api", error="invalid_token", error_description="The API key is longer than 256 bytes."`, ""},
		{"conflicting", http.Header{"X-Api-Key": {keyPro}, "Authorization": {"Bearer " + keyFree}}, nil, false, 401, "invalid_key",
			`Bearer realm="api", error="invalid_token", error_description="The request carries more than one API key, and they differ."`, ""},
		{"unknown", http.Header{"X-Api-Key": {"sk_test_nobody"}}, nil, false, 401, "invalid_key",
			`Bearer realm="api", error="invalid_token", error_description="The API key is not recognised."`, ""},
		{"revoked", http.Header{"X-Api-Key": {keyRevoked}}, nil, false, 401, "key_revoked",
			`Bearer realm="api", error="invalid_token", error_description="The API key has been revoked."`, ""},
		{"expired", http.Header{"Authorization": {"Bearer " + keyExpired}}, nil, false, 401, "key_expired",
			`Bearer realm="api", error="invalid_token", error_description="The API key has expired."`, ""},
		{"store down", http.Header{"X-Api-Key": {keyPro}}, errBackend, false, 503, "store_unavailable", "", "1"},
		{"store down, not found wrapped", http.Header{"X-Api-Key": {keyPro}}, errorsJoin(errBackend, store.ErrNotFound), false, 401, "invalid_key",
			`Bearer realm="api", error="invalid_token", error_description="The API key is not recognised."`, ""},
		{"store down, fail open", http.Header{"X-Api-Key": {keyPro}}, errBackend, true, 200, "", "", ""},
		{"pro", http.Header{"X-Api-Key": {keyPro}}, nil, false, 200, "", "", ""},
		{"pro bearer", http.Header{"Authorization": {"Bearer " + keyPro}}, nil, false, 200, "", "", ""},
		{"lapsed authenticates", http.Header{"Authorization": {"Bearer " + keyLapsed}}, nil, false, 200, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var s store.Store = &failingStore{Store: f.mem, lookupErr: tt.lookupErr}
			var got decisions
			p := newPaywall(t, s, f.clock, &paywall.Options{FailOpen: tt.failOpen, OnDecision: got.record})
			var (
				sawCaller *paywall.Caller
				reached   bool
			)
			h := p.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached = true
				sawCaller, _ = paywall.CallerFromContext(r.Context())
				w.WriteHeader(http.StatusOK)
			}))
			r := httptest.NewRequest("GET", "/hello", nil)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			ctxBefore := r.Context()
			w := serve(h, r)
			if r.Context() != ctxBefore {
				t.Error("the incoming request was modified")
			}
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("Www-Authenticate"); got != tt.wantAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantAuth)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			dl := got.all()
			if len(dl) != 1 || dl[0].Step != "authenticate" {
				t.Fatalf("decisions %+v, want one authenticate", dl)
			}
			if tt.wantStatus != 200 {
				if reached {
					t.Error("next handler reached")
				}
				p := decodeProblem(t, w)
				if p.Code != tt.wantCode || p.Detail == "" || !strings.HasPrefix(p.Type, "https://") {
					t.Errorf("problem %+v, want code %s", p, tt.wantCode)
				}
				if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "connection refused") {
					t.Errorf("back-end error leaked: %s", w.Body)
				}
				if w.Header().Get("Cache-Control") != "no-store" {
					t.Error("no Cache-Control: no-store")
				}
				if dl[0].Allowed || string(dl[0].Code) != tt.wantCode || dl[0].Status != tt.wantStatus || dl[0].Route != "" {
					t.Errorf("decision %+v", dl[0])
				}
				return
			}
			if tt.failOpen {
				if sawCaller != nil {
					t.Errorf("fail-open request has a Caller %+v", sawCaller)
				}
				if !dl[0].Allowed || dl[0].Code != paywall.CodeStoreUnavailable {
					t.Errorf("decision %+v, want allowed store_unavailable", dl[0])
				}
				return
			}
			if sawCaller == nil {
				t.Fatal("no Caller in the context")
			}
			if sawCaller.Key.Prefix == "" || sawCaller.Account.ID == "" || sawCaller.Balance != sawCaller.Account.Balance {
				t.Errorf("Caller %+v", sawCaller)
			}
			if !dl[0].Allowed || dl[0].Code != "" || dl[0].AccountID != sawCaller.Account.ID || dl[0].KeyPrefix != sawCaller.Key.Prefix {
				t.Errorf("decision %+v", dl[0])
			}
		})
	}
}

func errorsJoin(errs ...error) error { return errors.Join(errs...) }

func TestAuthenticateRealmAndStatus(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, &paywall.Options{
		Realm:  `my "api"`,
		Status: map[paywall.Code]int{paywall.CodeKeyRevoked: http.StatusForbidden},
	})
	h := p.Authenticate(ok)
	w := serve(h, request("GET", "/", "", ""))
	if got, want := w.Header().Get("Www-Authenticate"), `Bearer realm="my \"api\""`; got != want {
		t.Errorf("WWW-Authenticate = %s, want %s", got, want)
	}
	w = serve(h, request("GET", "/", keyRevoked, ""))
	if w.Code != http.StatusForbidden || w.Header().Get("Www-Authenticate") != "" {
		t.Errorf("revoked with override: %d %q", w.Code, w.Header().Get("Www-Authenticate"))
	}
	if p := decodeProblem(t, w); p.Code != "key_revoked" {
		t.Errorf("code %q", p.Code)
	}
}

func TestCallerFromContextWithout(t *testing.T) {
	if c, ok := paywall.CallerFromContext(httptest.NewRequest("GET", "/", nil).Context()); ok || c != nil {
		t.Errorf("CallerFromContext of a bare context = %v, %v", c, ok)
	}
}

func TestContextValuesPassThrough(t *testing.T) {
	type key struct{}
	f := newFixture(t)
	p := f.paywall(t, nil)
	h := p.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(key{}) != "v" {
			t.Error("parent context value lost")
		}
	}))
	r := request("GET", "/", keyPro, "")
	r = r.WithContext(contextWithValue(r, key{}, "v"))
	serve(h, r)
}
