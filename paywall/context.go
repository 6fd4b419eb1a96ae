package paywall

import (
	"context"
	"net/http"
	"time"

	"github.com/go402/go402/store"
)

// Caller is what the middlewares learned about the request's caller. Handlers
// read it with [CallerFromContext]; it must be treated as read-only.
//
// Key and Account may point to the store's own records (see
// [store.SharedLookup]), which is why they must not be modified, and why
// Account.Balance may be out of date: the caller's balance is Balance.
type Caller struct {
	// Key is the authenticated key (its digest and display prefix, never
	// the raw key). It is never nil.
	Key *store.Key
	// Account is the key's account as looked up by [Paywall.Authenticate].
	// It is never nil. Its Balance field is the balance at the lookup if
	// the store copies its records and may be older if it shares them: use
	// Balance below.
	Account *store.Account
	// Charged is what [Paywall.Charge] middlewares debited for this request
	// so far (zero if nothing was charged). A later refund does not change
	// it.
	Charged int64
	// Balance is the balance after the last charge, or the balance at the
	// lookup if the request was not charged.
	Balance int64
	// Replay is true when [Paywall.Charge] let the request through without
	// debiting it, because it is a retry of a request with the same
	// Idempotency-Key that was charged within [Options.IdempotencyWindow].
	// Charged is then zero. The handler runs again for a retry: it should
	// answer as it did the first time.
	Replay bool
}

// requestState is the one value [Paywall.Authenticate] adds to a request: a
// context that carries the Caller itself, so that authenticating costs one
// allocation for the state and the request copy together (see
// authenticated), and [Paywall.Charge] records its charge in place without
// copying the request again. With a store that shares its records, the
// state and the request copy together fit the 384-byte size class.
type requestState struct {
	// parent is the request that Authenticate was given. Its context is
	// this context's parent: keeping the request (one word) rather than
	// its context (two) keeps the state small.
	parent *http.Request
	caller Caller
	// rateLimit is the first RateLimiter that claimed the request's rate
	// limit (see ClaimRateLimit), or nil.
	rateLimit RateLimiter
	// ext is nil until the request needs one of the rarer fields.
	ext *stateExt
}

// stateExt is the part of a requestState that only requests that failed
// open, hold an Idempotency-Key or are rate limited twice need.
type stateExt struct {
	// failedOpen is set when the lookup failed and Options.FailOpen let the
	// request through: there is no Caller, and Require and Charge pass the
	// request unchecked.
	failedOpen bool
	// idem tracks the Idempotency-Key a Charge of this request holds.
	idem idemUse
	// lastRateLimit is the latest RateLimiter after the first that claimed
	// the request's rate limit, so that one applied twice takes its tokens
	// once (see ClaimRateLimit).
	lastRateLimit RateLimiter
}

// extra returns the state's stateExt, allocating it if need be.
func (s *requestState) extra() *stateExt {
	if s.ext == nil {
		s.ext = new(stateExt)
	}
	return s.ext
}

// failedOpen reports whether the lookup failed and Options.FailOpen let the
// request through.
func (s *requestState) failedOpen() bool {
	return s.ext != nil && s.ext.failedOpen
}

// idemHeld reports whether a Charge of the request holds an
// Idempotency-Key.
func (s *requestState) idemHeld() bool {
	return s.ext != nil && s.ext.idem.held
}

// voidIdem records that a charge of the request was refused or its debit
// refunded. It matters only while an Idempotency-Key is held.
func (s *requestState) voidIdem() {
	if s.ext != nil {
		s.ext.idem.void = true
	}
}

// debitedIdem records that a debit was made. It matters only while an
// Idempotency-Key is held.
func (s *requestState) debitedIdem() {
	if s.ext != nil {
		s.ext.idem.debited = true
	}
}

// authenticated is what [Paywall.Authenticate] allocates for a request it
// lets through when the store shares its records: the request's state and
// the copy of the request that carries it, in one allocation (384 bytes).
type authenticated struct {
	state requestState
	req   http.Request
}

// authenticatedCopy is what [Paywall.Authenticate] allocates for a request
// it lets through when the store's Lookup returns copies: authenticated and
// the key and account the Caller points to, in one allocation.
type authenticatedCopy struct {
	authenticated
	key     store.Key
	account store.Account
}

var _ store.AccountContext = (*requestState)(nil)

// stateKey is the context key under which a requestState finds itself.
type stateKey struct{}

// LookedUpAccount implements [store.AccountContext], so that a store can
// spend from the caller's account without looking it up again.
func (s *requestState) LookedUpAccount() *store.Account { return s.caller.Account }

// Deadline implements [context.Context]: the parent's.
func (s *requestState) Deadline() (time.Time, bool) { return s.parent.Context().Deadline() }

// Done implements [context.Context]: the parent's.
func (s *requestState) Done() <-chan struct{} { return s.parent.Context().Done() }

// Err implements [context.Context]: the parent's.
func (s *requestState) Err() error { return s.parent.Context().Err() }

// Value implements [context.Context]: it returns the state itself for
// stateKey and defers to the parent context for every other key.
func (s *requestState) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return s
	}
	return s.parent.Context().Value(key)
}

// stateFrom returns the request state in ctx, or nil.
func stateFrom(ctx context.Context) *requestState {
	s, _ := ctx.Value(stateKey{}).(*requestState)
	return s
}

// CallerFromContext returns the caller that [Paywall.Authenticate] put in
// ctx, and false if there is none (no Authenticate ran, or the store failed
// and [Options.FailOpen] let the request through). The Caller belongs to the
// request and must not be modified.
func CallerFromContext(ctx context.Context) (*Caller, bool) {
	s := stateFrom(ctx)
	if s == nil || s.failedOpen() {
		return nil, false
	}
	return &s.caller, true
}

// serveWithoutCaller answers a request that reached step (a middleware that
// needs the caller) without one: s is nil when no Authenticate ran, so the
// request is refused with 401 missing_key; otherwise the lookup failed open
// and the request goes on to next unchecked, as [Options.FailOpen] says.
func (p *Paywall) serveWithoutCaller(w http.ResponseWriter, r *http.Request, next http.Handler, step string, s *requestState) {
	if s == nil {
		p.refuse(w, r, step, &Denial{Code: CodeMissingKey, Detail: p.missingDetail}, "", "")
		return
	}
	p.allow(r, step, CodeStoreUnavailable, nil, 0, 0)
	next.ServeHTTP(w, r)
}
