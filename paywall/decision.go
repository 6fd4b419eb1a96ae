package paywall

import (
	"log/slog"
	"time"
)

// Decision is one allow or deny of a go402 middleware, reported to
// [Options.OnDecision]. It never contains the raw key.
type Decision struct {
	// Time is when the decision was made, by [Options.Clock].
	Time time.Time
	// Step is the deciding middleware: "authenticate", "require", "charge",
	// "refund" (Allowed if the credits were given back) or "limit".
	Step string
	// Allowed reports whether the request was let through.
	Allowed bool
	// Code is the denial code: empty when Allowed, but for
	// [CodeStoreUnavailable] when [Options.FailOpen] let a failure through.
	Code Code
	// Status is the HTTP status of a denial; zero when Allowed.
	Status int
	// AccountID and KeyPrefix identify the caller, once a key was found.
	AccountID string
	KeyPrefix string
	// Route is the request's Pattern as the middleware saw it (empty
	// outside a ServeMux); never the raw path, so metrics stay bounded.
	Route string
	// Cost is what the request cost or would have cost (or the refund);
	// Balance is the balance after the decision, when known.
	Cost    int64
	Balance int64
	// Replay marks a "charge" that let a retry through; see [Caller.Replay].
	Replay bool
	// Err is the store's failure or configuration mistake behind the
	// decision, if any.
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
