package paywall

import (
	"context"
	"net/http"
	"time"

	"github.com/go402/go402/store"
)

// Paywall holds the configuration shared by the middlewares that
// authenticate keys, check entitlements and charge credits. Create one with
// [New]; its methods return middlewares of type func(http.Handler)
// http.Handler. A Paywall is safe for concurrent use.
type Paywall struct {
	store store.Store
	opts  Options
	// TODO: precomputed values (header lists, challenge strings, statuses).
}

// Options configures a [Paywall]. The zero value of every field means the
// documented default; a nil *Options means all defaults.
type Options struct {
	// Realm is the realm of WWW-Authenticate challenges. Default "api".
	Realm string

	// KeyHeaders lists the headers a key is read from, in order. The
	// Authorization header is read as "Bearer <key>" (RFC 6750); any other
	// header carries the bare key. Default: Authorization, X-API-Key.
	KeyHeaders []string

	// KeyQueryParam, if set, also reads the key from this URL query
	// parameter. Off by default: keys in URLs end up in logs and histories.
	KeyQueryParam string

	// MaxKeyLength is the longest key accepted; longer values are refused as
	// invalid without being hashed or looked up. Default 256 bytes.
	MaxKeyLength int

	// Status overrides the HTTP status for a denial code, for example
	// {CodeFeatureNotInPlan: http.StatusForbidden}. Codes not present keep
	// their defaults.
	Status map[Code]int

	// FailOpen lets requests through when the store fails (returns an error
	// other than not-found), without an account in the context and without
	// charging. Default false: such requests are refused with 503
	// store_unavailable.
	FailOpen bool

	// UpgradeURL is where a client can change its plan; PaymentURL is where
	// it can buy credits. When set they appear in 402 responses.
	UpgradeURL string
	PaymentURL string

	// RetryAfterUnavailable is the Retry-After sent with 503
	// store_unavailable. Default 1 second.
	RetryAfterUnavailable time.Duration

	// Deny writes every denial. Default [WriteDenial].
	Deny DenyFunc

	// OnDecision, if set, is called synchronously for every allow and deny
	// decision. It must be safe for concurrent use and should return
	// quickly.
	OnDecision func(ctx context.Context, d Decision)

	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
}

// New returns a Paywall on s. It reports configuration mistakes (a nil
// store, a negative MaxKeyLength, a status outside 400–599, a malformed
// header name) as errors prefixed "paywall:".
func New(s store.Store, opts *Options) (*Paywall, error) {
	panic("TODO")
}

// Authenticate is a middleware that requires an API key. It reads the key
// from the configured headers, looks its digest up in the store, refuses
// missing, malformed, unknown, revoked and expired keys with 401, and passes
// a copy of the request whose context carries the [Caller] to next.
func (p *Paywall) Authenticate(next http.Handler) http.Handler {
	panic("TODO")
}

// Requirement lists what an account must have to pass [Paywall.Require].
type Requirement struct {
	// Plans, if non-empty, lists the plans that may pass.
	Plans []string
	// Features lists features the plan must include; all are required.
	Features []string
	// AllowInactive lets accounts whose subscription is not active or
	// trialing (or whose period has ended) through. By default they are
	// refused with 402 subscription_inactive.
	AllowInactive bool
}

// Require returns a middleware that refuses, with 402, callers whose
// subscription has lapsed or whose plan lacks what req asks for. It must run
// after [Paywall.Authenticate]; a request without a [Caller] is refused with
// 401 missing_key.
func (p *Paywall) Require(req Requirement) func(http.Handler) http.Handler {
	panic("TODO")
}

// Charge returns a middleware that debits cost credits before next runs and
// refuses with 402 when the balance is too small. It panics if cost is
// negative, like [net/http.ServeMux.Handle] panics on a bad pattern: that is a
// programming error, found at start-up. It must run after
// [Paywall.Authenticate].
func (p *Paywall) Charge(cost int64) func(http.Handler) http.Handler {
	return p.ChargeWith(ChargeOptions{Cost: cost})
}

// ChargeOptions configures [Paywall.ChargeWith].
type ChargeOptions struct {
	// Cost is the fixed cost of a request. Ignored if CostFunc is set.
	Cost int64
	// CostFunc, if set, computes the cost from the request. An error
	// refuses the request with 400 invalid_request, its message shown as
	// the detail (so it must not contain secrets); a negative cost is
	// treated as an error.
	CostFunc func(r *http.Request) (int64, error)
	// Refund, if true, gives the credits back when next answers with a
	// status for which RefundIf returns true.
	Refund bool
	// RefundIf decides which statuses are refunded. Default: status ≥ 500.
	RefundIf func(status int) bool
}

// ChargeWith is like [Paywall.Charge] with all options. It panics on a
// negative Cost.
func (p *Paywall) ChargeWith(opts ChargeOptions) func(http.Handler) http.Handler {
	panic("TODO")
}
