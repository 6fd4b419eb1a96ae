package otel402_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/go402/go402/otel402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// traced is a charged, rate-limited route on a memory store, traced into
// the span recorder it returns, inside a request span "request".
func traced(t *testing.T) (http.Handler, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	m := newRecorder(t, &otel402.Options{TracerProvider: tp}).Metrics
	st := m.Store(memoryWith(t, nil, store.Account{ID: "acct_secret", Plan: "pro", Balance: 1}))
	pw, lim := paywallAndLimiter(t, st, m)
	mux := http.NewServeMux()
	mux.Handle("POST /items/{id}", pw.Authenticate(lim.Handler(pw.Charge(1)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))))
	tracer := tp.Tracer("test")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), "request")
		defer span.End()
		m.Handler(mux).ServeHTTP(w, r.WithContext(ctx))
	}), sr
}

// TestTraces checks the spans of a paid request and of one refused for
// want of credits: a span per decision and per store call, children of
// the request's span, with the route and plan but never the raw path,
// account ID or key.
func TestTraces(t *testing.T) {
	h, sr := traced(t)
	for range 2 { // the second is refused: the balance was 1
		r := httptest.NewRequest("POST", "/items/item_42", nil)
		r.Header.Set("Authorization", "Bearer sk_test_acct_secret")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	spans := sr.Ended()
	var names []string
	requests := map[trace.TraceID]trace.SpanID{}
	for _, s := range spans {
		names = append(names, s.Name())
		if s.Name() == "request" {
			requests[s.SpanContext().TraceID()] = s.SpanContext().SpanID()
		}
	}
	if len(requests) != 2 {
		t.Fatalf("%d request traces, want 2", len(requests))
	}
	for _, want := range []string{"go402.authenticate", "go402.limit", "go402.charge", "go402.store.lookup"} {
		if !slices.Contains(names, want) {
			t.Errorf("no span %q among %q", want, names)
		}
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "go402.store.spend") }) {
		t.Errorf("no span of a spend among %q", names)
	}
	var refused int
	for _, s := range spans {
		if s.Name() == "request" {
			continue
		}
		if id, ok := requests[s.Parent().TraceID()]; !ok || s.Parent().SpanID() != id {
			t.Errorf("span %s is not a child of its request's span", s.Name())
		}
		if s.EndTime().Before(s.StartTime()) {
			t.Errorf("span %s ends before it starts", s.Name())
		}
		attrs := spanAttributes(t, s)
		if strings.HasPrefix(s.Name(), "go402.store.") {
			if attrs["go402.store.operation"] == "" {
				t.Errorf("store span %s without go402.store.operation: %v", s.Name(), attrs)
			}
			continue
		}
		if attrs["http.route"] != "POST /items/{id}" || attrs["go402.step"] == "" {
			t.Errorf("decision span %s: attributes %v, want http.route and go402.step", s.Name(), attrs)
		}
		if s.Name() == "go402.charge" && attrs["go402.allowed"] == "false" {
			refused++
			if attrs["go402.code"] != string(paywall.CodeInsufficientCredits) || attrs["go402.plan"] != "pro" {
				t.Errorf("refused charge span: attributes %v", attrs)
			}
		}
	}
	if refused != 1 {
		t.Errorf("%d refused charge spans, want 1", refused)
	}
}

// spanAttributes are the attributes of s, by key; it fails t if one holds
// an account, a path or a key.
func spanAttributes(t *testing.T, s sdktrace.ReadOnlySpan) map[string]string {
	t.Helper()
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		v := kv.Value.String()
		attrs[string(kv.Key)] = v
		if strings.Contains(v, "acct_secret") || strings.Contains(v, "item_42") || strings.Contains(v, "sk_test") {
			t.Errorf("span %s has attribute %s=%q: an account, path or key", s.Name(), kv.Key, v)
		}
	}
	return attrs
}

// TestTracesStoreError checks that a failing store call's span records the
// error, and that an unknown key's does not.
func TestTracesStoreError(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	m := newRecorder(t, &otel402.Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))}).Metrics
	down := errors.New("connection refused")
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
			return store.Key{}, store.Account{}, store.ErrNotFound
		},
		Spend: func(context.Context, string, int64) (store.SpendResult, error) { return store.SpendResult{}, down },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := m.Store(cb)
	_, _, _ = s.Lookup(context.Background(), store.DigestOf("sk_x"))
	_, _ = s.Spend(context.Background(), "acct", 1)
	spans := sr.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	for _, sp := range spans {
		failed := sp.Name() == "go402.store.spend"
		if got := sp.Status().Code == codes.Error; got != failed {
			t.Errorf("span %s: status %v, want an error %v", sp.Name(), sp.Status(), failed)
		}
		if got := len(sp.Events()) == 1 && sp.Events()[0].Name == "exception"; got != failed {
			t.Errorf("span %s: events %v, want the error recorded %v", sp.Name(), sp.Events(), failed)
		}
	}
}

// TestNoTracerNoSpans checks that without a TracerProvider nothing is
// traced, even under a recording request span.
func TestNoTracerNoSpans(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	m := newRecorder(t, nil).Metrics
	mem := store.NewMemory(nil)
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	_, _, _ = m.Store(mem).Lookup(ctx, store.DigestOf("sk_x"))
	m.OnDecision(ctx, paywall.Decision{Step: "authenticate", Route: "GET /x"})
	span.End()
	if n := len(sr.Ended()); n != 1 {
		t.Errorf("%d spans ended, want only the request's", n)
	}
}
