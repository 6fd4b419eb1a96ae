// Package fuse is how a limiter and a charge on the same route decide
// together: when limiter.Handler wraps a paywall charge (in either order,
// with entitlement checks between them), the charge takes the limiter's
// tokens and debits (or, metered, holds) its credits in one store
// operation. Users never see these types; they compose the middlewares as
// usual.
package fuse

import (
	"net/http"

	"github.com/go402/go402/store"
)

// StateKey is the context key under which paywall.Authenticate stores a
// request's state. Its presence tells a limiter that Authenticate ran.
type StateKey struct{}

// Limit is a limiter's side of a fused decision.
type Limit interface {
	// Buckets is the store that keeps the limit's buckets. The charge
	// fuses only when it is the charge's own store.
	Buckets() store.Buckets
	// Bucket returns the bucket of account a that r takes from. If the
	// limit cannot tell (the request's cost cannot be computed), it
	// answers the request itself and returns false.
	Bucket(w http.ResponseWriter, r *http.Request, a *store.Account) (store.Bucket, bool)
	// Admit answers for res, the outcome of a take of b that the store
	// made with a debit: it sets the rate-limit headers and reports the
	// decision; if the bucket refused, it writes the denial and returns
	// false.
	Admit(w http.ResponseWriter, r *http.Request, b store.Bucket, res store.BucketResult) bool
	// Take takes b's tokens alone, for a request the charge lets through
	// without a debit, and answers as Admit does (a failing store as the
	// limiter's own handler would).
	Take(w http.ResponseWriter, r *http.Request, b store.Bucket) bool
	// Alone is the limit as its own middleware in front of next, for
	// requests without an account.
	Alone(next http.Handler) http.Handler
}

// Charge is implemented by the handler of a paywall charge.
type Charge interface {
	http.Handler
	// Fuse returns the charge deciding l together with its debit, or nil
	// if it cannot (the buckets are not in the charge's store, or the
	// store cannot take tokens and debit or hold credits in one operation).
	Fuse(l Limit) http.Handler
}

// Layer is implemented by the handler of a middleware that wraps Next and
// can be rebuilt around another handler: a limit, or an entitlement check,
// which has no effect but refusing.
type Layer interface {
	http.Handler
	Next() http.Handler
	Rewrap(next http.Handler) http.Handler
	// Check reports whether the layer only checks the request.
	Check() bool
}

// Find returns the charge that h is, or that h reaches through checks,
// with a function that rebuilds those checks around a replacement.
func Find(h http.Handler) (Charge, func(http.Handler) http.Handler, bool) {
	if c, ok := h.(Charge); ok {
		return c, func(x http.Handler) http.Handler { return x }, true
	}
	l, ok := h.(Layer)
	if !ok || !l.Check() {
		return nil, nil, false
	}
	c, rebuild, ok := Find(l.Next())
	if !ok {
		return nil, nil, false
	}
	return c, func(x http.Handler) http.Handler { return l.Rewrap(rebuild(x)) }, true
}
