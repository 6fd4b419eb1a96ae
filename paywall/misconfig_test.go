package paywall_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// Require and Charge without Authenticate in front are a wiring mistake:
// a 500 misconfigured naming the missing middleware, logged once, and on
// the decision's Err — not a 401 that blames the client's valid key.
func TestWithoutAuthenticate(t *testing.T) {
	for _, tc := range []struct {
		step string
		mw   func(p *paywall.Paywall) func(http.Handler) http.Handler
	}{
		{"Charge", func(p *paywall.Paywall) func(http.Handler) http.Handler { return p.Charge(1) }},
		{"Require", func(p *paywall.Paywall) func(http.Handler) http.Handler { return p.Require(paywall.Requirement{}) }},
	} {
		t.Run(tc.step, func(t *testing.T) {
			f := newFixture(t)
			var logged bytes.Buffer
			var got decisions
			p := newPaywall(t, f.mem, f.clock, &paywall.Options{
				Logger:     slog.New(slog.NewTextHandler(&logged, nil)),
				OnDecision: got.record,
			})
			h := tc.mw(p)(ok)
			for range 2 {
				w := serve(h, request("POST", "/", keyPro, ""))
				if w.Code != 500 || decodeProblem(t, w).Code != "misconfigured" {
					t.Fatalf("status %d body %s", w.Code, w.Body)
				}
				if strings.Contains(w.Body.String(), "Authenticate") {
					t.Errorf("the body describes the server's wiring: %s", w.Body)
				}
			}
			msg := tc.step + " reached without Authenticate"
			if n := strings.Count(logged.String(), msg); n != 1 {
				t.Errorf("logged %d times, want once:\n%s", n, logged.String())
			}
			for _, d := range got.all() {
				if d.Err == nil || !strings.Contains(d.Err.Error(), msg) || d.Status != 500 {
					t.Errorf("decision %+v", d)
				}
			}
		})
	}
}

// A store failure is on the decision's Err and logged, never in the
// response, and never with the key.
func TestStoreErrorReported(t *testing.T) {
	f := newFixture(t)
	var logged bytes.Buffer
	var got decisions
	fs := &failingStore{Store: f.mem, lookupErr: errBackend}
	p := newPaywall(t, fs, f.clock, &paywall.Options{
		Logger:     slog.New(slog.NewJSONHandler(&logged, nil)),
		OnDecision: got.record,
	})
	w := serve(p.Authenticate(ok), request("GET", "/", keyPro, ""))
	if w.Code != 503 || strings.Contains(w.Body.String(), "refused") {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	d := got.all()
	if len(d) != 1 || !errors.Is(d[0].Err, errBackend) {
		t.Fatalf("decisions %+v, want one with the store's error", d)
	}
	if !strings.Contains(logged.String(), "connection refused") || !strings.Contains(logged.String(), `"level":"ERROR"`) {
		t.Errorf("log %s", logged.String())
	}
	if strings.Contains(logged.String(), keyPro) {
		t.Errorf("the key was logged: %s", logged.String())
	}
}

// A typed nil store is refused by New, not found by the first request.
func TestNewNilStore(t *testing.T) {
	for _, s := range []store.Store{nil, (*store.Memory)(nil)} {
		if _, err := paywall.New(s, nil); err == nil || !strings.Contains(err.Error(), "nil") {
			t.Errorf("New(%#v) error %v", s, err)
		}
	}
}
