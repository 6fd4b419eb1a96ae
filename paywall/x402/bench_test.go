package x402_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go402/go402/paywall/x402"
)

// nopWriter is a ResponseWriter that discards everything, so that the
// benchmarks measure the middleware alone.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

func benchRoute(b *testing.B) http.Handler {
	b.Helper()
	client, _ := x402.NewFacilitatorClient("http://127.0.0.1:1", nil)
	pay, err := x402.New(client, nil)
	if err != nil {
		b.Fatal(err)
	}
	keyed := func(h http.Handler) http.Handler { return h } // stands for Authenticate+Charge
	return pay.Route(x402.Route{Accepts: []x402.PaymentRequirements{usdc}, Keys: keyed})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
}

// BenchmarkKeyHolder is the overhead x402 adds to a key holder's request:
// the key check and the 402-watching wrapper.
func BenchmarkKeyHolder(b *testing.B) {
	h := benchRoute(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/weather", nil)
		req.Header.Set("Authorization", "Bearer "+keyRich)
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkChallenge is the cost of a 402 challenge (JSON, base64, problem
// body).
func BenchmarkChallenge(b *testing.B) {
	h := benchRoute(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/weather", nil)
		for pb.Next() {
			w := &nopWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
		}
	})
}
