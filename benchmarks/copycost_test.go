package benchmarks

import (
	"context"
	"net/http"
	"testing"
)

// requestCopy passes each request on to next as go402's Authenticate
// does: copied, with a context that carries a state the size of go402's
// (the Caller, which points to the store's records, and the rest), in one
// 384-byte allocation. The handler behind it is unchanged.
type requestCopy struct{ next http.Handler }

// copyState is a context carrying as many bytes, pointers included, as
// go402's per-request state.
type copyState struct {
	context.Context
	_ [6]*byte
}

// copied is the state and the request copy in one allocation.
type copied struct {
	s   copyState
	req http.Request
}

func (h requestCopy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := new(copied)
	c.s.Context = r.Context()
	c.req = *r.WithContext(&c.s) // inlined: the copy goes straight into c
	h.next.ServeHTTP(w, &c.req)
}

// BenchmarkRequestCopyCost measures what go402's one allocation per
// request costs a limiter: the fastest peer alone and behind requestCopy,
// go402's limiter behind requestCopy (the least any stack that hands a
// caller on through the context can cost), and go402's whole stack, in the
// four scenarios of BenchmarkLimit. It is a diagnostic for
// benchmarks/RESULTS.md, beside the four scenarios.
func BenchmarkRequestCopyCost(b *testing.B) {
	runScenarios(b, []impl{
		{"sethvargo-go-limiter", sethvargoLimiter},
		{"sethvargo-go-limiter+request-copy", func(tb testing.TB, reqs []*http.Request) http.Handler {
			return requestCopy{sethvargoLimiter(tb, reqs)}
		}},
		{"go402-limiter+request-copy", func(tb testing.TB, reqs []*http.Request) http.Handler {
			return requestCopy{go402Limiter(tb, reqs)}
		}},
		{"go402-stack", go402Stack},
	})
}
