package paywall_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// TestNoKeyLeak triggers every denial paywall produces (and the allowed and
// refund paths) with distinctive keys, in every body format, and checks that
// no key's text — whole, or its secret part after the display prefix —
// appears in any response header, body or decision.
func TestNoKeyLeak(t *testing.T) {
	const tail = "9f8e7d6c5b4a39281706"
	canary := func(name string) string { return "sk_test_SECRET_canary_" + name + "_" + tail }
	var (
		kPro     = canary("pro")
		kFree    = canary("free")
		kLapsed  = canary("lapsed")
		kRevoked = canary("revoked")
		kExpired = canary("expired")
		kQuota   = canary("quota")
		kUnknown = canary("unknown")
		kOther   = canary("other")
	)
	secrets := []string{tail, kPro, kFree, kLapsed, kRevoked, kExpired, kQuota, kUnknown, kOther}

	f := newFixture(t)
	ctx := context.Background()
	for raw, acct := range map[string]string{kPro: "acct_pro", kFree: "acct_free", kLapsed: "acct_lapsed", kRevoked: "acct_pro", kExpired: "acct_pro", kQuota: "acct_quota"} {
		k := store.NewKey(raw, acct)
		k.Revoked = raw == kRevoked
		if raw == kExpired {
			k.ExpiresAt = t0.Add(-time.Second)
		}
		if err := f.mem.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.mem.TopUp(ctx, "acct_free", 5); err != nil {
		t.Fatal(err)
	}

	var got decisions
	fs := &failingStore{Store: f.mem}
	p := newPaywall(t, fs, f.clock, &paywall.Options{
		OnDecision: got.record, UpgradeURL: "https://example.com/upgrade", PaymentURL: "https://example.com/pay",
		KeyQueryParam: "key", IdempotencyWindow: time.Hour,
	})
	costErr := paywall.ChargeOptions{CostFunc: func(*http.Request) (int64, error) { return 0, errors.New("bad size parameter") }}
	mux := http.NewServeMux()
	mux.Handle("GET /hello", p.Authenticate(ok))
	mux.Handle("GET /reports", p.Authenticate(p.Require(paywall.Requirement{Features: []string{"reports"}})(ok)))
	mux.Handle("GET /team", p.Authenticate(p.Require(paywall.Requirement{Plans: []string{"team"}})(ok)))
	mux.Handle("POST /generate", p.Authenticate(p.Require(paywall.Requirement{})(p.Charge(10)(ok))))
	mux.Handle("POST /fail", p.Authenticate(p.ChargeWith(paywall.ChargeOptions{Cost: 1, Refund: true})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))))
	mux.Handle("POST /sized", p.Authenticate(p.ChargeWith(costErr)(ok)))
	mux.Handle("POST /other", p.Authenticate(p.Charge(1)(ok)))
	// /twice sends a copy of its request through the mux while it is
	// being handled, and answers with what the copy got: 409.
	mux.Handle("POST /twice", p.Authenticate(p.Charge(1)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner := httptest.NewRecorder()
		mux.ServeHTTP(inner, r.Clone(context.Background()))
		for k, v := range inner.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(inner.Code)
		_, _ = w.Write(inner.Body.Bytes())
	}))))

	type call struct {
		name, method, path string
		header             http.Header
		lookupErr          error
		spendErr           error
		wantCode           string
	}
	bearer := func(k string) http.Header { return http.Header{"Authorization": {"Bearer " + k}} }
	apiKey := func(k ...string) http.Header { return http.Header{"X-Api-Key": k} }
	// idem adds an Idempotency-Key to h; the API key itself makes a
	// conspicuous one.
	idem := func(h http.Header, v string) http.Header {
		h.Set("Idempotency-Key", v)
		return h
	}
	calls := []call{
		{"missing (other scheme)", "GET", "/hello", http.Header{"Authorization": {"Basic " + kPro}}, nil, nil, "missing_key"},
		{"malformed", "GET", "/hello", apiKey(kPro + " " + kPro), nil, nil, "invalid_key"},
		{"malformed bearer", "GET", "/hello", bearer(kPro + `"` + kPro), nil, nil, "invalid_key"},
		{"oversized", "GET", "/hello", apiKey(strings.Repeat(kPro, 20)), nil, nil, "invalid_key"},
		{"conflicting", "GET", "/hello", http.Header{"Authorization": {"Bearer " + kPro}, "X-Api-Key": {kOther}}, nil, nil, "invalid_key"},
		{"conflicting in query", "GET", "/hello?key=" + kOther, apiKey(kPro), nil, nil, "invalid_key"},
		{"unknown", "GET", "/hello", bearer(kUnknown), nil, nil, "invalid_key"},
		{"revoked", "GET", "/hello", bearer(kRevoked), nil, nil, "key_revoked"},
		{"expired", "GET", "/hello", apiKey(kExpired), nil, nil, "key_expired"},
		{"lookup fails", "GET", "/hello", bearer(kPro), errBackend, nil, "store_unavailable"},
		{"inactive", "GET", "/reports", bearer(kLapsed), nil, nil, "subscription_inactive"},
		{"feature", "GET", "/reports", bearer(kFree), nil, nil, "feature_not_in_plan"},
		{"plan", "GET", "/team", bearer(kPro), nil, nil, "feature_not_in_plan"},
		{"credits", "POST", "/generate", bearer(kFree), nil, nil, "insufficient_credits"},
		{"quota", "POST", "/generate", apiKey(kQuota), nil, nil, "quota_exhausted"},
		{"spend fails", "POST", "/generate", bearer(kPro), nil, errBackend, "store_unavailable"},
		{"cost error", "POST", "/sized", bearer(kPro), nil, nil, "invalid_request"},
		{"allowed", "POST", "/generate", bearer(kPro), nil, nil, ""},
		{"refunded", "POST", "/fail", bearer(kPro), nil, nil, ""},
		{"idempotency key malformed", "POST", "/generate", idem(bearer(kPro), `"`+kPro), nil, nil, "invalid_request"},
		{"idempotency key too long", "POST", "/generate", idem(bearer(kPro), strings.Repeat(kPro, 10)), nil, nil, "invalid_request"},
		{"idempotency key charged, then replayed", "POST", "/generate", idem(bearer(kPro), `"`+kPro+`"`), nil, nil, ""},
		{"idempotency key reused", "POST", "/other", idem(bearer(kPro), kPro), nil, nil, "idempotency_key_reused"},
		{"idempotency key in flight", "POST", "/twice", idem(bearer(kPro), kOther), nil, nil, "idempotency_in_progress"},
	}
	seen := map[string]bool{}
	for _, c := range calls {
		for _, accept := range []string{"", "text/html", "text/plain"} {
			fs.mu.Lock()
			fs.lookupErr, fs.spendErr = c.lookupErr, c.spendErr
			fs.mu.Unlock()
			r := httptest.NewRequest(c.method, c.path, nil)
			for k, v := range c.header {
				r.Header[k] = v
			}
			if c.path == "/twice" { // a new key each time, so that the first copy is charged
				r.Header.Set("Idempotency-Key", kOther+accept)
			}
			if accept != "" {
				r.Header.Set("Accept", accept)
			}
			w := serve(mux, r)
			if c.wantCode != "" {
				if w.Code < 400 || !strings.Contains(w.Body.String(), c.wantCode) {
					t.Errorf("%s (%q): status %d, body lacks %s:\n%s", c.name, accept, w.Code, c.wantCode, w.Body)
				}
				seen[c.wantCode] = true
			}
			var dump strings.Builder
			fmt.Fprintf(&dump, "%v\n%s", w.Header(), w.Body)
			for _, s := range secrets {
				if strings.Contains(dump.String(), s) {
					t.Errorf("%s (%q): response contains %q:\n%s", c.name, accept, s, dump.String())
				}
			}
		}
	}
	for _, code := range []paywall.Code{
		paywall.CodeMissingKey, paywall.CodeInvalidKey, paywall.CodeKeyRevoked, paywall.CodeKeyExpired,
		paywall.CodeSubscriptionInactive, paywall.CodeFeatureNotInPlan, paywall.CodeInsufficientCredits,
		paywall.CodeQuotaExhausted, paywall.CodeStoreUnavailable, paywall.CodeInvalidRequest,
		paywall.CodeIdempotencyKeyReused, paywall.CodeIdempotencyInProgress,
	} {
		if !seen[string(code)] {
			t.Errorf("denial %s not triggered", code)
		}
	}
	dl := got.all()
	steps := map[string]bool{}
	for _, d := range dl {
		steps[d.Step] = true
		if d.Replay {
			steps["replay"] = true
		}
		s := fmt.Sprintf("%#v", d)
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("decision contains %q: %s", sec, s)
			}
		}
	}
	for _, s := range []string{"authenticate", "require", "charge", "refund", "replay"} {
		if !steps[s] {
			t.Errorf("no %s decision among %d", s, len(dl))
		}
	}
}
