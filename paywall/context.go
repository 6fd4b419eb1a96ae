package paywall

import (
	"context"
	"net/http"

	"github.com/go402/go402/internal/fuse"
	"github.com/go402/go402/store"
)

// Caller is what the middlewares learned about the request's caller, read
// (and only read) by handlers with [CallerFromContext].
type Caller struct {
	// Key is the authenticated key (its digest and prefix, not the key).
	Key store.Key
	// Account is the key's account as looked up, with its balance then.
	Account store.Account
	// Charged is what charges debited for this request so far, refunds
	// aside.
	Charged int64
	// Balance is the balance after the last charge, else at the lookup.
	Balance int64
	// Replay is true when a charge let the request through without a
	// debit: it retries one with the same Idempotency-Key charged within
	// [Options.IdempotencyWindow], and should get the same answer.
	Replay bool
}

// requestState is what [Paywall.Authenticate] adds to a request's context:
// the Caller, which charges update in place, and their Idempotency-Key.
type requestState struct {
	caller     Caller
	failedOpen bool // the lookup failed open: no Caller, nothing checked
	idem       idemUse
}

// withState returns a copy of r whose context carries a new state, and the
// state, in one allocation.
func withState(r *http.Request) (*http.Request, *requestState) {
	a := new(struct {
		state requestState
		req   http.Request
	})
	a.req = *r.WithContext(context.WithValue(r.Context(), fuse.StateKey{}, &a.state))
	return &a.req, &a.state
}

// stateFrom returns the request state in ctx, or nil.
func stateFrom(ctx context.Context) *requestState {
	s, _ := ctx.Value(fuse.StateKey{}).(*requestState)
	return s
}

// CallerFromContext returns the caller that [Paywall.Authenticate] put in
// ctx, or false: no Authenticate ran, or its lookup failed open.
func CallerFromContext(ctx context.Context) (*Caller, bool) {
	s := stateFrom(ctx)
	if s == nil || s.failedOpen {
		return nil, false
	}
	return &s.caller, true
}
