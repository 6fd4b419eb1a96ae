// Command basic is a small API behind go402, on an in-memory store seeded
// with demo keys:
//
//	go run ./examples/basic [-addr :8080]
//
// It prints its routes, keys and curl commands to try at start-up.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// demoKey is one of the keys the server is seeded with.
type demoKey struct {
	raw     string
	account store.Account
	revoked bool
	about   string
}

// generateCost is what POST /generate costs.
const generateCost = 10

// Every route is rate limited per account: by default (plan free) one
// request a second in bursts of two, on plan pro a hundred a second in bursts
// of two hundred.
var (
	defaultLimit = store.RateLimit{Rate: 1, Burst: 2}
	planLimits   = map[string]store.RateLimit{"pro": {Rate: 100, Burst: 200}}
)

var demoKeys = []demoKey{
	{"sk_test_pro", store.Account{ID: "acct_pro", Plan: "pro", Status: store.StatusActive, Features: []string{"reports"}, Balance: 1000},
		false, "plan pro, active, feature reports, 1000 credits"},
	{"sk_test_free", store.Account{ID: "acct_free", Plan: "free", Status: store.StatusActive},
		false, "plan free, active, no features, 0 credits"},
	{"sk_test_lapsed", store.Account{ID: "acct_lapsed", Plan: "pro", Status: store.StatusPastDue, Features: []string{"reports"}, Balance: 1000},
		false, "plan pro, subscription past due"},
	{"sk_test_revoked", store.Account{ID: "acct_revoked", Plan: "pro", Status: store.StatusActive, Features: []string{"reports"}, Balance: 1000},
		true, "a revoked key"},
}

// route is one route the server serves.
type route struct {
	pattern, about string
}

var routes = []route{
	{"GET /hello", "any valid key; free"},
	{"GET /reports", "needs an active subscription with feature reports"},
	{"POST /generate", fmt.Sprintf("needs an active subscription; costs %d credits", generateCost)},
	{"GET /billing", "where 402 responses send clients to upgrade or buy credits"},
}

// seed puts the demo accounts and keys into mem.
func seed(ctx context.Context, mem *store.Memory) error {
	for _, k := range demoKeys {
		if err := mem.PutAccount(ctx, k.account); err != nil {
			return err
		}
		key := store.NewKey(k.raw, k.account.ID)
		key.Revoked = k.revoked
		if err := mem.PutKey(ctx, key); err != nil {
			return err
		}
	}
	return nil
}

// newHandler returns the server's routes behind a paywall on s. Decisions
// are logged to logger, if it is non-nil; clock is the limiter's clock
// (time.Now if nil).
func newHandler(s store.Store, logger *slog.Logger, clock func() time.Time) (http.Handler, error) {
	var onDecision func(context.Context, paywall.Decision)
	if logger != nil {
		onDecision = func(ctx context.Context, d paywall.Decision) { logDecision(ctx, logger, d) }
	}
	pw, err := paywall.New(s, &paywall.Options{UpgradeURL: "/billing", PaymentURL: "/billing", OnDecision: onDecision})
	if err != nil {
		return nil, err
	}
	lim, err := limiter.New(defaultLimit.Rate, defaultLimit.Burst, &limiter.Options{
		By:         limiter.ByAccount(),
		Plans:      planLimits,
		OnDecision: onDecision,
		Clock:      clock,
	})
	if err != nil {
		return nil, err
	}
	active := pw.Require(paywall.Requirement{})
	reports := pw.Require(paywall.Requirement{Features: []string{"reports"}})

	mux := http.NewServeMux()
	mux.Handle("GET /hello", pw.Authenticate(lim.Handler(http.HandlerFunc(hello))))
	mux.Handle("GET /reports", pw.Authenticate(reports(lim.Handler(http.HandlerFunc(report)))))
	mux.Handle("POST /generate", pw.Authenticate(active(lim.Handler(pw.Charge(generateCost)(http.HandlerFunc(generate))))))
	mux.HandleFunc("GET /billing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "This demo has no billing page: here customers would upgrade their plan or buy credits.\n")
	})
	return mux, nil
}

// logDecision logs one decision of the paywall or the limiter: a refusal as
// a warning, anything else as information.
func logDecision(ctx context.Context, logger *slog.Logger, d paywall.Decision) {
	level := slog.LevelInfo
	if !d.Allowed {
		level = slog.LevelWarn
	}
	logger.LogAttrs(ctx, level, "decision", slog.String("step", d.Step), slog.Bool("allowed", d.Allowed),
		slog.String("code", string(d.Code)), slog.String("route", d.Route), slog.String("account", d.AccountID),
		slog.String("key", d.KeyPrefix), slog.Int64("cost", d.Cost), slog.Int64("balance", d.Balance))
}

func hello(w http.ResponseWriter, r *http.Request) {
	c, _ := paywall.CallerFromContext(r.Context())
	writeJSON(w, map[string]any{"message": "hello, " + c.Account.ID, "plan": c.Account.Plan})
}

func report(w http.ResponseWriter, r *http.Request) {
	c, _ := paywall.CallerFromContext(r.Context())
	writeJSON(w, map[string]any{"report": "usage report for " + c.Account.ID, "rows": []int{3, 1, 4, 1, 5}})
}

func generate(w http.ResponseWriter, r *http.Request) {
	c, _ := paywall.CallerFromContext(r.Context())
	writeJSON(w, map[string]any{"result": "generated", "charged": c.Charged, "balance": c.Balance})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// printBanner writes what the server serves, and how to try it.
func printBanner(w io.Writer, addr string) {
	base := "http://" + addr
	if strings.HasPrefix(addr, ":") {
		base = "http://localhost" + addr
	}
	fmt.Fprintf(w, "go402 basic example listening on %s\n\nRoutes:\n", base)
	for _, rt := range routes {
		fmt.Fprintf(w, "  %-16s %s\n", rt.pattern, rt.about)
	}
	fmt.Fprintf(w, "\nAll but /billing are rate limited per account: plan free %g/s in bursts of %d, plan pro %g/s in bursts of %d.\n",
		defaultLimit.Rate, defaultLimit.Burst, planLimits["pro"].Rate, planLimits["pro"].Burst)
	fmt.Fprintf(w, "\nDemo keys:\n")
	for _, k := range demoKeys {
		fmt.Fprintf(w, "  %-16s %s\n", k.raw, k.about)
	}
	fmt.Fprintf(w, "\nTry:\n")
	fmt.Fprintf(w, "  curl -i %s/hello\n", base)
	fmt.Fprintf(w, "  curl -i -H 'Authorization: Bearer sk_test_pro' %s/hello\n", base)
	fmt.Fprintf(w, "  curl -i -H 'X-API-Key: sk_test_free' %s/reports\n", base)
	fmt.Fprintf(w, "  curl -i -X POST -H 'Authorization: Bearer sk_test_pro' %s/generate\n", base)
	fmt.Fprintf(w, "  curl -i -X POST -H 'Authorization: Bearer sk_test_free' %s/generate\n", base)
	fmt.Fprintf(w, "  curl -i -H 'Authorization: Bearer sk_test_lapsed' %s/reports\n", base)
	fmt.Fprintf(w, "  curl -i -H 'Authorization: Bearer sk_test_revoked' %s/hello\n", base)
	fmt.Fprintf(w, "  for i in 1 2 3; do curl -i -H 'Authorization: Bearer sk_test_free' %s/hello; done   # the third: 429\n\n", base)
}

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	mem := store.NewMemory(nil)
	if err := seed(ctx, mem); err != nil {
		log.Fatal(err)
	}
	h, err := newHandler(mem, slog.New(slog.NewTextHandler(os.Stderr, nil)), nil)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	printBanner(os.Stdout, *addr)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
