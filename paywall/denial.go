package paywall

import (
	"net/http"
	"time"
)

// Code is a stable, machine-readable reason for a denial. Codes never change
// meaning across releases; clients may branch on them.
type Code string

// Denial codes. Each has a default status, problem type and title; see
// [Denial]. Problem types reuse published ones where they fit:
// insufficient_credits is https://paymentauth.org/problems/payment-insufficient
// (from the "Payment" HTTP authentication scheme draft) and rate_limited is
// https://iana.org/assignments/http-problem-types#quota-exceeded (from the
// RateLimit header fields draft). Every other code's type is
// https://go402.dev/problems/ followed by the code, for example
// https://go402.dev/problems/feature_not_in_plan. A Code not listed here
// defaults to 403 with type about:blank, RFC 9457's "no more than the status
// says", and the status text as title.
const (
	CodeMissingKey           Code = "missing_key"           // 401: no key in the request
	CodeInvalidKey           Code = "invalid_key"           // 401: malformed or unknown key
	CodeKeyRevoked           Code = "key_revoked"           // 401
	CodeKeyExpired           Code = "key_expired"           // 401
	CodeSubscriptionInactive Code = "subscription_inactive" // 402: lapsed, canceled, suspended or period ended
	CodeFeatureNotInPlan     Code = "feature_not_in_plan"   // 402: feature (or plan) required
	CodeInsufficientCredits  Code = "insufficient_credits"  // 402: prepaid balance too small
	CodeQuotaExhausted       Code = "quota_exhausted"       // 402: periodic quota used up until it refills
	CodeRateLimited          Code = "rate_limited"          // 429: token bucket empty
	CodeStoreUnavailable     Code = "store_unavailable"     // 503: back end failed (fail-closed)
	CodeInvalidRequest       Code = "invalid_request"       // 400: the request itself is unusable (e.g. a cost cannot be computed from it, or a malformed Idempotency-Key)
	CodeMisconfigured        Code = "misconfigured"         // 500: a middleware is wired without the one it needs in front
)

// Denial codes of the Idempotency-Key header; see [Paywall.ChargeWith].
const (
	CodeIdempotencyKeyReused  Code = "idempotency_key_reused"  // 422: the key was used for another method or route
	CodeIdempotencyInProgress Code = "idempotency_in_progress" // 409: a request with the same key is still in flight
)

// go402Problems is the base of go402's own problem type URIs.
const go402Problems = "https://go402.dev/problems/"

// codeDefaults is what a Code means on the wire by default.
type codeDefaults struct {
	status int
	typ    string
	title  string
}

var defaults = map[Code]codeDefaults{
	CodeMissingKey:           {http.StatusUnauthorized, go402Problems + "missing_key", "API key required"},
	CodeInvalidKey:           {http.StatusUnauthorized, go402Problems + "invalid_key", "Invalid API key"},
	CodeKeyRevoked:           {http.StatusUnauthorized, go402Problems + "key_revoked", "API key revoked"},
	CodeKeyExpired:           {http.StatusUnauthorized, go402Problems + "key_expired", "API key expired"},
	CodeSubscriptionInactive: {http.StatusPaymentRequired, go402Problems + "subscription_inactive", "Subscription inactive"},
	CodeFeatureNotInPlan:     {http.StatusPaymentRequired, go402Problems + "feature_not_in_plan", "Feature not in plan"},
	CodeInsufficientCredits:  {http.StatusPaymentRequired, "https://paymentauth.org/problems/payment-insufficient", "Payment Insufficient"},
	CodeQuotaExhausted:       {http.StatusPaymentRequired, go402Problems + "quota_exhausted", "Quota exhausted"},
	CodeRateLimited:          {http.StatusTooManyRequests, "https://iana.org/assignments/http-problem-types#quota-exceeded", "Quota Exceeded"},
	CodeStoreUnavailable:     {http.StatusServiceUnavailable, go402Problems + "store_unavailable", "Service unavailable"},
	CodeInvalidRequest:       {http.StatusBadRequest, go402Problems + "invalid_request", "Invalid request"},
	CodeMisconfigured:        {http.StatusInternalServerError, go402Problems + "misconfigured", "Service misconfigured"},

	CodeIdempotencyKeyReused:  {http.StatusUnprocessableEntity, go402Problems + "idempotency_key_reused", "Idempotency key reused"},
	CodeIdempotencyInProgress: {http.StatusConflict, go402Problems + "idempotency_in_progress", "Request in progress"},
}

// defaultsFor returns the defaults of c; an unknown code is a 403 of type
// about:blank.
func defaultsFor(c Code) codeDefaults {
	if d, ok := defaults[c]; ok {
		return d
	}
	return codeDefaults{status: http.StatusForbidden}
}

// Denial describes one refused request: everything the renderer needs to
// write the response, and nothing secret. The zero values of Status, Type and
// Title are filled in from Code by [WriteDenial].
type Denial struct {
	// Code is the stable reason. Required.
	Code Code
	// Status is the HTTP status. Zero (or anything outside 400–599) means
	// the default for Code.
	Status int
	// Type is the RFC 9457 problem type URI. Empty means the default for
	// Code, reusing registered or published types where one fits. A Type
	// set here with an empty Title gets the status text as its title.
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
	// rounded up, minimum 1), and as the retry_after member.
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
	// limiter's "violated-policies". A member whose name collides with one
	// of the members go402 writes (type, title, status, detail, instance,
	// code, balance, cost, refill_at, retry_after, features, upgrade_url,
	// payment_url) or whose value cannot be encoded as JSON is left out.
	Extensions map[string]any
	// Header holds extra response headers, for example RateLimit or
	// PAYMENT-REQUIRED, copied onto the response before the standard ones
	// (Cache-Control, Content-Type, X-Content-Type-Options, Content-Length,
	// Retry-After), which take precedence. A WWW-Authenticate challenge
	// here is kept alongside the Bearer one of a 401.
	Header http.Header
}

// DenyFunc writes the response for a denial. [WriteDenial] is the default;
// set [Options.Deny] to replace it.
type DenyFunc func(w http.ResponseWriter, r *http.Request, d *Denial)

// resolved returns the status, type and title of d with defaults applied.
func (d *Denial) resolved() (status int, typ, title string) {
	def := defaultsFor(d.Code)
	status, typ, title = d.Status, d.Type, d.Title
	if status < 400 || status > 599 {
		status = def.status
	}
	if typ == "" {
		typ = def.typ
		if typ == "" {
			typ = "about:blank"
		}
		if title == "" {
			title = def.title
		}
	}
	if title == "" {
		title = http.StatusText(status)
	}
	return status, typ, title
}
