package benchmarks

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go402/go402/paywall"
)

// Every implementation allows every benchmark request, also when requests
// arrive concurrently, and go402's answers carry the RateLimit headers.
// Under -race this checks the benchmarked configurations for data races.
func TestImplementationsAllow(t *testing.T) {
	reqs := requests(100)
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			h := im.make(t, reqs)
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := &noopWriter{h: make(http.Header)}
					for i := 0; i < 3; i++ {
						for _, r := range reqs {
							clear(w.h)
							h.ServeHTTP(w, r)
							if w.denied > 0 {
								t.Errorf("request refused")
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			w := &noopWriter{h: make(http.Header)}
			h.ServeHTTP(w, reqs[0])
			if strings.HasPrefix(im.name, "go402") && (w.h.Get("RateLimit") == "" || w.h.Get("RateLimit-Policy") == "") {
				t.Errorf("no RateLimit headers: %v", w.h)
			}
		})
	}
}

// Both go402 stacks authenticate, limit and charge every request: the
// handler behind them sees a caller charged one credit, with RateLimit
// headers already set.
func TestStacksChargeAndLimit(t *testing.T) {
	reqs := requests(10)
	for _, fused := range []bool{true, false} {
		var served int
		h := stack(t, reqs, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := paywall.CallerFromContext(r.Context())
			if !ok || c.Charged != 1 || c.Account.Plan != "pro" || w.Header().Get("RateLimit") == "" {
				t.Errorf("fused %v: caller %+v, RateLimit %q", fused, c, w.Header().Get("RateLimit"))
			}
			served++
		}), fused)
		w := &noopWriter{h: make(http.Header)}
		for _, r := range reqs {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
		if served != len(reqs) || w.denied != 0 {
			t.Errorf("fused %v: %d of %d served, %d denied", fused, served, len(reqs), w.denied)
		}
	}
}
