package paywall

import (
	"context"

	"github.com/go402/go402/store"
)

// Caller is what the middlewares learned about the request's caller. Handlers
// read it with [CallerFromContext]; it must be treated as read-only.
type Caller struct {
	// Key is the authenticated key (its digest and display prefix, never
	// the raw key).
	Key store.Key
	// Account is the key's account as looked up by [Paywall.Authenticate].
	Account store.Account
	// Charged is what [Paywall.Charge] debited for this request (zero if
	// nothing was charged).
	Charged int64
	// Balance is the balance after the charge, or the looked-up balance if
	// the request was not charged.
	Balance int64
}

// CallerFromContext returns the caller that [Paywall.Authenticate] put in
// ctx, and false if there is none.
func CallerFromContext(ctx context.Context) (*Caller, bool) {
	panic("TODO")
}
