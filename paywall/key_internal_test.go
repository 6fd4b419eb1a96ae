package paywall

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go402/go402/store"
)

// mustNew returns a Paywall on an empty memory store.
func mustNew(t testing.TB, opts *Options) *Paywall {
	t.Helper()
	p, err := New(store.NewMemory(nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExtractKey(t *testing.T) {
	p := mustNew(t, nil)
	pq := mustNew(t, &Options{KeyQueryParam: "api_key", MaxKeyLength: 16})
	pc := mustNew(t, &Options{KeyHeaders: []string{"x-custom-key", "authorization"}})

	long := strings.Repeat("k", defaultMaxKeyLength+1)
	tests := []struct {
		name    string
		p       *Paywall
		target  string
		header  http.Header
		want    string
		wantErr error
	}{
		{"none", p, "/", nil, "", errMissingKey},
		{"bearer", p, "/", http.Header{"Authorization": {"Bearer sk_abc"}}, "sk_abc", nil},
		{"bearer lower case", p, "/", http.Header{"Authorization": {"bearer sk_abc"}}, "sk_abc", nil},
		{"bearer upper case", p, "/", http.Header{"Authorization": {"BEARER sk_abc"}}, "sk_abc", nil},
		{"bearer several spaces", p, "/", http.Header{"Authorization": {"Bearer   sk_abc"}}, "sk_abc", nil},
		{"bearer padded", p, "/", http.Header{"Authorization": {" Bearer sk_abc\t"}}, "sk_abc", nil},
		{"bearer b64token", p, "/", http.Header{"Authorization": {"Bearer aZ09-._~+/=="}}, "aZ09-._~+/==", nil},
		{"bearer no token", p, "/", http.Header{"Authorization": {"Bearer"}}, "", errMalformedKey},
		{"bearer blank token", p, "/", http.Header{"Authorization": {"Bearer    "}}, "", errMalformedKey},
		{"bearer two tokens", p, "/", http.Header{"Authorization": {"Bearer a b"}}, "", errMalformedKey},
		{"bearer tab", p, "/", http.Header{"Authorization": {"Bearer\tsk_abc"}}, "", errMalformedKey},
		{"bearer = inside", p, "/", http.Header{"Authorization": {"Bearer a=b"}}, "", errMalformedKey},
		{"bearer only =", p, "/", http.Header{"Authorization": {"Bearer =="}}, "", errMalformedKey},
		{"bearer non-ASCII", p, "/", http.Header{"Authorization": {"Bearer sk_é"}}, "", errMalformedKey},
		{"bearer control", p, "/", http.Header{"Authorization": {"Bearer sk\x00x"}}, "", errMalformedKey},
		{"bearer quote", p, "/", http.Header{"Authorization": {`Bearer sk"x`}}, "", errMalformedKey},
		{"empty authorization", p, "/", http.Header{"Authorization": {""}}, "", errMalformedKey},
		{"basic ignored", p, "/", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", errMissingKey},
		{"payment ignored", p, "/", http.Header{"Authorization": {"Payment eyJ9"}, "X-Api-Key": {"sk_abc"}}, "sk_abc", nil},
		{"bearerx is another scheme", p, "/", http.Header{"Authorization": {"Bearerx sk_abc"}}, "", errMissingKey},
		{"x-api-key", p, "/", http.Header{"X-Api-Key": {"sk_abc"}}, "sk_abc", nil},
		{"x-api-key padded", p, "/", http.Header{"X-Api-Key": {"  sk_abc "}}, "sk_abc", nil},
		{"x-api-key empty", p, "/", http.Header{"X-Api-Key": {""}}, "", errMalformedKey},
		{"x-api-key with bearer", p, "/", http.Header{"X-Api-Key": {"Bearer sk_abc"}}, "", errMalformedKey},
		{"same key twice", p, "/", http.Header{"Authorization": {"Bearer sk_abc"}, "X-Api-Key": {"sk_abc"}}, "sk_abc", nil},
		{"different keys", p, "/", http.Header{"Authorization": {"Bearer sk_abc"}, "X-Api-Key": {"sk_def"}}, "", errMalformedKey},
		{"different keys in one header", p, "/", http.Header{"X-Api-Key": {"sk_abc", "sk_def"}}, "", errMalformedKey},
		{"max length", p, "/", http.Header{"X-Api-Key": {long[1:]}}, long[1:], nil},
		{"too long", p, "/", http.Header{"X-Api-Key": {long}}, "", errMalformedKey},
		{"too long bearer", p, "/", http.Header{"Authorization": {"Bearer " + long}}, "", errMalformedKey},
		{"query off by default", p, "/?api_key=sk_abc", nil, "", errMissingKey},
		{"query opt-in", pq, "/?api_key=sk_abc", nil, "sk_abc", nil},
		{"query escaped", pq, "/?api_key=sk%2Babc", nil, "sk+abc", nil},
		{"query empty", pq, "/?api_key=", nil, "", errMalformedKey},
		{"query too long", pq, "/?api_key=sk_0123456789abcdef", nil, "", errMalformedKey},
		{"query and same header", pq, "/?api_key=sk_abc", http.Header{"X-Api-Key": {"sk_abc"}}, "sk_abc", nil},
		{"query and other header", pq, "/?api_key=sk_abc", http.Header{"X-Api-Key": {"sk_def"}}, "", errMalformedKey},
		{"custom header", pc, "/", http.Header{"X-Custom-Key": {"sk_abc"}}, "sk_abc", nil},
		{"custom drops x-api-key", pc, "/", http.Header{"X-Api-Key": {"sk_abc"}}, "", errMissingKey},
		{"custom keeps bearer", pc, "/", http.Header{"Authorization": {"Bearer sk_abc"}}, "sk_abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			r.Header = tt.header
			if r.Header == nil {
				r.Header = http.Header{}
			}
			got, err := tt.p.extractKey(r)
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
	p, err := New(store.NewMemory(nil), &Options{KeyQueryParam: "api_key", MaxKeyLength: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, authorization, apiKey, rawQuery string) {
		r := &http.Request{Method: "GET", Header: http.Header{}, URL: &url.URL{Path: "/", RawQuery: rawQuery}}
		r.Header["Authorization"] = []string{authorization}
		r.Header["X-Api-Key"] = []string{apiKey}
		key, err := p.extractKey(r)
		if err != nil {
			if key != "" {
				t.Fatalf("key %q with error %v", key, err)
			}
			if !errors.Is(err, errMissingKey) && !errors.Is(err, errMalformedKey) {
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
