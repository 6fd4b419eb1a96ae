package limiter

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go402/go402/internal/fuse"
	"github.com/go402/go402/paywall"
)

// Handler is the middleware, a func(http.Handler) http.Handler: it passes
// the request to next if [Limiter.Take] took its tokens, else has
// [Options.Deny] refuse it; either way with the RateLimit headers.
//
// A denial is a 429 ([Options.DenyStatus]) of problem type quota-exceeded,
// with the policy name in violated-policies, the request's tokens in
// "tokens", and Retry-After: the seconds until the bucket holds them, never
// before RateLimit's t; a request over the burst gets no Retry-After and a
// detail saying it can never pass. A CostFunc error is a 400
// invalid_request, a failing Options.Store a 503 store_unavailable. With
// [ByAccount] and the buckets in the store of the paywall charge that next
// is (or reaches through Require), the charge takes the tokens with its
// debit (see the package documentation). Handler panics if next is nil.
func (l *Limiter) Handler(next http.Handler) http.Handler {
	if next == nil {
		panic("limiter: Handler: nil handler")
	}
	var h http.Handler = &limitHandler{l: l, next: next}
	if l.byAccount && l.opts.Store != nil && !l.opts.Shadow {
		if charge, rebuild, ok := fuse.Find(next); ok {
			if fh := charge.Fuse(fused{l}); fh != nil {
				h = rebuild(fh)
			}
		}
	}
	if l.opts.MaxInFlight > 0 {
		h = &inFlightHandler{l: l, next: h}
	}
	return h
}

// limitHandler is the handler of l.Handler(next).
type limitHandler struct {
	l    *Limiter
	next http.Handler
}

func (h *limitHandler) Next() http.Handler                    { return h.next }
func (h *limitHandler) Check() bool                           { return false }
func (h *limitHandler) Rewrap(next http.Handler) http.Handler { return h.l.Handler(next) }

func (h *limitHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l := h.l
	c, _ := paywall.CallerFromContext(r.Context())
	if c == nil && l.byAccount && r.Context().Value(fuse.StateKey{}) == nil {
		l.misconfigured(w, r)
		return
	}
	res, err := l.take(r, c)
	pass := true
	switch {
	case l.opts.Shadow:
		l.shadow(w, r, c, &res, err)
	case err != nil:
		l.refuseError(w, r, c, &res, err)
		pass = false
	default:
		pass = l.answer(w, r, c, &res)
	}
	res.release()
	if pass {
		h.next.ServeHTTP(w, r)
	}
}

// shadow reports the decision on res (or err) that an enforcing limiter
// would make, with its headers under their shadow names, and refuses
// nothing.
func (l *Limiter) shadow(w http.ResponseWriter, r *http.Request, c *paywall.Caller, res *Result, err error) {
	if err != nil {
		l.refuseError(nil, r, c, res, err)
		return
	}
	if res.Allowed {
		l.answer(w, r, c, res)
		return
	}
	l.setHeaders(w.Header(), res)
	l.refuse(nil, r, c, res)
}

// answer admits res (headers, report) or refuses it, and reports which.
func (l *Limiter) answer(w http.ResponseWriter, r *http.Request, c *paywall.Caller, res *Result) bool {
	if !res.Allowed {
		l.refuse(w, r, c, res)
		return false
	}
	l.setHeaders(w.Header(), res)
	if l.opts.OnDecision != nil {
		l.decide(r, c, res, nil)
	}
	return true
}

// quotaExceeded is the problem type of a denial (draft-ietf-httpapi-ratelimit-headers-10).
const quotaExceeded = "https://iana.org/assignments/http-problem-types#quota-exceeded"

// refuse writes the denial of a request whose bucket is short of tokens;
// with w nil, it only reports it.
func (l *Limiter) refuse(w http.ResponseWriter, r *http.Request, c *paywall.Caller, res *Result) {
	d := &paywall.Denial{
		Code:       paywall.CodeRateLimited,
		Status:     l.opts.DenyStatus,
		Type:       quotaExceeded,
		Title:      "Quota Exceeded",
		Extensions: map[string]any{"violated-policies": l.violatedPolicies, "tokens": res.Cost},
		Header:     make(http.Header, 4),
	}
	if len(res.Windows) > 0 {
		l.describeWindows(d, res)
	} else if res.RetryAfter < 0 {
		d.Detail = "This request takes " + tokens(res.Cost) + ", more than the " +
			strconv.Itoa(res.Limit.Burst) + " the \"" + l.opts.Name + "\" rate limit ever holds: it can never succeed, and retrying will not help."
	} else {
		d.RetryAfter = max(res.RetryAfter, res.Reset) // never earlier than the RateLimit header's t
		d.Detail = "Rate limit \"" + l.opts.Name + "\" exceeded: this request takes " + tokens(res.Cost) +
			"; " + tokens(res.Remaining) + " left. Retry after " +
			strconv.FormatInt(seconds(d.RetryAfter), 10) + " seconds."
	}
	l.setHeaders(d.Header, res)
	l.decide(r, c, res, d)
	if w != nil {
		l.opts.Deny(w, r, d)
	}
}

// describeWindows sets the violated-policies, Retry-After and detail of
// denial d of res, a result with other windows.
func (l *Limiter) describeWindows(d *paywall.Denial, res *Result) {
	names := l.violated(res)
	d.Extensions["violated-policies"] = names
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	limits := "Rate limit " + strings.Join(quoted, ", ")
	if len(names) > 1 {
		limits = "Rate limits " + strings.Join(quoted, ", ")
	}
	if res.RetryAfter < 0 {
		d.Detail = limits + ": this request takes " + tokens(res.Cost) + ", more than one of them ever holds: it can never succeed, and retrying will not help."
		return
	}
	d.RetryAfter = max(res.RetryAfter, 1)
	d.Detail = limits + " exceeded: this request takes " + tokens(res.Cost) + ". Retry after " +
		strconv.FormatInt(seconds(d.RetryAfter), 10) + " seconds."
}

// tokens spells a number of tokens.
func tokens(n int) string {
	if n == 1 {
		return "1 token"
	}
	return strconv.Itoa(n) + " tokens"
}

// refuseError writes the denial of a request the limiter could not
// decide; with w nil, it only reports it.
func (l *Limiter) refuseError(w http.ResponseWriter, r *http.Request, c *paywall.Caller, res *Result, err error) {
	d := &paywall.Denial{Code: paywall.CodeStoreUnavailable, Status: http.StatusServiceUnavailable, RetryAfter: l.opts.RetryAfterUnavailable,
		Detail: "The service cannot check this request's rate limit right now. Try again shortly."}
	if ce := (*costError)(nil); errors.As(err, &ce) {
		d = &paywall.Denial{Code: paywall.CodeInvalidRequest, Status: http.StatusBadRequest,
			Detail: "The cost of this request cannot be computed: " + ce.err.Error()}
	}
	l.decide(r, c, res, d)
	if w != nil {
		l.opts.Deny(w, r, d)
	}
}

// misconfigured answers a request that reached a ByAccount limiter without
// Authenticate in front: 500 misconfigured, logged once.
func (l *Limiter) misconfigured(w http.ResponseWriter, r *http.Request) {
	l.warnOnce.Do(func() {
		slog.Default().Error("limiter: a ByAccount limiter was reached without paywall.Authenticate in front of it: wrap the route in Authenticate first",
			"route", r.Pattern)
	})
	d := &paywall.Denial{Code: paywall.CodeMisconfigured, Status: http.StatusInternalServerError, Detail: "The service is misconfigured."}
	l.decide(r, nil, &Result{now: l.opts.Clock()}, d)
	l.opts.Deny(w, r, d)
}

// decide reports a decision, d nil if allowed, to Options.OnDecision if set.
func (l *Limiter) decide(r *http.Request, c *paywall.Caller, res *Result, d *paywall.Denial) {
	if l.opts.OnDecision == nil {
		return
	}
	e := paywall.Decision{Time: res.now, Step: "limit", Allowed: d == nil, Route: r.Pattern, Cost: int64(res.Cost), Policy: l.opts.Name, Shadow: l.opts.Shadow}
	if c != nil {
		e.AccountID, e.KeyPrefix, e.Balance = c.Account.ID, c.Key.Prefix, c.Balance
	}
	switch {
	case d != nil:
		e.Code, e.Status = d.Code, d.Status
	case res.failedOpen:
		e.Code = paywall.CodeStoreUnavailable // allowed, like the paywall's fail-open
	}
	l.opts.OnDecision(r.Context(), e)
}
