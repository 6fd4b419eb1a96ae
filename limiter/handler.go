package limiter

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/go402/go402/paywall"
)

// QuotaExceededType is the problem type of a rate-limit denial, registered
// by draft-ietf-httpapi-ratelimit-headers-10.
const QuotaExceededType = "https://iana.org/assignments/http-problem-types#quota-exceeded"

// Handler is the middleware: it calls [Limiter.Take] and passes the request
// to next if its tokens were taken, or has [Options.Deny] refuse it. Either
// way the response carries RateLimit-Policy and RateLimit headers (and the
// legacy X-RateLimit-* ones if configured).
//
// A denial is a 429 (or [Options.DenyStatus]) with the problem type
// [QuotaExceededType], the policy name in violated-policies, and
// Retry-After: the whole seconds until the bucket holds the request's cost,
// never earlier than the RateLimit header's t. A request whose cost exceeds
// the burst gets no Retry-After and a detail saying it can never pass. A
// CostFunc error is a 400 invalid_request; a failing Options.Store a 503
// store_unavailable.
//
// Behind [paywall.Paywall.Authenticate], a request that this Limiter has
// already decided further out in the handler chain — by another
// application of its Handler, or by a charge it is the
// [paywall.ChargeOptions.RateLimit] of — passes straight to next: its
// tokens are taken once (see [paywall.ClaimRateLimit]).
//
// Handler(next) is an [http.Handler], so l.Handler is a
// func(http.Handler) http.Handler. It panics if next is nil.
func (l *Limiter) Handler(next http.Handler) http.Handler {
	if next == nil {
		panic("limiter: Handler: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := paywall.CallerFromContext(r.Context())
		if c != nil && !paywall.ClaimRateLimit(r.Context(), l) {
			next.ServeHTTP(w, r) // decided further out: see below
			return
		}
		res, err := l.take(r, c)
		if err != nil {
			l.refuseError(w, r, c, &res, err)
			return
		}
		if !res.Allowed {
			l.refuse(w, r, c, &res)
			return
		}
		l.setHeaders(w.Header(), &res)
		if l.onDecision != nil {
			l.decide(r, c, &res, nil)
		}
		next.ServeHTTP(w, r)
	})
}

// refuse writes the denial of a request whose bucket is short of tokens.
func (l *Limiter) refuse(w http.ResponseWriter, r *http.Request, c *paywall.Caller, res *Result) {
	d := &paywall.Denial{
		Code:       paywall.CodeRateLimited,
		Status:     l.status,
		Type:       QuotaExceededType,
		Title:      "Quota Exceeded",
		Cost:       int64(res.Cost),
		Extensions: map[string]any{"violated-policies": l.violatedPolicies},
		Header:     make(http.Header, 4),
	}
	if res.Never() {
		d.Detail = "This request costs " + strconv.Itoa(res.Cost) + " tokens, more than the " +
			strconv.Itoa(res.Limit.Burst) + " the \"" + l.name + "\" rate limit ever holds: it can never succeed, and retrying will not help."
	} else {
		d.RetryAfter = res.RetryAfter
		if d.RetryAfter < res.Reset { // never earlier than the RateLimit header's t
			d.RetryAfter = res.Reset
		}
		d.Detail = "Rate limit \"" + l.name + "\" exceeded: this request costs " + strconv.Itoa(res.Cost) +
			" tokens and " + strconv.Itoa(res.Remaining) + " are left. Retry after " +
			strconv.FormatInt(seconds(d.RetryAfter), 10) + " seconds."
	}
	l.setHeaders(d.Header, res)
	l.decide(r, c, res, d)
	l.deny(w, r, d)
}

// refuseError writes the denial of a request the limiter could not decide.
func (l *Limiter) refuseError(w http.ResponseWriter, r *http.Request, c *paywall.Caller, res *Result, err error) {
	var d *paywall.Denial
	if errors.Is(err, ErrInvalidCost) {
		var ce *costError
		errors.As(err, &ce)
		d = &paywall.Denial{
			Code:   paywall.CodeInvalidRequest,
			Status: http.StatusBadRequest,
			Detail: "The cost of this request cannot be computed: " + ce.err.Error(),
		}
	} else {
		d = &paywall.Denial{
			Code:       paywall.CodeStoreUnavailable,
			Status:     http.StatusServiceUnavailable,
			Detail:     "The service cannot check this request's rate limit right now. Try again shortly.",
			RetryAfter: l.retryUnavailable,
		}
	}
	l.decide(r, c, res, d)
	l.deny(w, r, d)
}

// decide reports a decision to Options.OnDecision, if set; d is nil for an
// allowed request.
func (l *Limiter) decide(r *http.Request, c *paywall.Caller, res *Result, d *paywall.Denial) {
	if l.onDecision == nil {
		return
	}
	e := paywall.Decision{
		Time:    res.now,
		Step:    "limit",
		Allowed: d == nil,
		Route:   r.Pattern,
		Cost:    int64(res.Cost),
	}
	if e.Route == "" && r.URL != nil {
		e.Route = r.URL.Path
	}
	if c != nil {
		e.AccountID, e.KeyPrefix = c.Account.ID, c.Key.Prefix
		e.Balance = c.Balance
	}
	switch {
	case d != nil:
		e.Code, e.Status = d.Code, d.Status
	case res.failedOpen:
		e.Code = paywall.CodeStoreUnavailable // allowed, like the paywall's fail-open
	}
	l.onDecision(r.Context(), e)
}
