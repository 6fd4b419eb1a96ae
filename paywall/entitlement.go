package paywall

import (
	"cmp"
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
	case s.shadowed:
		h.next.ServeHTTP(w, r)
		return
	case s.failedOpen:
		p.passFailedOpen(w, r, "require", h.next)
		return
	}
	c := &s.caller
	if d := p.checkEntitlement(&c.Account, &h.req); d != nil {
		d.Balance, d.HasBalance = c.Balance, true
		if !p.opts.Shadow {
			p.refuse(w, r, decision("require", c), d)
			return
		}
		p.shadowRefuse(w, r, s, decision("require", c), d)
	} else if p.overdue(&c.Account) {
		w.Header().Set(p.overdueHeader(), c.Account.GraceUntil.UTC().Format(http.TimeFormat))
		p.allowOverdue(r, c)
	} else {
		p.allow(r, "require", c, 0)
	}
	h.next.ServeHTTP(w, r)
}

// HeaderPaymentOverdue is the response header [Paywall.Require] sets on a
// request it lets through in a past-due account's grace: its value is the
// HTTP-date at which the grace ends and requests get a 402.
const HeaderPaymentOverdue = "Payment-Overdue"

// allowOverdue reports that Require let caller c through in its grace.
func (p *Paywall) allowOverdue(r *http.Request, c *Caller) {
	if p.opts.OnDecision == nil {
		return
	}
	d := decision("require", c)
	d.Allowed, d.Overdue = true, true
	p.report(r, d)
}

// checkEntitlement is Require's decision: nil if a passes, else the denial.
func (p *Paywall) checkEntitlement(a *store.Account, req *Requirement) *Denial {
	plans, features := req.Plans, req.Features
	if !req.AllowInactive && !p.entitled(a) {
		return p.lapsed(a)
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
// period (if any) has not ended, or a is past due within its grace.
func (p *Paywall) entitled(a *store.Account) bool {
	switch a.Status {
	case "", store.StatusActive, store.StatusTrialing:
		return a.PeriodEnd.IsZero() || p.opts.Clock().Before(a.PeriodEnd)
	}
	return p.overdue(a)
}

// overdue reports whether a is past due but within its grace.
func (p *Paywall) overdue(a *store.Account) bool {
	return a.Status == store.StatusPastDue && p.opts.Clock().Before(a.GraceUntil)
}

// lapsed returns the denial of an account that is not entitled: the code of
// its billing reason, if it has one, else subscription_inactive.
func (p *Paywall) lapsed(a *store.Account) *Denial {
	d := &Denial{Code: CodeSubscriptionInactive, UpgradeURL: p.opts.UpgradeURL, PaymentURL: cmp.Or(a.PaymentURL, p.opts.PaymentURL)}
	if l, ok := lapses[a.Lapse]; ok {
		d.Code, d.Detail = l.code, l.detail
		d.Extensions = map[string]any{"reason": string(a.Lapse)}
		return d
	}
	d.Detail = "The subscription is not active."
	switch a.Status {
	case "", store.StatusActive, store.StatusTrialing:
		d.Detail = "The subscription period has ended."
	case store.StatusPastDue:
		d.Detail = "The subscription is past due: a payment is outstanding."
	case store.StatusCanceled:
		d.Detail = "The subscription has been canceled."
	case store.StatusSuspended:
		d.Detail = "The subscription is suspended."
	}
	return d
}

// lapse is the denial code and detail, with its fix, of a billing reason.
type lapse struct {
	code   Code
	detail string
}

var lapses = map[store.Lapse]lapse{
	store.LapseCanceled: {CodeSubscriptionCanceled,
		"The subscription has been canceled. Subscribe again to restore access."},
	store.LapseExpired: {CodeSubscriptionCanceled,
		"The subscription expired before its first payment. Subscribe again to restore access."},
	store.LapseCardDeclined: {CodePaymentFailed,
		"The last payment failed: the card was declined. Pay the open invoice with another card at payment_url."},
	store.LapseInsufficientFunds: {CodePaymentFailed,
		"The last payment failed: insufficient funds. Add funds or use another payment method at payment_url, then pay the open invoice."},
	store.LapsePaymentFailed: {CodePaymentFailed,
		"The last payment failed. Pay the open invoice at payment_url."},
	store.LapsePaymentMethodMissing: {CodePaymentMethodRequired,
		"No payment method is on file. Add one at payment_url."},
	store.LapsePaymentMethodInvalid: {CodePaymentMethodRequired,
		"The payment method on file cannot be charged (for example, an expired card). Update it at payment_url."},
}
