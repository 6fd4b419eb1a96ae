package redisstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
	"github.com/redis/go-redis/v9"
)

// TestMeteredRoundTrips counts, with a go-redis hook and the lookup cached,
// the round trips of a metered charge fused with a per-account limit: one
// to take the tokens and hold the credits (before the handler runs), one
// to settle; one for a 429 and one for a 402, which hold nothing. The
// balance loses exactly what the served requests reported.
func TestMeteredRoundTrips(t *testing.T) {
	c := newClient(t)
	hook := new(roundTrips)
	c.AddHook(hook)
	clock := new(storetest.Clock)
	s := newTestStore(t, c, nil) // the lookup cache on real time: 5 min is plenty
	s.scriptClock = clock.Now    // no token comes back unless the test says so
	waitLive(t, s)               // subscribing flushes the cache
	ctx := context.Background()

	const id, hold = "metered-rt", 40
	if err := s.PutAccount(ctx, store.Account{ID: id, Plan: "pro", Balance: 100}); err != nil {
		t.Fatal(err)
	}
	raw, _, err := s.CreateKey(ctx, id, "sk_mrt_")
	if err != nil {
		t.Fatal(err)
	}
	pw, err := paywall.New(s, &paywall.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limiter.New(0.1, 3, &limiter.Options{By: limiter.ByAccount(), Store: s, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var before, settled int64
	costs := []int64{25, 7, 0}
	served := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before = hook.n.Load()
		cost := costs[0]
		costs = costs[1:]
		paywall.MeterFrom(r.Context()).Set(cost)
		settled += cost
	})
	h := pw.Authenticate(lim.Handler(pw.ChargeWith(paywall.ChargeOptions{Cost: hold, Metered: true})(served)))

	if _, _, err := s.Lookup(ctx, store.DigestOf(raw)); err != nil {
		t.Fatal(err)
	}
	for _, script := range []*redis.Script{holdTokensScript, settleScript} {
		if err := script.Load(ctx, c).Err(); err != nil {
			t.Fatal(err)
		}
	}
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
