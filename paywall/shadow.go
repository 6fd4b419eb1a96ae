package paywall

import (
	"net/http"
	"strconv"

	"github.com/go402/go402/store"
)

// Header names of shadow mode ([Options.Shadow]). A client never acts on
// them: they are not the headers of the denial they describe.
const (
	// HeaderPaywallShadow is set on a request a shadow paywall would have
	// refused: a Structured Field item, the denial code as a string with
	// its status and step, for example
	//	Paywall-Shadow: "insufficient_credits";status=402;step="charge"
	HeaderPaywallShadow = "Paywall-Shadow"
	// HeaderPaymentOverdueShadow is [HeaderPaymentOverdue] of a shadow
	// paywall: the HTTP-date at which the grace of a past-due account ends.
	HeaderPaymentOverdueShadow = "Payment-Overdue-Shadow"
)

// shadowRefuse is refuse in shadow mode: it reports the refusal d of the
// request at e.Step, marked Shadow, names it in Paywall-Shadow and marks
// the request's state s so that later steps let it through unchecked, as
// an enforcing paywall would never have reached them. It writes nothing
// else; the caller serves the request.
func (p *Paywall) shadowRefuse(w http.ResponseWriter, r *http.Request, s *requestState, e Decision, d *Denial) {
	p.resolve(&e, d)
	s.shadowed = true
	w.Header().Set(HeaderPaywallShadow, shadowValue(d.Code, d.Status, e.Step))
	p.report(r, e)
}

// shadowValue is the Paywall-Shadow value of a refusal with code and
// status at step.
func shadowValue(code Code, status int, step string) string {
	b := make([]byte, 0, len(code)+len(step)+24)
	b = appendSFString(b, string(code))
	b = append(b, ";status="...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ";step="...)
	return string(appendSFString(b, step))
}

// appendSFString appends s as a Structured Field string (RFC 9651):
// quoted, with '"' and '\' escaped and bytes outside printable ASCII left
// out.
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20 && c <= 0x7e:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// refuseKey refuses a request Authenticate cannot authenticate; in shadow
// mode it reports the refusal and serves next with no [Caller].
func (p *Paywall) refuseKey(w http.ResponseWriter, r *http.Request, next http.Handler, e Decision, d *Denial) {
	if !p.opts.Shadow {
		p.refuse(w, r, e, d)
		return
	}
	r, s := withState(r)
	s.failedOpen = true // no Caller
	p.shadowRefuse(w, r, s, e, d)
	next.ServeHTTP(w, r)
}

// overdueHeader is the header of a past-due account's grace.
func (p *Paywall) overdueHeader() string {
	if p.opts.Shadow {
		return HeaderPaymentOverdueShadow
	}
	return HeaderPaymentOverdue
}

// deny refuses the charge's request at step with d; in shadow mode it
// reports the refusal and serves the request uncharged.
func (c *charge) deny(step string, d *Denial) {
	p, e := c.h.p, decision(step, &c.s.caller)
	if !p.opts.Shadow {
		p.refuse(c.w, c.r, e, d)
		return
	}
	p.shadowRefuse(c.w, c.r, c.s, e, d)
	c.h.next.ServeHTTP(c.w, c.r)
}

// preview decides the charge of a shadow paywall against the balance as
// it stands ([store.Preview]), debits and holds nothing, and serves the
// request; a metered one reports the settlement it would have made.
func (c *charge) preview() {
	p, caller, step := c.h.p, &c.s.caller, "charge"
	if c.h.opts.Metered {
		step = "hold"
	}
	res := store.Preview(&caller.Account, c.cost, p.opts.Clock())
	if !res.OK {
		c.deny(step, p.creditDenial(&caller.Account, c.cost, res))
		return
	}
	p.allow(c.r, step, caller, c.cost)
	if c.h.opts.Metered {
		c.serveMetered(store.Hold{AccountID: caller.Account.ID, Amount: c.cost})
		return
	}
	c.h.next.ServeHTTP(c.w, c.r)
}

// settleShadow reports the settlement of hd at actual that an enforcing
// paywall would make, and makes none: Cost is what it would debit.
func (c *charge) settleShadow(hd store.Hold, actual int64) {
	p := c.h.p
	if p.opts.OnDecision == nil {
		return
	}
	if !c.h.opts.Overdraft {
		actual = min(actual, hd.Amount)
	}
	e := decision("settle", &c.s.caller)
	e.Allowed, e.Cost = true, actual
	p.report(c.r, e)
}
