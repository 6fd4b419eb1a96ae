package benchmarks

import (
	"net/http"
	"testing"

	"github.com/go402/go402/paywall"
)

// go402StackMetered is go402Stack with a metered charge: the handler
// reports one credit on its Meter; one credit is held with the limit's
// tokens in one store operation before it runs and settled after it.
func go402StackMetered(tb testing.TB, reqs []*http.Request) http.Handler {
	m, pw := stackStore(tb, reqs)
	require := pw.Require(paywall.Requirement{Plans: []string{"pro"}})
	metered := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paywall.MeterFrom(r.Context()).Set(1)
		final.ServeHTTP(w, r)
	})
	charge := pw.ChargeWith(paywall.ChargeOptions{Cost: 1, Metered: true})
	return pw.Authenticate(require(stackLimiter(tb, m).Handler(charge(metered))))
}
