package paywall

import (
	"log/slog"
	"time"
)

// Decision is one allow or deny made by a go402 middleware, reported to
// [Options.OnDecision] for logging or metrics. It never contains the raw
// key.
type Decision struct {
	// Time is when the decision was made (from the configured clock).
	Time time.Time
	// Step is the middleware that decided: "authenticate", "require",
	// "charge", "refund" or "limit". A "refund" is Allowed when the credits
	// were given back; it writes no response.
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
	// Route is the request's pattern (Request.Pattern) as the deciding
	// middleware saw it: the ServeMux pattern for middlewares inside the
	// mux, empty for those outside a router. It is never the raw path, so
	// that metrics labelled by it stay bounded.
	Route string
	// Cost is what the request cost or would have cost (or the refund);
	// Balance is the balance after the decision, when known.
	Cost    int64
	Balance int64
	// Replay is true for an allowed "charge" that let a retry through
	// without a debit; see [Caller.Replay].
	Replay bool
	// Err is the error behind the decision, if any: the store's failure
	// (whether refused or let through by FailOpen) or a configuration
	// mistake. It never contains a raw key.
	Err error
}

// attrs returns the fields of d to log.
func (d *Decision) attrs() []slog.Attr {
	a := []slog.Attr{
		slog.Bool("allowed", d.Allowed),
		slog.String("code", string(d.Code)),
		slog.Int("status", d.Status),
		slog.String("route", d.Route),
		slog.String("account", d.AccountID),
		slog.String("key_prefix", d.KeyPrefix),
		slog.Int64("cost", d.Cost),
	}
	if d.Err != nil {
		a = append(a, slog.String("error", d.Err.Error()))
	}
	return a
}
