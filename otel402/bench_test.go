package otel402_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/otel402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// measures the middlewares.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// benchStack is a charged, rate-limited route on a memory store, with the
// metrics of m if it is non-nil.
func benchStack(b *testing.B, m *otel402.Metrics) http.Handler {
	mem := store.NewMemory(nil)
	ctx := context.Background()
	if err := mem.PutAccount(ctx, store.Account{ID: "acct", Plan: "pro", Balance: math.MaxInt64 / 2}); err != nil {
		b.Fatal(err)
	}
	if err := mem.PutKey(ctx, store.NewKey("sk_test_bench", "acct")); err != nil {
		b.Fatal(err)
	}
	var st store.Store = mem
	var onDecision func(context.Context, paywall.Decision)
	if m != nil {
		st, onDecision = m.Store(mem), m.OnDecision
	}
	pw, err := paywall.New(st, &paywall.Options{OnDecision: onDecision})
	if err != nil {
		b.Fatal(err)
	}
	lim, err := limiter.New(1e12, math.MaxInt32, &limiter.Options{By: limiter.ByAccount(), Store: st.(store.Buckets), OnDecision: onDecision})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /generate", pw.Authenticate(lim.Handler(pw.Charge(1)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))))
	if m != nil {
		return m.Handler(mux)
	}
	return mux
}

// BenchmarkOverhead serves a paid, rate-limited request bare, with the
// metrics (on the OpenTelemetry SDK, never exported), and with the metrics
// and traces (every span sampled and handed to an exporter that drops it):
// the differences are the instrumentation's cost per request.
func BenchmarkOverhead(b *testing.B) {
	for _, tc := range []struct {
		name string
		m    func(b *testing.B) *otel402.Metrics
	}{
		{"bare", func(*testing.B) *otel402.Metrics { return nil }},
		{"metrics", func(b *testing.B) *otel402.Metrics { return newRecorder(b, nil).Metrics }},
		{"metrics+traces", func(b *testing.B) *otel402.Metrics {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(tracetest.NewNoopExporter())))
			return newRecorder(b, &otel402.Options{TracerProvider: tp}).Metrics
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := benchStack(b, tc.m(b))
			req := httptest.NewRequest("POST", "/generate", nil)
			req.Header.Set("Authorization", "Bearer sk_test_bench")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discard{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}
