package paywall_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
)

func TestWriteDenialNegotiation(t *testing.T) {
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	tests := []struct {
		accept string
		want   string
	}{
		{"", "application/problem+json"},
		{"*/*", "application/problem+json"},
		{"application/json", "application/problem+json"},
		{"application/problem+json", "application/problem+json"},
		{"application/*", "application/problem+json"},
		{"application/json, text/plain, */*", "application/problem+json"}, // axios
		{browser, "text/html; charset=utf-8"},
		{"TEXT/HTML", "text/html; charset=utf-8"},
		{"text/html;q=0.5, application/json", "application/problem+json"},
		{"text/html, application/json;q=0.9", "text/html; charset=utf-8"},
		{"text/html;level=1;q=0.9, application/json;q=0.8", "text/html; charset=utf-8"},
		{"text/html;q=0", "text/plain; charset=utf-8"},
		{"text/plain", "text/plain; charset=utf-8"},
		{"text/*", "text/plain; charset=utf-8"},
		{"text/plain, text/html;q=0.5", "text/plain; charset=utf-8"},
		{"image/png", "text/plain; charset=utf-8"},
		{"application/json;q=0, */*;q=0.1", "application/problem+json"},
		{"garbage", "application/problem+json"},
		{"text/html;q=bogus", "text/html; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			w := httptest.NewRecorder()
			paywall.WriteDenial(w, r, &paywall.Denial{Code: paywall.CodeFeatureNotInPlan, Detail: "no"})
			if got := w.Header().Get("Content-Type"); got != tt.want {
				t.Errorf("Content-Type = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteDenialHeaders(t *testing.T) {
	tests := []struct {
		name      string
		d         paywall.Denial
		status    int
		auth      string
		retry     string
		extraHdrs map[string]string
	}{
		{"missing key", paywall.Denial{Code: paywall.CodeMissingKey}, 401, `Bearer realm="api"`, "", nil},
		{"realm", paywall.Denial{Code: paywall.CodeMissingKey, Realm: `a\b`}, 401, `Bearer realm="a\\b"`, "", nil},
		{"invalid key, no detail", paywall.Denial{Code: paywall.CodeInvalidKey}, 401,
			`Bearer realm="api", error="invalid_token", error_description="Invalid API key"`, "", nil},
		{"description sanitised", paywall.Denial{Code: paywall.CodeKeyExpired, Detail: "say \"hi\" \\ ünïcode\r\n"}, 401,
			`Bearer realm="api", error="invalid_token", error_description="say 'hi' / ?n?code??"`, "", nil},
		{"other code at 401", paywall.Denial{Code: paywall.CodeFeatureNotInPlan, Status: 401}, 401, `Bearer realm="api"`, "", nil},
		{"402", paywall.Denial{Code: paywall.CodeInsufficientCredits}, 402, "", "", nil},
		{"retry rounds up", paywall.Denial{Code: paywall.CodeQuotaExhausted, RetryAfter: 1500 * time.Millisecond}, 402, "", "2", nil},
		{"retry at least 1", paywall.Denial{Code: paywall.CodeRateLimited, RetryAfter: time.Nanosecond}, 429, "", "1", nil},
		{"retry exact", paywall.Denial{Code: paywall.CodeStoreUnavailable, RetryAfter: 3 * time.Second}, 503, "", "3", nil},
		{"status out of range", paywall.Denial{Code: paywall.CodeRateLimited, Status: 200}, 429, "", "", nil},
		{"unknown code", paywall.Denial{Code: "teapot"}, 403, "", "", nil},
		{"extra headers", paywall.Denial{Code: paywall.CodeRateLimited, Header: http.Header{
			"Ratelimit":     {`"burst";r=0;t=5`},
			"Cache-Control": {"public"},
		}}, 429, "", "", map[string]string{"Ratelimit": `"burst";r=0;t=5`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("Content-Encoding", "gzip") // set by a handler before it denied
			w.Header().Set("Etag", `"x"`)
			paywall.WriteDenial(w, httptest.NewRequest("GET", "/", nil), &tt.d)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			h := w.Header()
			want := map[string]string{
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"Www-Authenticate":       tt.auth,
				"Retry-After":            tt.retry,
				"Content-Encoding":       "",
				"Etag":                   "",
				"Content-Length":         strconv.Itoa(w.Body.Len()),
			}
			for k, v := range tt.extraHdrs {
				want[k] = v
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if n := len(h.Values("Cache-Control")); n != 1 {
				t.Errorf("%d Cache-Control lines", n)
			}
			decodeProblem(t, w)
		})
	}
}

func TestWriteDenialJSON(t *testing.T) {
	d := &paywall.Denial{
		Code:       paywall.CodeQuotaExhausted,
		Detail:     "This request costs 10 credits; <b>none</b> left.",
		Balance:    0,
		HasBalance: true,
		Cost:       10,
		RefillAt:   time.Date(2025, 3, 2, 11, 0, 0, 0, time.FixedZone("CET", 3600)),
		RetryAfter: 90 * time.Second,
		UpgradeURL: "https://example.com/upgrade",
		PaymentURL: "https://example.com/pay",
		Extensions: map[string]any{
			"violated-policies": []string{"monthly"},
			"account_hint":      "see dashboard",
			"code":              "overridden?",  // reserved: dropped
			"bad_value":         make(chan int), // cannot be encoded: dropped
		},
	}
	w := httptest.NewRecorder()
	paywall.WriteDenial(w, httptest.NewRequest("GET", "/", nil), d)
	want := `{"type":"https://go402.dev/problems/quota_exhausted","title":"Quota exhausted","status":402,` +
		`"detail":"This request costs 10 credits; \u003cb\u003enone\u003c/b\u003e left.","code":"quota_exhausted",` +
		`"balance":0,"cost":10,"refill_at":"2025-03-02T10:00:00Z","retry_after":90,` +
		`"upgrade_url":"https://example.com/upgrade","payment_url":"https://example.com/pay",` +
		`"account_hint":"see dashboard","violated-policies":["monthly"]}` + "\n"
	if got := w.Body.String(); got != want {
		t.Errorf("body\n%s\nwant\n%s", got, want)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
}

func TestWriteDenialProblemTypes(t *testing.T) {
	want := map[paywall.Code][2]string{
		paywall.CodeMissingKey:           {"401", "https://go402.dev/problems/missing_key"},
		paywall.CodeInvalidKey:           {"401", "https://go402.dev/problems/invalid_key"},
		paywall.CodeKeyRevoked:           {"401", "https://go402.dev/problems/key_revoked"},
		paywall.CodeKeyExpired:           {"401", "https://go402.dev/problems/key_expired"},
		paywall.CodeSubscriptionInactive: {"402", "https://go402.dev/problems/subscription_inactive"},
		paywall.CodeFeatureNotInPlan:     {"402", "https://go402.dev/problems/feature_not_in_plan"},
		paywall.CodeInsufficientCredits:  {"402", "https://paymentauth.org/problems/payment-insufficient"},
		paywall.CodeQuotaExhausted:       {"402", "https://go402.dev/problems/quota_exhausted"},
		paywall.CodeRateLimited:          {"429", "https://iana.org/assignments/http-problem-types#quota-exceeded"},
		paywall.CodeStoreUnavailable:     {"503", "https://go402.dev/problems/store_unavailable"},
		paywall.CodeInvalidRequest:       {"400", "https://go402.dev/problems/invalid_request"},
		"custom_thing":                   {"403", "about:blank"},
	}
	for code, w0 := range want {
		w := httptest.NewRecorder()
		paywall.WriteDenial(w, nil, &paywall.Denial{Code: code})
		p := decodeProblem(t, w)
		if strconv.Itoa(p.Status) != w0[0] || p.Type != w0[1] || p.Title == "" || p.Code != string(code) {
			t.Errorf("%s: %+v, want %v", code, p, w0)
		}
	}
	// An explicit type and title win; an explicit type without a title
	// gets the status text.
	w := httptest.NewRecorder()
	paywall.WriteDenial(w, nil, &paywall.Denial{Code: paywall.CodeRateLimited, Type: "https://example.com/slow"})
	if p := decodeProblem(t, w); p.Type != "https://example.com/slow" || p.Title != "Too Many Requests" {
		t.Errorf("%+v", p)
	}
}

func TestWriteDenialHTML(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	paywall.WriteDenial(w, r, &paywall.Denial{
		Code:       paywall.CodeFeatureNotInPlan,
		Detail:     `The free plan does not include <script>alert(1)</script>.`,
		Features:   []string{"reports"},
		Balance:    7,
		HasBalance: true,
		UpgradeURL: "javascript:alert(1)",
		PaymentURL: "https://example.com/pay?a=1&b=2",
	})
	body := w.Body.String()
	for _, want := range []string{
		"<!doctype html>", "<title>402 Feature not in plan</title>", "402 Payment Required",
		"&lt;script&gt;alert(1)&lt;/script&gt;", "7 credits", "reports",
		`href="#ZgotmplZ"`, // html/template refuses the javascript: URL
		`href="https://example.com/pay?a=1&amp;b=2"`, "<code>feature_not_in_plan</code>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("unescaped script")
	}
}

func TestWriteDenialText(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept", "text/plain")
	w := httptest.NewRecorder()
	paywall.WriteDenial(w, r, &paywall.Denial{
		Code: paywall.CodeInsufficientCredits, Detail: "This request costs 10 credits; the balance is 3.",
		Balance: 3, HasBalance: true, Cost: 10, PaymentURL: "https://example.com/pay",
	})
	want := "402 Payment Required: Payment Insufficient\n" +
		"This request costs 10 credits; the balance is 3.\n" +
		"code: insufficient_credits\nbalance: 3\ncost: 10\npayment_url: https://example.com/pay\n"
	if got := w.Body.String(); got != want {
		t.Errorf("body\n%s\nwant\n%s", got, want)
	}
}

func TestWriteDenialHead(t *testing.T) {
	w := httptest.NewRecorder()
	paywall.WriteDenial(w, httptest.NewRequest("HEAD", "/", nil), &paywall.Denial{Code: paywall.CodeMissingKey})
	if w.Code != 401 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d %q %q", w.Code, w.Body, w.Header().Get("Content-Length"))
	}
}
