package paywall

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go402/go402/store"
)

// Requirement lists what an account must have to pass [Paywall.Require].
// The zero Requirement asks only for an entitled subscription.
type Requirement struct {
	// Plans, if non-empty, lists the plans that may pass. An account on
	// another plan is refused with 402 feature_not_in_plan, with the plans
	// that would do in the "plans" extension member.
	Plans []string
	// Features lists features the plan must include; all are required.
	// Missing ones are listed in the denial.
	Features []string
	// AllowInactive lets accounts whose subscription is not active or
	// trialing (or whose period has ended) through. By default they are
	// refused with 402 subscription_inactive.
	AllowInactive bool
}

// Require returns a middleware that refuses, with 402, callers whose
// subscription has lapsed (see [store.Account.Entitled]) or whose plan lacks
// what req asks for, checked in that order. It must run after
// [Paywall.Authenticate]; a request without a [Caller] is refused with 401
// missing_key, and one that Authenticate let through on a store failure
// under [Options.FailOpen] passes unchecked.
//
// It panics if a plan or feature name in req is empty, or if next is nil.
func (p *Paywall) Require(req Requirement) func(http.Handler) http.Handler {
	plans := slices.Clone(req.Plans)
	features := slices.Clone(req.Features)
	for _, s := range slices.Concat(plans, features) {
		if s == "" {
			panic("paywall: Require: empty plan or feature name")
		}
	}
	allowInactive := req.AllowInactive
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("paywall: Require: nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := stateFrom(r.Context())
			if s == nil || s.failedOpen() {
				p.serveWithoutCaller(w, r, next, "require", s)
				return
			}
			c := &s.caller
			if d := p.checkEntitlement(c.Account, allowInactive, plans, features); d != nil {
				d.Balance, d.HasBalance = c.Balance, true
				p.refuse(w, r, "require", d, c.Account.ID, c.Key.Prefix)
				return
			}
			p.allow(r, "require", "", c, 0, c.Balance)
			next.ServeHTTP(w, r)
		})
	}
}

// checkEntitlement is the pure decision of Require: nil if a passes, else
// the denial.
func (p *Paywall) checkEntitlement(a *store.Account, allowInactive bool, plans, features []string) *Denial {
	if !allowInactive && !p.entitled(a) {
		detail := "The subscription is not active."
		switch a.Status {
		case "", store.StatusActive, store.StatusTrialing:
			detail = "The subscription period has ended."
		case store.StatusPastDue:
			detail = "The subscription is past due: a payment is outstanding."
		case store.StatusCanceled:
			detail = "The subscription has been canceled."
		case store.StatusSuspended:
			detail = "The subscription is suspended."
		}
		return &Denial{Code: CodeSubscriptionInactive, Detail: detail, UpgradeURL: p.upgradeURL, PaymentURL: p.paymentURL}
	}
	if len(plans) > 0 && !slices.Contains(plans, a.Plan) {
		return &Denial{
			Code:       CodeFeatureNotInPlan,
			Detail:     "This requires the " + joinOr(plans) + " plan" + onPlan(a.Plan) + ".",
			UpgradeURL: p.upgradeURL,
			Extensions: map[string]any{"plans": slices.Clone(plans)},
		}
	}
	var missing []string
	for _, f := range features {
		if !a.HasFeature(f) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return &Denial{
			Code:       CodeFeatureNotInPlan,
			Detail:     planName(a.Plan) + " does not include " + strings.Join(missing, ", ") + ".",
			Features:   missing,
			UpgradeURL: p.upgradeURL,
		}
	}
	return nil
}

// entitled is a.Entitled at the clock's now, reading the clock only when
// the account has a period end.
func (p *Paywall) entitled(a *store.Account) bool {
	if a.PeriodEnd.IsZero() {
		return a.Entitled(time.Time{})
	}
	return a.Entitled(p.clock())
}

func onPlan(plan string) string {
	if plan == "" {
		return ""
	}
	return "; the account is on the " + plan + " plan"
}

func planName(plan string) string {
	if plan == "" {
		return "The account's plan"
	}
	return "The " + plan + " plan"
}
