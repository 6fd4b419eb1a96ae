package paywall

import (
	"net/http"
	"slices"
	"strings"

	"github.com/go402/go402/store"
)

// Requirement lists what an account must have to pass [Paywall.Require].
// The zero Requirement asks only for an entitled subscription.
type Requirement struct {
	// Plans, if non-empty, lists the plans that may pass; another plan is
	// refused with 402 feature_not_in_plan, listing these in "plans".
	Plans []string
	// Features lists the features the plan must all include; missing ones
	// are listed in the denial.
	Features []string
	// AllowInactive lets through accounts whose subscription has lapsed,
	// instead of a 402 subscription_inactive.
	AllowInactive bool
}

// Require returns a middleware that refuses with 402 callers whose
// subscription has lapsed (see [store.Account.Entitled]), then those whose
// plan lacks what req asks for. It must run after [Paywall.Authenticate],
// else 500 misconfigured; a request whose lookup failed open passes
// unchecked. It panics if a plan or feature name is empty, or next is nil.
func (p *Paywall) Require(req Requirement) func(http.Handler) http.Handler {
	req = Requirement{Plans: slices.Clone(req.Plans), Features: slices.Clone(req.Features), AllowInactive: req.AllowInactive}
	if slices.Contains(req.Plans, "") || slices.Contains(req.Features, "") {
		panic("paywall: Require: empty plan or feature name")
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("paywall: Require: nil handler")
		}
		return &requireHandler{p: p, req: req, next: next}
	}
}

// requireHandler is the handler of Require(req)(next). It only refuses, so
// a limiter may move it out to reach a charge behind (see internal/fuse).
type requireHandler struct {
	p    *Paywall
	req  Requirement
	next http.Handler
}

func (h *requireHandler) Next() http.Handler { return h.next }
func (h *requireHandler) Check() bool        { return true }
func (h *requireHandler) Rewrap(next http.Handler) http.Handler {
	return &requireHandler{p: h.p, req: h.req, next: next}
}

func (h *requireHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.p
	s := stateFrom(r.Context())
	switch {
	case s == nil:
		p.misconfigured(w, r, "require")
		return
	case s.failedOpen:
		p.passFailedOpen(w, r, "require", h.next)
		return
	}
	c := &s.caller
	if d := p.checkEntitlement(&c.Account, &h.req); d != nil {
		d.Balance, d.HasBalance = c.Balance, true
		p.refuse(w, r, decision("require", c), d)
		return
	}
	p.allow(r, "require", c, 0)
	h.next.ServeHTTP(w, r)
}

// checkEntitlement is Require's decision: nil if a passes, else the denial.
func (p *Paywall) checkEntitlement(a *store.Account, req *Requirement) *Denial {
	plans, features := req.Plans, req.Features
	if !req.AllowInactive && !p.entitled(a) {
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
		return &Denial{Code: CodeSubscriptionInactive, Detail: detail, UpgradeURL: p.opts.UpgradeURL, PaymentURL: p.opts.PaymentURL}
	}
	if len(plans) > 0 && !slices.Contains(plans, a.Plan) {
		detail := "This requires the " + joinOr(plans) + " plan"
		if a.Plan != "" {
			detail += "; the account is on the " + a.Plan + " plan"
		}
		return &Denial{
			Code:       CodeFeatureNotInPlan,
			Detail:     detail + ".",
			UpgradeURL: p.opts.UpgradeURL,
			Extensions: map[string]any{"plans": slices.Clone(plans)},
		}
	}
	var missing []string
	for _, f := range features {
		if !slices.Contains(a.Features, f) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		plan := "The account's plan"
		if a.Plan != "" {
			plan = "The " + a.Plan + " plan"
		}
		return &Denial{
			Code:       CodeFeatureNotInPlan,
			Detail:     plan + " does not include " + strings.Join(missing, ", ") + ".",
			Features:   missing,
			UpgradeURL: p.opts.UpgradeURL,
		}
	}
	return nil
}

// entitled reports whether a's status is active, trialing or empty, and its
// period (if any) has not ended.
func (p *Paywall) entitled(a *store.Account) bool {
	switch a.Status {
	case "", store.StatusActive, store.StatusTrialing:
		return a.PeriodEnd.IsZero() || p.opts.Clock().Before(a.PeriodEnd)
	}
	return false
}
