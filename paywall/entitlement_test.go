package paywall_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

func TestRequire(t *testing.T) {
	const upgrade, pay = "https://example.com/upgrade", "https://example.com/pay"
	tests := []struct {
		name         string
		key          string
		req          paywall.Requirement
		advance      time.Duration
		wantStatus   int
		wantCode     string
		wantFeatures []string
		wantPlans    []string
		wantUpgrade  string
		wantPayment  string
	}{
		{"active, nothing required", keyPro, paywall.Requirement{}, 0, 200, "", nil, nil, "", ""},
		{"trialing passes", keyQuota, paywall.Requirement{}, 0, 200, "", nil, nil, "", ""},
		{"feature present", keyPro, paywall.Requirement{Features: []string{"reports"}}, 0, 200, "", nil, nil, "", ""},
		{"all features present", keyPro, paywall.Requirement{Features: []string{"reports", "export"}}, 0, 200, "", nil, nil, "", ""},
		{"feature missing", keyFree, paywall.Requirement{Features: []string{"reports"}}, 0, 402, "feature_not_in_plan", []string{"reports"}, nil, upgrade, ""},
		{"only missing features listed", keyPro, paywall.Requirement{Features: []string{"reports", "sso", "audit"}}, 0, 402, "feature_not_in_plan", []string{"sso", "audit"}, nil, upgrade, ""},
		{"plan allowed", keyPro, paywall.Requirement{Plans: []string{"team", "pro"}}, 0, 200, "", nil, nil, "", ""},
		{"plan not allowed", keyFree, paywall.Requirement{Plans: []string{"team", "pro"}}, 0, 402, "feature_not_in_plan", nil, []string{"team", "pro"}, upgrade, ""},
		{"past due", keyLapsed, paywall.Requirement{}, 0, 402, "subscription_inactive", nil, nil, upgrade, pay},
		{"past due before features", keyLapsed, paywall.Requirement{Features: []string{"nope"}}, 0, 402, "subscription_inactive", nil, nil, upgrade, pay},
		{"past due allowed", keyLapsed, paywall.Requirement{AllowInactive: true, Features: []string{"reports"}}, 0, 200, "", nil, nil, "", ""},
		{"period ended", "sk_test_period_0123456789abcdef", paywall.Requirement{}, 2 * time.Hour, 402, "subscription_inactive", nil, nil, upgrade, pay},
		{"period not yet ended", "sk_test_period_0123456789abcdef", paywall.Requirement{}, 30 * time.Minute, 200, "", nil, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			if err := f.mem.PutAccount(ctx, store.Account{ID: "acct_period", Plan: "pro", PeriodEnd: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := f.mem.PutKey(ctx, store.NewKey("sk_test_period_0123456789abcdef", "acct_period")); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(tt.advance)
			var got decisions
			p := f.paywall(t, &paywall.Options{UpgradeURL: upgrade, PaymentURL: pay, OnDecision: got.record})
			h := p.Authenticate(p.Require(tt.req)(ok))
			w := serve(h, request("GET", "/reports", tt.key, ""))
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			dl := got.all()
			if len(dl) != 2 || dl[1].Step != "require" {
				t.Fatalf("decisions %+v", dl)
			}
			if tt.wantStatus == 200 {
				if w.Body.String() != "ok" || !dl[1].Allowed {
					t.Errorf("body %q, decision %+v", w.Body, dl[1])
				}
				return
			}
			pr := decodeProblem(t, w)
			if pr.Code != tt.wantCode || !slices.Equal(pr.Features, tt.wantFeatures) || !slices.Equal(pr.Plans, tt.wantPlans) ||
				pr.UpgradeURL != tt.wantUpgrade || pr.PaymentURL != tt.wantPayment || pr.Detail == "" || pr.Balance == nil {
				t.Errorf("problem %+v", pr)
			}
			if w.Header().Get("Www-Authenticate") != "" {
				t.Error("WWW-Authenticate on a 402")
			}
			if dl[1].Allowed || string(dl[1].Code) != tt.wantCode || dl[1].AccountID == "" {
				t.Errorf("decision %+v", dl[1])
			}
		})
	}
}

func TestRequireFailOpen(t *testing.T) {
	f := newFixture(t)
	fs := &failingStore{Store: f.mem, lookupErr: errBackend, spendErr: errBackend}
	p := newPaywall(t, fs, f.clock, &paywall.Options{FailOpen: true})
	h := p.Authenticate(p.Require(paywall.Requirement{Features: []string{"x"}})(p.Charge(5)(ok)))
	if w := serve(h, request("GET", "/", keyFree, "")); w.Code != 200 {
		t.Errorf("fail-open status %d; body %s", w.Code, w.Body)
	}
	p = newPaywall(t, fs, f.clock, nil)
	if w := serve(p.Authenticate(ok), request("GET", "/", keyFree, "")); w.Code != 503 {
		t.Errorf("fail-closed status %d", w.Code)
	}
}

func TestRequirePanics(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	for name, fn := range map[string]func(){
		"empty feature": func() { p.Require(paywall.Requirement{Features: []string{""}}) },
		"empty plan":    func() { p.Require(paywall.Requirement{Plans: []string{"pro", ""}}) },
		"nil handler":   func() { p.Require(paywall.Requirement{})(nil) },
		"nil auth next": func() { p.Authenticate(nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
}

// TestRequireCopiesRequirement checks that changing the slices of a
// Requirement after Require does not change the middleware.
func TestRequireCopiesRequirement(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	features := []string{"reports"}
	h := p.Authenticate(p.Require(paywall.Requirement{Features: features})(ok))
	features[0] = "nope"
	if w := serve(h, httptestRequest(keyPro)); w.Code != 200 {
		t.Errorf("status %d", w.Code)
	}
}

func httptestRequest(key string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}
