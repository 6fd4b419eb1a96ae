package paywall

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
)

// DefaultLease is how long a metered charge holds credits unless
// [ChargeOptions].Lease says otherwise.
const DefaultLease = 10 * time.Minute

// Meter is where the handler of a metered charge ([ChargeOptions].Metered)
// reports what the request cost: add as it streams, or set at the end. It is
// safe for concurrent use; the nil *Meter that [MeterFrom] returns for a
// request that is not metered ignores every call.
type Meter struct{ n atomic.Int64 }

// Add adds n ≥ 0 to the cost reported so far; a negative n is ignored.
func (m *Meter) Add(n int64) {
	if m != nil && n > 0 {
		m.n.Add(n)
	}
}

// Set replaces the cost reported so far with n ≥ 0; a negative n is ignored.
func (m *Meter) Set(n int64) {
	if m != nil && n >= 0 {
		m.n.Store(n)
	}
}

// Total returns the cost reported so far.
func (m *Meter) Total() int64 {
	if m == nil {
		return 0
	}
	return m.n.Load()
}

// MeterFrom returns the meter of the metered charge whose handler runs with
// ctx, or nil.
func MeterFrom(ctx context.Context) *Meter {
	if s := stateFrom(ctx); s != nil && s.metered {
		return &s.meter
	}
	return nil
}

// hold holds the request's most cost and serves it metered, or refuses it.
func (c *charge) hold() {
	p, caller := c.h.p, &c.s.caller
	hd, res, done, err := c.reserve()
	switch {
	case done: // the limit refused
		c.s.idem.void = true
	case err != nil:
		c.failed(err)
	case !res.OK:
		c.s.idem.void = true
		p.refuse(c.w, c.r, decision("hold", caller), p.creditDenial(&caller.Account, c.cost, res))
	default:
		caller.Charged += hd.Amount
		caller.Balance = res.Balance
		c.s.idem.debited = true
		p.thresholds(c.r.Context(), res) // a hold counts as a spend of its amount
		p.allow(c.r, "hold", caller, hd.Amount)
		c.serveMetered(hd)
	}
}

// reserve is the store operation of a hold. done reports that the fused
// limit refused (and answered) the request, with nothing held.
func (c *charge) reserve() (hd store.Hold, res store.SpendResult, done bool, err error) {
	id, ctx, lease := c.s.caller.Account.ID, c.storeContext(), c.h.opts.Lease
	if c.h.limit == nil {
		hd, res, err = c.h.p.holder.Hold(ctx, id, c.cost, lease)
		return hd, res, false, err
	}
	hd, res, br, err := c.h.holder.HoldWithTokens(ctx, id, c.cost, lease, c.bucket)
	return hd, res, c.limitRefused(br, err), err
}

// serveMetered runs the handler of a metered request and settles its hold
// when it returns or panics: the cost it reported (at least MinCost), or
// nothing if the refund rules say so of its status.
func (c *charge) serveMetered(hd store.Hold) {
	c.s.metered = true
	w, sw := c.w, (*statusWriter)(nil)
	if c.h.opts.RefundIf != nil {
		sw = &statusWriter{ResponseWriter: c.w}
		w = sw
	}
	completed := false
	defer func() {
		// Once, whether next returned or panicked: a panic goes on up.
		actual := max(c.s.meter.Total(), c.h.opts.MinCost)
		if refundIf := c.h.opts.RefundIf; refundIf != nil {
			status := cmp.Or(sw.status, http.StatusOK)
			if !completed {
				status = http.StatusInternalServerError
			}
			if refundIf(status) {
				actual = 0
				c.s.idem.void = true
			}
		}
		c.settle(hd, actual)
	}()
	c.h.next.ServeHTTP(w, c.r)
	completed = true
}

// settle settles hd at actual, even if the client hung up, and reports it.
// Beyond the hold, actual is debited only under Overdraft, if the balance
// covers it; a hold whose lease ended is charged as a plain spend.
func (c *charge) settle(hd store.Hold, actual int64) {
	p, caller := c.h.p, &c.s.caller
	if p.opts.Shadow {
		c.settleShadow(hd, actual)
		return
	}
	ctx := c.storeContext() // Settle completes even if the client hung up
	debit := min(actual, hd.Amount)
	bal, err := p.holder.Settle(ctx, hd, debit)
	extra := actual - debit
	released := errors.Is(err, store.ErrNotFound) // the lease ended: the hold was given back
	if released {
		extra, debit, err = actual, 0, nil
	}
	if extra > 0 && (c.h.opts.Overdraft || released) && err == nil {
		var res store.SpendResult
		if res, err = p.store.Spend(context.WithoutCancel(ctx), caller.Account.ID, extra); err == nil && res.OK {
			debit, bal = debit+extra, res.Balance
			p.thresholds(ctx, res)
		} else if err == nil {
			err = errors.New("paywall: the balance does not cover the metered cost beyond the hold")
		}
	}
	caller.Charged += debit - hd.Amount
	e := decision("settle", caller)
	e.Allowed, e.Cost, e.Balance, e.Err = err == nil, debit, bal, err
	if err == nil {
		caller.Balance = bal
	}
	p.report(c.r, e)
}

// checkMetered checks and completes the metering options of ChargeWith.
func checkMetered(p *Paywall, opts *ChargeOptions) {
	switch {
	case !opts.Metered:
		return
	case p.holder == nil:
		panic("paywall: ChargeWith: Metered needs a store that implements store.Holder")
	case opts.MinCost < 0 || opts.Lease < 0:
		panic("paywall: ChargeWith: negative MinCost or Lease")
	}
	opts.Lease = cmp.Or(opts.Lease, DefaultLease)
}
