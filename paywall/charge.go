package paywall

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/go402/go402/internal/fuse"
	"github.com/go402/go402/store"
)

// Charge returns a middleware that debits cost credits before next runs, or
// refuses with 402: quota_exhausted (with Retry-After and refill_at) when a
// periodic refill will cover the cost, spend_cap_reached (with Retry-After
// and reset_at) when the account's [store.SpendCap] would be crossed,
// insufficient_credits otherwise. A cost of zero passes without touching
// the store. After a debit, [Options.OnThreshold] hears the thresholds it
// crossed. It must run after
// [Paywall.Authenticate], else 500 misconfigured. A failed spend is a 503
// store_unavailable; under [Options.FailOpen] it, like a failed lookup,
// passes uncharged. It panics if cost is negative, a programming error
// found at start-up. It is ChargeWith(ChargeOptions{Cost: cost}).
func (p *Paywall) Charge(cost int64) func(http.Handler) http.Handler {
	return p.ChargeWith(ChargeOptions{Cost: cost})
}

// ChargeOptions configures [Paywall.ChargeWith].
type ChargeOptions struct {
	// Cost is the fixed cost of a request. Ignored if CostFunc is set.
	Cost int64
	// CostFunc, if set, computes the cost; an error (shown as the detail, so
	// no secrets) or a negative cost is a 400 invalid_request.
	CostFunc func(r *http.Request) (int64, error)
	// Refund, if true, gives the credits back when next panics or its
	// status satisfies RefundIf. It needs a store that is a [store.Refunder].
	Refund bool
	// RefundIf decides which statuses are refunded. Default: status ≥ 500.
	RefundIf func(status int) bool

	// Metered makes the cost the most a request may cost: it is held before
	// next runs, next reports what the request really cost on its [Meter],
	// and the actual cost (at most the hold) is debited and the rest
	// released when next returns. It needs a store that is a [store.Holder].
	Metered bool
	// MinCost is the least a metered request costs once next ran, also if
	// the client hung up before anything was reported.
	MinCost int64
	// Lease bounds how long a metered charge holds credits; a process that
	// dies holding them gives them back after it. Default [DefaultLease].
	Lease time.Duration
	// Overdraft lets a metered request cost more than its hold: the excess
	// is debited after the hold if the balance covers it.
	Overdraft bool
}

// ChargeWith is [Paywall.Charge] with all options; the package documentation
// covers refunds, Idempotency-Key and limits taken with the debit. It panics
// on a negative Cost, and on Refund with a store that is not a Refunder.
func (p *Paywall) ChargeWith(opts ChargeOptions) func(http.Handler) http.Handler {
	if opts.Cost < 0 {
		panic("paywall: ChargeWith: negative Cost " + strconv.FormatInt(opts.Cost, 10))
	}
	if opts.Refund && p.refunder == nil {
		panic("paywall: ChargeWith: Refund needs a store that implements store.Refunder")
	}
	checkMetered(p, &opts)
	switch {
	case !opts.Refund:
		opts.RefundIf = nil // no refunds
	case opts.RefundIf == nil:
		opts.RefundIf = func(status int) bool { return status >= 500 }
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("paywall: ChargeWith: nil handler")
		}
		if l, ok := next.(fuse.Layer); ok && !l.Check() {
			// A limit right behind the charge: it goes in front, where it
			// refuses before anything is debited, and fuses.
			return l.Rewrap(p.ChargeWith(opts)(l.Next()))
		}
		return &chargeHandler{p: p, opts: opts, next: next}
	}
}

// chargeHandler is the handler of ChargeWith(opts)(next), with the limit
// it decides together with its debit, if any.
type chargeHandler struct {
	p       *Paywall
	opts    ChargeOptions
	next    http.Handler
	limit   fuse.Limit
	spender store.BucketSpender // the store's, if fused and not metered
	holder  store.BucketHolder  // the store's, if fused and metered
	alone   http.Handler        // limit in front of the unfused charge, for requests without a Caller
}

// Fuse implements fuse.Charge.
func (h *chargeHandler) Fuse(l fuse.Limit) http.Handler {
	var (
		spender store.BucketSpender
		holder  store.BucketHolder
	)
	if h.opts.Metered {
		holder, _ = h.p.store.(store.BucketHolder)
	} else {
		spender, _ = h.p.store.(store.BucketSpender)
	}
	switch {
	case spender == nil && holder == nil, h.limit != nil, h.p.opts.Shadow, !sameStore(l.Buckets(), h.p.store),
		h.opts.Cost == 0 && h.opts.CostFunc == nil:
		return nil // cannot fuse, already fused, or free: the limit goes in front
	}
	return &chargeHandler{p: h.p, opts: h.opts, next: h.next, limit: l, spender: spender, holder: holder, alone: l.Alone(h)}
}

// sameStore reports whether a and b are the same store: equal values of
// one comparable type (a pointer, for every store go402 has).
func sameStore(a, b any) bool {
	t := reflect.TypeOf(a)
	return t != nil && t == reflect.TypeOf(b) && t.Comparable() && a == b
}

func (h *chargeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := stateFrom(r.Context())
	switch {
	case s != nil && s.shadowed:
		h.next.ServeHTTP(w, r)
	case s != nil && !s.failedOpen:
		(&charge{h: h, w: w, r: r, s: s}).run()
	case h.limit != nil:
		h.alone.ServeHTTP(w, r)
	case s == nil:
		h.p.misconfigured(w, r, "charge")
	default:
		h.p.passFailedOpen(w, r, "charge", h.next)
	}
}

// charge is one request's charge.
type charge struct {
	h      *chargeHandler
	w      http.ResponseWriter
	r      *http.Request
	s      *requestState
	cost   int64
	bucket store.Bucket    // the fused limit's; valid if h.limit is set
	op     store.Operation // the debit's, for a store that keeps a ledger
}

// run charges the request and serves it, or refuses it.
func (c *charge) run() {
	if c.s.caller.Replay { // an outer charge let a retry through
		c.pass()
		return
	}
	idemKey, ok := c.idempotencyKey()
	if !ok || !c.price() {
		return
	}
	if c.h.limit != nil {
		if c.bucket, ok = c.h.limit.Bucket(c.w, c.r, &c.s.caller.Account); !ok {
			return
		}
	}
	switch {
	case c.cost == 0:
		c.pass()
	case c.h.p.opts.Shadow:
		c.preview()
	case idemKey != "":
		c.once(idemKey)
	default:
		c.collect()
	}
}

// collect debits the request's cost, or holds it if the charge is metered.
func (c *charge) collect() {
	if c.h.opts.Metered {
		c.hold()
		return
	}
	c.debit()
}

// price sets the request's cost, or refuses the request if CostFunc fails.
func (c *charge) price() bool {
	c.cost = c.h.opts.Cost
	if c.h.opts.CostFunc == nil {
		return true
	}
	var err error
	if c.cost, err = c.h.opts.CostFunc(c.r); err == nil && c.cost < 0 {
		err = errors.New("the request's cost cannot be negative")
	}
	if err != nil {
		c.deny("charge", &Denial{Code: CodeInvalidRequest, Detail: err.Error()})
	}
	return err == nil
}

// pass serves a request that costs nothing or retries a charged one, after
// taking the fused limit's tokens.
func (c *charge) pass() {
	if c.h.limit != nil && !c.h.limit.Take(c.w, c.r, c.bucket) {
		return
	}
	caller := &c.s.caller
	if c.h.p.opts.OnDecision != nil {
		e := decision("charge", caller)
		e.Allowed, e.Replay = true, caller.Replay
		c.h.p.report(c.r, e)
	}
	c.h.next.ServeHTTP(c.w, c.r)
}

// debit takes the cost from the caller's balance (with the fused limit's
// tokens) and serves the request, or refuses it.
func (c *charge) debit() {
	res, done, err := c.spend()
	caller := &c.s.caller
	switch {
	case done: // the limit refused
		c.s.idem.void = true
	case err != nil:
		c.failed(err)
	case !res.OK:
		c.s.idem.void = true
		c.h.p.refuse(c.w, c.r, decision("charge", caller), c.h.p.creditDenial(&caller.Account, c.cost, res))
	default:
		caller.Charged += c.cost
		caller.Balance = res.Balance
		c.s.idem.debited = true
		c.h.p.thresholds(c.r.Context(), res)
		c.h.p.allow(c.r, "charge", caller, c.cost)
		c.serve()
	}
}

// spend is the store operation of a debit. done reports that the fused
// limit refused (and answered) the request, with nothing debited.
func (c *charge) spend() (res store.SpendResult, done bool, err error) {
	id, ctx := c.s.caller.Account.ID, c.storeContext()
	if c.h.limit == nil {
		res, err = c.h.p.store.Spend(ctx, id, c.cost)
		return res, false, err
	}
	res, br, err := c.h.spender.SpendWithTokens(ctx, id, c.cost, c.bucket)
	return res, c.limitRefused(br, err), err
}

// limitRefused has the fused limit answer for br, its tokens' outcome in a
// store operation that did not fail (err nil), and reports whether it
// refused (and answered) the request.
func (c *charge) limitRefused(br store.BucketResult, err error) bool {
	return err == nil && !c.h.limit.Admit(c.w, c.r, c.bucket, br)
}

// storeContext is the context of the charge's store calls: the request's,
// with the debit's [store.Operation] if the store keeps a [store.Ledger]. A
// refund carries the operation of its debit.
func (c *charge) storeContext() context.Context {
	if !c.h.p.ledger {
		return c.r.Context()
	}
	if c.op.ID == "" {
		c.op = store.Operation{ID: rand.Text(), Route: c.r.Pattern, KeyPrefix: c.s.caller.Key.Prefix}
	}
	return store.WithOperation(c.r.Context(), c.op)
}

// serve runs the handler of a charged request and, with refunds on, gives
// the cost back if RefundIf says so of its status.
func (c *charge) serve() {
	refundIf := c.h.opts.RefundIf
	if refundIf == nil {
		c.h.next.ServeHTTP(c.w, c.r)
		return
	}
	sw := &statusWriter{ResponseWriter: c.w}
	completed := false
	defer func() {
		// Once, whether next returned or panicked: a panic goes on up.
		status := cmp.Or(sw.status, http.StatusOK)
		if !completed {
			status = http.StatusInternalServerError
		}
		if refundIf(status) && c.refund() {
			c.s.idem.void = true
		}
	}()
	c.h.next.ServeHTTP(sw, c.r)
	completed = true
}

// refund gives the cost back, even if the client hung up, reports it, and
// reports whether it succeeded.
func (c *charge) refund() bool {
	p, caller := c.h.p, &c.s.caller
	bal, err := p.refunder.Refund(context.WithoutCancel(c.storeContext()), caller.Account.ID, c.cost)
	e := decision("refund", caller)
	e.Allowed, e.Cost, e.Balance, e.Err = err == nil, c.cost, bal, err
	if err != nil {
		e.Code, e.Balance = CodeStoreUnavailable, 0
	}
	p.report(c.r, e)
	return err == nil
}

// failed answers a request whose spend failed with err.
func (c *charge) failed(err error) {
	p, caller := c.h.p, &c.s.caller
	if errors.Is(err, store.ErrNotFound) {
		c.s.idem.void = true
		p.refuse(c.w, c.r, decision("charge", caller), &Denial{Code: CodeInvalidKey, Detail: "The API key's account no longer exists."})
		return
	}
	e := decision("charge", caller)
	e.Cost, e.Err = c.cost, err
	if !p.opts.FailOpen {
		c.s.idem.void = true
		p.storeFailed(c.w, c.r, e, nil)
		return
	}
	next := c.h.next
	if l := c.h.limit; l != nil {
		b, inner := c.bucket, next
		next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if l.Take(w, r, b) {
				inner.ServeHTTP(w, r)
			}
		})
	}
	p.storeFailed(c.w, c.r, e, next)
}

// creditDenial is the denial for a refused spend.
func (p *Paywall) creditDenial(a *store.Account, cost int64, res store.SpendResult) *Denial {
	if res.Cap != nil && res.Cap.Reached {
		return p.capDenial(cost, res)
	}
	d := &Denial{Code: CodeInsufficientCredits, Balance: res.Balance, HasBalance: true, Cost: cost, PaymentURL: p.opts.PaymentURL}
	// A refill helps only if it restores at least the cost.
	if res.NextRefill.IsZero() || (a.Refill != nil && a.Refill.Amount < cost) {
		d.Detail = "This request costs " + credits(cost) + "; the balance is " + credits(res.Balance) + "."
		return d
	}
	d.Code, d.RefillAt, d.UpgradeURL = CodeQuotaExhausted, res.NextRefill, p.opts.UpgradeURL
	d.Detail = "This request costs " + credits(cost) + "; the quota has " + credits(res.Balance) +
		" left until it refills at " + res.NextRefill.UTC().Format(time.RFC3339) + "."
	d.RetryAfter = max(res.NextRefill.Sub(p.opts.Clock()), time.Second)
	return d
}

// capDenial is the denial for a spend the account's spend cap refused.
func (p *Paywall) capDenial(cost int64, res store.SpendResult) *Denial {
	c := res.Cap
	d := &Denial{Code: CodeSpendCapReached, Balance: res.Balance, HasBalance: true, Cost: cost,
		ResetAt: c.ResetAt, UpgradeURL: p.opts.UpgradeURL}
	d.Detail = "This request costs " + credits(cost) + "; the spend cap allows " + credits(max(c.Limit-c.Spent, 0)) +
		" more until it resets at " + c.ResetAt.UTC().Format(time.RFC3339) + "."
	d.RetryAfter = max(c.ResetAt.Sub(p.opts.Clock()), time.Second)
	return d
}

// thresholds passes the thresholds a spend crossed to OnThreshold.
func (p *Paywall) thresholds(ctx context.Context, res store.SpendResult) {
	if res.Cap == nil || p.opts.OnThreshold == nil {
		return
	}
	for _, t := range res.Cap.Crossed {
		p.opts.OnThreshold(ctx, t)
	}
}

func credits(n int64) string {
	if n == 1 {
		return "1 credit"
	}
	return strconv.FormatInt(n, 10) + " credits"
}

// passFailedOpen passes a request whose lookup failed open through step
// unchecked, reporting it.
func (p *Paywall) passFailedOpen(w http.ResponseWriter, r *http.Request, step string, next http.Handler) {
	e := decision(step, nil)
	e.Allowed, e.Code = true, CodeStoreUnavailable
	p.report(r, e)
	next.ServeHTTP(w, r)
}

// statusWriter records the status of a response passed through unbuffered;
// Unwrap reaches what Flush, FlushError and ReadFrom do not.
type statusWriter struct {
	http.ResponseWriter
	status int // first final (≥ 200) status written; 0 if none yet
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.status = cmp.Or(w.status, http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher; it commits the headers, 200 by default.
func (w *statusWriter) Flush() { _ = w.FlushError() }

// FlushError flushes and reports whether the underlying writer could.
func (w *statusWriter) FlushError() error {
	w.status = cmp.Or(w.status, http.StatusOK)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom implements io.ReaderFrom, keeping io.Copy's sendfile path.
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	w.status = cmp.Or(w.status, http.StatusOK)
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// writerOnly hides every method of a writer but Write, so io.Copy does not
// loop back into ReadFrom.
type writerOnly struct{ io.Writer }
