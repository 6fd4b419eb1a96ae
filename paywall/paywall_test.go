package paywall_test

import (
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

func TestNew(t *testing.T) {
	mem := store.NewMemory(nil)
	tests := []struct {
		name    string
		s       store.Store
		opts    *paywall.Options
		wantErr string // substring; empty for success
	}{
		{"nil options", mem, nil, ""},
		{"zero options", mem, &paywall.Options{}, ""},
		{"nil store", nil, nil, "paywall: store must not be nil"},
		{"negative MaxKeyLength", mem, &paywall.Options{MaxKeyLength: -1}, "paywall: MaxKeyLength must be >= 0, got -1"},
		{"status too low", mem, &paywall.Options{Status: map[paywall.Code]int{paywall.CodeFeatureNotInPlan: 200}}, "paywall: Status[feature_not_in_plan] must be in 400-599, got 200"},
		{"status too high", mem, &paywall.Options{Status: map[paywall.Code]int{paywall.CodeRateLimited: 600}}, "must be in 400-599"},
		{"status ok", mem, &paywall.Options{Status: map[paywall.Code]int{paywall.CodeFeatureNotInPlan: 403}}, ""},
		{"empty code", mem, &paywall.Options{Status: map[paywall.Code]int{"": 403}}, "empty code"},
		{"bad header", mem, &paywall.Options{KeyHeaders: []string{"X Key"}}, `paywall: malformed header name "X Key"`},
		{"empty header", mem, &paywall.Options{KeyHeaders: []string{""}}, "malformed header name"},
		{"duplicate header", mem, &paywall.Options{KeyHeaders: []string{"x-api-key", "X-API-Key"}}, `header "X-Api-Key" listed twice`},
		{"bad realm", mem, &paywall.Options{Realm: "a\nb"}, "Realm must be printable ASCII"},
		{"negative retry", mem, &paywall.Options{RetryAfterUnavailable: -time.Second}, "RetryAfterUnavailable must be >= 0"},
		{"negative idempotency window", mem, &paywall.Options{IdempotencyWindow: -time.Second}, "paywall: IdempotencyWindow must be >= 0, got -1s"},
		{"idempotency window", mem, &paywall.Options{IdempotencyWindow: time.Hour}, ""},
		{"bad URL", mem, &paywall.Options{UpgradeURL: "http://[::1"}, "paywall: UpgradeURL:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := paywall.New(tt.s, tt.opts)
			if tt.wantErr == "" {
				if err != nil || p == nil {
					t.Fatalf("New = %v, %v", p, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestNewCopiesOptions checks that changing the Options after New does not
// change the Paywall.
func TestNewCopiesOptions(t *testing.T) {
	f := newFixture(t)
	opts := &paywall.Options{Status: map[paywall.Code]int{paywall.CodeMissingKey: 403}, KeyHeaders: []string{"X-Key"}}
	p := f.paywall(t, opts)
	opts.Status[paywall.CodeMissingKey] = 400
	opts.KeyHeaders[0] = "X-Other"
	if w := serve(p.Authenticate(ok), request("GET", "/", "", "")); w.Code != 403 {
		t.Errorf("status %d, want 403", w.Code)
	}
	r := request("GET", "/", "", "")
	r.Header.Set("X-Key", keyPro)
	if w := serve(p.Authenticate(ok), r); w.Code != 200 {
		t.Errorf("status %d, want 200", w.Code)
	}
}
