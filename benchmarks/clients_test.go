package benchmarks

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// clientImpls are the implementations BenchmarkClients compares: go402's
// limiter with buckets that are full again at every request and with
// buckets that drain, and the fastest peer of BenchmarkLimit.
var clientImpls = []impl{
	{"go402-limiter", go402Limiter},
	{"go402-limiter-draining", go402LimiterDraining},
	{"sethvargo-go-limiter", sethvargoLimiter},
}

// BenchmarkClients measures the cost of a request as the number of active
// clients grows from 1,000 to 1,000,000, past go402's default MaxKeys
// (100,000): each request comes from the next client in turn, so that
// beyond MaxKeys nearly every request finds its client's bucket evicted.
// Every client sends one request before timing starts; every request must
// be served.
func BenchmarkClients(b *testing.B) {
	for _, clients := range []int{1_000, 10_000, 100_000, 1_000_000} {
		keys := make([]string, clients)
		for i := range keys {
			keys[i] = "sk_live_bench" + strconv.Itoa(1_000_000+i) + "abcdefghijklmnop"
		}
		for _, im := range clientImpls {
			b.Run("clients="+strconv.Itoa(clients)+"/impl="+im.name, func(b *testing.B) {
				h := im.make(b, nil)
				r := httptest.NewRequest("GET", "/v1/things", nil)
				r.RemoteAddr = "192.0.2.1:50000"
				key := []string{""}
				r.Header[apiKey] = key
				w := &noopWriter{h: make(http.Header)}
				serve := func(i int) {
					key[0] = keys[i%clients]
					clear(w.h)
					h.ServeHTTP(w, r)
				}
				for i := range keys {
					serve(i)
				}
				checkServed(b, w.served, w.denied, clients)
				w.served = 0
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					serve(i)
				}
				checkServed(b, w.served, w.denied, b.N)
			})
		}
	}
}
