package otel402_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/go402/go402/otel402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// A charged route, instrumented: the credits debited are a metric.
func Example() {
	reader := sdkmetric.NewManualReader() // in production, an exporter's reader
	m, err := otel402.New(&otel402.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		log.Fatal(err)
	}
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(context.Background(), store.Account{ID: "acct_1", Plan: "pro", Balance: 100})
	_ = mem.PutKey(context.Background(), store.NewKey("sk_test_1", "acct_1"))

	pw, err := paywall.New(m.Store(mem), &paywall.Options{OnDecision: m.OnDecision})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /generate", pw.Authenticate(pw.Charge(10)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))))
	h := m.Handler(mux)

	for range 3 {
		r := httptest.NewRequest("POST", "/generate", nil)
		r.Header.Set("Authorization", "Bearer sk_test_1")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, mt := range rm.ScopeMetrics[0].Metrics {
		if mt.Name == "go402.credits.debited" {
			p := mt.Data.(metricdata.Sum[int64]).DataPoints[0]
			route, _ := p.Attributes.Value("http.route")
			plan, _ := p.Attributes.Value("go402.plan")
			fmt.Printf("%s %s{http.route=%q, go402.plan=%q} %d\n", mt.Name, mt.Unit, route.AsString(), plan.AsString(), p.Value)
		}
	}
	// Output: go402.credits.debited {credit}{http.route="POST /generate", go402.plan="pro"} 30
}
