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

// roundTripEnv is an account with a key on a Redis store whose round
// trips are counted, a paywall, and a per-account limiter of a token every
// 10 s and a burst of 3, all on a clock the test moves: the buckets'
// Redis expiry (real time) cannot refill them while the test runs. The
// lookup cache runs on real time: its minutes are plenty.
type roundTripEnv struct {
	c     *redis.Client
	hook  *roundTrips
	clock *storetest.Clock
	s     *Store
	raw   string
	pw    *paywall.Paywall
	lim   *limiter.Limiter
}

// newRoundTripEnv returns a roundTripEnv whose account id has balance and
// whose key's lookup and the scripts are warm: the first run of a script
// on a server costs an extra round trip to load it.
func newRoundTripEnv(t *testing.T, id string, balance int64, scripts ...*redis.Script) *roundTripEnv {
	t.Helper()
	e := &roundTripEnv{c: newClient(t), hook: new(roundTrips), clock: new(storetest.Clock)}
	e.c.AddHook(e.hook)
	e.s = newTestStore(t, e.c, nil)
	e.s.scriptClock = e.clock.Now // no token comes back unless the test says so
	ctx := context.Background()
	if err := e.s.PutAccount(ctx, store.Account{ID: id, Plan: "pro", Balance: balance}); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.raw, _, err = e.s.CreateKey(ctx, id, "sk_"+id+"_"); err != nil {
		t.Fatal(err)
	}
	if e.pw, err = paywall.New(e.s, &paywall.Options{Clock: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	e.lim, err = limiter.New(0.1, 3, &limiter.Options{By: limiter.ByAccount(), Store: e.s, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.Lookup(ctx, store.DigestOf(e.raw)); err != nil {
		t.Fatal(err)
	}
	for _, script := range scripts {
		if err := script.Load(ctx, e.c).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// TestMiddlewareRoundTrips runs requests through the real go402
// middlewares on the Redis store and counts the round trips each costs
// with a go-redis hook: none for a cached lookup, one for a rate limit and
// a charge decided together (allowed, 402 or 429), one for a limit alone,
// two for the limiter in front of a plain charge. The fused route and the
// limit-only route share the account's bucket; a 402 takes no tokens and a
// 429 debits no credits.
func TestMiddlewareRoundTrips(t *testing.T) {
	const id, cost = "mw", 10
	e := newRoundTripEnv(t, id, 25, spendTokensScript, takeScript, spendScript)
	c, hook, clock, s, raw, pw, lim := e.c, e.hook, e.clock, e.s, e.raw, e.pw, e.lim
	ctx := context.Background()
	served := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	routes := map[string]http.Handler{
		"lookup": pw.Authenticate(served),
		"fused":  pw.Authenticate(lim.Handler(pw.Charge(cost)(served))),
		"limit":  pw.Authenticate(lim.Handler(served)),
		// A charge the limiter does not recognise: decided apart.
		"unfused": pw.Authenticate(lim.Handler(http.HandlerFunc(pw.Charge(cost)(served).ServeHTTP))),
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
