package paywall

import (
	"cmp"
	"net/http"
	"time"
)

// Code is a stable, machine-readable reason for a denial. Codes never change
// meaning across releases; clients may branch on them.
type Code string

// Denial codes, each with a default status, problem type and title. The
// types are https://go402.dev/problems/ and the code, except two published
// ones: insufficient_credits is
// https://paymentauth.org/problems/payment-insufficient and rate_limited is
// https://iana.org/assignments/http-problem-types#quota-exceeded. Any other
// Code is a 403 of type about:blank titled with the status text.
const (
	CodeMissingKey           Code = "missing_key"           // 401: no key in the request
	CodeInvalidKey           Code = "invalid_key"           // 401: malformed or unknown key
	CodeKeyRevoked           Code = "key_revoked"           // 401
	CodeKeyExpired           Code = "key_expired"           // 401
	CodeSubscriptionInactive Code = "subscription_inactive" // 402: lapsed, canceled, suspended or period ended
	// The three codes of a lapse whose billing reason is known
	// ([store.Account.Lapse]), each with a "reason" member and the
	// account's own PaymentURL.
	CodeSubscriptionCanceled  Code = "subscription_canceled"   // 402: canceled, or expired unpaid
	CodePaymentFailed         Code = "payment_failed"          // 402: card declined, insufficient funds, other failure
	CodePaymentMethodRequired Code = "payment_method_required" // 402: payment method missing or unusable
	CodeFeatureNotInPlan      Code = "feature_not_in_plan"     // 402: feature (or plan) required
	CodeInsufficientCredits   Code = "insufficient_credits"    // 402: prepaid balance too small
	CodeQuotaExhausted        Code = "quota_exhausted"         // 402: periodic quota used up until it refills
	CodeSpendCapReached       Code = "spend_cap_reached"       // 402: the account's spend cap for the period reached, until reset_at
	CodeRateLimited           Code = "rate_limited"            // 429: token bucket empty
	CodeStoreUnavailable      Code = "store_unavailable"       // 503: back end failed (fail-closed)
	CodeInvalidRequest        Code = "invalid_request"         // 400: the request itself is unusable (e.g. a cost cannot be computed from it, or a malformed Idempotency-Key)
	CodeMisconfigured         Code = "misconfigured"           // 500: a middleware is wired without the one it needs in front

	CodeIdempotencyKeyReused  Code = "idempotency_key_reused"  // 422: the Idempotency-Key was used for another method or route
	CodeIdempotencyInProgress Code = "idempotency_in_progress" // 409: a request with the same Idempotency-Key is still in flight
)

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

	CodeSubscriptionCanceled:  {http.StatusPaymentRequired, go402Problems + "subscription_canceled", "Subscription canceled"},
	CodePaymentFailed:         {http.StatusPaymentRequired, go402Problems + "payment_failed", "Payment failed"},
	CodePaymentMethodRequired: {http.StatusPaymentRequired, go402Problems + "payment_method_required", "Payment method required"},

	CodeInsufficientCredits: {http.StatusPaymentRequired, "https://paymentauth.org/problems/payment-insufficient", "Payment Insufficient"},
	CodeQuotaExhausted:      {http.StatusPaymentRequired, go402Problems + "quota_exhausted", "Quota exhausted"},
	CodeSpendCapReached:     {http.StatusPaymentRequired, go402Problems + "spend_cap_reached", "Spend cap reached"},
	CodeRateLimited:         {http.StatusTooManyRequests, "https://iana.org/assignments/http-problem-types#quota-exceeded", "Quota Exceeded"},
	CodeStoreUnavailable:    {http.StatusServiceUnavailable, go402Problems + "store_unavailable", "Service unavailable"},
	CodeInvalidRequest:      {http.StatusBadRequest, go402Problems + "invalid_request", "Invalid request"},
	CodeMisconfigured:       {http.StatusInternalServerError, go402Problems + "misconfigured", "Service misconfigured"},

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

// Denial describes one refused request: what the renderer needs, nothing
// secret. [WriteDenial] fills a zero Status, Type and Title from Code.
type Denial struct {
	// Code is the stable reason. Required.
	Code Code
	// Status is the HTTP status; outside 400–599, Code's default.
	Status int
	// Type is the RFC 9457 problem type URI. A Type set with no Title is
	// titled with the status text.
	Type string
	// Title is the short, stable summary of the problem type.
	Title string
	// Detail explains this occurrence to a human: no secret, no back-end error.
	Detail string
	// Balance is the account's balance, when known (HasBalance).
	Balance    int64
	HasBalance bool
	// Cost is what the request would have cost, if non-zero.
	Cost int64
	// RefillAt is when a periodic quota refills, if it applies.
	RefillAt time.Time
	// ResetAt is when a spend cap's period ends, if it applies.
	ResetAt time.Time
	// RetryAfter, if positive, is sent as Retry-After and retry_after
	// (whole seconds, rounded up, at least 1).
	RetryAfter time.Duration
	// Features lists the features missing from the plan.
	Features []string
	// UpgradeURL and PaymentURL are where to upgrade the plan, add credits.
	UpgradeURL string
	PaymentURL string
	// Realm is the realm of a 401's challenge. Default "api".
	Realm string
	// Extensions are more RFC 9457 members (names of at least three
	// letters, digits or underscores), such as "violated-policies". One
	// named like a member go402 writes (see [WriteDenial]; also "instance"),
	// or not encodable as JSON, is left out.
	Extensions map[string]any
	// Header holds extra response headers, such as RateLimit or
	// PAYMENT-REQUIRED, overridden by the standard ones but for a
	// WWW-Authenticate, kept beside a 401's Bearer challenge.
	Header http.Header
}

// DenyFunc writes the response for a denial; see [Options.Deny].
type DenyFunc func(w http.ResponseWriter, r *http.Request, d *Denial)

// resolved returns the status, type and title of d with defaults applied.
func (d *Denial) resolved() (status int, typ, title string) {
	def := defaultsFor(d.Code)
	status, typ, title = d.Status, d.Type, d.Title
	if status < 400 || status > 599 {
		status = def.status
	}
	if typ == "" {
		typ, title = cmp.Or(def.typ, "about:blank"), cmp.Or(title, def.title)
	}
	return status, typ, cmp.Or(title, http.StatusText(status))
}
