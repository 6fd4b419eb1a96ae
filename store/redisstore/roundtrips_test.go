package redisstore

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
	"github.com/redis/go-redis/v9"
)

// seedKeys stores n accounts with a key each, in pipelines, and returns
// the raw keys.
func seedKeys(t testing.TB, c redis.UniversalClient, s *Store, n int) []string {
	t.Helper()
	ctx := context.Background()
	raws := make([]string, n)
	p := c.Pipeline()
	for i := range raws {
		id := fmt.Sprintf("rt-%d", i)
		raws[i] = fmt.Sprintf("sk_test_rt_%06d_0123456789", i)
		fields, err := encodeAccount(&store.Account{ID: id, Plan: "pro", Balance: 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		p.HSet(ctx, s.AccountRedisKey(id), fields...)
		p.HSet(ctx, s.APIKeyRedisKey(store.DigestOf(raws[i])), fieldAccount, id, fieldRevoked, "0")
		if p.Len() >= 2000 || i == n-1 {
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return raws
}

// TestRoundTripsPerRequest counts, with a go-redis hook, the round trips
// of 10,000 clients each calling every 10 s for 10 minutes (the clock
// injected), with the default LookupTTL: every request costs its charge's
// one round trip, and the lookups add at most 0.1 per request. One round
// of real requests through the paywall checks the first part.
func TestRoundTripsPerRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("600,000 lookups")
	}
	const clients, every, period = 10000, 10 * time.Second, 10 * time.Minute
	c := newClient(t)
	hook := new(roundTrips)
	c.AddHook(hook)
	clock := new(storetest.Clock)
	s := newTestStore(t, c, &Options{Clock: clock.Now})
	waitLive(t, s)
	raws := seedKeys(t, c, s, clients)
	ctx := context.Background()
	for _, script := range []*redis.Script{lookupScript, spendScript} {
		if err := script.Load(ctx, c).Err(); err != nil {
			t.Fatal(err)
		}
	}

	start, requests := hook.n.Load(), 0
	for elapsed := time.Duration(0); elapsed < period; elapsed += every {
		for _, raw := range raws {
			if _, _, err := s.Lookup(ctx, store.DigestOf(raw)); err != nil {
				t.Fatal(err)
			}
			requests++
		}
		clock.Advance(every)
	}
	lookups := float64(hook.n.Load()-start) / float64(requests)
	t.Logf("%d lookups: %.4f round trips each; with the charge, %.4f per request", requests, lookups, 1+lookups)
	if 1+lookups > 1.1 {
		t.Errorf("%.4f round trips per request, want at most 1.1", 1+lookups)
	}

	pw, err := paywall.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := pw.Authenticate(pw.Charge(1)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	for _, raw := range raws[:1000] { // cached again, as in the steady state above
		if _, _, err := s.Lookup(ctx, store.DigestOf(raw)); err != nil {
			t.Fatal(err)
		}
	}
	start = hook.n.Load()
	for _, raw := range raws[:1000] {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if n := hook.n.Load() - start; n > 1000 {
		t.Errorf("1000 requests with their lookups cached made %d round trips, want 1000", n)
	}
}
