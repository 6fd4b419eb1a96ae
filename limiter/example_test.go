package limiter_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// A limiter in front of a handler, keyed by the client's address: two
// requests a second, bursts of three.
func Example() {
	lim, err := limiter.New(2, 3, &limiter.Options{
		Clock: func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }, // a stopped clock, for the example
	})
	if err != nil {
		log.Fatal(err)
	}
	h := lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))

	for i := 0; i < 4; i++ {
		req := httptest.NewRequest("GET", "/hello", nil)
		req.RemoteAddr = "192.0.2.1:50000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		fmt.Println(w.Code, w.Header().Get("RateLimit"), w.Header().Values("Retry-After"))
	}
	// Output:
	// 200 "default";r=2;t=1 []
	// 200 "default";r=1;t=1 []
	// 200 "default";r=0;t=1 []
	// 429 "default";r=0;t=1 [1]
}

// After key authentication, limit each account at its plan's rate.
func Example_paywall() {
	ctx := context.Background()
	m := store.NewMemory(nil)
	_ = m.PutAccount(ctx, store.Account{ID: "acme", Plan: "pro"})
	_ = m.PutKey(ctx, store.NewKey("sk_test_acme", "acme"))
	pw, err := paywall.New(m, nil)
	if err != nil {
		log.Fatal(err)
	}
	lim, err := limiter.New(1, 5, &limiter.Options{
		By:    limiter.ByAccount(),
		Plans: map[string]store.RateLimit{"pro": {Rate: 50, Burst: 100}},
	})
	if err != nil {
		log.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := pw.Authenticate(lim.Handler(api))

	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer sk_test_acme")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("RateLimit-Policy"))
	// Output:
	// 200 "default";q=100;w=2
}

// On a charged route, the limiter and the charge decide together: with the
// buckets in the paywall's memory store, the tokens and the credits are
// taken under one lock of the account, and neither when either refuses. Here the bucket holds 2
// requests and the balance 3: the third request is refused by the limit
// (429) and costs nothing; a second later the bucket has a token again,
// and the fourth request spends the last credit.
func Example_charge() {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m := store.NewMemory(&store.MemoryOptions{Clock: clock})
	_ = m.PutAccount(ctx, store.Account{ID: "acme", Plan: "pro", Balance: 3})
	_ = m.PutKey(ctx, store.NewKey("sk_test_acme", "acme"))
	pw, err := paywall.New(m, nil)
	if err != nil {
		log.Fatal(err)
	}
	lim, err := limiter.New(1, 2, &limiter.Options{By: limiter.ByAccount(), Store: m, Clock: clock})
	if err != nil {
		log.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := pw.Authenticate(lim.Handler(pw.Charge(1)(api)))

	for i := 1; i <= 4; i++ {
		if i == 4 {
			now = now.Add(time.Second)
		}
		req := httptest.NewRequest("POST", "/generate", nil)
		req.Header.Set("Authorization", "Bearer sk_test_acme")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		a, _ := m.Account(ctx, "acme")
		fmt.Println(w.Code, w.Header().Get("RateLimit"), "balance", a.Balance)
	}
	// Output:
	// 200 "default";r=1;t=1 balance 2
	// 200 "default";r=0;t=1 balance 1
	// 429 "default";r=0;t=1 balance 1
	// 200 "default";r=0;t=1 balance 0
}

// Behind a load balancer at 10.0.0.0/8, the client is the rightmost
// X-Forwarded-For entry that the balancer wrote; what the client wrote
// itself is ignored. IPv6 clients are keyed by their /64.
func ExampleByClientAddr() {
	by := limiter.ByClientAddr(netip.MustParsePrefix("10.0.0.0/8"))

	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "10.0.0.1:50000"
	req.Header.Set("X-Forwarded-For", "203.0.113.66, 198.51.100.7") // 203.0.113.66 is spoofed
	fmt.Println(by(req))

	req.Header.Set("X-Forwarded-For", "2001:db8:1:2::99")
	fmt.Println(by(req))

	req.RemoteAddr = "192.0.2.1:50000" // not a trusted proxy: the header is ignored
	fmt.Println(by(req))
	// Output:
	// 198.51.100.7 true
	// 2001:db8:1:2::/64 true
	// 192.0.2.1 true
}

// Take is the decision alone, for code that wants to answer itself.
func ExampleLimiter_Take() {
	lim, err := limiter.New(1, 10, &limiter.Options{
		Cost:  4,
		Clock: func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		log.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	for i := 0; i < 3; i++ {
		res, err := lim.Take(req)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(res.Allowed, res.Remaining, res.RetryAfter)
	}
	// Output:
	// true 6 0s
	// true 2 0s
	// false 2 2s
}
