package paywall

import "time"

// Decision is one allow or deny made by a go402 middleware, reported to
// [Options.OnDecision] for logging or metrics. It never contains the raw key.
type Decision struct {
	// Time is when the decision was made (from the configured clock).
	Time time.Time
	// Step is the middleware that decided: "authenticate", "require",
	// "charge", "refund" or "limit". A "refund" decision is Allowed when the
	// credits were given back, and denied with CodeStoreUnavailable when the
	// store failed to; it writes no response.
	Step string
	// Allowed reports whether the request was let through.
	Allowed bool
	// Code is the denial code. It is empty when Allowed, except for
	// [CodeStoreUnavailable] when a store failure was let through by
	// [Options.FailOpen].
	Code Code
	// Status is the HTTP status of a denial; zero when Allowed.
	Status int
	// AccountID and KeyPrefix identify the caller when known: not for a
	// missing, malformed or unknown key.
	AccountID string
	KeyPrefix string
	// Route is the matched ServeMux pattern (Request.Pattern) if any, else
	// the request path. The pattern is known only to middlewares that run
	// inside the ServeMux, wrapping a route's handler.
	Route string
	// Cost is what the request cost or would have cost (or the refund);
	// Balance is the balance after the decision, when known.
	Cost    int64
	Balance int64
	// Replay is true for an allowed "charge" that let a retry through
	// uncharged (Cost zero), because a request with the same
	// Idempotency-Key was charged within [Options.IdempotencyWindow]; see
	// [Caller.Replay].
	Replay bool
}
