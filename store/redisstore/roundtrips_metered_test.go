package redisstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go402/go402/paywall"
)

// TestMeteredRoundTrips counts, with a go-redis hook and the lookup cached,
// the round trips of a metered charge fused with a per-account limit: one
// to take the tokens and hold the credits (before the handler runs), one
// to settle; one for a 429 and one for a 402, which hold nothing. The
// balance loses exactly what the served requests reported.
func TestMeteredRoundTrips(t *testing.T) {
	const id, hold = "metered-rt", 40
	e := newRoundTripEnv(t, id, 100, holdScript, settleScript)
	hook, s, raw := e.hook, e.s, e.raw
	ctx := context.Background()
	var before, settled int64
	costs := []int64{25, 7, 0}
	served := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before = hook.n.Load()
		cost := costs[0]
		costs = costs[1:]
		paywall.MeterFrom(r.Context()).Set(cost)
		settled += cost
	})
	h := e.pw.Authenticate(e.lim.Handler(e.pw.ChargeWith(paywall.ChargeOptions{Cost: hold, Metered: true})(served)))

	for i, want := range []int{200, 200, 402, 200, 429} {
		switch i {
		case 2:
			if _, err := s.Spend(ctx, id, 40); err != nil { // 100 − 25 − 7 − 40 = 28 < 40
				t.Fatal(err)
			}
		case 3:
			if _, err := s.Refund(ctx, id, 12); err != nil { // 40 again
				t.Fatal(err)
			}
		}
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		w := httptest.NewRecorder()
		start := hook.n.Load()
		before = -1
		h.ServeHTTP(w, req)
		end := hook.n.Load()
		if w.Code != want {
			t.Fatalf("request %d: status %d, want %d: %s", i, w.Code, want, w.Body)
		}
		switch {
		case want != http.StatusOK && end-start != 1:
			t.Errorf("request %d (%d): %d round trips, want 1", i, want, end-start)
		case want == http.StatusOK && (before-start != 1 || end-before != 1):
			t.Errorf("request %d: %d round trips before the handler, %d after; want 1 and 1", i, before-start, end-before)
		}
	}
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Balance, 100-settled-40+12; got != want {
		t.Errorf("balance %d, want %d: 100 less the %d settled and the test's own spends", got, want, settled)
	}
}
