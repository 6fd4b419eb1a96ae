package otel402

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/go402/go402/paywall"
)

// The decision latency is the time to the request's last decision before
// its handler, recorded once, with that decision's attributes.
func TestDecisionLatencyIsTheLastDecisions(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m, err := New(&Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now = now.Add(3 * time.Millisecond)
		m.OnDecision(r.Context(), paywall.Decision{Step: "authenticate", Allowed: true, Route: "POST /x"})
		now = now.Add(2 * time.Millisecond)
		m.OnDecision(r.Context(), paywall.Decision{Step: "charge", Allowed: true, Route: "POST /x", Cost: 1})
		now = now.Add(time.Second) // the handler's own work
		m.OnDecision(r.Context(), paywall.Decision{Step: "refund", Allowed: true, Route: "POST /x", Cost: 1})
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", nil))

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != "go402.decision.duration" {
				continue
			}
			points := mt.Data.(metricdata.Histogram[float64]).DataPoints
			if len(points) != 1 || points[0].Count != 1 || points[0].Sum != 0.005 {
				t.Fatalf("points %+v, want one of 5ms", points)
			}
			if step, _ := points[0].Attributes.Value(keyStep); step.AsString() != "charge" {
				t.Fatalf("step %v, want charge", step.AsString())
			}
			return
		}
	}
	t.Fatal("no go402.decision.duration")
}

// The context Handler passes on is the request's: its values, its
// cancellation, and the request's timing.
func TestHandlerContextIsTheRequests(t *testing.T) {
	m, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	var got context.Context
	h := m.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Context() }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if _, ok := got.Value(timingKey{}).(*timing); !ok || got.Value(key{}) != "v" {
		t.Fatalf("the handler's context lacks the timing or the request's value")
	}
	child, stop := context.WithCancel(got)
	defer stop()
	cancel()
	<-child.Done()
	if got.Err() != context.Canceled {
		t.Fatalf("Err %v after the request's cancellation, want context.Canceled", got.Err())
	}
}
