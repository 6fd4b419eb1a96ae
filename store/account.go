package store

import (
	"fmt"
	"maps"
	"net/url"
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

func (s Status) valid() bool {
	return s == StatusActive || s == StatusTrialing || s == StatusPastDue ||
		s == StatusCanceled || s == StatusSuspended
}

// Account is a customer: plan, subscription, features and credits, as a plain
// value (what Lookup returns equals what was put). The Features, Metadata,
// Refill, RateLimit and Windows a store returns may be shared with it: copy
// them to change them.
type Account struct {
	ID        string    `json:"id"`                  // 1 to 256 bytes
	Plan      string    `json:"plan,omitempty"`      // for example "free" or "pro"
	Status    Status    `json:"status,omitempty"`    // empty means [StatusActive]
	PeriodEnd time.Time `json:"period_end,omitzero"` // end of the paid (or trial) period; zero: never
	Features  []string  `json:"features,omitempty"`  // what the plan includes, for example "reports"
	// Balance is the credit balance, which [Store.Spend] never takes below
	// zero. From [Store.Lookup] it is as of the (maybe cached) lookup; the
	// authoritative figure is the one Spend reports.
	Balance int64   `json:"balance"`
	Refill  *Refill `json:"refill,omitempty"` // if set, tops the balance up periodically
	// RefilledAt is the boundary at which Refill was last applied, kept by
	// stores; if zero, the latest one at or before now applies next spend.
	RefilledAt time.Time         `json:"refilled_at,omitzero"`
	RateLimit  *RateLimit        `json:"rate_limit,omitempty"` // overrides the limiter's plan and default rates
	Windows    []Window          `json:"windows,omitempty"`    // if set, replace the limiter's other windows
	Metadata   map[string]string `json:"metadata,omitempty"`   // free-form, for the application
	// GraceUntil, for a [StatusPastDue] account, is when its grace ends:
	// until then it keeps access, marked overdue. Zero: no grace.
	GraceUntil time.Time `json:"grace_until,omitzero"`
	// Lapse says why billing took access away, when it knows; empty for
	// an account without a billing reason.
	Lapse Lapse `json:"lapse,omitempty"`
	// PaymentURL is where this customer fixes their billing (a billing
	// portal link): an absolute http or https URL, or empty.
	PaymentURL string `json:"payment_url,omitempty"`
	// SpendCap, if set, limits the credits spent per period.
	SpendCap *SpendCap `json:"spend_cap,omitzero"`
	// Thresholds are reported once per period when a spend crosses them.
	Thresholds []Threshold `json:"thresholds,omitempty"`
}

// Lapse is the billing system's reason for a subscription's lapse.
type Lapse string

// Lapse reasons, in three groups a client can act on: the subscription
// ended ([LapseCanceled], [LapseExpired]); a payment failed
// ([LapseCardDeclined], [LapseInsufficientFunds], [LapsePaymentFailed]);
// the payment method is missing or unusable ([LapsePaymentMethodMissing],
// [LapsePaymentMethodInvalid]).
const (
	LapseCanceled             Lapse = "canceled"
	LapseExpired              Lapse = "expired"
	LapseCardDeclined         Lapse = "card_declined"
	LapseInsufficientFunds    Lapse = "insufficient_funds"
	LapsePaymentFailed        Lapse = "payment_failed"
	LapsePaymentMethodMissing Lapse = "payment_method_missing"
	LapsePaymentMethodInvalid Lapse = "payment_method_invalid"
)

func (l Lapse) valid() bool {
	switch l {
	case LapseCanceled, LapseExpired, LapseCardDeclined, LapseInsufficientFunds, LapsePaymentFailed,
		LapsePaymentMethodMissing, LapsePaymentMethodInvalid:
		return true
	}
	return false
}

// clone returns a deep copy of a, with Features clipped so that appends copy.
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
	a.Windows = slices.Clip(slices.Clone(a.Windows))
	a.Thresholds = slices.Clip(slices.Clone(a.Thresholds))
	if a.SpendCap != nil {
		c := *a.SpendCap
		a.SpendCap = &c
	}
	return a
}

// Validate reports the first problem that makes a unusable, or nil.
func (a *Account) Validate() error {
	switch {
	case a.ID == "":
		return errorf("account ID must not be empty")
	case len(a.ID) > maxIDLength:
		return errorf("account ID longer than %d bytes", maxIDLength)
	}
	if p := a.problem(); p != "" {
		return errorf("account %q: %s", a.ID, p)
	}
	return nil
}

// problem describes the first problem of a's fields but its ID, or is "".
func (a *Account) problem() string {
	switch {
	case a.Status != "" && !a.Status.valid():
		return fmt.Sprintf("unknown status %q", a.Status)
	case a.Balance < 0:
		return fmt.Sprintf("negative balance %d", a.Balance)
	case a.Lapse != "" && !a.Lapse.valid():
		return fmt.Sprintf("unknown lapse reason %q", a.Lapse)
	case a.PaymentURL != "" && !webURL(a.PaymentURL):
		return fmt.Sprintf("payment URL %q is not an absolute http or https URL", a.PaymentURL)
	}
	if p := a.Refill.problem(); p != "" {
		return p
	}
	if p := a.RateLimit.problem(); p != "" {
		return p
	}
	for i := range a.Windows {
		if p := a.Windows[i].Problem(); p != "" {
			return p
		}
	}
	return a.capProblem()
}

// problem describes the first problem of r, if set, or is "".
func (r *Refill) problem() string {
	switch {
	case r == nil:
		return ""
	case r.Amount <= 0:
		return fmt.Sprintf("refill amount must be > 0, got %d", r.Amount)
	case r.Every <= 0:
		return fmt.Sprintf("refill period must be > 0, got %v", r.Every)
	case r.Anchor.IsZero():
		return "refill anchor must be set"
	}
	return ""
}

// problem describes the first problem of rl, if set, or is "".
func (rl *RateLimit) problem() string {
	switch {
	case rl == nil:
		return ""
	case !(rl.Rate > 0): // also rejects NaN
		return fmt.Sprintf("rate must be > 0, got %v", rl.Rate)
	case rl.Burst <= 0:
		return fmt.Sprintf("burst must be > 0, got %d", rl.Burst)
	}
	return ""
}

// webURL reports whether s is an absolute http or https URL with a host.
func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// maxIDLength is the longest account ID, in bytes.
const maxIDLength = 256

// Refill is a periodic quota: at every boundary Anchor + k·Every (k = 0,
// 1, 2, …) a balance below Amount is topped up to Amount, so credits bought
// on top are never lost and unused quota does not accumulate.
type Refill struct {
	Amount int64         `json:"amount"` // the balance restored; positive
	Every  time.Duration `json:"every"`  // the period; positive
	Anchor time.Time     `json:"anchor"` // the first boundary; not zero
}

// boundary returns the latest boundary at or before now, if any.
func (r *Refill) boundary(now time.Time) (time.Time, bool) {
	if now.Before(r.Anchor) {
		return time.Time{}, false
	}
	k := now.Sub(r.Anchor) / r.Every
	return r.Anchor.Add(k * r.Every), true
}

// applyRefill applies the refill due at now, if any, and reports whether
// the account changed.
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

// nextRefill returns the first boundary after now, or the zero time if the
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

// RateLimit is a token-bucket rate.
type RateLimit struct {
	Rate  float64 `json:"rate"`  // tokens per second; positive
	Burst int     `json:"burst"` // the bucket's capacity; positive
}
