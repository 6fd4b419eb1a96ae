package limiter

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
)

// noopWriter is a ResponseWriter that keeps headers and discards the rest.
type noopWriter struct{ h http.Header }

func (w *noopWriter) Header() http.Header         { return w.h }
func (w *noopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *noopWriter) WriteHeader(int)             {}

// BenchmarkHandler measures the allowed path: one bucket or 10,000, serial
// or parallel, with the RateLimit headers on. The rate is high enough that
// every request passes and finds its bucket full again, as a client under
// its limit does; the draining variant shows the cost when it does not.
func BenchmarkHandler(b *testing.B) {
	for _, keys := range []int{1, 10_000} {
		reqs := make([]*http.Request, keys)
		for i := range reqs {
			reqs[i] = httptest.NewRequest("GET", "/", nil)
			reqs[i].Header["X-Api-Key"] = []string{"key-" + strconv.Itoa(i)}
		}
		l := mustNew(b, 1e9, 1e9, &Options{By: headerKey})
		h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		b.Run("keys="+strconv.Itoa(keys)+"/serial", func(b *testing.B) {
			w := &noopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				h.ServeHTTP(w, reqs[i%keys])
			}
		})
		// A bucket that drains (a token every 1000 s, from a huge burst) is
		// never full, so its RateLimit value is built for every response.
		drain := mustNew(b, 1e-3, 1<<40, &Options{By: headerKey}).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		b.Run("keys="+strconv.Itoa(keys)+"/serial-draining", func(b *testing.B) {
			w := &noopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				drain.ServeHTTP(w, reqs[i%keys])
			}
		})
		b.Run("keys="+strconv.Itoa(keys)+"/parallel", func(b *testing.B) {
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &noopWriter{h: make(http.Header)}
				i := int(next.Add(7919))
				for pb.Next() {
					i++
					h.ServeHTTP(w, reqs[i%keys])
				}
			})
		})
	}
}
