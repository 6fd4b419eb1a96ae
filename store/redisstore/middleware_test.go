package redisstore

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
	"github.com/redis/go-redis/v9"
)

// TestMiddlewareRoundTrips runs requests through the real go402
// middlewares on the Redis store and counts the round trips each costs
// with a go-redis hook: none for a cached lookup, one for a rate limit and
// a charge decided together (allowed, 402 or 429), one for a limit alone,
// two for the limiter in front of a plain charge. The fused route and the
// limit-only route share the account's bucket; a 402 takes no tokens and a
// 429 debits no credits.
func TestMiddlewareRoundTrips(t *testing.T) {
	c := newClient(t)
	hook := new(roundTrips)
	c.AddHook(hook)
	clock := new(storetest.Clock)
	s := newTestStore(t, c, nil) // the lookup cache on real time: 5 min is plenty
	s.scriptClock = clock.Now    // no token comes back unless the test says so
	waitLive(t, s)               // subscribing flushes the cache
	ctx := context.Background()

	const id, cost = "mw", 10
	if err := s.PutAccount(ctx, store.Account{ID: id, Plan: "pro", Balance: 25}); err != nil {
		t.Fatal(err)
	}
	raw, _, err := s.CreateKey(ctx, id, "sk_mw_")
	if err != nil {
		t.Fatal(err)
	}
	pw, err := paywall.New(s, &paywall.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// A token every 10 s, so that the buckets' Redis expiry (real time)
	// cannot refill them while the test runs.
	lim, err := limiter.New(0.1, 3, &limiter.Options{By: limiter.ByAccount(), Store: s, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	served := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	routes := map[string]http.Handler{
		"lookup": pw.Authenticate(served),
		"fused":  pw.Authenticate(lim.Handler(pw.Charge(cost)(served))),
		"limit":  pw.Authenticate(lim.Handler(served)),
		// A charge the limiter does not recognise: decided apart.
		"unfused": pw.Authenticate(lim.Handler(http.HandlerFunc(pw.Charge(cost)(served).ServeHTTP))),
	}

	// Warm up: the lookup cache and the scripts (the first run of a
	// script on a server costs an extra round trip to load it).
	if _, _, err := s.Lookup(ctx, store.DigestOf(raw)); err != nil {
		t.Fatal(err)
	}
	for _, script := range []*redis.Script{spendTokensScript, takeScript, spendScript} {
		if err := script.Load(ctx, c).Err(); err != nil {
			t.Fatal(err)
		}
	}

	balance := func() int64 {
		t.Helper()
		a, err := s.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return a.Balance
	}
	for i, st := range []struct {
		route      string
		advance    time.Duration
		topUp      int64
		status     int
		code       string
		rateLimit  string
		roundTrips int64
		balance    int64
	}{
		{route: "lookup", status: 200, roundTrips: 0, balance: 25},
		{route: "fused", status: 200, rateLimit: `"default";r=2;t=10`, roundTrips: 1, balance: 15},
		{route: "fused", status: 200, rateLimit: `"default";r=1;t=10`, roundTrips: 1, balance: 5},
		{route: "fused", status: 402, code: "insufficient_credits", rateLimit: `"default";r=1;t=10`, roundTrips: 1, balance: 5},
		{route: "limit", status: 200, rateLimit: `"default";r=0;t=10`, roundTrips: 1, balance: 5}, // the token the 402 left
		{route: "fused", topUp: 100, status: 429, code: "rate_limited", rateLimit: `"default";r=0;t=10`, roundTrips: 1, balance: 105},
		{route: "limit", status: 429, code: "rate_limited", rateLimit: `"default";r=0;t=10`, roundTrips: 1, balance: 105},
		{route: "fused", advance: 10 * time.Second, status: 200, rateLimit: `"default";r=0;t=10`, roundTrips: 1, balance: 95},
		{route: "unfused", advance: 30 * time.Second, status: 200, rateLimit: `"default";r=2;t=10`, roundTrips: 2, balance: 85},
		{route: "lookup", status: 200, roundTrips: 0, balance: 85},
	} {
		if st.topUp > 0 {
			if _, err := s.TopUp(ctx, id, st.topUp); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(st.advance)
		req := httptest.NewRequest("POST", "/work", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		w := httptest.NewRecorder()
		before := hook.n.Load()
		routes[st.route].ServeHTTP(w, req)
		trips := hook.n.Load() - before
		if w.Code != st.status || trips != st.roundTrips {
			t.Fatalf("request %d (%s): status %d in %d round trips, want %d in %d: %s",
				i, st.route, w.Code, trips, st.status, st.roundTrips, w.Body)
		}
		if got := w.Header().Get("RateLimit"); got != st.rateLimit {
			t.Errorf("request %d (%s): RateLimit %q, want %q", i, st.route, got, st.rateLimit)
		}
		if st.code != "" {
			var p struct{ Code string }
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code != st.code {
				t.Errorf("request %d (%s): body %s, want code %q", i, st.route, w.Body, st.code)
			}
		}
		if got := balance(); got != st.balance {
			t.Errorf("request %d (%s): balance %d, want %d", i, st.route, got, st.balance)
		}
	}

	// One bucket, the account's own, in the account's hash.
	keys, err := c.Keys(ctx, s.prefix+"*bucket*").Result()
	if err != nil {
		t.Fatal(err)
	}
	b := store.Bucket{Account: id, Key: "default"}
	if n, err := c.HExists(ctx, s.BucketRedisKey(b), bucketField(b)).Result(); len(keys) != 0 || !n || err != nil {
		t.Errorf("bucket keys %q, bucket field in the account: %v, %v", keys, n, err)
	}
}
