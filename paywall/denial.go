package paywall

import (
	"net/http"
	"time"
)

// Code is a stable, machine-readable reason for a denial. Codes never change
// meaning across releases; clients may branch on them.
type Code string

// Denial codes. Each has a default status, problem type and title; see
// [Denial].
const (
	CodeMissingKey           Code = "missing_key"           // 401: no key in the request
	CodeInvalidKey           Code = "invalid_key"           // 401: malformed or unknown key
	CodeKeyRevoked           Code = "key_revoked"           // 401
	CodeKeyExpired           Code = "key_expired"           // 401
	CodeSubscriptionInactive Code = "subscription_inactive" // 402: lapsed, canceled, suspended or period ended
	CodeFeatureNotInPlan     Code = "feature_not_in_plan"   // 402
	CodeInsufficientCredits  Code = "insufficient_credits"  // 402: prepaid balance too small
	CodeQuotaExhausted       Code = "quota_exhausted"       // 402: periodic quota used up until it refills
	CodeRateLimited          Code = "rate_limited"          // 429: token bucket empty
	CodeStoreUnavailable     Code = "store_unavailable"     // 503: back end failed (fail-closed)
	CodeInvalidRequest       Code = "invalid_request"       // 400: the request itself is unusable (e.g. a cost cannot be computed from it)
)

// Denial describes one refused request: everything the renderer needs to
// write the response, and nothing secret. The zero values of Status, Type and
// Title are filled in from Code by [WriteDenial].
type Denial struct {
	// Code is the stable reason. Required.
	Code Code
	// Status is the HTTP status. Zero means the default for Code.
	Status int
	// Type is the RFC 9457 problem type URI. Empty means the default for
	// Code, reusing registered or published types where one fits.
	Type string
	// Title is the short, stable summary of the problem type. Empty means
	// the default for Code.
	Title string
	// Detail explains this occurrence to a human. Never put a secret or a
	// back-end error string here.
	Detail string

	// Balance is the account's balance, when known (HasBalance).
	Balance    int64
	HasBalance bool
	// Cost is what the request would have cost, when known (non-zero).
	Cost int64
	// RefillAt is when a periodic quota refills; zero if not applicable.
	RefillAt time.Time
	// RetryAfter, if positive, is sent as Retry-After (whole seconds,
	// rounded up, minimum 1).
	RetryAfter time.Duration
	// Features lists the features that are missing from the plan.
	Features []string
	// UpgradeURL and PaymentURL tell the client where to upgrade its plan
	// or add credits. Empty ones are omitted.
	UpgradeURL string
	PaymentURL string

	// Realm is the realm of the WWW-Authenticate challenge sent with a 401.
	// Empty means "api".
	Realm string

	// Extensions are additional RFC 9457 extension members (names of at
	// least three letters, digits or underscores), for example the
	// limiter's "violated-policies". They must not collide with the members
	// above.
	Extensions map[string]any
	// Header holds extra response headers, for example RateLimit or
	// PAYMENT-REQUIRED, copied onto the response before it is written.
	Header http.Header
}

// DenyFunc writes the response for a denial. [WriteDenial] is the default;
// set [Options.Deny] to replace it.
type DenyFunc func(w http.ResponseWriter, r *http.Request, d *Denial)

// WriteDenial writes the standard response for d: the status; Cache-Control:
// no-store; WWW-Authenticate for a 401 (RFC 6750 Bearer, with
// error="invalid_token" unless the key was missing); Retry-After when
// RetryAfter is positive; d.Header; and a body negotiated from the request's
// Accept header — application/problem+json (RFC 9457) by default, a small
// HTML page for browsers, plain text for clients that accept neither.
//
// It is the renderer every go402 middleware uses, exported so that any
// handler can refuse a request in exactly the same way.
func WriteDenial(w http.ResponseWriter, r *http.Request, d *Denial) {
	panic("TODO")
}
