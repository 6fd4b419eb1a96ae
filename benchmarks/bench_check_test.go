package benchmarks

import (
	"net/http"
	"strings"
	"sync"
	"testing"
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
