// Command metrics is an API behind go402 whose decisions, credits, rate
// limits and store calls are OpenTelemetry metrics, exposed to Prometheus
// at /metrics through the OpenTelemetry Prometheus exporter:
//
//	go run ./examples/metrics [-addr :8080]
//	curl -H 'Authorization: Bearer sk_test_pro' -X POST localhost:8080/generate
//	curl localhost:8080/metrics
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/otel402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// Costs of the charged routes.
const (
	generateCost = 10
	flakyCost    = 5
)

// Plan free may make one request a second in bursts of two; plan pro a
// hundred in bursts of two hundred.
var (
	freeLimit  = store.RateLimit{Rate: 1, Burst: 2}
	planLimits = map[string]store.RateLimit{"pro": {Rate: 100, Burst: 200}}
)

// seed puts two demo accounts and their keys, sk_test_pro and
// sk_test_free, into mem.
func seed(ctx context.Context, mem *store.Memory) error {
	for raw, a := range map[string]store.Account{
		"sk_test_pro":  {ID: "acct_pro", Plan: "pro", Status: store.StatusActive, Balance: 1000},
		"sk_test_free": {ID: "acct_free", Plan: "free", Status: store.StatusActive},
	} {
		if err := mem.PutAccount(ctx, a); err != nil {
			return err
		}
		if err := mem.PutKey(ctx, store.NewKey(raw, a.ID)); err != nil {
			return err
		}
	}
	return nil
}

// newServer returns the API, instrumented, and its metrics at GET /metrics,
// gathered from reg. clock is the limiter's (time.Now if nil).
func newServer(mem *store.Memory, reg *prometheus.Registry, clock func() time.Time) (http.Handler, error) {
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	m, err := otel402.New(&otel402.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))})
	if err != nil {
		return nil, err
	}
	st := m.Store(mem) // one wrapped value, for the paywall and the limiter
	pw, err := paywall.New(st, &paywall.Options{OnDecision: m.OnDecision})
	if err != nil {
		return nil, err
	}
	lim, err := limiter.New(freeLimit.Rate, freeLimit.Burst, &limiter.Options{
		Name: "burst", By: limiter.ByAccount(), Plans: planLimits,
		Store: st.(store.Buckets), OnDecision: m.OnDecision, Clock: clock,
	})
	if err != nil {
		return nil, err
	}
	api := http.NewServeMux()
	api.Handle("GET /hello", pw.Authenticate(lim.Handler(http.HandlerFunc(hello))))
	api.Handle("POST /generate", pw.Authenticate(lim.Handler(pw.Charge(generateCost)(http.HandlerFunc(hello)))))
	api.Handle("POST /flaky", pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: flakyCost, Refund: true})(http.HandlerFunc(flaky))))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", m.Handler(api))
	return mux, nil
}

func hello(w http.ResponseWriter, r *http.Request) {
	c, _ := paywall.CallerFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"account": c.Account.ID, "charged": c.Charged, "balance": c.Balance})
}

// flaky always fails, so its charge is refunded.
func flaky(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "the upstream model is unavailable", http.StatusBadGateway)
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
	h, err := newServer(mem, prometheus.NewRegistry(), nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("go402 metrics example on %s: keys sk_test_pro, sk_test_free; metrics at /metrics", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
