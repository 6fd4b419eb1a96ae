package paywall_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// The smallest use of go402: no middleware, no store. A handler that finds
// out deep inside that the caller's plan lacks a feature answers with the
// standard 402, exactly as the middlewares would.
func ExampleWriteDenial() {
	export := func(w http.ResponseWriter, r *http.Request) {
		plan := "free" // from the application's own session
		if plan != "pro" {
			paywall.WriteDenial(w, r, &paywall.Denial{
				Code:       paywall.CodeFeatureNotInPlan,
				Detail:     "Exports need the pro plan.",
				Features:   []string{"export"},
				UpgradeURL: "https://example.com/billing",
			})
			return
		}
		fmt.Fprintln(w, "exported")
	}

	w := httptest.NewRecorder()
	export(w, httptest.NewRequest("GET", "/export", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"))
	fmt.Print(w.Body)
	// Output:
	// 402 application/problem+json no-store
	// {"type":"https://go402.dev/problems/feature_not_in_plan","title":"Feature not in plan","status":402,"detail":"Exports need the pro plan.","code":"feature_not_in_plan","features":["export"],"upgrade_url":"https://example.com/billing"}
}

// A server whose routes need a key, a feature and credits.
func Example() {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(ctx, store.Account{ID: "acme", Plan: "pro", Features: []string{"reports"}, Balance: 15})
	_ = mem.PutKey(ctx, store.NewKey("sk_test_acme", "acme"))

	pw, err := paywall.New(mem, &paywall.Options{PaymentURL: "https://example.com/credits"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /reports", pw.Authenticate(pw.Require(paywall.Requirement{Features: []string{"reports"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "report") }))))
	mux.Handle("POST /generate", pw.Authenticate(pw.Charge(10)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := paywall.CallerFromContext(r.Context())
			fmt.Fprintf(w, "generated; %d credits left\n", c.Balance)
		}))))

	for _, req := range []struct{ method, path, key string }{
		{"GET", "/reports", ""},
		{"GET", "/reports", "sk_test_acme"},
		{"POST", "/generate", "sk_test_acme"},
		{"POST", "/generate", "sk_test_acme"},
	} {
		r := httptest.NewRequest(req.method, req.path, nil)
		if req.key != "" {
			r.Header.Set("Authorization", "Bearer "+req.key)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Printf("%s %s: %d %s", req.method, req.path, w.Code, w.Body)
	}
	// Output:
	// GET /reports: 401 {"type":"https://go402.dev/problems/missing_key","title":"API key required","status":401,"detail":"Send an API key in the Authorization header (Bearer) or the X-API-Key header.","code":"missing_key"}
	// GET /reports: 200 report
	// POST /generate: 200 generated; 5 credits left
	// POST /generate: 402 {"type":"https://paymentauth.org/problems/payment-insufficient","title":"Payment Insufficient","status":402,"detail":"This request costs 10 credits; the balance is 5 credits.","code":"insufficient_credits","balance":5,"cost":10,"payment_url":"https://example.com/credits"}
}

// Logging every decision with log/slog. The raw key never reaches the hook:
// only the account and the key's display prefix.
func ExampleOptions_onDecision() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the output stable
			}
			return a
		},
	}))
	onDecision := func(ctx context.Context, d paywall.Decision) {
		level := slog.LevelInfo
		if !d.Allowed {
			level = slog.LevelWarn
		}
		logger.LogAttrs(ctx, level, "paywall",
			slog.String("step", d.Step), slog.Bool("allowed", d.Allowed), slog.String("code", string(d.Code)),
			slog.String("account", d.AccountID), slog.String("key", d.KeyPrefix), slog.String("route", d.Route),
			slog.Int64("cost", d.Cost), slog.Int64("balance", d.Balance))
	}

	ctx := context.Background()
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(ctx, store.Account{ID: "acme", Plan: "free", Balance: 3})
	_ = mem.PutKey(ctx, store.NewKey("sk_live_abcd1234efgh5678", "acme"))
	pw, _ := paywall.New(mem, &paywall.Options{OnDecision: onDecision})

	mux := http.NewServeMux()
	mux.Handle("POST /generate", pw.Authenticate(pw.Charge(5)(http.NotFoundHandler())))
	r := httptest.NewRequest("POST", "/generate", nil)
	r.Header.Set("X-API-Key", "sk_live_abcd1234efgh5678")
	mux.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// level=INFO msg=paywall step=authenticate allowed=true code="" account=acme key=sk_live_abcd route="POST /generate" cost=0 balance=3
	// level=WARN msg=paywall step=charge allowed=false code=insufficient_credits account=acme key=sk_live_abcd route="POST /generate" cost=5 balance=3
}

// Refunding the credits of requests that fail: the status is captured as
// the handler writes it, without buffering, so streaming still works.
func ExamplePaywall_ChargeWith() {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(ctx, store.Account{ID: "acme", Balance: 100})
	_ = mem.PutKey(ctx, store.NewKey("sk_test_acme", "acme"))
	pw, _ := paywall.New(mem, nil)

	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream model timed out", http.StatusBadGateway)
	})
	h := pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: 25, Refund: true})(flaky))

	r := httptest.NewRequest("POST", "/generate", nil)
	r.Header.Set("X-API-Key", "sk_test_acme")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	a, _ := mem.Account(ctx, "acme")
	fmt.Println(w.Code, a.Balance)
	// Output:
	// 502 100
}

// A metered charge holds the most a request may cost, and debits what its
// handler reports: here 100 credits held, 37 charged.
func ExampleMeterFrom() {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(ctx, store.Account{ID: "acme", Balance: 500})
	_ = mem.PutKey(ctx, store.NewKey("sk_test_acme", "acme"))
	pw, _ := paywall.New(mem, nil)

	generate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := paywall.MeterFrom(r.Context())
		for _, tokens := range []int64{12, 20, 5} { // as the answer streams
			fmt.Fprintf(w, "data: %d tokens\n\n", tokens)
			m.Add(tokens)
		}
	})
	h := pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: 100, Metered: true})(generate))

	r := httptest.NewRequest("POST", "/generate", nil)
	r.Header.Set("X-API-Key", "sk_test_acme")
	h.ServeHTTP(httptest.NewRecorder(), r)
	a, _ := mem.Account(ctx, "acme")
	fmt.Println(a.Balance)
	// Output:
	// 463
}

// A client that lost the answer to a paid request retries it with the same
// Idempotency-Key and is not charged again; the handler runs again and
// sees the retry in Caller.Replay.
func ExampleOptions_idempotencyWindow() {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(ctx, store.Account{ID: "acme", Balance: 100})
	_ = mem.PutKey(ctx, store.NewKey("sk_test_acme", "acme"))
	pw, _ := paywall.New(mem, &paywall.Options{IdempotencyWindow: 24 * time.Hour})

	mux := http.NewServeMux()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := paywall.CallerFromContext(r.Context())
		fmt.Fprintf(w, "charged %d, replay %v, %d left\n", c.Charged, c.Replay, c.Balance)
	})
	mux.Handle("POST /generate", pw.Authenticate(pw.Charge(25)(h)))
	mux.Handle("POST /translate", pw.Authenticate(pw.Charge(5)(h)))

	for _, req := range []struct{ path, idempotencyKey string }{
		{"/generate", `"order-4711"`},
		{"/generate", `"order-4711"`}, // a retry
		{"/generate", `"order-4712"`}, // a new request
		{"/translate", `"order-4711"`},
	} {
		r := httptest.NewRequest("POST", req.path, nil)
		r.Header.Set("Authorization", "Bearer sk_test_acme")
		r.Header.Set("Idempotency-Key", req.idempotencyKey)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Printf("%s %s: %d %s", req.path, req.idempotencyKey, w.Code, w.Body)
	}
	// Output:
	// /generate "order-4711": 200 charged 25, replay false, 75 left
	// /generate "order-4711": 200 charged 0, replay true, 75 left
	// /generate "order-4712": 200 charged 25, replay false, 50 left
	// /translate "order-4711": 422 {"type":"https://go402.dev/problems/idempotency_key_reused","title":"Idempotency key reused","status":422,"detail":"This Idempotency-Key was used for another request (another method or route). Use a new key for a new request.","code":"idempotency_key_reused"}
}

// A handler reads who is calling, and what is left, from the request's
// context.
func ExampleCallerFromContext() {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(ctx, store.Account{ID: "acme", Plan: "pro", Balance: 40})
	_ = mem.PutKey(ctx, store.NewKey("sk_live_abcd1234efgh5678", "acme"))
	pw, _ := paywall.New(mem, nil)

	h := pw.Authenticate(pw.Charge(15)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := paywall.CallerFromContext(r.Context())
		if !ok {
			return
		}
		fmt.Printf("account %s (key %s…) on plan %s paid %d, %d left\n",
			c.Account.ID, c.Key.Prefix, c.Account.Plan, c.Charged, c.Balance)
	})))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer sk_live_abcd1234efgh5678")
	h.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// account acme (key sk_live_abcd…) on plan pro paid 15, 25 left
}

// Per-code statuses are configurable; here a missing feature is a 403, and a
// browser gets the HTML page.
func ExampleOptions_status() {
	ctx := context.Background()
	mem := store.NewMemory(&store.MemoryOptions{Clock: func() time.Time { return time.Unix(0, 0) }})
	_ = mem.PutAccount(ctx, store.Account{ID: "acme", Plan: "free"})
	_ = mem.PutKey(ctx, store.NewKey("sk_test_acme", "acme"))
	pw, _ := paywall.New(mem, &paywall.Options{
		Status: map[paywall.Code]int{paywall.CodeFeatureNotInPlan: http.StatusForbidden},
	})
	h := pw.Authenticate(pw.Require(paywall.Requirement{Features: []string{"sso"}})(http.NotFoundHandler()))

	r := httptest.NewRequest("GET", "/admin", nil)
	r.Header.Set("X-API-Key", "sk_test_acme")
	r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// 403 text/html; charset=utf-8
}
