package paywall_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

func TestExtractKey(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	pq := f.paywall(t, &paywall.Options{KeyQueryParam: "api_key", MaxKeyLength: 16})
	pc := f.paywall(t, &paywall.Options{KeyHeaders: []string{"x-custom-key", "authorization"}})

	long := strings.Repeat("k", paywall.DefaultMaxKeyLength+1)
	tests := []struct {
		name    string
		p       *paywall.Paywall
		target  string
		header  http.Header
		want    string
		wantErr error
	}{
		{"none", p, "/", nil, "", paywall.ErrMissingKey},
		{"bearer", p, "/", http.Header{"Authorization": {"Bearer sk_abc"}}, "sk_abc", nil},
		{"bearer lower case", p, "/", http.Header{"Authorization": {"bearer sk_abc"}}, "sk_abc", nil},
		{"bearer upper case", p, "/", http.Header{"Authorization": {"BEARER sk_abc"}}, "sk_abc", nil},
		{"bearer several spaces", p, "/", http.Header{"Authorization": {"Bearer   sk_abc"}}, "sk_abc", nil},
		{"bearer padded", p, "/", http.Header{"Authorization": {" Bearer sk_abc\t"}}, "sk_abc", nil},
		{"bearer b64token", p, "/", http.Header{"Authorization": {"Bearer aZ09-._~+/=="}}, "aZ09-._~+/==", nil},
		{"bearer no token", p, "/", http.Header{"Authorization": {"Bearer"}}, "", paywall.ErrMalformedKey},
		{"bearer blank token", p, "/", http.Header{"Authorization": {"Bearer    "}}, "", paywall.ErrMalformedKey},
		{"bearer two tokens", p, "/", http.Header{"Authorization": {"Bearer a b"}}, "", paywall.ErrMalformedKey},
		{"bearer tab", p, "/", http.Header{"Authorization": {"Bearer\tsk_abc"}}, "", paywall.ErrMalformedKey},
		{"bearer = inside", p, "/", http.Header{"Authorization": {"Bearer a=b"}}, "", paywall.ErrMalformedKey},
		{"bearer only =", p, "/", http.Header{"Authorization": {"Bearer =="}}, "", paywall.ErrMalformedKey},
		{"bearer non-ASCII", p, "/", http.Header{"Authorization": {"Bearer sk_é"}}, "", paywall.ErrMalformedKey},
		{"bearer control", p, "/", http.Header{"Authorization": {"Bearer sk\x00x"}}, "", paywall.ErrMalformedKey},
		{"bearer quote", p, "/", http.Header{"Authorization": {`Bearer sk"x`}}, "", paywall.ErrMalformedKey},
		{"empty authorization", p, "/", http.Header{"Authorization": {""}}, "", paywall.ErrMalformedKey},
		{"basic ignored", p, "/", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", paywall.ErrMissingKey},
		{"payment ignored", p, "/", http.Header{"Authorization": {"Payment eyJ9"}, "X-Api-Key": {"sk_abc"}}, "sk_abc", nil},
		{"bearerx is another scheme", p, "/", http.Header{"Authorization": {"Bearerx sk_abc"}}, "", paywall.ErrMissingKey},
		{"x-api-key", p, "/", http.Header{"X-Api-Key": {"sk_abc"}}, "sk_abc", nil},
		{"x-api-key padded", p, "/", http.Header{"X-Api-Key": {"  sk_abc "}}, "sk_abc", nil},
		{"x-api-key empty", p, "/", http.Header{"X-Api-Key": {""}}, "", paywall.ErrMalformedKey},
		{"x-api-key with bearer", p, "/", http.Header{"X-Api-Key": {"Bearer sk_abc"}}, "", paywall.ErrMalformedKey},
		{"same key twice", p, "/", http.Header{"Authorization": {"Bearer sk_abc"}, "X-Api-Key": {"sk_abc"}}, "sk_abc", nil},
		{"different keys", p, "/", http.Header{"Authorization": {"Bearer sk_abc"}, "X-Api-Key": {"sk_def"}}, "", paywall.ErrMalformedKey},
		{"different keys in one header", p, "/", http.Header{"X-Api-Key": {"sk_abc", "sk_def"}}, "", paywall.ErrMalformedKey},
		{"max length", p, "/", http.Header{"X-Api-Key": {long[1:]}}, long[1:], nil},
		{"too long", p, "/", http.Header{"X-Api-Key": {long}}, "", paywall.ErrMalformedKey},
		{"too long bearer", p, "/", http.Header{"Authorization": {"Bearer " + long}}, "", paywall.ErrMalformedKey},
		{"query off by default", p, "/?api_key=sk_abc", nil, "", paywall.ErrMissingKey},
		{"query opt-in", pq, "/?api_key=sk_abc", nil, "sk_abc", nil},
		{"query escaped", pq, "/?api_key=sk%2Babc", nil, "sk+abc", nil},
		{"query empty", pq, "/?api_key=", nil, "", paywall.ErrMalformedKey},
		{"query too long", pq, "/?api_key=sk_0123456789abcdef", nil, "", paywall.ErrMalformedKey},
		{"query and same header", pq, "/?api_key=sk_abc", http.Header{"X-Api-Key": {"sk_abc"}}, "sk_abc", nil},
		{"query and other header", pq, "/?api_key=sk_abc", http.Header{"X-Api-Key": {"sk_def"}}, "", paywall.ErrMalformedKey},
		{"custom header", pc, "/", http.Header{"X-Custom-Key": {"sk_abc"}}, "sk_abc", nil},
		{"custom drops x-api-key", pc, "/", http.Header{"X-Api-Key": {"sk_abc"}}, "", paywall.ErrMissingKey},
		{"custom keeps bearer", pc, "/", http.Header{"Authorization": {"Bearer sk_abc"}}, "sk_abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			r.Header = tt.header
			if r.Header == nil {
				r.Header = http.Header{}
			}
			got, err := tt.p.ExtractKey(r)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("ExtractKey = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzExtractKey(f *testing.F) {
	for _, s := range [][3]string{
		{"Bearer sk_live_abc", "", ""},
		{"bearer  sk_test_x==", "sk_test_x==", ""},
		{"Basic dXNlcjpwYXNz", "k", "api_key=k"},
		{"Bearer", "", "api_key=%00"},
		{"", "\x00", "api_key=a&api_key=b"},
		{"Bearer a b", " sk é ", "api_key=sk%2B1;x=2"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	p, err := paywall.New(store.NewMemory(nil), &paywall.Options{KeyQueryParam: "api_key", MaxKeyLength: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, authorization, apiKey, rawQuery string) {
		r := &http.Request{Method: "GET", Header: http.Header{}, URL: &url.URL{Path: "/", RawQuery: rawQuery}}
		r.Header["Authorization"] = []string{authorization}
		r.Header["X-Api-Key"] = []string{apiKey}
		key, err := p.ExtractKey(r)
		if err != nil {
			if key != "" {
				t.Fatalf("key %q with error %v", key, err)
			}
			if !errors.Is(err, paywall.ErrMissingKey) && !errors.Is(err, paywall.ErrMalformedKey) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if key == "" || len(key) > 64 {
			t.Fatalf("key %q of length %d accepted", key, len(key))
		}
		for i := 0; i < len(key); i++ {
			c := key[i]
			if c <= ' ' || c >= 0x7f || strings.IndexByte(`"\,;`, c) >= 0 {
				t.Fatalf("key %q contains %q", key, c)
			}
		}
		if !strings.Contains(authorization, key) && !strings.Contains(apiKey, key) && r.URL.Query().Get("api_key") != key {
			t.Fatalf("key %q found in none of the inputs", key)
		}
	})
}

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
		for _, shared := range []bool{false, true} {
			name := tt.name + "/copies"
			if shared {
				name = tt.name + "/shared records"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				var s store.Store = &failingStore{Store: f.mem, lookupErr: tt.lookupErr}
				if shared {
					s = &sharingStore{failingStore: s.(*failingStore), mem: f.mem}
				}
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
					if dl[0].Allowed || string(dl[0].Code) != tt.wantCode || dl[0].Status != tt.wantStatus || dl[0].Route != "/hello" {
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
}

func errorsJoin(errs ...error) error { return errors.Join(errs...) }

// A store whose LookupShared returns neither records nor an error is a
// broken store: the request is refused as when the store fails, or passed
// on without a Caller with FailOpen, never a panic.
func TestAuthenticateNoRecord(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		f := newFixture(t)
		s := &sharingStore{failingStore: &failingStore{Store: f.mem}, mem: f.mem, noRecord: true}
		p := newPaywall(t, s, f.clock, &paywall.Options{FailOpen: failOpen})
		var sawCaller bool
		h := p.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, sawCaller = paywall.CallerFromContext(r.Context())
		}))
		w := serve(h, request("GET", "/hello", keyPro, ""))
		want := http.StatusServiceUnavailable
		if failOpen {
			want = http.StatusOK
		}
		if w.Code != want || sawCaller {
			t.Errorf("FailOpen %v: status %d, caller %v; want %d and no caller", failOpen, w.Code, sawCaller, want)
		}
	}
}

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
