package paywall

import (
	"context"
	"net/http"

	"github.com/go402/go402/internal/fuse"
	"github.com/go402/go402/store"
)

// Caller is what the middlewares learned about the request's caller.
// Handlers read it with [CallerFromContext]; it belongs to the request and
// must be treated as read-only.
type Caller struct {
	// Key is the authenticated key: its digest and display prefix, never
	// the raw key.
	Key store.Key
	// Account is the key's account as [Paywall.Authenticate] looked it
	// up. Its Balance is the balance at the lookup.
	Account store.Account
	// Charged is what [Paywall.Charge] middlewares debited for this
	// request so far. A later refund does not change it.
	Charged int64
	// Balance is the balance after the last charge, or the balance at the
	// lookup if the request was not charged.
	Balance int64
	// Replay is true when a charge let the request through without a
	// debit because it retries a request with the same Idempotency-Key
	// that was charged within [Options.IdempotencyWindow]. The handler
	// runs again for a retry and should answer as it did the first time.
	Replay bool
}

// requestState is what [Paywall.Authenticate] adds to a request's context:
// the Caller, which the charges of the request update in place, and the
// Idempotency-Key a charge holds. It is allocated together with the copy of
// the request that carries it.
type requestState struct {
	caller Caller
	// failedOpen is set when the lookup failed and Options.FailOpen let
	// the request through: there is no Caller, and Require and Charge pass
	// the request unchecked.
	failedOpen bool
	// idem tracks the Idempotency-Key a charge of this request holds.
	idem idemUse
}

// authenticated is what Authenticate allocates for a request it lets
// through: the state and the copy of the request that carries it.
type authenticated struct {
	state requestState
	req   http.Request
}

// withState returns a copy of r whose context carries a new state, and
// the state.
func withState(r *http.Request) (*http.Request, *requestState) {
	a := new(authenticated)
	a.req = *r.WithContext(context.WithValue(r.Context(), fuse.StateKey{}, &a.state))
	return &a.req, &a.state
}

// stateFrom returns the request state in ctx, or nil.
func stateFrom(ctx context.Context) *requestState {
	s, _ := ctx.Value(fuse.StateKey{}).(*requestState)
	return s
}

// CallerFromContext returns the caller that [Paywall.Authenticate] put in
// ctx, and false if there is none: no Authenticate ran, or the store failed
// and [Options.FailOpen] let the request through.
func CallerFromContext(ctx context.Context) (*Caller, bool) {
	s := stateFrom(ctx)
	if s == nil || s.failedOpen {
		return nil, false
	}
	return &s.caller, true
}
