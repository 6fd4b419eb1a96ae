package otel402_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/go402/go402/otel402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// A charged route, traced: a span per decision and per store call, with
// the route and plan, never the path or the account.
func Example_traces() {
	spans := tracetest.NewSpanRecorder() // in production, an exporter's processor
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	m, err := otel402.New(&otel402.Options{TracerProvider: tp})
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
	mux.Handle("POST /items/{id}", pw.Authenticate(pw.Charge(10)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))))

	r := httptest.NewRequest("POST", "/items/42", nil)
	r.Header.Set("Authorization", "Bearer sk_test_1")
	m.Handler(mux).ServeHTTP(httptest.NewRecorder(), r)

	for _, s := range spans.Ended() {
		fmt.Print(s.Name())
		for _, kv := range s.Attributes() {
			fmt.Printf(" %s=%s", kv.Key, kv.Value.String())
		}
		fmt.Println()
	}
	// Output:
	// go402.store.lookup go402.store.operation=lookup
	// go402.authenticate go402.allowed=true go402.plan=pro go402.step=authenticate http.route=POST /items/{id}
	// go402.store.spend go402.store.operation=spend
	// go402.charge go402.allowed=true go402.plan=pro go402.step=charge http.route=POST /items/{id}
}
