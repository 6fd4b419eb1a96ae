package paywall

import (
	"context"
	"net/http"
)

// serve runs the handler of a charged request; with refunds on, it
// watches the status and gives the cost back if RefundIf says so.
func (c *charge) serve() {
	refundIf := c.h.opts.RefundIf
	if refundIf == nil {
		c.h.next.ServeHTTP(c.w, c.r)
		return
	}
	sw := &statusWriter{ResponseWriter: c.w}
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
		if refundIf(status) && c.refund() {
			c.s.idem.void = true
		}
	}()
	c.h.next.ServeHTTP(sw, c.r)
	completed = true
}

// refund gives the cost back to the account, reports it, and reports
// whether it was given back. The request's context is stripped of its
// cancellation, so that a client hanging up does not prevent it.
func (c *charge) refund() bool {
	p, caller := c.h.p, &c.s.caller
	bal, err := p.refunder.Refund(context.WithoutCancel(c.r.Context()), caller.Account.ID, c.cost)
	e := decision("refund", caller)
	e.Allowed, e.Cost, e.Balance, e.Err = err == nil, c.cost, bal, err
	if err != nil {
		e.Code, e.Balance = CodeStoreUnavailable, 0
	}
	p.report(c.r, e)
	return err == nil
}
