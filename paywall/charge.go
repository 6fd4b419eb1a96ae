package paywall

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/go402/go402/store"
)

// Charge returns a middleware that debits cost credits before next runs and
// refuses with 402 when the balance is too small: quota_exhausted when the
// account has a periodic refill that will cover the cost (with Retry-After
// and refill_at), insufficient_credits otherwise. A cost of zero passes
// without touching the store.
//
// It must run after [Paywall.Authenticate]; a request without a [Caller] is
// refused with 401 missing_key. A request that Authenticate let through on a
// store failure under [Options.FailOpen] passes uncharged, and so does one
// whose spend fails when FailOpen is set; otherwise a failed spend is a 503
// store_unavailable.
//
// It panics if cost is negative, like [net/http.ServeMux.Handle] panics on a
// bad pattern: that is a programming error, found at start-up.
func (p *Paywall) Charge(cost int64) func(http.Handler) http.Handler {
	return p.ChargeWith(ChargeOptions{Cost: cost})
}

// ChargeOptions configures [Paywall.ChargeWith].
type ChargeOptions struct {
	// Cost is the fixed cost of a request. Ignored if CostFunc is set.
	Cost int64
	// CostFunc, if set, computes the cost from the request. An error
	// refuses the request with 400 invalid_request, its message shown as
	// the detail (so it must not contain secrets); a negative cost is
	// treated as an error.
	CostFunc func(r *http.Request) (int64, error)
	// Refund, if true, gives the credits back when next answers with a
	// status for which RefundIf returns true. The status is captured
	// without buffering the body (see [Paywall.ChargeWith]). It needs a
	// store that implements [store.Refunder].
	Refund bool
	// RefundIf decides which statuses are refunded. Default: status ≥ 500.
	RefundIf func(status int) bool

	// RateLimit, if set, is a rate limit — a *limiter.Limiter — that the
	// charge decides together with its debit. When the Paywall's store
	// implements [store.BucketSpender] (the memory and Redis stores do)
	// and the limiter takes from the caller's account's own bucket in that
	// store (limiter.ByAccount, with the store as limiter.Options.Store),
	// taking the tokens and debiting the credits is one store operation —
	// one lock of the account in memory, one Redis round trip for the
	// whole decision — which takes nothing if either refuses. Otherwise
	// the limiter runs as its own middleware in front of the charge,
	// exactly as if wired so. See "Rate limit" at
	// [Paywall.ChargeWith].
	//
	// The limiter goes here INSTEAD of in the handler chain:
	//
	//	pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: 10, RateLimit: lim})(h))
	//
	// and not also as lim.Handler around or inside the charge. (Wired both
	// ways, it still takes its tokens once — see [ClaimRateLimit] — but
	// with lim.Handler outside, the limit and the charge then cost a store
	// call each.)
	RateLimit RateLimiter
}

// ChargeWith is like [Paywall.Charge] with all options. It panics on a
// negative Cost, and when Refund is set but the Paywall's store does not
// implement [store.Refunder] — both programming errors, found when the
// middleware is built.
//
// With Refund set, next sees a ResponseWriter that records the status of
// the response as it is written and passes everything through unbuffered.
// It implements [net/http.Flusher] and [io.ReaderFrom] and has an Unwrap
// method, so [net/http.ResponseController] reaches the underlying writer for
// Hijack, deadlines and full-duplex. A response whose handler wrote nothing
// counts as 200, as does a hijacked connection. A handler that panics counts
// as a 500: the refund (if RefundIf(500)) is made before the panic goes on
// up. The refund is made at most once per charge, with the request's
// context stripped of its cancellation so that a client hanging up does not
// prevent it; it is reported to [Options.OnDecision] as Step "refund".
//
// # Idempotency
//
// With [Options.IdempotencyWindow] set, a request that carries an
// Idempotency-Key header is debited at most once per key. The value is a
// Structured Field string (Idempotency-Key: "8e03978e-…"); a bare token is
// read as the same key. One that is empty, longer than
// [MaxIdempotencyKeyLength], has parameters or is otherwise malformed is
// refused with 400 invalid_request, and so are two different values. The
// key belongs to the account (another account's identical key is another
// key) and is tied to the method and route (Request.Pattern, else the path)
// of the request that first used it. The first request is charged as
// usual; then, within the window:
//
//   - a retry to the same method and route is not debited: the handler
//     runs again with [Caller.Replay] set, Caller.Charged zero and
//     Caller.Balance as looked up by [Paywall.Authenticate], reported to
//     OnDecision as an allowed "charge" with Replay set and Cost zero;
//   - the same key on another method or route is refused with 422
//     idempotency_key_reused;
//   - a retry that arrives while the first request is still being handled
//     is refused with 409 idempotency_in_progress and Retry-After: 1.
//
// The window starts when the first request finishes. A key is remembered
// only if that request's debit stands: not if the charge was refused (402,
// 503) nor if it was refunded, so a retry of such a request is charged as
// usual. Responses are never stored or replayed: the handler runs again for
// every retry, so it must itself be idempotent for a given key (answer
// with what it did the first time, or do it again harmlessly), as it must
// for a retried x402 payment. Several Charge middlewares on one route share
// the key: a retry passes all of them uncharged, and if one of them
// refuses the first request, the key is not remembered.
//
// The keys are remembered in the Paywall's memory, up to 100,000 of them
// (some 15–25 MB); past that the oldest are forgotten before their window
// ends, so a retry of one of those is charged again — the bound can cost a
// client a second charge, never give it a free request. With several
// replicas behind a load balancer, each remembers only the keys it saw: a
// retry that reaches another replica is charged again. (Sharing them
// through the store, as a separate store capability, is left for later.)
//
// # Rate limit
//
// With [ChargeOptions.RateLimit] set, a request is answered as if the
// limiter's Handler stood in front of the charge: the same RateLimit
// headers, the same 429 with Retry-After, the same decisions reported to
// the limiter's OnDecision ("limit", then the charge's). When the decision
// is fused into one store operation, these differ:
//
//   - a request refused with 402 takes no tokens (in front, the limiter
//     would have taken them);
//   - a request that the charge refuses before its store call — a
//     malformed, reused or in-flight Idempotency-Key, a failing CostFunc
//     — takes no tokens and carries no RateLimit headers;
//   - when the store fails, the answer is the Paywall's: 503
//     store_unavailable, or with [Options.FailOpen] the request is
//     passed on uncharged through the limiter's Handler, which takes its
//     tokens with its own fallback for a failing store (an in-process
//     bucket if its FailOpen is set, else its own 503).
//
// Rate limits count requests, not charges: a retry let through uncharged
// by an Idempotency-Key still takes its tokens, and so does a request
// whose CostFunc says it costs nothing; the limiter's Handler decides
// those alone (one store call: TakeTokens). A refund gives the credits
// back, never the tokens.
//
// The decision is not fused, and the limiter's Handler runs in front of
// the charge, for a request without a [Caller] (no key, or a lookup that
// failed open), for a limiter that does not key the request by its
// caller's account in the Paywall's store, and for a request whose cost
// the limiter cannot compute (its Handler refuses it). If the Paywall's
// store does not implement [store.BucketSpender], or the charge costs
// nothing (a zero Cost and no CostFunc), ChargeWith returns the limiter's
// Handler in front of the charge, costing nothing more per request.
// ChargeWith panics if RateLimit is not comparable.
func (p *Paywall) ChargeWith(opts ChargeOptions) func(http.Handler) http.Handler {
	if opts.Cost < 0 {
		panic("paywall: ChargeWith: negative Cost " + strconv.FormatInt(opts.Cost, 10))
	}
	if opts.Refund && p.refunder == nil {
		panic("paywall: ChargeWith: Refund needs a store that implements store.Refunder")
	}
	switch {
	case !opts.Refund:
		opts.RefundIf = nil // no refunds
	case opts.RefundIf == nil:
		opts.RefundIf = func(status int) bool { return status >= 500 }
	}
	rl := opts.RateLimit
	if rl != nil && !reflect.TypeOf(rl).Comparable() {
		panic("paywall: ChargeWith: RateLimit of uncomparable type " + reflect.TypeOf(rl).String())
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("paywall: ChargeWith: nil handler")
		}
		plain := p.chargeHandler(&opts, next, nil)
		if rl == nil {
			return plain
		}
		var f *fusion
		if opts.Cost != 0 || opts.CostFunc != nil {
			f = p.newFusion(rl, next, plain)
		}
		if f == nil {
			return rl.Handler(plain)
		}
		return p.chargeHandler(&opts, next, f)
	}
}

// chargeHandler is the middleware of ChargeWith(*opts) in front of next,
// which decides the rate limit f with its debit if f is not nil.
func (p *Paywall) chargeHandler(opts *ChargeOptions, next http.Handler, f *fusion) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := stateFrom(r.Context())
		fused := f
		var b store.Bucket // the bucket of a fused decision
		if fused != nil {
			switch {
			case s == nil || s.failedOpen():
				f.unfused.ServeHTTP(w, r)
				return
			case s.rateLimited(f.rl): // decided further out: charge alone
				fused = nil
			case s.caller.Replay:
				f.unfused.ServeHTTP(w, r)
				return
			default:
				var ok bool
				if b, ok = f.rl.AccountBucket(r); !ok {
					f.unfused.ServeHTTP(w, r)
					return
				}
			}
		}
		if s == nil || s.failedOpen() {
			p.serveWithoutCaller(w, r, next, "charge", s)
			return
		}
		c := &s.caller
		if c.Replay { // an outer Charge let a retry through uncharged
			p.allowReplay(r, c)
			next.ServeHTTP(w, r)
			return
		}

		// The Idempotency-Key is read once per request: by the
		// outermost Charge, or again by an inner one when the outer
		// ones cost nothing and so did not hold it.
		var idemKey string
		if p.idempotency != nil && !s.idemHeld() {
			if vs := r.Header[HeaderIdempotencyKey]; len(vs) > 0 {
				var err error
				if idemKey, err = parseIdempotencyKey(vs); err != nil {
					p.refuse(w, r, "charge", invalidIdempotencyKey(err), c.Account.ID, c.Key.Prefix)
					return
				}
			}
		}

		cost := opts.Cost
		if opts.CostFunc != nil {
			var err error
			cost, err = opts.CostFunc(r)
			if err == nil && cost < 0 {
				err = errors.New("the request's cost cannot be negative")
			}
			if err != nil {
				p.refuse(w, r, "charge", &Denial{Code: CodeInvalidRequest, Detail: err.Error()}, c.Account.ID, c.Key.Prefix)
				return
			}
		}
		if cost == 0 {
			if fused != nil {
				fused.free.ServeHTTP(w, r)
				return
			}
			p.allow(r, "charge", "", c, 0, c.Balance)
			next.ServeHTTP(w, r)
			return
		}
		if idemKey != "" {
			p.chargeOnce(w, r, next, s, idemKey, cost, opts.RefundIf, fused, &b)
			return
		}
		p.charge(w, r, next, s, cost, opts.RefundIf, fused, &b)
	})
}

// charge debits cost from the caller's account and serves next, or refuses
// the request. refundIf is nil when refunds are off. If f is not nil, the
// debit takes the tokens of the bucket b in the same store operation. The
// outcome is recorded in s.idem, which matters only while a Charge of the
// request holds an Idempotency-Key.
func (p *Paywall) charge(w http.ResponseWriter, r *http.Request, next http.Handler, s *requestState, cost int64, refundIf func(int) bool, f *fusion, b *store.Bucket) {
	c := &s.caller
	var res store.SpendResult
	var err error
	if f == nil {
		res, err = p.store.Spend(r.Context(), c.Account.ID, cost)
	} else {
		var done bool
		if res, done, err = p.spendWithTokens(w, r, s, f, b, cost); done {
			return
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.voidIdem()
			p.refuse(w, r, "charge", &Denial{Code: CodeInvalidKey, Detail: "The API key's account no longer exists."}, c.Account.ID, c.Key.Prefix)
		case p.failOpen:
			p.allow(r, "charge", CodeStoreUnavailable, c, cost, c.Balance)
			next.ServeHTTP(w, r)
		default:
			s.voidIdem()
			d := p.unavailable()
			d.Cost = cost
			p.refuse(w, r, "charge", d, c.Account.ID, c.Key.Prefix)
		}
		return
	}
	if !res.OK {
		s.voidIdem()
		p.refuse(w, r, "charge", p.creditDenial(c.Account, cost, res), c.Account.ID, c.Key.Prefix)
		return
	}
	c.Charged += cost
	c.Balance = res.Balance
	s.debitedIdem()
	p.allow(r, "charge", "", c, cost, res.Balance)
	if refundIf == nil {
		next.ServeHTTP(w, r)
		return
	}
	p.serveRefundable(w, r, next, s, cost, refundIf)
}

// creditDenial is the denial for a refused spend.
func (p *Paywall) creditDenial(a *store.Account, cost int64, res store.SpendResult) *Denial {
	d := &Denial{Balance: res.Balance, HasBalance: true, Cost: cost}
	// A refill helps only if it restores at least the cost.
	if res.NextRefill.IsZero() || (a.Refill != nil && a.Refill.Amount < cost) {
		d.Code = CodeInsufficientCredits
		d.Detail = "This request costs " + credits(cost) + "; the balance is " + credits(res.Balance) + "."
		d.PaymentURL = p.paymentURL
		return d
	}
	d.Code = CodeQuotaExhausted
	d.Detail = "This request costs " + credits(cost) + "; the quota has " + credits(res.Balance) +
		" left until it refills at " + res.NextRefill.UTC().Format(time.RFC3339) + "."
	d.RefillAt = res.NextRefill
	d.RetryAfter = res.NextRefill.Sub(p.clock())
	if d.RetryAfter <= 0 {
		d.RetryAfter = time.Second
	}
	d.UpgradeURL = p.upgradeURL
	d.PaymentURL = p.paymentURL
	return d
}

func credits(n int64) string {
	if n == 1 {
		return "1 credit"
	}
	return strconv.FormatInt(n, 10) + " credits"
}

// serveRefundable runs next with a status-recording writer and refunds cost
// if the status calls for it, once, even if next panics.
func (p *Paywall) serveRefundable(w http.ResponseWriter, r *http.Request, next http.Handler, s *requestState, cost int64, refundIf func(int) bool) {
	sw := &statusWriter{ResponseWriter: w}
	completed := false
	defer func() {
		// Runs once, whether next returned or panicked; a panic is not
		// recovered, so it goes on up with its own stack.
		status := sw.status
		switch {
		case !completed:
			status = http.StatusInternalServerError
		case status == 0:
			status = http.StatusOK
		}
		if refundIf(status) && p.refund(r, s.caller.Account.ID, s.caller.Key.Prefix, cost) {
			s.voidIdem()
		}
	}()
	next.ServeHTTP(sw, r)
	completed = true
}

// refund gives cost back to the account, reports it, and reports whether
// it was given back.
func (p *Paywall) refund(r *http.Request, accountID, keyPrefix string, cost int64) bool {
	bal, err := p.refunder.Refund(context.WithoutCancel(r.Context()), accountID, cost)
	if p.onDecision == nil {
		return err == nil
	}
	d := Decision{
		Time:      p.clock(),
		Step:      "refund",
		Allowed:   err == nil,
		AccountID: accountID,
		KeyPrefix: keyPrefix,
		Route:     route(r),
		Cost:      cost,
		Balance:   bal,
	}
	if err != nil {
		d.Code = CodeStoreUnavailable
		d.Balance = 0
	}
	p.onDecision(r.Context(), d)
	return err == nil
}
