package store

import (
	"maps"
	"slices"
	"time"
)

// Status is the state of an account's subscription.
type Status string

// Subscription states. Only [StatusActive] and [StatusTrialing], and the
// empty Status, grant access, and only before the account's PeriodEnd.
const (
	StatusActive    Status = "active"
	StatusTrialing  Status = "trialing"
	StatusPastDue   Status = "past_due"
	StatusCanceled  Status = "canceled"
	StatusSuspended Status = "suspended"
)

// valid reports whether s is one of the defined subscription states.
func (s Status) valid() bool {
	switch s {
	case StatusActive, StatusTrialing, StatusPastDue, StatusCanceled, StatusSuspended:
		return true
	}
	return false
}

// Account is a customer: the plan they are on, the state of their
// subscription, what the plan includes, and their credits. It is a plain
// value: what a store's Lookup returns equals what was put.
//
// The Features, Metadata, Refill and RateLimit of an Account a store
// returns may be shared with the store and must be treated as read-only;
// copy them (slices.Clone, maps.Clone) to change them.
type Account struct {
	// ID identifies the account: 1 to 256 bytes.
	ID string `json:"id"`

	// Plan names the account's plan, for example "free" or "pro".
	Plan string `json:"plan,omitempty"`

	// Status is the subscription state. The empty Status is treated as
	// [StatusActive], so accounts without subscriptions need not set it.
	Status Status `json:"status,omitempty"`

	// PeriodEnd is when the paid (or trial) period ends. The zero time means
	// the period never ends.
	PeriodEnd time.Time `json:"period_end,omitzero"`

	// Features lists the features the plan includes, for example "reports".
	Features []string `json:"features,omitempty"`

	// Balance is the account's credit balance. Stores never let it go below
	// zero through [Store.Spend]. In a value returned by [Store.Lookup] it is
	// the balance at the time of the lookup (or of the cached lookup); the
	// authoritative figure is the one [Store.Spend] reports.
	Balance int64 `json:"balance"`

	// Refill, if non-nil, tops the balance up periodically, turning credits
	// into a quota that follows the billing cycle. See [Refill].
	Refill *Refill `json:"refill,omitempty"`

	// RefilledAt is the period boundary at which Refill was last applied.
	// Stores maintain it; the zero time means no refill has been applied yet,
	// so the first boundary at or before now applies on the next spend.
	RefilledAt time.Time `json:"refilled_at,omitzero"`

	// RateLimit, if non-nil, overrides the limiter's per-plan and default
	// rates for this account.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`

	// Metadata holds free-form data for the application.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// clone returns a deep copy of a, sharing nothing with it. The copy's
// Features slice has no spare capacity, so appending to it (or to a shallow
// copy of it) never writes into memory another copy can see.
func (a Account) clone() Account {
	a.Features = slices.Clip(slices.Clone(a.Features))
	if a.Refill != nil {
		r := *a.Refill
		a.Refill = &r
	}
	if a.RateLimit != nil {
		rl := *a.RateLimit
		a.RateLimit = &rl
	}
	a.Metadata = maps.Clone(a.Metadata)
	return a
}

// Validate reports the first problem that makes a unusable, or nil.
func (a *Account) Validate() error {
	switch {
	case a.ID == "":
		return errorf("account ID must not be empty")
	case len(a.ID) > maxIDLength:
		return errorf("account ID longer than %d bytes", maxIDLength)
	case a.Status != "" && !a.Status.valid():
		return errorf("account %q: unknown status %q", a.ID, a.Status)
	case a.Balance < 0:
		return errorf("account %q: negative balance %d", a.ID, a.Balance)
	}
	if a.Refill != nil {
		if err := a.Refill.validate(); err != nil {
			return errorf("account %q: %v", a.ID, err)
		}
	}
	if a.RateLimit != nil {
		if err := a.RateLimit.validate(); err != nil {
			return errorf("account %q: %v", a.ID, err)
		}
	}
	return nil
}

// maxIDLength is the longest account ID stores accept.
const maxIDLength = 256

// Refill describes a periodic quota: at every period boundary
// Anchor + k·Every (k = 0, 1, 2, …) the balance is topped up to Amount.
// A balance already at or above Amount is left alone, so credits bought on
// top of the quota are never lost, and unused quota does not accumulate.
type Refill struct {
	// Amount is the balance each boundary restores. It must be positive.
	Amount int64 `json:"amount"`
	// Every is the length of the period. It must be positive.
	Every time.Duration `json:"every"`
	// Anchor is the first boundary, typically the start of the billing
	// cycle. It must not be the zero time.
	Anchor time.Time `json:"anchor"`
}

func (r *Refill) validate() error {
	switch {
	case r.Amount <= 0:
		return errorf("refill amount must be > 0, got %d", r.Amount)
	case r.Every <= 0:
		return errorf("refill period must be > 0, got %v", r.Every)
	case r.Anchor.IsZero():
		return errorf("refill anchor must be set")
	}
	return nil
}

// boundary returns the latest period boundary at or before now, and false if
// now is before Anchor.
func (r *Refill) boundary(now time.Time) (time.Time, bool) {
	if now.Before(r.Anchor) {
		return time.Time{}, false
	}
	k := now.Sub(r.Anchor) / r.Every
	return r.Anchor.Add(k * r.Every), true
}

// applyRefill applies any refill that is due at now: if a boundary at or
// before now is later than RefilledAt, the balance is topped up to
// Refill.Amount and RefilledAt moves to that boundary. It reports whether
// the account changed, and does nothing when Refill is nil.
func (a *Account) applyRefill(now time.Time) bool {
	if a.Refill == nil {
		return false
	}
	b, ok := a.Refill.boundary(now)
	if !ok || !b.After(a.RefilledAt) {
		return false
	}
	a.RefilledAt = b
	if a.Balance < a.Refill.Amount {
		a.Balance = a.Refill.Amount
	}
	return true
}

// nextRefill returns when the balance is next topped up after now: the
// first period boundary strictly after now, or the zero time if the
// account has no refill.
func (a *Account) nextRefill(now time.Time) time.Time {
	if a.Refill == nil {
		return time.Time{}
	}
	b, ok := a.Refill.boundary(now)
	if !ok {
		return a.Refill.Anchor
	}
	return b.Add(a.Refill.Every)
}

// RateLimit is a token-bucket rate: Rate tokens per second, up to Burst
// tokens at once.
type RateLimit struct {
	// Rate is the refill rate in tokens per second. It must be positive.
	Rate float64 `json:"rate"`
	// Burst is the bucket's capacity. It must be positive.
	Burst int `json:"burst"`
}

// validate reports whether r is usable.
func (r *RateLimit) validate() error {
	switch {
	case !(r.Rate > 0): // also rejects NaN
		return errorf("rate must be > 0, got %v", r.Rate)
	case r.Burst <= 0:
		return errorf("burst must be > 0, got %d", r.Burst)
	}
	return nil
}
